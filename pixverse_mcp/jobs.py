"""Following a job to its end: bounded waiting with progress, the status answer, download, preview."""

from __future__ import annotations

import functools
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from pixverse_mcp.budget import CallBudget
from pixverse_mcp.client import PixVerseClient
from pixverse_mcp.config import DEFAULT_MAX_DOWNLOAD_MB
from pixverse_mcp.errors import BadResponseError, NotFoundError, PixVerseError
from pixverse_mcp.fetching import FetchRules
from pixverse_mcp.paths import ensure_inside, safe_filename
from pixverse_mcp.results import VideoStatus
from pixverse_mcp.wire import JobState, VideoResult

log = logging.getLogger(__name__)

WaitProgress = Callable[[str], Awaitable[None]]
"""Called with a message ("generating, 12 s elapsed") while a job is being waited for."""

FIRST_POLL_SECONDS = 0.5
POLL_GROWTH = 1.5
CHECK_AGAIN_SECONDS = 20
# How long past its own deadline a preview thread is waited for before it is left to stop alone.
PREVIEW_GRACE_SECONDS = 2.0


def status_name(code: int | None) -> str:
    return JobState.from_code(code).value


def status_message(code: int | None, video_id: int, *, wait_seconds: float = 40.0) -> str:
    """One line that tells the assistant what a status means and what to do next."""
    match JobState.from_code(code):
        case JobState.SUCCEEDED:
            return "The video is ready: share the url (and local_path when it was downloaded)."
        case JobState.GENERATING:
            stage = {2: "Queued at PixVerse", 3: "In progress at PixVerse"}.get(code or 0, "Still generating")
            return (
                f"{stage}: the job is still running. Call get_status with video_id {video_id} again (it "
                f"waits up to about {wait_seconds:g} s each time); restyles usually take one to a few "
                "minutes."
            )
        case JobState.DELETED:
            return "This video was deleted and no longer exists. Restyle the source again to make a new one."
        case JobState.MODERATION_FAILED:
            return (
                "The restyle failed content moderation. Change the prompt, the style or the video and try "
                "again; PixVerse refunds the credits of this job automatically."
            )
        case JobState.FAILED:
            return (
                "PixVerse failed to generate this video (a server-side failure). Starting the same restyle "
                "again is reasonable."
            )
        case _:
            return (
                f"PixVerse reported status {code}, which this server does not know. Check again with "
                "get_status; if it does not change, contact PixVerse support with the video id."
            )


def to_status(result: VideoResult, *, waited: float = 0.0, wait_seconds: float = 40.0) -> VideoStatus:
    code = result.status
    state = result.state
    done = state is JobState.SUCCEEDED
    return VideoStatus(
        video_id=str(result.id),
        status=state.value,
        status_code=code,
        message=status_message(code, result.id, wait_seconds=wait_seconds),
        url=(result.url or None) if done else None,
        width=result.output_width if done else None,
        height=result.output_height if done else None,
        size_bytes=result.size if done else None,
        style=result.style,
        seed=result.seed,
        waited_seconds=round(waited, 1),
        check_again_in_seconds=CHECK_AGAIN_SECONDS if state is JobState.GENERATING else None,
    )


async def wait_for_job(
    client: PixVerseClient,
    video_id: int,
    budget: CallBudget,
    *,
    first_check_seconds: float,
    max_interval: float = 1.5,
    on_progress: WaitProgress | None = None,
) -> VideoResult | None:
    """Poll a job until it ends or the budget's wait runs out; returns the last result seen.

    The first check gets `first_check_seconds`; None means it did not answer in that time. Later
    checks only run within the wait: one that would pass it is dropped, and so is one that fails
    (the job is still what the last answer said), so running out of time answers "generating",
    never a made-up failure. Polls quickly at first, then every `max_interval` seconds.
    Cancelling the caller stops the polling and leaves the job running at PixVerse.
    """
    result: VideoResult | None = None
    with anyio.move_on_after(first_check_seconds):
        result = await client.video_result(video_id)
    if result is None:
        return None
    interval = FIRST_POLL_SECONDS
    while not result.state.ended and budget.wait_left() > 0:
        if on_progress is not None:
            await on_progress(f"{_stage(result)}, {budget.elapsed():.0f} s elapsed")
        await anyio.sleep(min(interval, budget.wait_left()))
        interval = min(interval * POLL_GROWTH, max_interval)
        with anyio.move_on_after(budget.wait_left()):
            try:
                result = await client.video_result(video_id)
            except NotFoundError:
                raise
            except PixVerseError as exc:
                log.info(
                    "status check of %s failed, keeping the last status: %s", video_id, type(exc).__name__
                )
                return result
    return result


def _stage(result: VideoResult) -> str:
    return {2: "queued", 3: "in progress"}.get(result.status or 0, result.state.value)


def video_filename(video_id: int, style: str | None) -> str:
    style_part = safe_filename(style or "restyle", max_len=40) or "restyle"
    return f"pixverse-{video_id}-{style_part}.mp4"


def claim_name(tmp: Path, wanted: Path) -> Path:
    """Give `tmp` the name `wanted`, or `wanted-1`, `-2`, ... : never overwrite an existing file."""
    stem, suffix = wanted.stem, wanted.suffix
    for n in range(1000):
        target = wanted if n == 0 else wanted.with_name(f"{stem}-{n}{suffix}")
        try:
            # A hard link fails if the target exists, so two writers can never clobber each other.
            os.link(tmp, target)
        except FileExistsError:
            continue
        except OSError:
            # No hard links here: reserve the name by creating it exclusively, then move onto it.
            try:
                os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
            os.replace(tmp, target)
            return target
        tmp.unlink()
        return target
    raise FileExistsError(f"too many files named like {wanted.name}")


async def save_video(
    client: PixVerseClient,
    result: VideoResult,
    output_dir: Path,
    *,
    seconds: float,
    max_bytes: int = int(DEFAULT_MAX_DOWNLOAD_MB * 1024 * 1024),
    on_progress: Callable[[int, int], Awaitable[None]] | None = None,
) -> Path:
    """Download a finished video under `output_dir`; written to a temporary name, then renamed.

    Nothing is left behind when the download fails, is too big, too slow, or is cancelled.
    """
    if not result.url:
        raise BadResponseError("PixVerse gave no URL for the finished video yet; call get_status again.")
    await anyio.Path(output_dir).mkdir(parents=True, exist_ok=True)
    wanted = ensure_inside(output_dir / video_filename(result.id, result.style), output_dir)
    tmp = ensure_inside(output_dir / f".{wanted.name}.{uuid.uuid4().hex[:8]}.part", output_dir)
    try:
        await client.download(result.url, tmp, max_bytes=max_bytes, seconds=seconds, on_progress=on_progress)
        return await anyio.to_thread.run_sync(claim_name, tmp, wanted)
    finally:
        tmp.unlink(missing_ok=True)


async def save_beside(video: Path, suffix: str, data: bytes) -> Path:
    """Write `data` next to a saved video (e.g. its preview), through a temporary name, never overwriting."""
    tmp = video.with_name(f".{video.stem}.{uuid.uuid4().hex[:8]}.part")
    try:
        await anyio.Path(tmp).write_bytes(data)
        return await anyio.to_thread.run_sync(claim_name, tmp, video.with_name(video.stem + suffix))
    finally:
        tmp.unlink(missing_ok=True)


async def make_preview(source: Path | str, *, rules: FetchRules, max_bytes: int, seconds: float) -> bytes:
    """The preview strip (JPEG) of the file this server just saved, or of an http(s) URL.

    The worker thread stops itself after `seconds` or `max_bytes` read. If it has not stopped a
    moment later (FFmpeg busy between reads), or this call is cancelled, it is told to stop at its
    next read and left to end on its own.
    """
    from pixverse_mcp.bounded_io import ReadLimits
    from pixverse_mcp.preview import PreviewUnavailable, make_preview_strip

    limits = ReadLimits.start(max_bytes, seconds)
    strip = functools.partial(make_preview_strip, source, limits=limits, rules=rules)
    try:
        with anyio.move_on_after(seconds + PREVIEW_GRACE_SECONDS):
            return await anyio.to_thread.run_sync(strip, abandon_on_cancel=True)
        raise PreviewUnavailable(f"reading the video took over {seconds:g} s")
    finally:
        limits.cancel()
