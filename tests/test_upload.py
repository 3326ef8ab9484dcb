"""Uploads through the MCP protocol: nothing invalid reaches the network, paths stay in bounds."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ProgressLog, call_error, call_ok
from mcp import Client
from mcp.types import ListRootsResult, Root
from pydantic import FileUrl

from pixverse_mcp.config import Settings
from pixverse_mcp.samples import make_clip
from pixverse_mcp.sandbox import SandboxServer
from pixverse_mcp.server import create_server

pytestmark = pytest.mark.anyio


def _uploads(sandbox: SandboxServer) -> int:
    return int(sandbox.state.stats()["requests"].get("upload", 0))


@pytest.mark.parametrize(
    ("make", "needles"),
    [
        (
            lambda d: make_clip(d / "long.mp4", seconds=17, width=64, height=64, fps=5),
            ["the clip is 17.0 s", "at most 16 s", "ffmpeg -i", "-t 15.9"],
        ),
        (
            lambda d: make_clip(d / "wide.mp4", seconds=1, width=1922, height=100, fps=2),
            ["the video is 1922x100", "at most 1920 pixels"],
        ),
        (
            lambda d: make_clip(d / "fake.mp4", seconds=1, container="webm"),
            ["a WebM file (by its content", "restyle takes mp4 or mov"],
        ),
        (
            lambda d: make_clip(d / "voice.mp4", seconds=1, video=False, audio=True),
            ["has no video stream", "Restyle needs a video"],
        ),
    ],
)
async def test_invalid_local_videos_are_refused_before_upload(
    client: Client, sandbox: SandboxServer, videos: Path, make: object, needles: list[str]
) -> None:
    path = make(videos)  # type: ignore[operator]
    text = await call_error(client, "upload_video", {"path": str(path)})
    for needle in needles:
        assert needle in text
    assert _uploads(sandbox) == 0


async def test_oversized_file_is_refused_by_size(
    client: Client, sandbox: SandboxServer, videos: Path
) -> None:
    big = videos / "big.mp4"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024 + 1)
    text = await call_error(client, "upload_video", {"path": "big.mp4"})
    assert "50 MB" in text and _uploads(sandbox) == 0


async def test_paths_outside_the_roots_are_refused(
    client: Client, sandbox: SandboxServer, videos: Path, tmp_path: Path
) -> None:
    outside = make_clip(tmp_path / "outside.mp4", seconds=1)
    (videos / "link.mp4").symlink_to(outside)
    for path in (str(outside), "../outside.mp4", "link.mp4"):
        text = await call_error(client, "upload_video", {"path": path})
        assert "outside the folders" in text and str(videos) in text
    assert _uploads(sandbox) == 0


async def test_missing_file_suggests_a_near_name(client: Client, clip: Path) -> None:
    text = await call_error(client, "upload_video", {"path": "clp.mp4"})
    assert "did you mean" in text.lower() and "clip.mp4" in text


async def test_relative_path_and_upload_progress(client: Client, clip: Path, sandbox: SandboxServer) -> None:
    progress = ProgressLog()
    seen = progress.values

    result = await client.call_tool("upload_video", {"path": clip.name}, progress_callback=progress)
    assert not result.is_error
    size = clip.stat().st_size
    assert result.structured_content["size_bytes"] == size
    # One scale for the whole call: percent, ending at 100 when the last byte is sent.
    assert seen and seen[-1] == (100.0, 100.0)
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)
    assert _uploads(sandbox) == 1


async def test_url_upload(client: Client, clip: Path, sandbox: SandboxServer) -> None:
    first = await call_ok(client, "upload_video", {"path": str(clip)})
    fetched = await call_ok(client, "upload_video", {"url": first["url"]})
    assert fetched["source"] == "url" and fetched["media_type"] == "video"
    assert fetched["media_id"] != first["media_id"]


@pytest.mark.parametrize(
    "url", ["ftp://example.com/a.mp4", "file:///etc/passwd", "https://user:pw@example.com/a.mp4", "x" * 3000]
)
async def test_bad_urls_are_refused_locally(client: Client, sandbox: SandboxServer, url: str) -> None:
    text = await call_error(client, "upload_video", {"url": url})
    assert "url" in text.lower()
    assert _uploads(sandbox) == 0


async def test_client_roots_widen_the_allowed_folders(settings: Settings, tmp_path: Path) -> None:
    offered = tmp_path / "offered"
    offered.mkdir()
    clip = make_clip(offered / "from-root.mp4", seconds=1)

    async def roots(context: object) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=FileUrl(offered.as_uri()), name="offered")])

    server = create_server(settings)
    async with Client(server, mode="legacy", list_roots_callback=roots) as client:
        assert (await call_ok(client, "upload_video", {"path": str(clip)}))["file_name"] == "from-root.mp4"
    async with Client(server, mode="legacy") as client:
        assert "outside the folders" in await call_error(client, "upload_video", {"path": str(clip)})


async def test_client_roots_are_ignored_where_the_client_is_remote(
    settings: Settings, tmp_path: Path
) -> None:
    offered = tmp_path / "offered"
    offered.mkdir()
    clip = make_clip(offered / "from-root.mp4", seconds=1)

    async def roots(context: object) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=FileUrl("file:///"), name="everything")])

    # What the HTTP transports build: a remote client's roots would open the server's own disk.
    server = create_server(settings, client_roots=False)
    async with Client(server, mode="legacy", list_roots_callback=roots) as client:
        assert "outside the folders" in await call_error(client, "upload_video", {"path": str(clip)})
