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
from pixverse_mcp.errors import TimeoutError_
from pixverse_mcp.fetching import FetchRules, unfetchable_reason
from pixverse_mcp.results import VideoStatus
from pixverse_mcp.runtime import Runtime
from pixverse_mcp.wire import VideoResult

SAVE_RESERVE_SECONDS = 1.0
"""Kept back from a download for writing the answer."""
SAVE_PREVIEW_SECONDS = 5.0
"""Writing the preview picture next to the saved video."""


async def finish(
    runtime: Runtime,
    result: VideoResult,
    status: VideoStatus,
    want_download: bool,
    budget: CallBudget,
    progress: CallProgress,
) -> CallToolResult:
    """A succeeded job: save it when asked, and add the preview picture, within the call's budget.

    Only an http(s) URL is fetched, under the fetch rules; the download gets what is left of the
    call's time, the preview a few seconds; whatever fails, the answer keeps the status and the URL
    and says why there is no file or picture.
    """
    client = runtime.api
    settings = runtime.settings
    if not result.url:
        status.message = (
            "PixVerse reports the video as done but gave no URL yet. Call get_status again in a moment."
        )
        return answer(status)
    if (refusal := unfetchable_reason(result.url)) is not None:
        status.message += f" {refusal}"
        status.preview_note = f"no preview picture: {refusal}"[:300]
        return answer(status)
    rules = FetchRules.for_base_url(client.base_url)
    local: Path | None = None
    if want_download:

        async def fetched(done: int, total: int) -> None:
            await progress.report(f"downloaded {done / 1e6:.1f} of {total / 1e6:.1f} MB")

        try:
            local = await jobs.save_video(
                client,
                result,
                settings.output_dir,
                max_bytes=settings.max_download_bytes,
                seconds=min(settings.timeouts.download, max(0.0, budget.left() - SAVE_RESERVE_SECONDS)),
                on_progress=fetched,
            )
            status.local_path = str(local)
        except TimeoutError_ as exc:
            # A host too slow for the download is too slow for a preview: answer now.
            status.message += (
                f" Saving a local copy failed: {exc} Call get_status with download=true to try again "
                "(a call that does not wait has the most time for it); the url works meanwhile."
            )
            status.preview_note = "no preview picture: the video's host is too slow (see message)"
            return answer(status)
        except Exception as exc:  # the copy is optional; the url is the answer
            status.message += f" Saving a local copy failed: {exc}"
    preview: bytes | None = None
    # A preview is a nicety; the video is the answer, so it gets a few seconds at most. A local
    # preview reads only the file just saved; without one, the URL is read under the same rules.
    seconds = min(PREVIEW_SECONDS, settings.timeouts.download, budget.left())
    try:
        preview = await jobs.make_preview(
            local if local is not None else result.url,
            rules=rules,
            max_bytes=settings.max_download_bytes,
            seconds=seconds,
        )
        if local is not None:
            with anyio.fail_after(SAVE_PREVIEW_SECONDS):
                saved = await jobs.save_beside(local, ".preview.jpg", preview)
            status.preview_path = str(saved)
    except TimeoutError:
        status.preview_note = "the preview picture is here, but saving it next to the video timed out"
    except Exception as exc:
        status.preview_note = f"no preview picture: {type(exc).__name__}: {exc}"[:300]
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
        extra.append(file_link(local))
    return structured(status, extra)


def file_link(local: Path) -> ResourceLink:
    """A link to a saved video, for clients that open local files."""
    return ResourceLink(
        type="resource_link",
        uri=local.resolve().as_uri(),
        name=local.name,
        mime_type="video/mp4",
        size=local.stat().st_size,
    )
