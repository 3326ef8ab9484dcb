"""From "job started" to "here is your video": bounded waiting, progress, download, preview, credits."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import anyio
import av
import httpx2
import pytest
from conftest import ProgressLog, call_ok, upload
from mcp import Client
from mcp.types import ImageContent, ResourceLink, TextResourceContents

from pixverse_mcp.arguments import wait_argument
from pixverse_mcp.budget import CallBudget
from pixverse_mcp.config import Settings
from pixverse_mcp.sandbox import SandboxServer
from pixverse_mcp.sandbox.state import RUNNING_STATUSES, Job
from pixverse_mcp.server import create_server

pytestmark = pytest.mark.anyio


def _slow_jobs(sandbox: SandboxServer, seconds: float) -> None:
    sandbox.state.config = sandbox.state.config.model_copy(update={"job_seconds": seconds})


def _status_requests(sandbox: SandboxServer) -> int:
    return int(sandbox.state.stats()["requests"].get("result", 0))


def _record_statuses(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every job status the sandbox reports in a status reply from now on, in order."""
    reported: list[int] = []
    state = sandbox.state
    real_status = state.status

    def status(job: Job) -> int:
        code = real_status(job)
        reported.append(code)
        return code

    def running_jobs() -> int:  # the balance and admission count jobs: not a status reply
        with state.lock:
            return sum(1 for job in state.jobs.values() if real_status(job) in RUNNING_STATUSES)

    monkeypatch.setattr(state, "status", status)
    monkeypatch.setattr(state, "running_jobs", running_jobs)
    return reported


async def test_waiting_returns_when_the_job_ends(
    client: Client, clip: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _slow_jobs(sandbox, 1.0)
    media_id = await upload(client, clip)
    reported = _record_statuses(sandbox, monkeypatch)
    done = await call_ok(
        client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 14}
    )
    assert done["status"] == "succeeded"
    # It waited while the job generated, and answered at the first reply that said it was done.
    assert reported[-1] == 1 and reported.count(1) == 1 and set(reported[:-1]) == {5}, reported
    polls = _status_requests(sandbox)
    assert polls == len(reported)
    # Nothing polls after the answer: a full round trip later, no status request has been made.
    await call_ok(client, "list_restyles")
    assert _status_requests(sandbox) == polls


async def test_waiting_stops_at_the_bound_and_says_generating(
    client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    _slow_jobs(sandbox, 60)
    media_id = await upload(client, clip)
    progress = ProgressLog()
    started = await call_ok(
        client,
        "restyle_video",
        {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 1},
        progress_callback=progress,
    )
    # It waited (the waiting loop reported progress), then answered "generating" instead of an error.
    assert any(m.startswith("generating,") for m in progress.messages), progress.messages
    assert started["status"] == "generating" and started["check_again_in_seconds"]
    later = await call_ok(client, "get_status", {"video_id": started["video_id"], "wait_seconds": 0.5})
    assert later["status"] == "generating" and "get_status" in later["message"]
    assert sandbox.state.stats()["jobs_created"] == 1


async def test_wait_is_capped_by_the_server_maximum(
    settings: Settings, clip: Path, sandbox: SandboxServer
) -> None:
    _slow_jobs(sandbox, 20)
    server = create_server(settings.with_changes(max_wait_seconds=1))
    async with Client(server) as client:
        media_id = await upload(client, clip)
        started = await call_ok(
            client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 0}
        )
        # Asking for an hour waits only as long as PIXVERSE_MAX_WAIT_SECONDS (1 s here) allows: the
        # answer comes while the 20 s job still generates.
        capped = await call_ok(client, "get_status", {"video_id": started["video_id"], "wait_seconds": 3600})
    assert capped["status"] == "generating" and capped["check_again_in_seconds"]


async def test_the_wait_arithmetic_keeps_every_call_within_the_maximum() -> None:
    assert wait_argument(3600, default=10, maximum=1) == 1
    assert wait_argument(None, default=40, maximum=15) == 15
    assert wait_argument(None, default=40, maximum=50) == 40
    assert wait_argument(0, default=40, maximum=50) == 0
    budget = CallBudget.start(wait_seconds=50, max_call_seconds=50)
    # The whole call ends by the maximum, and the waiting ends early enough to answer before it.
    assert budget.ends_at - budget.started == 50
    assert budget.wait_until < budget.ends_at
    assert budget.step(3600) <= budget.wait_seconds and budget.step(3600, at_least=3600) <= 50


async def test_progress_arrives_while_waiting_and_not_after(
    client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    _slow_jobs(sandbox, 2.0)
    media_id = await upload(client, clip)
    progress = ProgressLog()
    messages = progress.messages

    result = await client.call_tool(
        "restyle_video",
        {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 14},
        progress_callback=progress,
    )
    assert not result.is_error
    assert any(m.startswith("generating,") and "elapsed" in m for m in messages), messages
    seen = len(messages)
    # A full round trip later, nothing more has arrived for the finished call.
    await call_ok(client, "list_restyles")
    assert len(messages) == seen


async def test_cancelling_the_wait_leaves_the_job_and_the_server(
    client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    _slow_jobs(sandbox, 2.0)
    media_id = await upload(client, clip)
    waiting = anyio.Event()

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        waiting.set()

    async with anyio.create_task_group() as tasks:

        async def restyle() -> None:
            await client.call_tool(
                "restyle_video",
                {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 14},
                progress_callback=progress,
            )
            pytest.fail("the call should have been cancelled while it waited")

        tasks.start_soon(restyle)
        with anyio.fail_after(10):
            await waiting.wait()
        tasks.cancel_scope.cancel()

    jobs = list(sandbox.state.jobs.values())
    assert len(jobs) == 1
    video_id = next(iter(sandbox.state.jobs))
    done = await call_ok(client, "get_status", {"video_id": str(video_id), "wait_seconds": 14})
    assert done["status"] == "succeeded"
    assert sandbox.state.stats()["jobs_created"] == 1


async def test_download_writes_the_exact_bytes_and_never_overwrites(
    client: Client, clip: Path, sandbox: SandboxServer, tmp_path: Path
) -> None:
    media_id = await upload(client, clip)
    done = await call_ok(
        client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "sepia", "download": True}
    )
    saved = Path(done["local_path"])
    # Named after the video id and the style, in the output folder.
    assert saved.parent == (tmp_path / "out").resolve()
    assert saved.name == f"pixverse-{done['video_id']}-Sepia-Memories.mp4"
    async with httpx2.AsyncClient() as http:
        original = (await http.get(done["url"])).content
    assert saved.read_bytes() == original

    again = await call_ok(client, "get_status", {"video_id": done["video_id"], "download": True})
    second = Path(again["local_path"])
    assert second.name == f"pixverse-{done['video_id']}-Sepia-Memories-1.mp4"
    assert second.read_bytes() == original
    assert saved.read_bytes() == original
    assert not [p for p in saved.parent.iterdir() if p.name.endswith(".part")]


async def test_auto_download_saves_unless_the_call_says_no(
    settings: Settings, clip: Path, tmp_path: Path
) -> None:
    server = create_server(settings.with_changes(auto_download=True))
    async with Client(server) as client:
        media_id = await upload(client, clip)
        done = await call_ok(client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir"})
        assert done["status"] == "succeeded" and Path(done["local_path"]).is_file()
        kept_out = await call_ok(client, "get_status", {"video_id": done["video_id"], "download": False})
    assert kept_out["local_path"] is None
    assert [p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".mp4"] == [
        Path(done["local_path"]).name
    ]


async def test_result_links_the_saved_file(client: Client, clip: Path) -> None:
    media_id = await upload(client, clip)
    result = await client.call_tool(
        "restyle_video", {"video_media_id": media_id, "restyle_prompt": "sepia", "download": True}
    )
    links = [block for block in result.content if isinstance(block, ResourceLink)]
    assert len(links) == 1 and links[0].uri.startswith("file://") and links[0].mime_type == "video/mp4"
    assert Path(result.structured_content["local_path"]).name == links[0].name


async def test_preview_is_a_small_valid_jpeg(client: Client, clip: Path) -> None:
    media_id = await upload(client, clip)
    result = await client.call_tool("restyle_video", {"video_media_id": media_id, "restyle_prompt": "neon"})
    images = [block for block in result.content if isinstance(block, ImageContent)]
    assert len(images) == 1 and images[0].mime_type == "image/jpeg"
    picture = base64.b64decode(images[0].data)
    assert picture[:2] == b"\xff\xd8" and picture[-2:] == b"\xff\xd9"
    assert len(picture) <= 100_000
    with av.open(io.BytesIO(picture)) as container:
        frame = next(container.decode(video=0))
    assert frame.width > frame.height  # a strip of frames side by side


async def test_preview_saved_next_to_the_download(client: Client, clip: Path) -> None:
    media_id = await upload(client, clip)
    done = await call_ok(
        client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "neon", "download": True}
    )
    preview = Path(done["preview_path"])
    assert preview.parent == Path(done["local_path"]).parent
    assert preview.read_bytes()[:2] == b"\xff\xd8"


async def test_balance_and_credits_match_the_sandbox(
    client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    config = sandbox.state.config
    before = await call_ok(client, "get_balance")
    assert (before["credit_monthly"], before["credit_package"]) == (
        config.credit_monthly,
        config.credit_package,
    )
    assert before["total"] == config.credit_monthly + config.credit_package
    media_id = await upload(client, clip)
    done = await call_ok(client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir"})
    assert done["credits"] == config.restyle_credits
    after = await call_ok(client, "get_balance")
    assert after["total"] == before["total"] - config.restyle_credits
    stats = sandbox.state.stats()
    assert after["credit_monthly"] == stats["credit_monthly"]


async def test_resources_prompt_and_completion(client: Client, clip: Path) -> None:
    resources = {str(r.uri) for r in (await client.list_resources()).resources}
    assert "pixverse://restyles" in resources
    catalog = await client.read_resource("pixverse://restyles")
    first = catalog.contents[0]
    assert isinstance(first, TextResourceContents)
    styles = json.loads(first.text)["styles"]
    assert len(styles) >= 8 and styles[0]["thumbnail"]

    templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    assert "pixverse://videos/{video_id}" in templates
    media_id = await upload(client, clip)
    done = await call_ok(client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir"})
    status = await client.read_resource(f"pixverse://videos/{done['video_id']}")
    block = status.contents[0]
    assert isinstance(block, TextResourceContents)
    assert json.loads(block.text)["status"] == "succeeded"

    prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert "restyle" in prompts
    walked = await client.get_prompt("restyle", {"video": "~/clip.mp4", "style": "noir"})
    text = walked.messages[0].content.text  # type: ignore[union-attr]
    for step in ("list_restyles", "upload_video", "restyle_video", "get_status", "~/clip.mp4"):
        assert step in text

    from mcp.types import PromptReference

    completed = await client.complete(
        PromptReference(type="ref/prompt", name="restyle"), {"name": "style", "value": "n"}
    )
    assert completed.completion.values and all("n" in v.lower() for v in completed.completion.values)


async def test_downloads_stay_in_the_output_folder_whatever_the_style_says(
    settings: Settings, sandbox: SandboxServer, clip: Path, tmp_path: Path
) -> None:
    from pixverse_mcp.client import PixVerseClient
    from pixverse_mcp.jobs import save_video
    from pixverse_mcp.wire import VideoResult

    server = create_server(settings)
    async with Client(server) as client:
        media_id = await upload(client, clip)
        done = await call_ok(client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir"})
    out = tmp_path / "out"
    async with PixVerseClient(settings) as pixverse:
        for style in ("../../escaped", "/etc/passwd", "..", "a/../../b", "C:\\x\\..\\y", "\x00\n"):
            hostile = VideoResult.model_validate({"id": done["video_id"], "url": done["url"], "style": style})
            saved = await save_video(pixverse, hostile, out, seconds=30)
            assert saved.parent == out.resolve() and saved.is_file()
    assert not (tmp_path / "escaped").exists()
