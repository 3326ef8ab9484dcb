"""Journal faults: every call still answers, one warning per outage, and the journal comes back by itself."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from journal_util import DONE, VID, job_start, start_job, warnings
from pg import PostgresCluster

from pixverse_mcp.config import Settings
from pixverse_mcp.journal import Journal, NoJournal, create_journal, journal_for

pytestmark = pytest.mark.anyio

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


async def every_call_is_neutral(journal: Journal) -> None:
    """Each method once: none raises, each answers its neutral value."""
    start = job_start(99)
    await journal.record_sending(start)
    await journal.record_uncertain(start)
    await journal.record_started(start, VID, 30)
    await journal.update_status(VID, DONE)
    await journal.discard_attempt(start.trace_id)
    assert await journal.get_job(VID) is None
    assert await journal.list_jobs() == []
    assert await journal.find_recent_uncertain(start.request_key) is None
    assert await journal.credits_spent(LONG_AGO) is None
    assert await journal.cost_samples() == []


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """The file made unwritable: by its mode for a user; root ignores modes, so the immutable flag."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True, capture_output=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True, capture_output=True)
    else:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o600)


async def test_a_damaged_sqlite_file_is_reported_once_and_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "journal.sqlite3"
    garbage = b"these bytes are not a SQLite database\n" * 200
    path.write_bytes(garbage)
    journal = create_journal(f"sqlite://{path}")
    await every_call_is_neutral(journal)
    await every_call_is_neutral(journal)
    [message] = warnings(caplog)
    assert str(path) in message and "damaged" in message and "move it away" in message
    assert path.read_bytes() == garbage

    path.rename(tmp_path / "damaged.sqlite3")  # what the warning says to do; no restart needed
    await start_job(journal, 1, VID)
    assert [job.video_id for job in await journal.list_jobs()] == [str(VID)]
    assert "works again" in caplog.text
    await journal.close()


async def test_a_folder_where_the_file_should_be(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "journal.sqlite3"
    path.mkdir()
    journal = create_journal(f"sqlite://{path}")
    await every_call_is_neutral(journal)
    await every_call_is_neutral(journal)
    [message] = warnings(caplog)
    assert str(path) in message and "may write" in message

    path.rmdir()
    await start_job(journal, 1, VID)
    assert (await journal.get_job(VID)) is not None
    await journal.close()


async def test_an_unwritable_sqlite_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "journal.sqlite3"
    url = f"sqlite://{path}"
    first = create_journal(url)
    await start_job(first, 1, 101)
    await first.close()
    before = path.read_bytes()

    journal = create_journal(url)
    with unwritable(path):
        for _ in range(2):
            start = job_start(2)
            await journal.record_sending(start)
            await journal.record_started(start, 102, 30)
            await journal.update_status(102, DONE)
            # The history stays readable; the new job is not there.
            assert [job.video_id for job in await journal.list_jobs()] == ["101"]
            assert await journal.get_job(102) is None
        [message] = warnings(caplog)
        assert str(path) in message and "may write" in message
        assert "works again" not in caplog.text  # reads that work do not end the outage
    assert path.read_bytes() == before

    await start_job(journal, 3, 103)
    assert [job.video_id for job in await journal.list_jobs()] == ["103", "101"]
    assert "works again" in caplog.text
    assert len(warnings(caplog)) == 1
    await journal.close()


async def test_postgres_stopped_mid_run_then_restarted(
    postgres: PostgresCluster, caplog: pytest.LogCaptureFixture
) -> None:
    url = postgres.new_url()
    busy, idle = create_journal(url, retry_interval=0), create_journal(url, retry_interval=0)
    await start_job(busy, 1, 101)
    await start_job(idle, 2, 102)
    postgres.stop()
    try:
        await every_call_is_neutral(busy)
        await every_call_is_neutral(busy)
        [message] = warnings(caplog)
        assert "PostgreSQL database postgres" in message and "running and reachable" in message
    finally:
        postgres.start()

    # The idle journal's pooled connection died with the server: it reconnects and loses nothing.
    await start_job(idle, 3, 103)
    await start_job(busy, 4, 104)
    assert [job.video_id for job in await busy.list_jobs()] == ["104", "103", "102", "101"]
    assert "works again" in caplog.text
    assert len(warnings(caplog)) == 1
    await busy.close()
    await idle.close()


async def test_an_unreachable_postgres_never_shows_its_password(caplog: pytest.LogCaptureFixture) -> None:
    url = "postgresql://pixverse:s3cr%40t-pass@/journal?host=/nonexistent-pixverse-socket-dir"
    journal = create_journal(url, retry_interval=0)
    await every_call_is_neutral(journal)
    await every_call_is_neutral(journal)
    [message] = warnings(caplog)
    assert "PostgreSQL database journal" in message
    for shown in (caplog.text, repr(journal), journal.location):
        assert "s3cr" not in shown
    await journal.close()


async def test_the_journal_turned_off(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    journal = journal_for(Settings.from_env({"PIXVERSE_JOURNAL": "off"}))
    assert isinstance(journal, NoJournal) and not journal.enabled
    await every_call_is_neutral(journal)
    assert not warnings(caplog)


async def test_the_default_journal_lives_in_the_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    journal = journal_for(Settings.from_env({}))
    path = tmp_path / "state" / "pixverse-restyle-mcp" / "journal.sqlite3"
    assert journal.location == str(path)
    await start_job(journal, 1, VID)
    await journal.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # prompts and paths are the user's business
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = journal_for(Settings.from_env({}))
    assert (await again.get_job(VID)) is not None
    await again.close()


async def test_a_sqlite_url_picks_the_file(tmp_path: Path) -> None:
    path = tmp_path / "my journal.sqlite3"
    journal = journal_for(Settings.from_env({"PIXVERSE_JOURNAL_URL": f"sqlite://{path}"}))
    await start_job(journal, 1, VID)
    await journal.close()
    assert path.is_file()


async def test_a_time_edited_by_hand_hides_no_job(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = create_journal(f"sqlite://{path}")
    await start_job(journal, 1, VID)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE pixverse_jobs SET started_at = 'yesterday', finished_at = 'soon'")
        conn.commit()
    [job] = await journal.list_jobs()
    assert (job.video_id, job.started_at, job.finished_at) == (str(VID), datetime.fromtimestamp(0, UTC), None)
    assert not warnings(caplog)
    await journal.close()
