"""Every PixVerse status and the representative error codes reach the assistant as something to act on."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest
from conftest import FAST_POLICIES, ProgressLog, call_error, call_ok, upload
from mcp import Client
from pydantic import SecretStr

from pixverse_mcp.config import Settings
from pixverse_mcp.errors import ServerError, api_error
from pixverse_mcp.jobs import status_message, status_name, to_status
from pixverse_mcp.sandbox import SandboxServer
from pixverse_mcp.server import create_server
from pixverse_mcp.wire import VideoResult

pytestmark = pytest.mark.anyio

TRACE = re.compile(r"trace id [0-9a-f-]{36}")


@pytest.mark.parametrize(
    ("code", "status", "hint"),
    [(6, "deleted", "no longer exists"), (7, "moderation_failed", "refunds"), (8, "failed", "again")],
)
async def test_terminal_statuses(
    client: Client, clip: Path, sandbox: SandboxServer, code: int, status: str, hint: str
) -> None:
    media_id = await upload(client, clip)
    sandbox.state.add_fault(endpoint="generate", kind="job_outcome", code=code)
    done = await call_ok(client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "sepia"})
    assert done["status"] == status and done["status_code"] == code
    assert hint in done["message"] and done["url"] is None


async def test_generating_answers_with_check_again(
    client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    sandbox.state.config = sandbox.state.config.model_copy(update={"job_seconds": 30})
    media_id = await upload(client, clip)
    started = await call_ok(
        client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "sepia", "wait_seconds": 0}
    )
    assert started["status"] == "generating" and started["status_code"] == 5
    assert started["check_again_in_seconds"] and "get_status" in started["message"]
    assert started["video_id"] in started["message"]
    # wait_seconds=0 answers at once: one status check, no waiting for a second.
    assert sandbox.state.stats()["requests"]["result"] == 1


def test_every_status_code_is_mapped() -> None:
    for code, name, needle in [
        (1, "succeeded", "ready"),
        (2, "generating", "Queued"),
        (3, "generating", "In progress"),
        (5, "generating", "Still generating"),
        (6, "deleted", "deleted"),
        (7, "moderation_failed", "moderation"),
        (8, "failed", "failed to generate"),
    ]:
        assert status_name(code) == name
        assert needle in status_message(code, 42)
        if name == "generating":
            assert "get_status with video_id 42" in status_message(code, 42)
    for odd in (0, 4, 9, 99, None):
        assert status_name(odd) == "unknown"
        answer = to_status(VideoResult.model_validate({"id": 42, "status": odd}))
        assert answer.status == "unknown" and "does not know" in answer.message


async def test_wrong_key_is_400012(settings: Settings, sandbox: SandboxServer) -> None:
    server = create_server(settings.with_changes(api_key=SecretStr("sk-wrong")))
    async with Client(server) as client:
        text = await call_error(client, "list_restyles")
    assert "400012" in text and "PIXVERSE_API_KEY" in text and "--sandbox" in text and TRACE.search(text)


async def test_missing_key_says_how_to_set_it(settings: Settings, sandbox: SandboxServer) -> None:
    server = create_server(settings.with_changes(api_key=None))
    async with Client(server) as client:
        for tool, args in [
            ("list_restyles", {}),
            ("get_status", {"video_id": 5}),
            ("get_balance", {}),
            ("restyle_video", {"video_media_id": 5, "restyle_prompt": "noir"}),
        ]:
            text = await call_error(client, tool, args)
            assert "PIXVERSE_API_KEY" in text and "--sandbox" in text
    assert sum(sandbox.state.stats()["requests"].values()) == 0


async def test_unknown_media_is_400017(client: Client) -> None:
    text = await call_error(client, "restyle_video", {"video_media_id": 12345, "restyle_prompt": "noir"})
    assert "400017" in text and "upload_video" in text and TRACE.search(text)


@pytest.mark.parametrize(
    ("code", "needle"),
    [
        (400011, "a required parameter is empty"),
        (400013, "a parameter has the wrong type or value"),
        (400018, "Shorten restyle_prompt to at most 2048 characters"),
        (400019, "Shorten restyle_prompt to at most 2048 characters"),
        (500054, "refunds the credits"),
        (500063, "refunds the credits"),
        (500060, "monthly limit"),
        (500090, "Top up credits"),
        (123456, "does not know"),
    ],
)
async def test_generate_error_codes(
    client: Client, clip: Path, sandbox: SandboxServer, code: int, needle: str
) -> None:
    media_id = await upload(client, clip)
    sandbox.state.add_fault(endpoint="generate", kind="err_code", code=code)
    text = await call_error(client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir"})
    assert str(code) in text and needle in text and TRACE.search(text)
    assert sandbox.state.stats()["jobs_created"] == 0


@pytest.mark.parametrize(("code", "needle"), [(500008, "not found"), (500064, "deleted")])
async def test_a_job_that_does_not_exist_says_so_at_once(
    client: Client, sandbox: SandboxServer, code: int, needle: str
) -> None:
    if code != 500008:  # the sandbox answers 500008 for an id it never made by itself
        sandbox.state.add_fault(endpoint="result", kind="err_code", code=code)
    text = await call_error(client, "get_status", {"video_id": str(2**60), "wait_seconds": 0})
    assert str(code) in text and needle in text and TRACE.search(text)
    assert sandbox.state.stats()["requests"]["result"] == 1  # nothing to retry: it does not exist


@pytest.mark.parametrize("code", [500069, 500100, 99999])
async def test_temporary_trouble_is_retried_for_reads_and_reported_for_generate(
    client: Client, clip: Path, sandbox: SandboxServer, code: int
) -> None:
    sandbox.state.add_fault(endpoint="balance", kind="err_code", code=code)
    await call_ok(client, "get_balance")
    assert sandbox.state.stats()["requests"]["balance"] == 2
    media_id = await upload(client, clip)
    sandbox.state.add_fault(endpoint="generate", kind="err_code", code=code)
    text = await call_error(client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir"})
    # A clear answer from PixVerse: no job exists, so there is nothing to recover with a trace id.
    assert str(code) in text and TRACE.search(text) and "trace_id '" not in text
    stats = sandbox.state.stats()
    assert stats["requests"]["generate"] == 1 and stats["jobs_created"] == 0


def test_an_unknown_code_is_reported_with_pixverses_own_words() -> None:
    error = api_error(123456, "Shard seven is on fire", trace_id="trace-1")
    assert isinstance(error, ServerError) and not error.retry_reads
    assert "123456" in str(error) and "Shard seven is on fire" in str(error) and "trace-1" in str(error)
    known = api_error(500090, "balance not enough", trace_id="trace-2")
    assert "balance not enough" in str(known) and "get_balance" in str(known) and "trace-2" in str(known)


async def test_credits_run_out_for_real(client: Client, clip: Path, sandbox: SandboxServer) -> None:
    sandbox.state.config = sandbox.state.config.model_copy(update={"credit_monthly": 30, "credit_package": 0})
    sandbox.state.reset()
    media_id = await upload(client, clip)
    await call_ok(
        client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 0}
    )
    text = await call_error(client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir"})
    assert "500090" in text and "get_balance" in text
    assert (await call_ok(client, "get_balance"))["total"] == 0


async def test_concurrency_limit_waits_then_reports(
    client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    sandbox.state.config = sandbox.state.config.model_copy(
        update={"job_seconds": 60, "max_concurrent_jobs": 1}
    )
    media_id = await upload(client, clip)
    await call_ok(
        client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 0}
    )
    progress = ProgressLog()
    messages = progress.messages

    result = await client.call_tool(
        "restyle_video",
        {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 3},
        progress_callback=progress,
    )
    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert result.is_error and "500044" in text and "No job was started" in text
    assert any("free generation slot" in m for m in messages)
    assert sandbox.state.stats()["jobs_created"] == 1


async def test_html_502_on_reads_is_a_clear_error(client: Client, sandbox: SandboxServer) -> None:
    sandbox.state.add_fault(endpoint="balance", kind="html", count=20, http_status=502)
    text = await call_error(client, "get_balance")
    assert "HTTP 502" in text and "HTML" in text and TRACE.search(text)
    assert sandbox.state.stats()["requests"]["balance"] == FAST_POLICIES["read"].attempts


async def test_client_side_job_limit_queues_instead_of_500044(
    settings: Settings, clip: Path, sandbox: SandboxServer
) -> None:
    sandbox.state.config = sandbox.state.config.model_copy(update={"job_seconds": 1.0})
    server = create_server(settings.with_changes(max_concurrent_jobs=1))
    progress = ProgressLog()
    messages = progress.messages

    async with Client(server) as client:
        media_id = await upload(client, clip)
        first = await call_ok(
            client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 0}
        )
        second = await call_ok(
            client,
            "restyle_video",
            {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 14},
            progress_callback=progress,
        )
    assert first["status"] == "generating" and second["status"] == "succeeded"
    assert any("free generation slot" in m for m in messages)
    # The second job was sent only once the first had finished: PixVerse never had to refuse it.
    assert sandbox.state.stats()["requests"]["generate"] == 2
    first_job = sandbox.state.jobs[int(first["video_id"])]
    second_job = sandbox.state.jobs[int(second["video_id"])]
    assert second_job.started >= first_job.started + sandbox.state.config.job_seconds


async def test_a_slot_freed_at_pixverse_lets_the_restyle_start(
    client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    media_id = await upload(client, clip)
    sandbox.state.add_fault(endpoint="generate", kind="err_code", code=500044, count=1)
    progress = ProgressLog()
    done = await call_ok(
        client,
        "restyle_video",
        {"video_media_id": media_id, "restyle_prompt": "noir"},
        progress_callback=progress,
    )
    assert done["status"] == "succeeded"
    assert any("free generation slot" in m for m in progress.messages)
    traces = sandbox.state.stats()["trace_ids"]["generate"]
    # The refusal made no job, so the second try went out under a fresh trace id (a reused one
    # would have been answered with the same refusal).
    assert len(traces) == 2 and traces[0] != traces[1] and traces[1] == done["trace_id"]
    assert sandbox.state.stats()["jobs_created"] == 1


async def test_restyles_do_not_wait_for_each_other(
    client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    media_id = await upload(client, clip)
    # The first restyle's generate hangs for a while; the second must not queue behind it.
    sandbox.state.add_fault(endpoint="generate", kind="hang", seconds=3, count=1)
    finished: list[str] = []

    async def restyle(name: str) -> None:
        await call_ok(
            client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": name, "wait_seconds": 0}
        )
        finished.append(name)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(restyle, "noir")
        # Start the second once the first is inside PixVerse (it has taken the fault).
        with anyio.fail_after(10):
            while sandbox.state.stats()["faults_pending"] != 0:  # noqa: ASYNC110 - the sandbox state has no event to wait on
                await anyio.sleep(0.01)
        tasks.start_soon(restyle, "sepia")
    assert finished == ["sepia", "noir"]
    assert sandbox.state.stats()["jobs_created"] == 2


async def test_a_vanished_job_frees_its_client_side_slot(
    settings: Settings, clip: Path, sandbox: SandboxServer
) -> None:
    sandbox.state.config = sandbox.state.config.model_copy(update={"job_seconds": 60})
    server = create_server(settings.with_changes(max_concurrent_jobs=1))
    async with Client(server) as client:
        first = await call_ok(
            client,
            "restyle_video",
            {"video_media_id": await upload(client, clip), "restyle_prompt": "noir", "wait_seconds": 0},
        )
        # PixVerse forgets the job (500008 from now on): it must not hold this server's only slot.
        sandbox.state.reset()
        second = await call_ok(
            client,
            "restyle_video",
            {"video_media_id": await upload(client, clip), "restyle_prompt": "noir", "wait_seconds": 0},
        )
    assert first["status"] == second["status"] == "generating"
    assert sandbox.state.stats()["jobs_created"] == 1
