"""A PixVerse that lies: result URLs that name local files, internal addresses, playlists, bombs.

Every test drives the real tools through an MCP client; the server talks HTTP on loopback to
`tests/hostile.py`, which answers the envelope with whatever the test set. Whatever the reply,
the answer keeps the job's status and URL, says why nothing was fetched, leaves no file behind,
and no preview thread outlives its call.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import FAST_WAITS, SECRET_KEY, call_ok
from hostile import VIDEO_ID, HostileApi, drip, endless, gzip_bomb, redirect, reply, video_file
from mcp import Client
from mcp.types import CallToolResult, ImageContent
from pydantic import SecretStr

from pixverse_mcp.config import Settings, Timeouts
from pixverse_mcp.preview import running_previews
from pixverse_mcp.samples import make_clip
from pixverse_mcp.server import create_server

pytestmark = pytest.mark.anyio

# A bound for each call, so a server that hangs fails the test instead of stalling the suite.
CALL_BOUND_SECONDS = 20


@pytest.fixture
def api() -> Iterator[HostileApi]:
    with HostileApi() as server:
        yield server


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def served_clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "served.mp4", seconds=1.0, width=160, height=120)


def hostile_settings(api: HostileApi, out: Path, **changes: Any) -> Settings:
    return Settings(
        api_key=SecretStr(SECRET_KEY),
        base_url=api.base_url,
        output_dir=out,
        allowed_dirs=(out.parent / "videos",),
        max_download_mb=1,
        default_wait_seconds=0,
        max_wait_seconds=5,
        **{"timeouts": Timeouts(connect=2, read=5), "retry_waits": FAST_WAITS, **changes},
    )


async def call(settings: Settings, tool: str = "get_status", **args: Any) -> CallToolResult:
    if tool == "get_status":
        args = {"video_id": str(VIDEO_ID), "wait_seconds": 0, **args}
    async with Client(create_server(settings)) as client:
        with anyio.fail_after(CALL_BOUND_SECONDS):
            result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    return result


def images(result: CallToolResult) -> list[ImageContent]:
    return [block for block in result.content if isinstance(block, ImageContent)]


def files_in(folder: Path) -> list[str]:
    """Every file left in a folder, hidden temporary ones included."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def assert_nothing_fetched(result: CallToolResult, url: str, out: Path, reason: str) -> dict[str, Any]:
    """The answer keeps status and URL, says why, and carries no file and no picture."""
    status = result.structured_content
    assert status is not None
    assert status["status"] == "succeeded" and status["url"] == url
    assert status["local_path"] is None and status["preview_path"] is None
    assert not images(result)
    assert reason in status["message"] + " " + (status["preview_note"] or ""), status
    assert files_in(out) == []
    return status


@pytest.mark.parametrize("kind", ["file_url", "bare_path"])
async def test_local_files_named_by_the_api_are_never_read(
    api: HostileApi, out: Path, tmp_path: Path, kind: str
) -> None:
    (tmp_path / "elsewhere").mkdir()  # outside the allowed folder and the output folder
    secret = make_clip(tmp_path / "elsewhere" / "secret.mp4", seconds=1.0)
    url = secret.as_uri() if kind == "file_url" else str(secret)
    api.result["url"] = url
    result = await call(hostile_settings(api, out), download=True)
    status = assert_nothing_fetched(result, url, out, "not an http(s) link")
    assert "not an http(s) link" in status["preview_note"]


async def test_restyle_video_keeps_the_job_when_its_url_is_a_local_file(api: HostileApi, out: Path) -> None:
    api.result["url"] = "file:///etc/passwd"
    result = await call(
        hostile_settings(api, out),
        "restyle_video",
        video_media_id="123",
        restyle_prompt="noir",
        wait_seconds=0,
        download=True,
    )
    status = assert_nothing_fetched(result, "file:///etc/passwd", out, "not an http(s) link")
    assert status["video_id"] == str(VIDEO_ID) and status["credits"] == 30


async def test_a_downloaded_concat_list_does_not_open_its_neighbours(api: HostileApi, out: Path) -> None:
    out.mkdir()
    make_clip(out / "neighbour.mp4", seconds=1.0)
    api.routes["/list.mp4"] = reply(b"ffconcat version 1.0\nfile neighbour.mp4\n")
    api.result["url"] = api.url("/list.mp4")
    status = call_result = await call(hostile_settings(api, out), download=True)
    status = call_result.structured_content
    assert status is not None and status["local_path"] is not None  # the bytes were saved, and are inert
    assert not images(call_result)
    assert "mp4 or mov" in status["preview_note"]


async def test_an_hls_playlist_is_not_followed(api: HostileApi, out: Path, served_clip: Path) -> None:
    segments = [api.url(f"/seg{n}.mp4") for n in range(5)]
    for segment in segments:
        api.routes[segment.removeprefix(api.base_url)] = video_file(served_clip)
    playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n" + "".join(f"#EXTINF:1,\n{s}\n" for s in segments)
    api.routes["/video.m3u8"] = reply((playlist + "#EXT-X-ENDLIST\n").encode())
    api.result["url"] = api.url("/video.m3u8")
    result = await call(hostile_settings(api, out), download=False)
    assert api.hits_of("/seg") == 0
    status = result.structured_content
    assert status is not None and not images(result) and "mp4 or mov" in status["preview_note"]


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("file:///etc/passwd", "not an http(s) link"),
        ("gopher://127.0.0.1/x", "not an http(s) link"),
        ("http://10.0.0.1/v.mp4", "internal address"),
        ("http://169.254.169.254/latest/meta-data/", "internal address"),
        ("http://[::ffff:192.168.1.1]/v.mp4", "internal address"),
        ("http://0.0.0.0:{port}/v.mp4", "internal address"),
    ],
)
async def test_redirects_to_other_schemes_or_internal_addresses_are_refused(
    api: HostileApi, out: Path, served_clip: Path, location: str, reason: str
) -> None:
    api.routes["/v.mp4"] = video_file(served_clip)
    api.routes["/go"] = redirect(location.format(port=api.port))
    api.result["url"] = api.url("/go")
    result = await call(hostile_settings(api, out), download=True)
    status = assert_nothing_fetched(result, api.url("/go"), out, reason)
    assert reason in status["message"] and reason in status["preview_note"]
    assert api.hits_of("/v.mp4") == 0


async def test_redirect_chains_are_cut_short(api: HostileApi, out: Path, served_clip: Path) -> None:
    api.routes["/v.mp4"] = video_file(served_clip)
    for hop in range(6):
        api.routes[f"/hop{hop}"] = redirect(f"/hop{hop + 1}" if hop < 5 else "/v.mp4")
    api.result["url"] = api.url("/hop0")
    result = await call(hostile_settings(api, out), download=True)
    assert_nothing_fetched(result, api.url("/hop0"), out, "redirected more than 3 times")
    assert api.hits_of("/v.mp4") == 0
    assert api.hits_of("/hop") <= 2 * 4  # the download, then the preview: the first request and 3 redirects


async def test_an_honest_server_with_a_redirect_still_downloads_and_previews(
    api: HostileApi, out: Path, served_clip: Path
) -> None:
    api.routes["/v.mp4"] = video_file(served_clip)
    api.routes["/cdn"] = redirect("/v.mp4", 307)
    api.result["url"] = api.url("/cdn")
    result = await call(hostile_settings(api, out), download=True)
    status = result.structured_content
    assert status is not None and len(images(result)) == 1
    assert Path(status["local_path"]).read_bytes() == served_clip.read_bytes()
    assert Path(status["preview_path"]).is_file()
    assert not [name for name in files_in(out) if name.endswith(".part")]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(endless(), id="1 GiB body, size reported as 1"),
        pytest.param(endless(declare=True), id="1 GiB declared"),
        pytest.param(gzip_bomb(), id="gzip bomb"),
    ],
)
async def test_downloads_stop_at_the_size_cap_counting_decoded_bytes(
    api: HostileApi, out: Path, body: Any
) -> None:
    api.routes["/big.mp4"] = body
    api.result["url"] = api.url("/big.mp4")
    result = await call(hostile_settings(api, out), download=True)
    status = assert_nothing_fetched(result, api.url("/big.mp4"), out, "download limit of 1 MB")
    assert status["size_bytes"] == 1 and status["preview_note"]


async def test_a_dripping_download_stops_at_its_time_bound(api: HostileApi, out: Path) -> None:
    api.routes["/drip.mp4"] = drip(0.2)
    api.result["url"] = api.url("/drip.mp4")
    settings = hostile_settings(api, out, timeouts=Timeouts(connect=2, read=5, download=1))
    result = await call(settings, download=True)
    status = assert_nothing_fetched(result, api.url("/drip.mp4"), out, "took longer than 1 s")
    assert "too slow" in status["preview_note"]


async def test_previews_of_endless_urls_give_up_and_free_their_thread(
    api: HostileApi, out: Path, served_clip: Path
) -> None:
    api.routes["/drip.mp4"] = drip(0.2)
    api.routes["/v.mp4"] = video_file(served_clip)
    settings = hostile_settings(api, out, timeouts=Timeouts(connect=2, read=5, download=1))
    api.result["url"] = api.url("/drip.mp4")
    # Two stuck previews used to hold both preview threads, so every later one was refused.
    for _ in range(2):
        result = await call(settings, download=False)
        assert running_previews() == 0
        assert result.structured_content is not None
        assert "took over 1 s" in result.structured_content["preview_note"]
    api.result["url"] = api.url("/v.mp4")
    assert len(images(await call(settings, download=False))) == 1


async def test_an_error_status_keeps_the_answer(api: HostileApi, out: Path) -> None:
    api.routes["/gone.mp4"] = reply(b"<html>gone</html>", 404)
    api.result["url"] = api.url("/gone.mp4")
    result = await call(hostile_settings(api, out), download=True)
    assert_nothing_fetched(result, api.url("/gone.mp4"), out, "HTTP 404")


async def test_the_api_itself_still_works_through_the_same_client(api: HostileApi, out: Path) -> None:
    async with Client(create_server(hostile_settings(api, out))) as client:
        balance = await call_ok(client, "get_balance")
    assert balance["total"] == 100
