"""The upload tool: a local file (checked, opened once) or a public URL, to a PixVerse media_id."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlparse

import anyio
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from pixverse_mcp import arguments, rules
from pixverse_mcp.bookkeeping import fingerprint, remember_upload
from pixverse_mcp.delivery import structured
from pixverse_mcp.results import UploadResult
from pixverse_mcp.runtime import Runtime, UploadedSource
from pixverse_mcp.tooling import PixVerseServer, register

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
            Field(description="A local mp4/mov: absolute, ~/..., or relative to the first allowed folder."),
        ] = None,
        url: Annotated[
            str | None, Field(description="A public http(s) URL of an mp4/mov; PixVerse fetches it.")
        ] = None,
    ) -> Annotated[CallToolResult, UploadResult]:
        """Upload a video to PixVerse for restyling; give exactly one of path or url. Free.

        A local file is checked first (mp4 or mov in the allowed folders, at most 16 s, 50 MB and
        1920 px on the longer side) and refused with the fix if PixVerse would refuse it. Returns the
        media_id for restyle_video.
        """
        chosen = arguments.exactly_one(path=path, url=url)
        client = runtime.api
        if chosen == "url":
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
        offered = await _client_roots(ctx) if runtime.client_roots else ()
        roots = (*settings.allowed_dirs, *offered)
        # Opened once: the probe and the upload read the same descriptor, never the name again.
        with await anyio.to_thread.run_sync(rules.check_local_video, raw_path, roots) as checked:
            probe = checked.probe
            client.require_key()

            async def sent(done: int, total: int) -> None:
                await ctx.report_progress(done, total, f"uploaded {done / 1e6:.1f} of {total / 1e6:.1f} MB")

            uploaded = await client.upload_file(
                checked.file, file_name=probe.path.name, content_type=probe.mime_type, on_progress=sent
            )
            file_print = await anyio.to_thread.run_sync(fingerprint, checked.file)
        remember_upload(
            runtime,
            uploaded.media_id,
            UploadedSource("file", probe.path.name, file_print, probe.duration_seconds),
        )
        return structured(
            UploadResult(
                media_id=str(uploaded.media_id),
                media_type=uploaded.media_type,
                url=uploaded.url,
                source="file",
                file_name=probe.path.name,
                duration_seconds=round(probe.duration_seconds, 2),
                width=probe.width,
                height=probe.height,
                size_bytes=probe.size_bytes,
                message=_upload_message(uploaded.media_type, uploaded.media_id),
            )
        )


def _upload_message(media_type: str, media_id: int) -> str:
    if media_type != "video":
        return f"PixVerse stored this as {media_type}, not video: restyle needs a video file."
    return f"Uploaded. Call restyle_video with video_media_id {media_id!s} and a style."


async def _client_roots(ctx: Context) -> tuple[Path, ...]:
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
