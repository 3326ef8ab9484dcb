"""Groups in the job journal (restyle_many): the same tests on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json

import pytest
import test_journal
from journal_util import DONE, VID, job_start, start_job, warnings
from test_journal import Store

from pixverse_mcp.journal.schema import POSTGRES_MIGRATIONS, SCHEMA_VERSION, SQLITE_MIGRATIONS

pytestmark = pytest.mark.anyio

store = test_journal.store  # the fixture: each test runs on both backends


async def test_a_group_keeps_its_plan_and_finds_its_jobs_by_item_and_part(store: Store) -> None:
    journal = store.journal()
    plan = json.dumps({"items": [{"label": "Anime Cel"}, {"label": "Pencil Sketch"}]})
    await journal.record_group("g-1", plan, client_name="claude-ai")
    created = store.clock.now
    # Item 1 split in two parts, item 0 whole; a job of another group and one of no group.
    await start_job(journal, 1, VID + 2, group_id="g-1", group_item=1, group_part=1)
    await start_job(journal, 2, VID, group_id="g-1", group_item=0, group_part=0)
    await start_job(journal, 3, VID + 1, group_id="g-1", group_item=1, group_part=0)
    await start_job(journal, 4, VID + 3, group_id="g-2", group_item=0, group_part=0)
    await start_job(journal, 5, VID + 4)
    uncertain = job_start(6, group_id="g-1", group_item=2, group_part=0)
    await journal.record_sending(uncertain)
    await journal.record_uncertain(uncertain)

    store.clock.advance(seconds=30)
    later = json.dumps({"items": [{"label": "Anime Cel", "joined_path": "/out/x.mp4"}]})
    await journal.record_group("g-1", later, client_name="another client")
    await journal.close()

    reopened = store.journal()
    group = await reopened.get_group("g-1")
    assert group is not None
    assert (group.plan, group.client_name) == (later, "claude-ai")
    assert (group.created_at, group.updated_at) == (created, store.clock.now)
    jobs = await reopened.jobs_in_group("g-1")
    assert [(j.group_item, j.group_part, j.video_id) for j in jobs] == [
        (0, 0, str(VID)),
        (1, 0, str(VID + 1)),
        (1, 1, str(VID + 2)),
        (2, 0, None),
    ]
    assert jobs[-1].status == "uncertain" and jobs[-1].trace_id == "trace-6"
    assert await reopened.get_group("g-3") is None and await reopened.jobs_in_group("g-3") == []
    # list_jobs finds a group's jobs by its id.
    assert {j.video_id for j in await reopened.list_jobs(query="g-2")} == {str(VID + 3)}


async def test_a_status_update_keeps_the_job_in_its_group(store: Store) -> None:
    journal = store.journal()
    await start_job(journal, 1, VID, group_id="g-1", group_item=3, group_part=0)
    await journal.update_status(VID, DONE)
    [job] = await journal.jobs_in_group("g-1")
    assert (job.status, job.group_item, job.url) == ("succeeded", 3, DONE.url)


async def test_hostile_group_values_are_refused_or_bounded(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    journal = store.journal()
    await journal.record_group("g-1", "x" * (300 * 1024))
    await journal.record_group("", "{}")
    await journal.record_group("g" * 500, "{}")
    assert await journal.get_group("g-1") is None and await journal.get_group("g" * 500) is None
    assert any("not kept" in message for message in warnings(caplog))
    await start_job(journal, 1, VID, group_id="g-2", group_item=10**9, group_part=-1)
    [job] = await journal.jobs_in_group("g-2")
    assert (job.group_item, job.group_part) == (None, None)


async def test_a_journal_of_the_first_schema_is_brought_forward(store: Store) -> None:
    """A journal written before groups existed keeps its jobs and gains the group tables."""
    if store.backend == "sqlite":
        for statement in SQLITE_MIGRATIONS[0]:
            store.raw(statement)
        store.raw("PRAGMA user_version = 1")
    else:
        store.raw("CREATE TABLE pixverse_schema (version INTEGER NOT NULL)")
        store.raw("INSERT INTO pixverse_schema (version) VALUES (1)")
        for statement in POSTGRES_MIGRATIONS[0]:
            store.raw(statement)
    store.raw(
        "INSERT INTO pixverse_jobs (video_id, trace_id, status, source, started_at, updated_at) "
        "VALUES ('42', 'old-trace', 'succeeded', 'old.mp4', '2026-05-01T10:00:00.000000Z', "
        "'2026-05-01T10:00:00.000000Z')"
    )
    journal = store.journal()
    old = await journal.get_job(42)
    assert old is not None and (old.source, old.group_item, old.group_part) == ("old.mp4", None, None)
    await journal.record_group("g-1", "{}")
    assert await journal.get_group("g-1") is not None
    if store.backend == "sqlite":
        assert store.raw("PRAGMA user_version") == [(SCHEMA_VERSION,)]
    else:
        assert store.raw("SELECT version FROM pixverse_schema") == [(SCHEMA_VERSION,)]
