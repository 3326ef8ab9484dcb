"""Handing over a job's state: the tool result, and for a finished video its saved copy and preview.

The result's text is the structured content as compact JSON (every conversation pays for it in
context); a preview picture and a link to the saved file ride along as extra content.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import anyio
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel

from pixverse_mcp import jobs
from pixverse_mcp.budget import PREVIEW_SECONDS, CallBudget, CallProgress
from pixverse_mcp.results import VideoStatus
from pixverse_mcp.runtime import Runtime
from pixverse_mcp.wire import VideoResult

SAVE_RESERVE_SECONDS = 1.0
"""Kept back from a download for writing the answer."""


async def finish(
    runtime: Runtime,
    result: VideoResult,
    status: VideoStatus,
    want_download: bool,
    budget: CallBudget,
    progress: CallProgress,
) -> CallToolResult:
    """A succeeded job: save it when asked, and add the preview picture, within the call's budget."""
    client = runtime.api
    if not result.url:
        status.message = (
            "PixVerse reports the video as done but gave no URL yet. Call get_status again in a moment."
        )
        return answer(status)
    local: Path | None = None
    if want_download:

        async def fetched(done: int, total: int) -> None:
            await progress.report(f"downloaded {done / 1e6:.1f} of {total / 1e6:.1f} MB")

        seconds = max(0.0, budget.left() - SAVE_RESERVE_SECONDS)
        try:
            with anyio.fail_after(seconds):
                local = await jobs.save_video(
                    client, result, runtime.settings.output_dir, on_progress=fetched
                )
            status.local_path = str(local)
        except TimeoutError:
            status.message += (
                f" No local copy was saved: the download did not finish within this call's time "
                f"({seconds:.0f} s). Call get_status with download=true to try again; the url works "
                "meanwhile."
            )
        except Exception as exc:  # the copy is optional; the url is the answer
            status.message += f" Saving a local copy failed ({exc}); the url still works."
    preview: bytes | None = None
    # A preview is a nicety; the video is the answer, so it gets a few seconds at most.
    preview_seconds = min(PREVIEW_SECONDS, budget.left())
    with anyio.move_on_after(preview_seconds) as scope:
        try:
            preview = await jobs.make_preview(local if local is not None else result.url)
            if local is not None:
                saved = await jobs.save_beside(local, ".preview.jpg", preview)
                status.preview_path = str(saved)
        except Exception as exc:
            status.preview_note = f"no preview picture: {type(exc).__name__}: {exc}"[:300]
    if scope.cancelled_caught and preview is None:
        status.preview_note = f"no preview picture: reading the video took over {preview_seconds:.0f} s"
    elif scope.cancelled_caught:
        status.preview_note = "the preview picture is here, but saving it next to the video timed out"
    return answer(status, preview, local)


def structured(model: BaseModel, extra: list[Any] | None = None) -> CallToolResult:
    """A tool result: the model as structured content, and as compact JSON text for clients without it."""
    return CallToolResult(
        content=[TextContent(type="text", text=model.model_dump_json(exclude_none=True)), *(extra or [])],
        structured_content=json.loads(model.model_dump_json()),
    )


def answer(status: VideoStatus, preview: bytes | None = None, local: Path | None = None) -> CallToolResult:
    """A job's tool result: its status, plus the preview picture and the saved file's link."""
    extra: list[Any] = []
    if preview is not None:
        extra.append(
            ImageContent(type="image", data=base64.b64encode(preview).decode(), mime_type="image/jpeg")
        )
    if local is not None:
        extra.append(
            ResourceLink(
                type="resource_link",
                uri=local.resolve().as_uri(),
                name=local.name,
                mime_type="video/mp4",
                size=local.stat().st_size,
            )
        )
    return structured(status, extra)
