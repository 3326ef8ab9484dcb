"""The viewer in a real browser: Debian's Chromium, driven by Playwright, inside the stand-in host.

The host page (pixverse_mcp/apps/host_page.html) loads the view the server serves, under the CSP
the resource declares, and forwards the view's tools/call to a real MCP client session on the
sandbox (over `page.expose_function`). The sandbox's loopback URLs are outside that CSP, as they
would be in Claude, so the view must fetch its media through `viewer_media`. One browser serves
the whole module; screenshots are kept under tests/artifacts/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from conftest import needs_system_package
from mcp import Client
from mcp.client import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.types import CallToolResult
from playwright.sync_api import Browser, ConsoleMessage, Frame, Page, sync_playwright

from pixverse_mcp.apps import VIEW_URI
from pixverse_mcp.apps.host_page import host_page, view_config, wire
from pixverse_mcp.config import Settings
from pixverse_mcp.demo import run_demo
from pixverse_mcp.sandbox import SandboxServer
from pixverse_mcp.server import create_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
APPS = [advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})]
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # One browser for every browser test (they all live in this module). Module-scoped, not
    # session-scoped: Playwright's sync API keeps an event loop running on this thread while it is
    # open, which the anyio tests of later modules could not start theirs beside.
    needs_system_package(Path(CHROMIUM).exists(), "apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Viewer:
    """One browser page with the host page, and the test's own MCP client session."""

    def __init__(self, page: Page, portal: BlockingPortal, client: Client) -> None:
        self.page = page
        self.portal = portal
        self.client = client
        self.errors: list[str] = []
        self.test_calls: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.expose_function("pixverseCallTool", self._forward)
        page.set_content(host_page())
        self.view = view_config(portal.call(client.read_resource, VIEW_URI))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _forward(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The host's side of the view's tools/call: a real call on the MCP session."""
        return wire(self.portal.call(self.client.call_tool, name, arguments))

    def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        """A call the test itself makes (as the model would)."""
        self.test_calls.append(tool)
        result = self.portal.call(self.client.call_tool, tool, arguments)
        assert not result.is_error, result.content
        return result

    def show(
        self,
        tool: str,
        arguments: dict[str, Any],
        result: CallToolResult | dict[str, Any],
        *,
        theme: str = "light",
        width: int | None = None,
    ) -> Frame:
        """Render the view for one tool call, as a host does; returns the view's frame."""
        config = {
            **self.view,
            "toolName": tool,
            "toolInput": arguments,
            "toolResult": result if isinstance(result, dict) else wire(result),
            "theme": theme,
            "width": width,
        }
        self.page.evaluate("config => pixverseHost.start(config)", config)
        self.page.wait_for_function("() => pixverseHost.initialized", timeout=WAIT_MS)
        handle = self.page.query_selector("#view")
        assert handle is not None
        frame = handle.content_frame()
        assert frame is not None
        return frame

    def host(self, expression: str) -> Any:
        return self.page.evaluate(expression)

    def view_calls(self, tool: str) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self.host("() => pixverseHost.calls")
        return [call["arguments"] for call in calls if call["name"] == tool]

    def shot(self, frame: Frame, name: str) -> bytes:
        ARTIFACTS.mkdir(exist_ok=True)
        return frame.locator("#app").screenshot(path=ARTIFACTS / name, animations="disabled")


@pytest.fixture
def viewer(browser: Browser, settings: Settings, sandbox: SandboxServer) -> Iterator[Viewer]:
    with start_blocking_portal() as portal:
        client = Client(create_server(settings), extensions=APPS)
        with portal.wrap_async_context_manager(client) as connected:
            page = browser.new_page(viewport={"width": 820, "height": 900})
            try:
                opened = Viewer(page, portal, connected)
                yield opened
                assert opened.errors == [], opened.errors
            finally:
                page.close()


def restyled(viewer: Viewer, clip: Path, **extra: Any) -> tuple[dict[str, Any], CallToolResult]:
    """Upload `clip` (unless a media_id is given) and restyle it, Pencil Sketch unless told otherwise."""
    media_id = (
        extra.pop("media_id", None)
        or (viewer.call("upload_video", {"path": str(clip)}).structured_content or {})["media_id"]
    )
    arguments = {"video_media_id": media_id, "restyle_id": "1003", **extra}
    return arguments, viewer.call("restyle_video", arguments)


PLAYING = """() => {
  const v = document.querySelector("video.after");
  return !!v && v.readyState >= 2 && v.duration > 0 && !v.paused && v.currentTime > 0.2;
}"""


def test_player_plays_the_restyle_with_a_before_after_wipe(viewer: Viewer, clip: Path) -> None:
    arguments, result = restyled(viewer, clip, restyle_id="1006")  # Neon Night: far from the original
    done = result.structured_content or {}
    assert done["status"] == "succeeded"
    frame = viewer.show("restyle_video", arguments, result)
    frame.wait_for_function(PLAYING, timeout=WAIT_MS)
    frame.wait_for_function(
        "() => !document.querySelector('.before').hidden"
        " && document.querySelector('video.original').readyState >= 2",
        timeout=WAIT_MS,
    )
    assert frame.evaluate("() => document.querySelector('video.after').duration") > 1.5
    # Loopback media is outside the declared CSP: both videos came as data through viewer_media.
    assert viewer.view_calls("viewer_media") == [
        {"kind": "result", "id": done["video_id"], "force_data": False},
        {"kind": "upload", "id": arguments["video_media_id"], "force_data": False},
    ]
    assert frame.evaluate("() => document.querySelector('video.after').src.startsWith('data:video/mp4')")
    # Pause on one frame (keyboard), then move the wipe: only the wipe changes what is seen.
    frame.get_by_role("button", name="Pause").press("Enter")
    frame.wait_for_function("() => document.querySelector('video.after').paused")
    frame.get_by_label("Position").fill("500")
    frame.wait_for_function(
        "() => [...document.querySelectorAll('video')].every(v => !v.seeking && v.paused"
        " && Math.abs(v.currentTime - document.querySelector('video.after').currentTime) < 0.05)",
        timeout=WAIT_MS,
    )
    wipe = frame.get_by_label("Before and after: how much of the original shows")
    stage = frame.locator(".stage")
    wipe.fill("20")
    assert (
        frame.evaluate("() => document.querySelector('.before').style.clipPath") == "inset(0px 80% 0px 0px)"
    )
    narrow = stage.screenshot()
    wipe.fill("80")
    assert (
        frame.evaluate("() => document.querySelector('.before').style.clipPath") == "inset(0px 20% 0px 0px)"
    )
    wide = stage.screenshot()
    wipe.fill("20")
    assert stage.screenshot() == narrow != wide
    wipe.press("Home")
    assert (
        frame.evaluate("() => document.querySelector('.before').style.clipPath") == "inset(0px 100% 0px 0px)"
    )
    wipe.fill("50")
    wipe.blur()
    viewer.shot(frame, "player-light.png")
    # The buttons ask the host; the final URL went to the model's context.
    frame.get_by_role("button", name="Open video").click()
    frame.get_by_role("button", name="Try another style").click()
    frame.get_by_text("Asked: Restyle my clip with another style").wait_for()
    assert viewer.host("() => pixverseHost.opened") == [done["url"]]
    messages = viewer.host("() => pixverseHost.messages")
    assert messages[-1]["role"] == "user" and "another style" in messages[-1]["content"][0]["text"]
    contexts = viewer.host("() => pixverseHost.contexts")
    assert contexts[-1]["structuredContent"] == {
        "video_id": done["video_id"],
        "status": "succeeded",
        "url": done["url"],
    }
    assert viewer.view_calls("viewer_job_status") == []


def test_live_card_follows_a_job_to_the_player_on_its_own(
    viewer: Viewer, clip: Path, sandbox: SandboxServer
) -> None:
    sandbox.state.config = sandbox.state.config.model_copy(update={"job_seconds": 2.5})
    arguments, result = restyled(viewer, clip, wait_seconds=0)
    started = result.structured_content or {}
    assert started["status"] == "generating"
    frame = viewer.show("restyle_video", arguments, result)
    frame.wait_for_function("() => document.body.dataset.phase === 'live'", timeout=WAIT_MS)
    assert frame.evaluate("() => document.body.dataset.polling") == "on"
    assert "generating" in frame.locator(".live").inner_text()
    frame.get_by_text("elapsed").wait_for()
    viewer.shot(frame, "live-light.png")
    # No call from the test from here on: the view polls viewer_job_status and swaps to the player.
    frame.wait_for_function(PLAYING, timeout=WAIT_MS)
    assert frame.evaluate("() => [document.body.dataset.phase, document.body.dataset.polling]") == [
        "player",
        "off",
    ]
    polls = viewer.view_calls("viewer_job_status")
    assert polls and all(poll == {"video_id": started["video_id"]} for poll in polls)
    assert viewer.test_calls == ["upload_video", "restyle_video"]
    assert frame.locator("h1").inner_text() == "Pencil Sketch"
    # The host tears the view down: it answers, and nothing keeps running.
    assert viewer.page.evaluate("() => pixverseHost.teardown()") == {}


def test_a_refused_restyle_says_what_to_do(viewer: Viewer, clip: Path, sandbox: SandboxServer) -> None:
    sandbox.state.add_fault(endpoint="generate", kind="job_outcome", code=7)
    arguments, result = restyled(viewer, clip)
    assert (result.structured_content or {})["status"] == "moderation_failed"
    frame = viewer.show("restyle_video", arguments, result, theme="dark")
    frame.wait_for_function("() => document.body.dataset.phase === 'message'", timeout=WAIT_MS)
    text = frame.locator("#app").inner_text()
    assert "Refused by moderation" in text and "Change the prompt, the style or the video" in text
    assert "refunds the credits" in text
    frame.get_by_role("button", name="Try another style").click()
    frame.get_by_text("Asked:").wait_for()
    assert frame.evaluate("() => document.body.dataset.polling") == "off"
    viewer.shot(frame, "refused-dark.png")


def test_gallery_shows_every_style_and_asks_for_the_one_chosen(viewer: Viewer) -> None:
    catalog = viewer.call("list_restyles", {})
    styles = (catalog.structured_content or {})["styles"]
    shown = wire(catalog)
    # Today's catalog carries no marker; PixVerse's web catalog marks some styles "new".
    shown["structuredContent"]["styles"][1]["marker"] = "new"
    frame = viewer.show("list_restyles", {}, shown, theme="dark", width=360)
    frame.wait_for_function("() => document.body.dataset.phase === 'gallery'", timeout=WAIT_MS)
    frame.wait_for_function(
        "n => [...document.querySelectorAll('img.thumb')].filter(i => i.naturalWidth > 0).length === n",
        arg=len(styles),
        timeout=WAIT_MS,
    )
    assert frame.locator(".style-card .name").all_inner_texts() == [style["name"] for style in styles]
    assert frame.locator(".badge").all_inner_texts() == ["NEW"]
    assert frame.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    background = frame.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert sum(int(part) for part in background[4:-1].split(",")[:3]) < 3 * 60, background
    viewer.shot(frame, "gallery-dark-360.png")
    chosen = frame.get_by_role("button", name=f"Restyle my clip with {styles[2]['name']}")
    chosen.focus()
    chosen.press("Enter")
    frame.get_by_text(f"Asked: Restyle my clip with {styles[2]['name']}").wait_for()
    assert viewer.host("() => pixverseHost.messages")[-1]["content"] == [
        {"type": "text", "text": f"Restyle my clip with {styles[2]['name']}"}
    ]


def test_compare_grid_plays_a_group_side_by_side_in_sync(viewer: Viewer, clip: Path) -> None:
    items = []
    media_id = ""
    for restyle_id, wait in (("1001", None), ("1004", None), ("1003", 0)):
        arguments, result = restyled(
            viewer, clip, media_id=media_id, restyle_id=restyle_id, wait_seconds=wait
        )
        media_id = arguments["video_media_id"]
        answer = result.structured_content or {}
        items.append(
            {
                "label": answer.get("style") or restyle_id,
                "video_id": answer["video_id"],
                "url": answer.get("url"),
                "status": answer["status"],
            }
        )
    assert [item["status"] for item in items] == ["succeeded", "succeeded", "generating"]
    assert viewer.test_calls == ["upload_video", "restyle_video", "restyle_video", "restyle_video"]
    group = {
        "content": [{"type": "text", "text": json.dumps({"items": items})}],
        "structuredContent": {"items": items},
    }
    frame = viewer.show("restyle_many", {}, group)
    # The third is followed until it is done, then all three play, labelled.
    frame.wait_for_function(
        "() => { const v = [...document.querySelectorAll('video.cell-video')];"
        " return v.length === 3 && v.every(x => x.readyState >= 2 && !x.paused); }",
        timeout=WAIT_MS,
    )
    labels = frame.locator(".cell figcaption b").all_inner_texts()
    assert labels[:2] == ["Film Noir", "Pixel Art"] and len(labels) == 3
    frame.get_by_role("button", name="Pause").click()
    frame.get_by_label("Position").fill("700")
    frame.wait_for_function(
        "() => { const v = [...document.querySelectorAll('video.cell-video')];"
        " return v.every(x => x.paused && !x.seeking) && Math.max(...v.map(x => x.currentTime))"
        " - Math.min(...v.map(x => x.currentTime)) < 0.05; }",
        timeout=WAIT_MS,
    )
    assert frame.evaluate("() => document.body.dataset.polling") == "off"
    viewer.shot(frame, "compare-light.png")


def test_demo_writes_a_page_that_shows_the_result_in_any_browser(browser: Browser, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    # The demo runs an event loop of its own: in a worker thread, beside Playwright's.
    with ThreadPoolExecutor(1) as worker:
        assert worker.submit(run_demo, out, style="noir", viewer=True).result(timeout=120) == 0
    page = browser.new_page(viewport={"width": 820, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        # No server behind it: the view's requests are answered from what the demo recorded.
        page.goto((out / "viewer.html").as_uri())
        page.wait_for_function("() => pixverseHost.initialized", timeout=WAIT_MS)
        handle = page.query_selector("#view")
        frame = handle.content_frame() if handle else None
        assert frame is not None
        frame.wait_for_function(PLAYING, timeout=WAIT_MS)
        frame.wait_for_function("() => !document.querySelector('.before').hidden", timeout=WAIT_MS)
        assert frame.locator("h1").inner_text() == "Film Noir"
        assert [call["arguments"]["kind"] for call in page.evaluate("() => pixverseHost.calls")] == [
            "result",
            "upload",
        ]
        page.get_by_role("button", name="Dark theme").click()
        frame.wait_for_function("() => document.documentElement.dataset.theme === 'dark'")
        assert errors == []
    finally:
        page.close()
