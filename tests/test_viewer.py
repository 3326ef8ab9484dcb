"""The viewer's MCP side, through the protocol: tool bindings, the view resource, the app-only tools.

Clients that advertise MCP Apps (as Claude, VS Code, ... do) and clients that do not talk to the
same server; the second must see exactly the tools, resources and answers it saw before.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx2
import pytest
from conftest import FAST_WAITS, SECRET_KEY, call_error, call_ok, upload
from mcp import Client
from mcp.client import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.types import CallToolResult, EmbeddedResource
from pydantic import SecretStr

from pixverse_mcp.apps import VIEW_URI, fetch
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import PixVerseError
from pixverse_mcp.fetching import FetchRules
from pixverse_mcp.sandbox import SandboxServer
from pixverse_mcp.server import create_server

pytestmark = pytest.mark.anyio

APPS = [advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})]
BOUND = ("restyle_video", "get_status", "list_restyles", "restyle_many")
TODAYS_TOOLS = [
    "list_restyles",
    "upload_video",
    "restyle_video",
    "get_status",
    "list_jobs",
    "get_balance",
    "restyle_many",
]
APP_ONLY = ("viewer_job_status", "viewer_media")
MAX_VIEW_BYTES = 80 * 1024


@pytest.fixture
async def apps_client(settings: Settings, mode: str) -> AsyncIterator[Client]:
    async with Client(create_server(settings), mode=mode, extensions=APPS) as connected:
        yield connected


def attached(result: CallToolResult) -> tuple[bytes, str]:
    """The data and type of the one embedded resource in a viewer_media answer."""
    blobs = [c.resource for c in result.content if isinstance(c, EmbeddedResource)]
    assert len(blobs) == 1
    blob = blobs[0]
    assert hasattr(blob, "blob") and blob.mime_type is not None
    return base64.b64decode(blob.blob), blob.mime_type


async def finished_restyle(
    client: Client, clip: Path, restyle_id: str = "1003"
) -> tuple[str, dict[str, Any]]:
    media_id = await upload(client, clip)
    done = await call_ok(client, "restyle_video", {"video_media_id": media_id, "restyle_id": restyle_id})
    assert done["status"] == "succeeded"
    return media_id, done


# -- declarations ------------------------------------------------------------------------------


async def test_bound_tools_point_at_the_view_with_both_keys(apps_client: Client, client: Client) -> None:
    for connected in (apps_client, client):
        tools = {tool.name: tool for tool in (await connected.list_tools()).tools}
        for name in BOUND:
            meta = tools[name].meta or {}
            assert meta["ui"]["resourceUri"] == VIEW_URI
            assert meta["ui/resourceUri"] == VIEW_URI
            assert "visibility" not in meta["ui"]  # the model keeps seeing them
        for name in ("upload_video", "get_balance"):
            assert "ui" not in (tools[name].meta or {})


async def test_app_only_tools_are_listed_for_apps_clients_only_and_callable_by_both(
    apps_client: Client, client: Client, clip: Path
) -> None:
    apps_tools = {tool.name: tool for tool in (await apps_client.list_tools()).tools}
    for name in APP_ONLY:
        assert (apps_tools[name].meta or {})["ui"] == {"resourceUri": VIEW_URI, "visibility": ["app"]}
    assert [tool.name for tool in (await client.list_tools()).tools] == TODAYS_TOOLS
    assert [str(r.uri) for r in (await client.list_resources()).resources] == [
        "pixverse://restyles",
        "pixverse://jobs",
    ]
    assert VIEW_URI in [str(r.uri) for r in (await apps_client.list_resources()).resources]
    # Hidden is not refused: the view's host may call them for any client session.
    _, done = await finished_restyle(client, clip)
    status = await call_ok(client, "viewer_job_status", {"video_id": done["video_id"]})
    assert status["status"] == "succeeded" and status["url"] == done["url"]


async def test_the_view_resource_is_html_for_apps_with_its_csp_and_border(client: Client) -> None:
    read = await client.read_resource(VIEW_URI)
    assert len(read.contents) == 1
    item = read.contents[0]
    assert item.mime_type == APP_MIME_TYPE == "text/html;profile=mcp-app"
    ui = (item.meta or {})["ui"]
    assert ui["prefersBorder"] is True
    assert "https://media.pixverse.ai" in ui["csp"]["resourceDomains"]
    assert set(ui["csp"]) == {"resourceDomains"}  # no connections, frames or base URIs asked for
    html = getattr(item, "text", "")
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert len(html.encode()) <= MAX_VIEW_BYTES
    # Self-contained: no script, style, font or picture from anywhere else.
    assert not re.search(r"<script[^>]*\bsrc=|<link\b|@import|url\(\s*['\"]?(https?:)?//", html, re.I)
    assert "__PIXVERSE_MEDIA_HOSTS__" not in html and '"https://media.pixverse.ai"' in html


# -- answers to clients without Apps --------------------------------------------------------


async def test_answers_are_the_same_for_clients_with_and_without_apps(
    settings: Settings, clip: Path, mode: str
) -> None:
    server = create_server(settings)
    async with Client(server, mode=mode) as plain, Client(server, mode=mode, extensions=APPS) as apps:
        for tool, args in (
            ("list_restyles", {}),
            ("list_restyles", {"query": "sketch"}),
            ("get_balance", {}),
        ):
            assert (await plain.call_tool(tool, args)) == (await apps.call_tool(tool, args))
        _, done = await finished_restyle(plain, clip)
        # The same finished job, asked about by both: text, structured answer and preview picture alike.
        seen_plain = await plain.call_tool("get_status", {"video_id": done["video_id"]})
        seen_apps = await apps.call_tool("get_status", {"video_id": done["video_id"]})
        assert [block.type for block in seen_plain.content] == ["text", "image"]
        assert seen_plain == seen_apps
        started = await apps.call_tool(
            "restyle_video", {"video_media_id": await upload(apps, clip), "restyle_id": "1003"}
        )
        assert [block.type for block in started.content] == [block.type for block in seen_plain.content]
        assert set(started.structured_content or {}) == set(done)


# -- the app-only tools ------------------------------------------------------------------------


async def test_viewer_media_hands_sandbox_files_over_as_data(apps_client: Client, clip: Path) -> None:
    media_id, done = await finished_restyle(apps_client, clip)
    result = await apps_client.call_tool("viewer_media", {"kind": "result", "id": done["video_id"]})
    data, kind = attached(result)
    assert data == httpx2.get(done["url"]).content and kind == "video/mp4"
    assert result.structured_content is not None
    assert result.structured_content["direct"] is False and result.structured_content["size_bytes"] == len(
        data
    )
    # The before picture: by media_id (the tool input of restyle_video) or by the restyle's video_id.
    by_upload, _ = attached(await apps_client.call_tool("viewer_media", {"kind": "upload", "id": media_id}))
    by_source, _ = attached(
        await apps_client.call_tool("viewer_media", {"kind": "source", "id": done["video_id"]})
    )
    assert by_upload == by_source == clip.read_bytes()
    cover, kind = attached(await apps_client.call_tool("viewer_media", {"kind": "cover", "id": "1003"}))
    assert cover[:2] == b"\xff\xd8" and kind == "image/jpeg"


async def test_viewer_media_reads_only_what_pixverse_gave_this_server(
    apps_client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    media_id = await upload(apps_client, clip)
    for kind, ref, expected in (
        ("upload", "9007199254740993", "no URL for media_id"),
        ("source", "9007199254740993", "did not start video"),
        ("cover", "77", "no picture for restyle_id"),
        ("result", "-1", "positive integer id"),
        ("recent", media_id, "kind"),
    ):
        assert expected in await call_error(apps_client, "viewer_media", {"kind": kind, "id": ref})
    started = await call_ok(
        apps_client, "restyle_video", {"video_media_id": media_id, "restyle_id": "1003", "wait_seconds": 0}
    )
    text = await call_error(apps_client, "viewer_media", {"kind": "result", "id": started["video_id"]})
    assert "generating, not finished" in text


async def test_viewer_job_status_answers_without_waiting(
    apps_client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    sandbox.state.config = sandbox.state.config.model_copy(update={"job_seconds": 30})
    media_id = await upload(apps_client, clip)
    started = await call_ok(
        apps_client, "restyle_video", {"video_media_id": media_id, "restyle_id": "1003", "wait_seconds": 0}
    )
    status = await call_ok(apps_client, "viewer_job_status", {"video_id": started["video_id"]})
    assert status["status"] == "generating" and status["waited_seconds"] == 0
    assert "positive integer id" in await call_error(apps_client, "viewer_job_status", {"video_id": "12ab"})


# -- a hostile media host --------------------------------------------------------------------

TOO_BIG = fetch.MAX_MEDIA_BYTES + 1


class _HostileHandler(BaseHTTPRequestHandler):
    """A fake PixVerse whose finished videos point at hostile media answers."""

    urls: ClassVar[dict[int, str]] = {}

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/openapi/v2/video/result/"):
            video_id = int(self.path.rsplit("/", 1)[1])
            reply = {"id": video_id, "status": 1, "url": self.urls[video_id]}
            body = json.dumps({"ErrCode": 0, "ErrMsg": "success", "Resp": reply}).encode()
            self._reply(200, "application/json", body)
        elif self.path == "/declared-big.mp4":
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(TOO_BIG))
            self.end_headers()
            self.wfile.write(b"\0" * 1024)
        elif self.path == "/endless.mp4":
            # No length: the body just goes on past the cap.
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.end_headers()
            chunk = b"\0" * (1024 * 1024)
            for _ in range(TOO_BIG // len(chunk) + 1):
                self.wfile.write(chunk)
        elif self.path == "/page.mp4":
            self._reply(200, "text/html", b"<html>not a video</html>")
        elif self.path == "/loop.mp4":
            self.send_response(302)
            self.send_header("Location", "/loop.mp4")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/octets.mp4":
            self._reply(200, "application/octet-stream", b"small video bytes")
        else:
            self._reply(404, "text/plain", b"no")

    def _reply(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hostile_pixverse() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileHandler)
    root = f"http://127.0.0.1:{server.server_address[1]}"
    _HostileHandler.urls = {
        1: f"{root}/declared-big.mp4",
        2: f"{root}/endless.mp4",
        3: f"{root}/page.mp4",
        4: f"{root}/loop.mp4",
        5: f"{root}/octets.mp4",
        6: "file:///etc/passwd",
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_viewer_media_bounds_what_a_hostile_media_host_sends(
    hostile_pixverse: str, tmp_path: Path
) -> None:
    settings = Settings(
        api_key=SecretStr(SECRET_KEY), base_url=hostile_pixverse, output_dir=tmp_path, retry_waits=FAST_WAITS
    )
    async with Client(create_server(settings), extensions=APPS) as client:

        async def media_error(video_id: int) -> str:
            return await call_error(client, "viewer_media", {"kind": "result", "id": video_id})

        assert "at most 8 MB" in await media_error(1)
        assert "over 8 MB" in await media_error(2)
        assert "not a picture or video" in await media_error(3)
        assert "redirected more than 3 times" in await media_error(4)
        assert "Only http(s)" in await media_error(6)
        # Bytes labelled as bytes are taken as what the file name says, and the server keeps serving.
        data, kind = attached(await client.call_tool("viewer_media", {"kind": "result", "id": 5}))
        assert (data, kind) == (b"small video bytes", "video/mp4")


async def test_private_addresses_are_read_only_when_the_api_itself_is_local(hostile_pixverse: str) -> None:
    public_api = FetchRules.for_base_url("https://app-api.pixverse.ai")
    with pytest.raises(PixVerseError, match=r"internal|loopback|private"):
        await fetch.read_media(f"{hostile_pixverse}/octets.mp4", rules=public_api)
    local_api = FetchRules.for_base_url(hostile_pixverse)
    assert (
        await fetch.read_media(f"{hostile_pixverse}/octets.mp4", rules=local_api)
    ).data == b"small video bytes"
    # A host NAME that resolves to loopback is refused too (the address is resolved, then pinned).
    named = f"{hostile_pixverse}/octets.mp4".replace("127.0.0.1", "localhost")
    with pytest.raises(PixVerseError, match=r"internal|loopback|private"):
        await fetch.read_media(named, rules=public_api)
    for url in ("http://10.0.0.8/x", "http://169.254.169.254/x", "http://[::1]/x"):
        with pytest.raises(PixVerseError):
            await fetch.read_media(url, rules=local_api)
    assert fetch.is_direct("https://media.pixverse.ai/a%2Fb.mp4")
    assert not fetch.is_direct("http://media.pixverse.ai/a.mp4")
    assert not fetch.is_direct("https://media.pixverse.ai.evil.example/a.mp4")
