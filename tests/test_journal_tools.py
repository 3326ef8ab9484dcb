"""The job journal and spend control through the protocol: nothing paid is lost, nothing spent by surprise."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import call_error, call_ok, upload
from mcp import Client
from mcp.types import ElicitRequestParams, ElicitResult, TextResourceContents
from pydantic import SecretStr

from pixverse_mcp.config import Settings
from pixverse_mcp.sandbox import SandboxServer
from pixverse_mcp.server import create_server

pytestmark = pytest.mark.anyio


def _configure(sandbox: SandboxServer, **changes: Any) -> None:
    sandbox.state.config = sandbox.state.config.model_copy(update=changes)


def _jobs(sandbox: SandboxServer) -> int:
    return int(sandbox.state.stats()["jobs_created"])


@pytest.fixture
def journal_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.with_changes(journal_url=SecretStr(f"sqlite:///{tmp_path / 'journal.sqlite3'}"))


async def _restyle(client: Client, media_id: str, **args: Any) -> dict[str, Any]:
    return await call_ok(
        client,
        "restyle_video",
        {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 0, **args},
    )


async def test_a_cancelled_restyle_is_found_by_list_jobs_even_after_a_restart(
    journal_settings: Settings, clip: Path, sandbox: SandboxServer
) -> None:
    _configure(sandbox, job_seconds=60)
    async with Client(create_server(journal_settings)) as client:
        media_id = await upload(client, clip)
        started = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            if (message or "").startswith("job started"):
                started.set()

        async with anyio.create_task_group() as group:

            async def restyle_then_give_up() -> None:
                await client.call_tool(
                    "restyle_video",
                    {"video_media_id": media_id, "restyle_prompt": "neon night", "wait_seconds": 30},
                    progress_callback=on_progress,
                )

            group.start_soon(restyle_then_give_up)
            await started.wait()
            group.cancel_scope.cancel()  # the client gives up while the call waits for the job
        listed = await call_ok(client, "list_jobs", {})
    [job] = listed["jobs"]
    assert job["status"] == "sending" or job["video_id"] is not None
    video_id = str(next(iter(sandbox.state.jobs)))
    assert (
        job["video_id"] == video_id and job["prompt"] == "neon night" and job["source"].startswith("clip.mp4")
    )
    # A new server process on the same journal: the job is still there, and get_status updates it.
    _configure(sandbox, job_seconds=0.1)
    async with Client(create_server(journal_settings)) as again:
        found = await call_ok(again, "list_jobs", {"query": "neon"})
        assert [j["video_id"] for j in found["jobs"]] == [video_id]
        done = await call_ok(again, "get_status", {"video_id": video_id, "wait_seconds": 10})
        assert done["status"] == "succeeded"
        after = await call_ok(again, "list_jobs", {"status": "succeeded"})
        resource = await again.read_resource("pixverse://jobs")
    assert [j["video_id"] for j in after["jobs"]] == [video_id] and after["jobs"][0]["url"] == done["url"]
    first = resource.contents[0]
    assert isinstance(first, TextResourceContents) and video_id in first.text


async def test_an_uncertain_generate_is_recovered_without_passing_its_trace_id(
    journal_settings: Settings, clip: Path, sandbox: SandboxServer
) -> None:
    async with Client(create_server(journal_settings)) as client:
        media_id = await upload(client, clip)
        # PixVerse makes the job, but every reply to the generate is lost.
        sandbox.state.add_fault(endpoint="generate", kind="drop", when="after", count=3)
        text = await call_error(
            client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 0}
        )
        assert "trace_id" in text and _jobs(sandbox) == 1
        uncertain = await call_ok(client, "list_jobs", {"status": "uncertain"})
        assert uncertain["count"] == 1 and uncertain["jobs"][0]["video_id"] is None
        # The model calls again with the same arguments and no trace id: the journal supplies it.
        again = await _restyle(client, media_id)
    assert _jobs(sandbox) == 1, "a second job was started"
    assert again["video_id"] == str(next(iter(sandbox.state.jobs)))
    assert again["trace_id"] == uncertain["jobs"][0]["trace_id"] and "was sent again" in (again["note"] or "")


async def test_dry_run_starts_nothing_and_the_estimate_is_learned(
    journal_settings: Settings, clip: Path, sandbox: SandboxServer
) -> None:
    async with Client(create_server(journal_settings)) as client:
        media_id = await upload(client, clip)
        first = await _restyle(client, media_id, dry_run=True)
        assert first["status"] == "dry_run" and first["video_id"] is None and _jobs(sandbox) == 0
        assert "unknown until the first job" in first["message"] and "1,500 credits" in first["message"]
        paid = await _restyle(client, media_id)
        assert paid["credits"] == 30 and paid["balance_after"] == 1470
        learned = await _restyle(client, media_id, dry_run=True)
    assert learned["estimated_credits"] == 30 and learned["balance_after"] == 1440 and _jobs(sandbox) == 1


async def test_caps_refuse_before_anything_is_sent(
    journal_settings: Settings, clip: Path, sandbox: SandboxServer
) -> None:
    capped = journal_settings.with_changes(max_credits_per_job=20, max_credits_per_day=50)
    async with Client(create_server(capped)) as client:
        media_id = await upload(client, clip)
        first = await _restyle(client, media_id)  # no estimate yet: the first job teaches it
        assert "could not be checked" in (first["note"] or "")
        text = await call_error(
            client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "sepia"}
        )
        assert "PIXVERSE_MAX_CREDITS_PER_JOB" in text and "about 30 credits" in text and "no credits" in text
    assert _jobs(sandbox) == 1
    day_only = journal_settings.with_changes(max_credits_per_day=50)
    async with Client(create_server(day_only)) as client:
        text = await call_error(
            client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "sepia"}
        )
    assert "PIXVERSE_MAX_CREDITS_PER_DAY" in text and "30 credits spent" in text and _jobs(sandbox) == 1


def _answering(action: str, go_ahead: bool = True) -> Any:
    async def callback(context: Any, params: ElicitRequestParams) -> ElicitResult:
        assert "credits" in params.message
        return ElicitResult(action=action, content={"go_ahead": go_ahead} if action == "accept" else None)

    return callback


@pytest.mark.parametrize(
    ("callback", "started", "needle"),
    [
        (_answering("accept"), True, None),
        (_answering("accept", go_ahead=False), False, "declined"),
        (_answering("decline"), False, "declined"),
        (None, True, "cannot show the question"),
    ],
)
async def test_the_spending_question(
    journal_settings: Settings,
    clip: Path,
    sandbox: SandboxServer,
    callback: Any,
    started: bool,
    needle: str | None,
    mode: str,
) -> None:
    # Both protocol generations: mid-call elicitation (handshake era), input_required (2026-07-28).
    asking = journal_settings.with_changes(confirm_spend="ask")
    async with Client(create_server(asking), mode=mode, elicitation_callback=callback) as client:
        media_id = await upload(client, clip)
        args = {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 0}
        if started:
            answer = await call_ok(client, "restyle_video", args)
            assert needle is None or needle in (answer["note"] or "")
        else:
            text = await call_error(client, "restyle_video", args)
            assert needle in text and "no credits were spent" in text
    assert _jobs(sandbox) == (1 if started else 0)


async def test_a_client_that_never_answers_the_question_starts_nothing(
    journal_settings: Settings, clip: Path, sandbox: SandboxServer
) -> None:
    never = anyio.Event()

    async def silent(context: Any, params: ElicitRequestParams) -> ElicitResult:
        await never.wait()
        raise AssertionError("unreachable")

    asking = journal_settings.with_changes(confirm_spend="ask", confirm_timeout_seconds=0.5)
    async with Client(create_server(asking), mode="legacy", elicitation_callback=silent) as client:
        media_id = await upload(client, clip)
        text = await call_error(
            client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir"}
        )
        never.set()
    assert "No answer came" in text and _jobs(sandbox) == 0


async def test_a_broken_journal_never_hides_the_job(
    settings: Settings, clip: Path, sandbox: SandboxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "journal-is-a-folder"
    blocked.mkdir()
    broken = settings.with_changes(journal_url=SecretStr(f"sqlite:///{blocked}"))
    async with Client(create_server(broken)) as client:
        media_id = await upload(client, clip)
        first = await _restyle(client, media_id)
        second = await _restyle(client, media_id)
        listed = await call_ok(client, "list_jobs", {})
    assert first["video_id"] and second["video_id"] and listed["count"] == 0
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "journal" in r.getMessage().lower()
    ]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


async def test_the_journal_can_be_turned_off(settings: Settings, clip: Path, sandbox: SandboxServer) -> None:
    async with Client(create_server(settings.with_changes(journal_enabled=False))) as client:
        media_id = await upload(client, clip)
        await _restyle(client, media_id)
        listed = await call_ok(client, "list_jobs", {})
    assert listed["count"] == 0 and "off" in listed["message"]


@pytest.fixture
async def shared_journal(postgres: Any) -> AsyncIterator[str]:
    yield postgres.new_url()


async def test_two_replicas_share_one_postgresql_journal_and_day_cap(
    sandbox: SandboxServer, videos: Path, clip: Path, tmp_path: Path, shared_journal: str
) -> None:
    from test_http import mcp_client, replicas

    env = {"PIXVERSE_JOURNAL_URL": shared_journal, "PIXVERSE_MAX_CREDITS_PER_DAY": "50"}
    with replicas(2, sandbox, videos, tmp_path, extra_env=env) as (first, second):
        async with (
            mcp_client(f"http://127.0.0.1:{first}/mcp") as on_first,
            mcp_client(f"http://127.0.0.1:{second}/mcp") as on_second,
        ):
            media_id = await upload(on_first, clip)
            started = await _restyle(on_first, media_id)
            seen = await call_ok(on_second, "list_jobs", {})
            assert [j["video_id"] for j in seen["jobs"]] == [started["video_id"]]
            # 30 credits spent through the first replica: the second refuses another 30 against a 50 cap.
            text = await call_error(
                on_second, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "sepia"}
            )
    assert "PIXVERSE_MAX_CREDITS_PER_DAY" in text and _jobs(sandbox) == 1
