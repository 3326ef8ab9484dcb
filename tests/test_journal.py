"""The job journal: the same tests on SQLite and on a real PostgreSQL, then each backend's own faults."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from conftest import SECRET_KEY
from journal_util import DONE, GENERATING, MAX_ID, VID, Clock, job_start, start_job, warnings
from pg import PostgresCluster

from pixverse_mcp import spend
from pixverse_mcp.journal import JobRecord, Journal, StatusUpdate, create_journal

pytestmark = pytest.mark.anyio


@dataclass
class Store:
    """One journal store (a SQLite file or a PostgreSQL schema) and the journals opened on it."""

    backend: str
    url: str
    clock: Clock
    cluster: PostgresCluster | None = None
    journals: list[Journal] = field(default_factory=list)

    def journal(self) -> Journal:
        journal = create_journal(self.url, clock=self.clock, retry_interval=0)
        self.journals.append(journal)
        return journal

    def raw(self, sql: str) -> list[tuple[object, ...]]:
        """Run SQL on the store directly, beside the journal."""
        if self.cluster is not None:
            return self.cluster.execute(sql, self.url)
        with contextlib.closing(sqlite3.connect(self.url.removeprefix("sqlite://"))) as conn:
            rows = conn.execute(sql).fetchall()
            conn.commit()
            return rows


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        made = Store("sqlite", f"sqlite://{tmp_path / 'journal.sqlite3'}", Clock())
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        made = Store("postgresql", cluster.new_url(), Clock(), cluster)
    yield made
    for journal in made.journals:
        await journal.close()


async def test_a_reopened_journal_has_every_field(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    first = store.journal()
    start = job_start(
        1, source_kind="url", source="https://example.com/skate.mov", prompt="in ink", group_id="g-1"
    )
    started_at = store.clock.now
    await first.record_sending(start)
    await first.record_started(start, MAX_ID, 30)
    store.clock.advance(seconds=75.5)
    finished = dataclasses.replace(DONE, local_path="/out/pixverse-1.mp4", seed=99)
    await first.update_status(MAX_ID, finished)
    await first.close()

    second = store.journal()
    assert await second.get_job(MAX_ID) == JobRecord(
        video_id=str(MAX_ID),
        trace_id="trace-1",
        request_key="key-1",
        status="succeeded",
        status_code=1,
        source_kind="url",
        source="https://example.com/skate.mov",
        source_fingerprint="sha256:" + "ab" * 32,
        source_seconds=4.0,
        restyle_id="1003",
        style_name="Pencil Sketch",
        prompt="in ink",
        seed=99,
        credits=30,
        url="https://cdn.example/v.mp4",
        local_path="/out/pixverse-1.mp4",
        client_name="claude-ai",
        group_id="g-1",
        started_at=started_at,
        finished_at=started_at + timedelta(seconds=75.5),
    )
    assert not warnings(caplog)


async def test_ids_up_to_2_to_the_64_round_trip(store: Store) -> None:
    journal = store.journal()
    ids = [2**53 + 1, 2**63 - 1, 2**63, MAX_ID]
    for video_id in ids:
        await journal.update_status(video_id, GENERATING)
    for video_id in ids:
        by_int, by_text = await journal.get_job(video_id), await journal.get_job(f" {video_id}")
        assert by_int is not None and by_int == by_text and by_int.video_id == str(video_id)
    assert [job.video_id for job in await journal.list_jobs(query=str(MAX_ID))] == [str(MAX_ID)]
    stored = store.raw("SELECT video_id FROM pixverse_jobs")
    assert sorted(int(str(row[0])) for row in stored) == sorted(ids)
    # Not an id: ignored, never an error and never a row.
    await journal.update_status("12ab", GENERATING)
    await journal.update_status(-5, GENERATING)
    assert await journal.get_job("12ab") is None
    assert len(await journal.list_jobs()) == len(ids)


async def test_concurrent_writers_on_two_journals_lose_nothing(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = store.journal(), store.journal()
    async with anyio.create_task_group() as tg:  # both create the schema at once
        tg.start_soon(first.open)
        tg.start_soon(second.open)

    async def one_job(journal: Journal, n: int) -> None:
        await start_job(journal, n, 10**18 + n, credits=2)
        await journal.update_status(10**18 + n, DONE)

    async with anyio.create_task_group() as tg:
        for n in range(60):
            tg.start_soon(one_job, (first, second)[n % 2], n)

    jobs = await second.list_jobs(limit=200)
    assert sorted(int(job.video_id or 0) for job in jobs) == [10**18 + n for n in range(60)]
    assert {job.status for job in jobs} == {"succeeded"}
    assert sorted(job.trace_id or "" for job in jobs) == sorted(f"trace-{n}" for n in range(60))
    assert await first.credits_spent(store.clock.now - timedelta(hours=1)) == 120
    assert not warnings(caplog)


CHILD_WRITER = """
import sys, anyio
from pixverse_mcp.journal import JobStart, create_journal

async def main():
    journal = create_journal(sys.argv[1])
    await journal.open()
    print("ready", flush=True)
    sys.stdin.readline()
    for n in range(40):
        start = JobStart(trace_id=f"child-{n}", request_key="k", source_kind="media", source="1")
        await journal.record_sending(start)
        await journal.record_started(start, 2**60 + n, 1)
    await journal.close()

anyio.run(main)
"""


async def test_two_processes_share_one_sqlite_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite://{tmp_path / 'journal.sqlite3'}"
    journal = create_journal(url)
    async with await anyio.open_process([sys.executable, "-c", CHILD_WRITER, url]) as child:
        assert child.stdout is not None and child.stdin is not None and child.stderr is not None
        with anyio.fail_after(30):
            said = b""
            while b"\n" not in said:
                said += await child.stdout.receive()
            assert said == b"ready\n"
            await child.stdin.send(b"go\n")
            for n in range(40):
                await start_job(journal, n, 2**61 + n, credits=1)
            assert await child.wait() == 0
            errors = b"".join([chunk async for chunk in child.stderr])
    assert errors == b""  # the child logged no warning either
    traces = {job.trace_id for job in await journal.list_jobs(limit=200)}
    assert traces == {f"child-{n}" for n in range(40)} | {f"trace-{n}" for n in range(40)}
    await journal.close()
    assert not warnings(caplog)


async def test_an_uncertain_generate_is_offered_for_30_minutes(store: Store) -> None:
    journal = store.journal()
    start = job_start(1)
    await journal.record_sending(start)
    assert await journal.find_recent_uncertain(start.request_key) is None  # still in flight
    await journal.record_uncertain(start)
    assert await journal.find_recent_uncertain(start.request_key) == "trace-1"
    assert await journal.find_recent_uncertain("key-2") is None
    [listed] = await journal.list_jobs(status="uncertain")
    assert (listed.trace_id, listed.video_id, listed.credits) == ("trace-1", None, None)

    store.clock.advance(minutes=29)
    assert await journal.find_recent_uncertain(start.request_key) == "trace-1"
    store.clock.advance(minutes=2)
    assert await journal.find_recent_uncertain(start.request_key) is None
    assert await journal.find_recent_uncertain(start.request_key, within=timedelta(hours=1)) == "trace-1"


async def test_the_newest_uncertain_generate_of_a_request_wins(store: Store) -> None:
    journal = store.journal()
    older, newer = job_start(1, request_key="same"), job_start(2, request_key="same")
    await journal.record_uncertain(older)
    store.clock.advance(minutes=1)
    await journal.record_uncertain(newer)
    assert await journal.find_recent_uncertain("same") == "trace-2"


async def test_a_generate_left_sending_by_a_stopped_process_becomes_uncertain(store: Store) -> None:
    journal = store.journal()
    start = job_start(1)
    await journal.record_sending(start)
    store.clock.advance(seconds=90)
    assert await journal.find_recent_uncertain(start.request_key) is None
    store.clock.advance(seconds=60)
    assert await journal.find_recent_uncertain(start.request_key) == "trace-1"


async def test_reusing_an_uncertain_trace_id_ends_in_one_job(store: Store) -> None:
    journal = store.journal()
    start = job_start(1)
    await journal.record_sending(start)
    await journal.record_uncertain(start)
    store.clock.advance(minutes=5)
    await journal.record_sending(start)  # the retry with the same trace id
    assert await journal.find_recent_uncertain(start.request_key) is None
    await journal.record_started(start, VID, 30)
    store.clock.advance(minutes=5)
    assert await journal.find_recent_uncertain(start.request_key) is None
    [job] = await journal.list_jobs()
    assert (job.video_id, job.trace_id, job.status, job.credits) == (str(VID), "trace-1", "generating", 30)


async def test_a_refused_generate_is_forgotten_and_a_started_one_is_not(store: Store) -> None:
    journal = store.journal()
    refused = job_start(1)
    await journal.record_sending(refused)
    await journal.discard_attempt(refused.trace_id)
    started = await start_job(journal, 2, VID)
    await journal.discard_attempt(started.trace_id)
    assert [job.trace_id for job in await journal.list_jobs()] == ["trace-2"]


async def test_list_jobs_newest_first_with_words_and_status(store: Store) -> None:
    journal = store.journal()
    made = [
        (1, 101, {"style_name": "Pencil Sketch", "source": "skate.mp4"}, DONE),
        (2, 102, {"style_name": None, "restyle_id": None, "prompt": "Été en aquarelle",
                  "source_kind": "url", "source": "https://example.com/beach.mov"}, GENERATING),
        (3, 103, {"style_name": "Film Noir", "source_kind": "media", "source": "9007199255543744"},
         StatusUpdate(status="failed", status_code=8, finished=True)),
        (4, 104, {"style_name": "100% Neon_Night", "source": "city.mov"}, DONE),
    ]  # fmt: skip
    for n, video_id, changes, status in made:
        await start_job(journal, n, video_id, **changes)
        await journal.update_status(video_id, status)
        store.clock.advance(minutes=1)

    async def ids(**query: object) -> list[int]:
        return [int(job.video_id or 0) for job in await journal.list_jobs(**query)]  # type: ignore[arg-type]

    assert await ids() == [104, 103, 102, 101]
    assert await ids(query="pencil") == [101]
    assert await ids(query="SKATE") == [101]
    assert await ids(query="ÉTÉ") == [102]
    assert await ids(query="beach.mov") == [102]
    assert await ids(query="noir 9007199255543744") == [103]
    assert await ids(query="noir skate") == []
    assert await ids(query="104") == [104]
    assert await ids(query="100%") == [104]  # % and _ are letters here, not wildcards
    assert await ids(query="l_s") == []  # as a wildcard it would match "pencil sketch"
    assert await ids(query="neon_night") == [104]
    assert await ids(status="succeeded") == [104, 101]
    assert await ids(status="failed", query="noir") == [103]
    assert await ids(status="generating", query="pencil") == []
    assert await ids(limit=2) == [104, 103]


async def test_a_status_read_adds_an_unknown_job_and_end_states_stick(store: Store) -> None:
    journal = store.journal()
    seen_at = store.clock.now
    await journal.update_status(
        VID, dataclasses.replace(GENERATING, style_name="Anime Cel", client_name="cursor")
    )
    job = await journal.get_job(VID)
    assert job is not None
    assert (job.status, job.status_code, job.trace_id, job.started_at) == ("generating", 5, None, seen_at)
    assert (job.style_name, job.client_name, job.finished_at) == ("Anime Cel", "cursor", None)

    store.clock.advance(seconds=30)
    await journal.update_status(VID, DONE)
    store.clock.advance(seconds=5)
    await journal.update_status(VID, GENERATING)  # a stale poll from another replica
    job = await journal.get_job(VID)
    assert job is not None
    assert (job.status, job.url, job.finished_at) == ("succeeded", DONE.url, seen_at + timedelta(seconds=30))

    await journal.update_status(VID, StatusUpdate(status="deleted", status_code=6, finished=True))
    job = await journal.get_job(VID)
    assert job is not None
    assert (job.status, job.url, job.finished_at) == ("deleted", DONE.url, seen_at + timedelta(seconds=30))


async def test_a_start_recorded_after_its_status_is_one_job(store: Store) -> None:
    journal = store.journal()
    await journal.update_status(VID, DONE)
    await journal.record_started(job_start(1), VID, 30)  # no "sending" row: the journal was down then
    [job] = await journal.list_jobs()
    assert (job.trace_id, job.credits, job.status, job.url) == ("trace-1", 30, "succeeded", DONE.url)
    assert job.style_name == "Pencil Sketch" and job.finished_at is not None


async def test_the_day_total_is_shared_by_two_journals(store: Store) -> None:
    first, second = store.journal(), store.journal()
    store.clock.now = datetime(2026, 5, 20, 23, 59, 59, 999999, tzinfo=UTC)
    await start_job(first, 1, 101, credits=100)  # yesterday
    store.clock.now = datetime(2026, 5, 21, 0, 0, tzinfo=UTC)
    await start_job(first, 2, 102, credits=30)
    await start_job(second, 3, 103, credits=20)
    await start_job(second, 4, 104, credits=50)
    await second.update_status(104, StatusUpdate(status="moderation_failed", status_code=7, finished=True))
    await start_job(second, 5, 105, credits=None)
    await second.record_uncertain(job_start(6))
    store.clock.advance(hours=23)
    for journal in (first, second):
        assert await spend.spent_today(journal, store.clock.now) == 50
    assert await spend.spent_today(first, store.clock.now + timedelta(hours=1)) == 0


async def test_the_estimate_learns_from_recent_jobs(store: Store) -> None:
    journal = store.journal()
    unknown = await spend.estimate(journal, 10.0)
    assert not unknown.known and "unknown until the first job" in unknown.describe()
    for n, (credits, seconds) in enumerate([(30, 10.0), (20, 5.0), (10, 5.0), (None, 4.0), (50, None)]):
        await start_job(journal, n, 100 + n, credits=credits, source_seconds=seconds)
        store.clock.advance(minutes=1)
    learned = await spend.estimate(journal, 8.0)
    assert (learned.credits, learned.credits_per_second, learned.samples) == (24, 3.0, 3)
    newest_two = await spend.estimate(journal, 8.0, samples=2)
    assert (newest_two.credits, newest_two.samples) == (24, 2)  # median of 4/s and 2/s


async def test_nothing_secret_reaches_the_store(store: Store) -> None:
    journal = store.journal()
    await start_job(journal, 1, VID, prompt="plain words")
    await journal.update_status(VID, DONE)
    dump = repr(store.raw("SELECT * FROM pixverse_jobs"))
    assert "plain words" in dump and SECRET_KEY not in dump
    if store.backend == "sqlite":
        await journal.close()
        raw = Path(store.url.removeprefix("sqlite://")).read_bytes()
        assert b"plain words" in raw and SECRET_KEY.encode() not in raw


async def test_a_journal_written_by_a_newer_server_is_left_alone(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    await start_job(store.journal(), 1, VID)
    for journal in store.journals:
        await journal.close()
    if store.backend == "sqlite":
        store.raw("PRAGMA user_version = 99")
    else:
        store.raw("UPDATE pixverse_schema SET version = 99")
    newer = store.journal()
    assert await newer.list_jobs() == []
    await start_job(newer, 2, VID + 1)
    [message] = warnings(caplog)
    assert "version 99" in message and "upgrade pixverse-restyle-mcp" in message
    assert [row[0] for row in store.raw("SELECT trace_id FROM pixverse_jobs")] == ["trace-1"]


async def test_hostile_values_are_bounded(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    journal = store.journal()
    start = job_start(
        1, prompt="p" * 100_000, client_name="c" * 10_000, seed=10**30, source_seconds=float("nan")
    )
    await journal.record_sending(start)
    await journal.record_started(start, VID, 10**30)
    huge = StatusUpdate(status="s" * 1000, status_code=-(10**30), finished=False, url="u" * 100_000)
    await journal.update_status(VID, huge)
    job = await journal.get_job(VID)
    assert job is not None
    lengths = (len(job.prompt or ""), len(job.client_name or ""), len(job.url or ""), len(job.status))
    assert lengths == (4096, 200, 4096, 40)
    assert (job.seed, job.credits, job.status_code, job.source_seconds) == (None, None, None, None)
    assert await spend.estimate(journal, 5.0) == spend.estimate_from([], 5.0)
    assert not warnings(caplog)


def test_a_file_has_one_fingerprint_by_path_or_by_its_open_descriptor(tmp_path: Path) -> None:
    from pixverse_mcp.bookkeeping import fingerprint
    from pixverse_mcp.journal import file_fingerprint
    from pixverse_mcp.paths import open_local_file

    for size in (10, 3 * 1024 * 1024 + 7):
        path = tmp_path / f"clip-{size}.mp4"
        path.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
        with open_local_file(str(path), (tmp_path,)) as opened:
            assert fingerprint(opened) == file_fingerprint(path)
        assert file_fingerprint(path) != file_fingerprint(tmp_path / "clip-10.mp4") or size == 10
