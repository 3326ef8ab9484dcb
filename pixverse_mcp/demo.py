"""The end-to-end demo: a real MCP client restyles a sample clip through the server on the sandbox.

It spawns `pixverse-mcp serve --sandbox` over stdio, exactly as a desktop client would, and prints
each call with a short view of its answer.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult, ImageContent

from pixverse_mcp.apps.host_page import apps_client_extension, recorded_page
from pixverse_mcp.samples import make_clip


def _say(text: str = "") -> None:
    print(text, flush=True)


def _brief(result: CallToolResult, keep: tuple[str, ...]) -> str:
    data: dict[str, Any] = result.structured_content or {}
    shown = {k: data[k] for k in keep if data.get(k) is not None}
    return json.dumps(shown, ensure_ascii=False)


async def _call(client: Client, tool: str, args: dict[str, Any], keep: tuple[str, ...]) -> dict[str, Any]:
    _say(f"\n> {tool}({json.dumps(args, ensure_ascii=False)})")
    started = time.monotonic()

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        _say(f"  ... {message or progress}")

    result = await client.call_tool(tool, args, progress_callback=progress)
    took = time.monotonic() - started
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise RuntimeError(f"{tool} failed: {text}")
    _say(f"< {_brief(result, keep)}  [{took:.1f} s]")
    images = [c for c in result.content if isinstance(c, ImageContent)]
    if images:
        _say(f"  (+ a preview picture, {len(images[0].data) * 3 // 4 // 1024} KB, shown inline by clients)")
    return result.structured_content or {}


async def _demo(out: Path, style: str, viewer: bool) -> Path:
    await anyio.Path(out).mkdir(parents=True, exist_ok=True)
    clip = make_clip(out / "sample.mp4", seconds=3.0, width=480, height=270)
    env = {
        **os.environ,
        "PIXVERSE_OUTPUT_DIR": str(out),
        "PIXVERSE_ALLOWED_DIRS": str(out),
        "PIXVERSE_LOG_LEVEL": "WARNING",
    }
    env.pop("PIXVERSE_API_KEY", None)
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "pixverse_mcp", "serve", "--sandbox"], env=env, cwd=str(out)
    )
    _say(f"Sample clip: {clip}")
    _say("Starting `pixverse-mcp serve --sandbox` over stdio and talking to it as an MCP client.")
    # With --viewer the demo renders the view itself, so it says so, as a chat client would.
    async with Client(params, extensions=[apps_client_extension()] if viewer else None) as client:
        tools = await client.list_tools()
        _say(f"Tools: {', '.join(t.name for t in tools.tools)}")
        catalog = await _call(client, "list_restyles", {}, ("count", "total"))
        names = [s["name"] for s in catalog["styles"]]
        _say(f"  styles: {', '.join(names)}")
        chosen = next(
            (s for s in catalog["styles"] if style.casefold() in s["name"].casefold()), catalog["styles"][0]
        )
        _say(f"  picked: {chosen['name']} (restyle_id {chosen['restyle_id']})")
        uploaded = await _call(
            client,
            "upload_video",
            {"path": clip.name},
            ("media_id", "duration_seconds", "width", "height", "size_bytes"),
        )
        await _call(client, "get_balance", {}, ("total", "credit_monthly", "credit_package"))
        keep = ("video_id", "status", "credits", "url", "local_path", "preview_path", "message")
        restyle_args = {
            "video_media_id": uploaded["media_id"],
            "restyle_id": chosen["restyle_id"],
            "download": True,
        }
        started = status = await _call(client, "restyle_video", restyle_args, keep)
        while status["status"] == "generating":
            status = await _call(
                client, "get_status", {"video_id": status["video_id"], "download": True}, keep
            )
        if status["status"] != "succeeded":
            raise RuntimeError(f"the restyle ended as {status['status']}: {status['message']}")
        await _call(client, "get_balance", {}, ("total",))
        if viewer:
            page = await recorded_page(client, "restyle_video", restyle_args, {**started, **status})
            await anyio.Path(out / "viewer.html").write_text(page, encoding="utf-8")
    local = Path(status["local_path"])
    _say(f"\nRestyled video: {local}")
    if status.get("preview_path"):
        _say(f"Preview picture: {status['preview_path']}")
    if viewer:
        _say(f"Viewer: {out / 'viewer.html'} (open it in a browser: the view chat clients show inline)")
    return local


def run_demo(out: Path, *, style: str = "sketch", viewer: bool = False) -> int:
    """Run the demo (with `viewer`, also write viewer.html); returns a process exit code."""
    try:
        anyio.run(_demo, out.resolve(), style, viewer)
    except Exception as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    return 0
