"""The upload tool: a local file (checked, opened once) or a public URL, to a PixVerse media_id."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlparse

import anyio
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from pixverse_mcp import arguments
from pixverse_mcp.bookkeeping import remember_upload
from pixverse_mcp.delivery import structured
from pixverse_mcp.errors import InputError
from pixverse_mcp.results import UploadResult
from pixverse_mcp.runtime import Runtime, UploadedSource
from pixverse_mcp.tooling import PixVerseServer, register
from pixverse_mcp.uploading import upload_local

log = logging.getLogger(__name__)

ROOTS_TIMEOUT_SECONDS = 3.0


def install(server: PixVerseServer, runtime: Runtime) -> None:
    """Register upload_video."""
    settings = runtime.settings

    @register(
        server,
        title="Upload a video",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=True),
    )
    async def upload_video(
        ctx: Context,
        path: Annotated[
            str | None,
            Field(description="A local video: absolute, ~/..., or relative to the first allowed folder."),
        ] = None,
        url: Annotated[
            str | None, Field(description="A public http(s) URL of an mp4/mov; PixVerse fetches it.")
        ] = None,
        fit: Annotated[
            bool, Field(description="Make a copy restyle takes (cut, scale, upright, H.264 mp4) if needed.")
        ] = False,
        start_seconds: Annotated[
            Any, arguments.SECONDS_SCHEMA, Field(description="Start of the part to upload (local files).")
        ] = None,
        end_seconds: Annotated[
            Any, arguments.SECONDS_SCHEMA, Field(description="End of the part (under 16 s after start).")
        ] = None,
    ) -> Annotated[CallToolResult, UploadResult]:
        """Upload a video to PixVerse for restyling; give exactly one of path or url. Free.

        A local file must be mp4 or mov, at most 16 s, 50 MB and 1920 px on the longer side; with
        fit=true any video is first made into such a copy (the answer says what changed). Returns the
        media_id for restyle_video.
        """
        chosen = arguments.exactly_one(path=path, url=url)
        start = arguments.seconds_argument(start_seconds, "start_seconds")
        end = arguments.seconds_argument(end_seconds, "end_seconds")
        client = runtime.api
        if chosen == "url":
            if fit or start is not None or end is not None:
                raise InputError(
                    "fit, start_seconds and end_seconds work on local files only: PixVerse fetches a URL "
                    "itself. Download the video into an allowed folder and give its path.",
                    argument="fit",
                )
            checked_url = arguments.validate_video_url(
                arguments.text_argument(url, "url", max_len=arguments.MAX_URL_LENGTH)
            )
            client.require_key()
            uploaded = await client.upload_url(checked_url)
            remember_upload(runtime, uploaded.media_id, UploadedSource("url", checked_url, None, None))
            return structured(
                UploadResult(
                    media_id=str(uploaded.media_id),
                    media_type=uploaded.media_type,
                    url=uploaded.url,
                    source="url",
                    message=_upload_message(uploaded.media_type, uploaded.media_id),
                )
            )
        raw_path = arguments.text_argument(path, "path", max_len=4096)
        offered = await client_roots(ctx) if runtime.client_roots else ()
        roots = (*settings.allowed_dirs, *offered)

        async def progress(percent: float, message: str) -> None:
            await ctx.report_progress(round(percent, 1), 100.0, message)

        result = await upload_local(
            runtime, raw_path, roots, fit=fit, start_seconds=start, end_seconds=end, progress=progress
        )
        return structured(result)


def _upload_message(media_type: str, media_id: int) -> str:
    if media_type != "video":
        return f"PixVerse stored this as {media_type}, not video: restyle needs a video file."
    return f"Uploaded. Call restyle_video with video_media_id {media_id!s} and a style."


async def client_roots(ctx: Context) -> tuple[Path, ...]:
    """The folders the MCP client offers as roots, where it supports them (handshake-era sessions)."""
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.roots is None:
        return ()
    try:
        with warnings.catch_warnings(), anyio.fail_after(ROOTS_TIMEOUT_SECONDS):
            # Deprecated in the 2026-07-28 protocol, still what desktop clients of the handshake era use.
            warnings.simplefilter("ignore")
            listed = await ctx.session.list_roots()
    except Exception as exc:  # a client that cannot answer simply offers no roots
        log.info("could not list the client's roots: %s", type(exc).__name__)
        return ()
    folders = []
    for root in listed.roots:
        uri = urlparse(str(root.uri))
        if uri.scheme == "file":
            # Resolved later, with the other roots, in the worker thread that checks the file.
            folders.append(Path(unquote(uri.path)))
    return tuple(folders)
