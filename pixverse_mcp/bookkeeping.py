"""What the tools tell the job journal: a restyle's source and style before it is sent, and statuses.

A journal write must neither lose an answer nor be lost itself: each one runs shielded from the
call's cancellation (a client that gives up right after PixVerse made the job still leaves the job
on record) and bounded in time (a slow store cannot hold the answer); the journal logs its own
faults and never raises for them.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import anyio

from pixverse_mcp.journal import JobStart, StatusUpdate, records, request_key
from pixverse_mcp.localfile import LocalFile
from pixverse_mcp.results import VideoStatus
from pixverse_mcp.runtime import Runtime, UploadedSource
from pixverse_mcp.wire import JobState

WRITE_SECONDS = 5.0
"""The longest a journal write may hold up a tool call."""


async def record(write: Awaitable[Any]) -> None:
    """Run one journal write to its end even if the call is cancelled, within WRITE_SECONDS."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(WRITE_SECONDS):
        await write


def fingerprint(file: LocalFile) -> str:
    """The journal's fingerprint of an opened file, read from it (never the name again). Blocking."""
    return records.fingerprint(file.size, file.read_at)


async def job_start(
    runtime: Runtime,
    body: dict[str, Any],
    trace_id: str,
    *,
    client_name: str | None,
    group_id: str | None = None,
) -> JobStart:
    """What the journal keeps of a restyle before it is sent: source, style, seed, who asked."""
    journal = runtime.journal
    seconds: float | None = None
    fingerprint_: str | None = None
    if "video_media_id" in body:
        media_id = int(body["video_media_id"])
        known = runtime.uploads.get(media_id)
        kind, source = "media", f"media {media_id}"
        if known is not None:
            kind, source = known.kind, f"{known.name} (media {media_id})"
            seconds, fingerprint_ = known.seconds, known.fingerprint
    else:
        video_id = int(body["source_video_id"])
        kind, source = "video", f"video {video_id}"
        earlier = await journal.get_job(video_id)
        if earlier is not None:
            seconds = earlier.source_seconds
            source = f"video {video_id} ({earlier.style_name or 'restyle'} of {earlier.source})"[:300]
    style_name = None
    if "restyle_id" in body:
        style_name = runtime.styles.cached_name(int(body["restyle_id"]))
    return JobStart(
        trace_id=trace_id,
        request_key=request_key(body),
        source_kind=kind,  # type: ignore[arg-type]
        source=source,
        source_fingerprint=fingerprint_,
        source_seconds=seconds,
        restyle_id=str(body["restyle_id"]) if "restyle_id" in body else None,
        style_name=style_name,
        prompt=body.get("restyle_prompt"),
        seed=body.get("seed"),
        client_name=client_name,
        group_id=group_id,
    )


def status_update(status: VideoStatus, *, credits: int | None = None) -> StatusUpdate:
    """A tool's status answer as the journal records it."""
    state = JobState(status.status)
    return StatusUpdate(
        status=state.value,
        status_code=status.status_code,
        finished=state.ended,
        url=status.url,
        local_path=status.local_path,
        style_name=status.style,
        seed=status.seed,
        credits=credits,
    )


def remember_upload(runtime: Runtime, media_id: int, source: UploadedSource) -> None:
    """Keep what a restyle of this media will want on record (this server's uploads only)."""
    runtime.uploads.add(media_id, source)
