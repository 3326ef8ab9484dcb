"""6. The viewer: its size, and how soon it shows the restyled video once the tool's answer is in.

The view runs in Debian's Chromium (headless, driven by Playwright) inside the stand-in host page,
which applies the CSP the resource declares. For each round the host loads the view, waits for
its handshake, then sends the `ui/notifications/tool-result` of a finished restyle; the time
runs from that message to the first video frame presented in the view
(`requestVideoFrameCallback`'s presentationTime; both clocks are the page's high-resolution
epoch time). Two paths:
- through `viewer_media`: the sandbox's loopback URL is outside the CSP, so the view asks the
  server for the video as data (a real MCP session, in this process, on `--sandbox`);
- direct: the same video at a declared PixVerse media host (served by the browser's request
  routing from memory, so no network time is in the figure), loaded by the view itself.
"""

from __future__ import annotations

import base64
import gzip
import shutil
import tempfile
from pathlib import Path
from typing import Any

from _common import Section, Summary, say, small_clip

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
GOAL_VIEW_BYTES = 80 * 1024
GOAL_FIRST_FRAME_SECONDS = 1.0
DIRECT_URL = "https://media.pixverse.ai/bench/restyled.mp4"

WATCH_FIRST_FRAME = """() => {
  window.firstFrameAt = null;
  new MutationObserver((_, observer) => {
    const video = document.querySelector("video.after");
    if (!video) return;
    observer.disconnect();
    video.requestVideoFrameCallback((now, frame) => {
      window.firstFrameAt = performance.timeOrigin + (frame.presentationTime || now);
    });
  }).observe(document.body, { childList: true, subtree: true });
}"""


async def _first_frame(page: Any, config: dict[str, Any], result: dict[str, Any]) -> float:
    """Seconds from the tool-result message to the first frame of the restyled video."""
    await page.evaluate("config => pixverseHost.start(config)", config)
    await page.wait_for_function("() => pixverseHost.initialized", timeout=20_000)
    handle = await page.query_selector("#view")
    frame = await handle.content_frame()
    await frame.evaluate(WATCH_FIRST_FRAME)
    await page.evaluate("result => pixverseHost.sendToolResult(result)", result)
    await frame.wait_for_function("() => window.firstFrameAt !== null", timeout=20_000)
    shown = await frame.evaluate("() => window.firstFrameAt")
    sent = await page.evaluate("() => pixverseHost.resultSentAt")
    return float(shown - sent) / 1000


async def run(workdir: Path, rounds: int) -> Section:
    from mcp import Client
    from mcp.types import EmbeddedResource
    from playwright.async_api import async_playwright

    from pixverse_mcp.apps import VIEW_URI
    from pixverse_mcp.apps.host_page import apps_client_extension, host_page, view_config, wire
    from pixverse_mcp.config import Settings
    from pixverse_mcp.server import create_server

    section = Section("Viewer")
    folder = Path(tempfile.mkdtemp(prefix="viewer-", dir=workdir))
    clip = shutil.copy(small_clip(), folder / "clip.mp4")
    settings = Settings(sandbox=True, output_dir=folder / "out", allowed_dirs=(folder,), log_level="WARNING")
    async with (
        Client(create_server(settings), extensions=[apps_client_extension()]) as client,
        async_playwright() as playwright,
    ):
        view = view_config(await client.read_resource(VIEW_URI))
        size = len(view["viewHtml"].encode())
        packed = len(gzip.compress(view["viewHtml"].encode()))
        section.row(
            "view size (ui://pixverse/viewer.html)",
            f"{size / 1024:.1f} KiB",
            "<= 80 KiB",
            size <= GOAL_VIEW_BYTES,
        )
        section.row("view size, gzip", f"{packed / 1024:.1f} KiB")

        uploaded = await client.call_tool("upload_video", {"path": str(clip)})
        arguments = {"video_media_id": (uploaded.structured_content or {})["media_id"], "restyle_id": "1003"}
        restyled = await client.call_tool("restyle_video", {**arguments, "wait_seconds": 15})
        answer = restyled.structured_content or {}
        if answer.get("status") != "succeeded":
            raise RuntimeError(f"the sandbox restyle ended as {answer.get('status')}")
        media = await client.call_tool("viewer_media", {"kind": "result", "id": answer["video_id"]})
        attached = next(c.resource for c in media.content if isinstance(c, EmbeddedResource))
        video_bytes = base64.b64decode(getattr(attached, "blob", ""))

        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 820, "height": 900})

        async def forward(name: str, args: dict[str, Any]) -> dict[str, Any]:
            return wire(await client.call_tool(name, args))

        await page.expose_function("pixverseCallTool", forward)
        await page.route(
            DIRECT_URL,
            lambda route: route.fulfill(status=200, body=video_bytes, headers={"Content-Type": "video/mp4"}),
        )
        await page.set_content(host_page())
        base = {**view, "toolName": "restyle_video", "toolInput": arguments, "theme": "light"}
        through_tool = wire(restyled)
        direct = wire(restyled)
        direct["structuredContent"] = {**answer, "url": DIRECT_URL}
        timings: dict[str, list[float]] = {"tool": [], "direct": []}
        say(f"  {rounds} rounds of each path...")
        for _ in range(rounds):
            timings["tool"].append(await _first_frame(page, base, through_tool))
            timings["direct"].append(await _first_frame(page, base, direct))
        await browser.close()

    tool, straight = Summary.of(timings["tool"]), Summary.of(timings["direct"])
    section.row(
        "tool-result to first frame, media as data through viewer_media (sandbox)",
        tool.ms(),
        "< 1 s",
        tool.median < GOAL_FIRST_FRAME_SECONDS,
    )
    section.row(
        "tool-result to first frame, media from a declared PixVerse host",
        straight.ms(),
        "< 1 s",
        straight.median < GOAL_FIRST_FRAME_SECONDS,
    )
    section.row("restyled clip", f"{len(video_bytes) / 1024:.0f} KiB, 2 s 320x240 H.264")
    section.notes.append(
        "Headless Chromium (Debian) with Playwright, in the stand-in host page that applies the declared "
        "CSP; "
        "from the host's tool-result message to the first video frame presented "
        f"(requestVideoFrameCallback), {rounds} rounds of each path alternating. Through viewer_media the "
        "figure includes the view's tools/call, the server's read of the sandbox file and the base64 trip; "
        "direct, the file is served from memory by the browser's request routing."
    )
    return section
