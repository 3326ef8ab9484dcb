"""The recovery promises of the README, each held by a test that fails when the promise is broken.

A started job keeps its id when a later step fails; a download the file host refuses saves
nothing and keeps the url; a preview that fails leaves the answer standing, and previews are
capped; a generate cut short by the call's time gives the trace id that recovers the job; a
generate that never connected made no job; a read honours `Retry-After`. Everything goes through
the MCP protocol to the sandbox on loopback, with its fault injection.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import stamina.instrumentation
from conftest import call_error, call_ok, upload
from mcp import Client
from mcp.types import ImageContent
from stamina.instrumentation import RetryDetails

from pixverse_mcp import preview, restyle
from pixverse_mcp.client import PixVerseClient
from pixverse_mcp.config import Settings, Timeouts
from pixverse_mcp.errors import TransportError
from pixverse_mcp.jobs import save_video
from pixverse_mcp.sandbox import SandboxServer
from pixverse_mcp.server import create_server
from pixverse_mcp.wire import VideoResult

pytestmark = pytest.mark.anyio

RECOVERY = re.compile(r"call restyle_video again with the same arguments and trace_id '([0-9a-f-]{36})'")


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    """One protocol generation is enough here (conftest's `client` runs both), to keep these quick."""
    async with Client(create_server(settings)) as connected:
        yield connected


async def _restyle(client: Client, clip: Path, **args: object) -> dict[str, object]:
    media_id = await upload(client, clip)
    return await call_ok(
        client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", **args}
    )


def _only_job(sandbox: SandboxServer) -> int:
    (video_id,) = sandbox.state.jobs
    return video_id


# -- a started job is never lost -----------------------------------------------------------------


async def test_a_started_job_keeps_its_id_when_checking_on_it_fails(
    client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    media_id = await upload(client, clip)
    sandbox.state.add_fault(endpoint="result", kind="html", count=99, http_status=502)
    done = await call_ok(client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir"})
    video_id = _only_job(sandbox)
    assert done["video_id"] == str(video_id)
    assert done["status"] == "unknown" and done["status_code"] is None
    assert done["trace_id"] in sandbox.state.stats()["trace_ids"]["generate"]
    assert "The job started" in done["message"] and "HTTP 502" in done["message"]
    assert f"get_status with video_id {video_id}" in done["message"]
    # get_status did not start the job: for it, the failure is the answer.
    text = await call_error(client, "get_status", {"video_id": str(video_id), "wait_seconds": 0})
    assert "HTTP 502" in text
    assert sandbox.state.stats()["jobs_created"] == 1


async def test_a_started_job_keeps_its_id_when_the_status_check_hangs(
    settings: Settings, clip: Path, sandbox: SandboxServer
) -> None:
    # A 1 s call: the first status check gets what is left of it, and the check hangs for longer.
    server = create_server(settings.with_changes(max_wait_seconds=1))
    async with Client(server) as client:
        media_id = await upload(client, clip)
        sandbox.state.add_fault(endpoint="result", kind="hang", count=99, seconds=5)
        done = await call_ok(client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir"})
    assert done["video_id"] == str(_only_job(sandbox)) and done["status"] == "unknown"
    assert "did not answer the status check" in done["message"] and "get_status" in done["message"]


# -- downloads and previews are extras: their failures never cost the answer ------------------------


async def test_a_download_the_file_host_refuses_saves_nothing_and_keeps_the_url(
    client: Client, clip: Path, sandbox: SandboxServer, tmp_path: Path
) -> None:
    done = await _restyle(client, clip)
    assert done["status"] == "succeeded"
    output = sandbox.state.jobs[_only_job(sandbox)].output
    assert output is not None
    output.unlink()  # the file host now answers 404 for the video's url
    again = await call_ok(client, "get_status", {"video_id": done["video_id"], "download": True})
    assert again["status"] == "succeeded" and again["url"] == done["url"]
    assert again["local_path"] is None and again["preview_path"] is None
    assert "HTTP 404" in again["message"] and "local copy" in again["message"]
    out = tmp_path / "out"
    assert not out.exists() or not list(out.iterdir())


async def test_a_preview_that_fails_leaves_the_answer_standing(
    client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    done = await _restyle(client, clip)
    output = sandbox.state.jobs[_only_job(sandbox)].output
    assert output is not None
    garbage = b"not a video at all " * 64
    output.write_bytes(garbage)  # served with 200: the download works, the preview cannot
    result = await client.call_tool("get_status", {"video_id": done["video_id"], "download": True})
    assert not result.is_error, result.content
    status = result.structured_content
    assert status is not None and status["status"] == "succeeded" and status["url"] == done["url"]
    assert Path(status["local_path"]).read_bytes() == garbage
    assert (
        status["preview_note"].startswith("no preview picture")
        and "could not be opened" in status["preview_note"]
    )
    assert status["preview_path"] is None
    assert not [block for block in result.content if isinstance(block, ImageContent)]


@contextmanager
def _file_host_that_breaks_off() -> Iterator[str]:
    """A file host that promises a megabyte, sends 64 KB of it, and closes the connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            connection.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 1048576\r\n\r\n"
            connection.sendall(head + b"\0" * 65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/video.mp4"
    finally:
        listener.close()
        thread.join(10)


async def test_a_download_cut_off_midway_leaves_no_file_under_any_name(
    settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with _file_host_that_breaks_off() as url:
        async with PixVerseClient(settings) as client:
            finished = VideoResult.model_validate({"id": 42, "status": 1, "url": url, "style": "Film Noir"})
            with pytest.raises(TransportError, match=r"(?i)downloading the video failed"):
                await save_video(client, finished, out, seconds=30)
    assert out.is_dir() and not list(out.iterdir())


@contextmanager
def _all_preview_slots_taken() -> Iterator[int]:
    """Hold every slot of the preview cap, as previews abandoned by cancelled calls would."""
    held = 0
    try:
        while held < 64 and preview._RUNNING.acquire(blocking=False):
            held += 1
        yield held
    finally:
        for _ in range(held):
            preview._RUNNING.release()


async def test_preview_threads_are_capped_and_a_refused_preview_leaves_the_restyle_standing(
    client: Client, clip: Path, sandbox: SandboxServer, tmp_path: Path
) -> None:
    with _all_preview_slots_taken() as held:
        assert 1 <= held <= 2  # the cap: more threads than this are never left reading videos
        with pytest.raises(preview.PreviewUnavailable, match="other previews are still being made"):
            preview.make_preview_strip(clip)
        media_id = await upload(client, clip)
        result = await client.call_tool(
            "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "download": True}
        )
    assert not result.is_error, result.content
    status = result.structured_content
    assert status is not None and status["status"] == "succeeded"
    assert status["video_id"] == str(_only_job(sandbox)) and Path(status["local_path"]).is_file()
    assert "other previews are still being made" in status["preview_note"]
    assert not [block for block in result.content if isinstance(block, ImageContent)]
    # With the slots free again, the same video gets its preview.
    assert "image" in {
        block.type
        for block in (await client.call_tool("get_status", {"video_id": status["video_id"]})).content
    }


# -- a generate whose outcome is unknown gives the way to learn it, for free -------------------------


async def test_a_generate_cut_short_by_the_calls_time_gives_the_trace_id_to_recover_the_job(
    settings: Settings, clip: Path, sandbox: SandboxServer
) -> None:
    # PixVerse makes the job, then its reply takes longer than this 1 s call may last.
    server = create_server(settings.with_changes(max_wait_seconds=1))
    async with Client(server) as client:
        args = {"video_media_id": await upload(client, clip), "restyle_prompt": "noir", "wait_seconds": 0}
        sandbox.state.add_fault(endpoint="generate", kind="hang", when="after", seconds=5)
        text = await call_error(client, "restyle_video", args)
        (sent,) = sandbox.state.stats()["trace_ids"]["generate"]
        recovery = RECOVERY.search(text)
        assert recovery and recovery.group(1) == sent, text
        assert "Do not start a new one" in text
        credits_after_one_job = sandbox.state.stats()["credit_monthly"]
        sandbox.state.clear_faults()
        recovered = await call_ok(client, "restyle_video", {**args, "trace_id": sent})
    assert recovered["video_id"] == str(_only_job(sandbox)) and recovered["trace_id"] == sent
    stats = sandbox.state.stats()
    assert stats["jobs_created"] == 1 and stats["credit_monthly"] == credits_after_one_job


async def test_starting_a_job_may_outlast_a_short_wait(
    settings: Settings, clip: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README's "starting may take up to 25 s even with a shorter wait_seconds" (each request
    # at least 10 s), scaled down to 4 s and 1 s so that the test stays quick.
    monkeypatch.setattr(restyle, "START_SECONDS_MIN", 4.0)
    monkeypatch.setattr(restyle, "REQUEST_SECONDS_MIN", 1.0)
    quick = Timeouts(connect=1.0, read=0.8, upload=5.0, download=5.0)
    server = create_server(settings.with_changes(timeouts=quick))
    async with Client(server) as client:
        media_id = await upload(client, clip)
        # The first two attempts get no reply in time; the third one starts the job.
        sandbox.state.add_fault(endpoint="generate", kind="hang", count=2, seconds=1.5)
        done = await call_ok(
            client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 0}
        )
    assert done["video_id"] == str(_only_job(sandbox))
    assert sandbox.state.stats()["requests"]["generate"] == 3


def _nothing_listening() -> str:
    """A loopback base URL whose port has no server: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_a_generate_that_could_not_connect_made_no_job(settings: Settings, clip: Path) -> None:
    server = create_server(settings.with_changes(base_url=_nothing_listening()))
    async with Client(server) as client:
        text = await call_error(client, "restyle_video", {"video_media_id": 12345, "restyle_prompt": "noir"})
        assert "Could not connect to PixVerse" in text
        assert "No job was started and no credits were spent" in text
        assert "may have started" not in text and not RECOVERY.search(text)
        for tool, args in (("upload_video", {"path": str(clip)}), ("get_balance", {})):
            assert "Could not connect to PixVerse" in await call_error(client, tool, args)


# -- Retry-After ---------------------------------------------------------------------------------


async def test_a_read_retried_after_500069_waits_what_retry_after_says(
    client: Client, sandbox: SandboxServer
) -> None:
    waits: list[float] = []

    def record(details: RetryDetails) -> None:
        waits.append(details.wait_for)

    sandbox.state.add_fault(endpoint="balance", kind="err_code", code=500069, retry_after=0.25)
    stamina.instrumentation.set_on_retry_hooks([record])
    try:
        await call_ok(client, "get_balance")
    finally:
        stamina.instrumentation.set_on_retry_hooks(None)
    # One retry, after the 0.25 s the header asked for (the test policy's own backoff is under 0.06 s).
    assert waits == [0.25]
    assert sandbox.state.stats()["requests"]["balance"] == 2
