"""Following a job to its end: bounded waiting with progress, the status answer, download, preview."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from pixverse_mcp.client import PixVerseClient
from pixverse_mcp.errors import BadResponseError
from pixverse_mcp.paths import ensure_inside, safe_filename
from pixverse_mcp.results import VideoStatus
from pixverse_mcp.wire import VideoResult

log = logging.getLogger(__name__)

WaitProgress = Callable[[float, float, str], Awaitable[None]]
"""Called with (seconds elapsed, seconds allowed, message) while a job is being waited for."""

STATUS_NAMES = {1: "succeeded", 5: "generating", 6: "deleted", 7: "moderation_failed", 8: "failed"}
TERMINAL_CODES = frozenset({1, 6, 7, 8})
FIRST_POLL_SECONDS = 0.5
POLL_GROWTH = 1.5
CHECK_AGAIN_SECONDS = 20


def status_name(code: int | None) -> str:
    return STATUS_NAMES.get(code, "unknown") if code is not None else "unknown"


def status_message(code: int | None, video_id: int) -> str:
    """One line that tells the assistant what a status means and what to do next."""
    match code:
        case 1:
            return "The video is ready: share the url (and local_path when it was downloaded)."
        case 5:
            return (
                f"Still generating. Call get_status with video_id {video_id} again (it waits up to about "
                f"{CHECK_AGAIN_SECONDS * 2} s each time); restyles usually take one to a few minutes."
            )
        case 6:
            return "This video was deleted and no longer exists. Restyle the source again to make a new one."
        case 7:
            return (
                "The restyle failed content moderation. Change the prompt, the style or the video and try "
                "again; PixVerse refunds the credits of this job automatically."
            )
        case 8:
            return (
                "PixVerse failed to generate this video (a server-side failure). Starting the same restyle "
                "again is reasonable."
            )
        case _:
            return (
                f"PixVerse reported status {code}, which this server does not know. Check again with "
                "get_status; if it does not change, contact PixVerse support with the video id."
            )


def to_status(result: VideoResult, *, waited: float = 0.0) -> VideoStatus:
    code = result.status
    done = code == 1
    return VideoStatus(
        video_id=str(result.id),
        status=status_name(code),
        status_code=code,
        message=status_message(code, result.id),
        url=(result.url or None) if done else None,
        width=result.output_width if done else None,
        height=result.output_height if done else None,
        size_bytes=result.size if done else None,
        style=result.style,
        seed=result.seed,
        waited_seconds=round(waited, 1),
        check_again_in_seconds=CHECK_AGAIN_SECONDS if code == 5 else None,
    )


async def wait_for_job(
    client: PixVerseClient,
    video_id: int,
    *,
    wait_seconds: float,
    max_interval: float = 1.5,
    on_progress: WaitProgress | None = None,
) -> tuple[VideoResult, float]:
    """Poll a job until it ends or `wait_seconds` pass; returns the last result and the time waited.

    Polls quickly at first, then every `max_interval` seconds, so a finished job is noticed within
    about a second. Cancelling the caller stops the polling and leaves the job running at PixVerse.
    """
    started = anyio.current_time()
    deadline = started + wait_seconds
    interval = FIRST_POLL_SECONDS
    result = await client.video_result(video_id)
    while True:
        elapsed = anyio.current_time() - started
        if result.status in TERMINAL_CODES or anyio.current_time() >= deadline:
            return result, elapsed
        if on_progress is not None:
            await on_progress(elapsed, wait_seconds, f"{status_name(result.status)}, {elapsed:.1f} s elapsed")
        await anyio.sleep(max(0.0, min(interval, deadline - anyio.current_time())))
        interval = min(interval * POLL_GROWTH, max_interval)
        # A poll that would run past the deadline (slow replies, retries) is dropped: the answer
        # is then the last status seen, still "generating", and the job carries on.
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
            result = await client.video_result(video_id)


def video_filename(video_id: int, style: str | None) -> str:
    style_part = safe_filename(style or "restyle", max_len=40) or "restyle"
    return f"pixverse-{video_id}-{style_part}.mp4"


def _claim_name(tmp: Path, wanted: Path) -> Path:
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
    on_progress: Callable[[int, int], Awaitable[None]] | None = None,
) -> Path:
    """Download a finished video under `output_dir`; written to a temporary name, then renamed."""
    if not result.url:
        raise BadResponseError("PixVerse gave no URL for the finished video yet; call get_status again.")
    await anyio.Path(output_dir).mkdir(parents=True, exist_ok=True)
    wanted = ensure_inside(output_dir / video_filename(result.id, result.style), output_dir)
    tmp = ensure_inside(output_dir / f".{wanted.name}.{uuid.uuid4().hex[:8]}.part", output_dir)
    try:
        await client.download(result.url, tmp, on_progress=on_progress)
        return await anyio.to_thread.run_sync(_claim_name, tmp, wanted)
    finally:
        if tmp.exists():
            tmp.unlink()


async def save_beside(video: Path, suffix: str, data: bytes) -> Path:
    """Write `data` next to a saved video (e.g. its preview), through a temporary name, never overwriting."""
    tmp = video.with_name(f".{video.stem}.{uuid.uuid4().hex[:8]}.part")
    try:
        await anyio.Path(tmp).write_bytes(data)
        return await anyio.to_thread.run_sync(_claim_name, tmp, video.with_name(video.stem + suffix))
    finally:
        if tmp.exists():
            tmp.unlink()


async def make_preview(source: Path | str) -> bytes:
    """The preview strip (JPEG) of a local file or a URL, made in a worker thread.

    A cancelled caller does not wait for the thread: it is left to finish on its own.
    """
    from pixverse_mcp.preview import make_preview_strip

    return await anyio.to_thread.run_sync(make_preview_strip, source, abandon_on_cancel=True)
