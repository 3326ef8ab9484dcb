"""Uploading a local clip: opened once, checked, fitted when asked, then streamed to PixVerse.

Without `fit` and without a part (`start_seconds`/`end_seconds`), a clip is uploaded untouched if
restyle takes it, and refused otherwise with what `fit=true` would make of it. With `fit`, or with
a part to cut, a copy that restyle takes is made (`fit.py`) in the cache folder and uploaded instead;
a clip that already fits is uploaded untouched. Making the copy runs in a worker thread that stops
when the call is cancelled (its partial file removed); progress is one scale, percent of the call:
the copy first, then the upload.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread

from pixverse_mcp import rules
from pixverse_mcp.bookkeeping import fingerprint, remember_upload
from pixverse_mcp.errors import InputError
from pixverse_mcp.fit import FitResult, fit_video, plan_fit, probe_clip
from pixverse_mcp.fitcache import default_cache_dir
from pixverse_mcp.fitplan import FitPlan
from pixverse_mcp.localfile import LocalFile
from pixverse_mcp.paths import open_local_file
from pixverse_mcp.results import UploadResult
from pixverse_mcp.runtime import Runtime, UploadedSource

log = logging.getLogger(__name__)

Progress = Callable[[float, str], Coroutine[Any, Any, None]]
"""Called with (percent of the call done, message)."""

FIT_SHARE = 70.0
"""Percent of the progress scale that making a copy takes; the upload takes the rest."""
STOP_SECONDS = 10.0
"""How long a cancelled call waits for the encoder to stop and remove its partial file."""


def fit_hint(file: LocalFile) -> str:
    """What `fit=true` would upload instead of this clip (for a refusal). Blocking: run it in a thread."""
    try:
        plan = plan_fit(probe_clip(file.reader()))
    except InputError as exc:
        return f"(fit=true cannot help: {exc.message})"
    return f"Easiest: call upload_video again with fit=true to upload {plan.text}."


async def upload_local(
    runtime: Runtime,
    raw_path: str,
    roots: Sequence[Path],
    *,
    fit: bool = False,
    start_seconds: float | None = None,
    end_seconds: float | None = None,
    progress: Progress,
) -> UploadResult:
    """Upload the file at `raw_path` (inside `roots`), fitting or cutting it first when asked.

    Raises:
        InputError: the path, the file or the part is refused; nothing was uploaded.
    """
    client = runtime.api
    if not fit and start_seconds is None and end_seconds is None:
        checked = await anyio.to_thread.run_sync(
            lambda: rules.check_local_video(raw_path, roots, fix_hint=fit_hint)
        )
        with checked:
            client.require_key()
            probe = checked.probe
            sent = Sent(probe.path.name, probe.duration_seconds, probe.width, probe.height, None)
            return await _send(runtime, checked.file, checked.probe.mime_type, sent, progress, 0.0)
    file = await anyio.to_thread.run_sync(open_local_file, raw_path, roots)
    with file:
        plan = await anyio.to_thread.run_sync(
            lambda: plan_fit(probe_clip(file.reader()), start_seconds, end_seconds)
        )
        if not fit:
            _refuse_unless_only_cut(plan)
        client.require_key()
        width, height = plan.source.display_size
        if plan.fits:
            sent = Sent(file.path.name, plan.source.duration_seconds, width, height, None)
            return await _send(runtime, file, _mime(plan), sent, progress, 0.0)
        result = await _make_copy(runtime, file, plan, progress)
    assert result.path is not None
    copy = await anyio.to_thread.run_sync(open_local_file, str(result.path), (result.path.parent,))
    after = result.after
    sent = Sent(file.path.name, after.duration_seconds, after.width, after.height, result)
    with copy:
        return await _send(runtime, copy, "video/mp4", sent, progress, FIT_SHARE)


def _refuse_unless_only_cut(plan: FitPlan) -> None:
    """Without fit, a part may be cut from a clip as long as nothing else about the picture must change
    (cutting re-encodes to H.264 mp4 in any case, for frame-accurate cuts)."""
    info = plan.source
    others = []
    if (plan.width, plan.height) != info.display_size:
        others.append(f"scaling it from {info.width}x{info.height} to {plan.width}x{plan.height}")
    if plan.rotation:
        others.append(f"turning it {plan.rotation}° upright")
    if info.container not in rules.RESTYLE_CONTAINERS:
        others.append(f"converting it from {info.container} to mp4")
    if others:
        raise InputError(
            f"cutting that part is not enough: the copy also needs {' and '.join(others)}. Call "
            f"upload_video again with fit=true to upload {plan.text}.",
            argument="path",
        )


def _mime(plan: FitPlan) -> str:
    return "video/quicktime" if plan.source.container == "mov" else "video/mp4"


async def _make_copy(runtime: Runtime, file: LocalFile, plan: FitPlan, progress: Progress) -> FitResult:
    """Make the fitted copy in a worker thread, reporting percent; a cancelled call stops it."""
    cancel = threading.Event()
    finished = threading.Event()
    last = [-1]

    def report(fraction: float) -> None:
        percent = int(fraction * 100)
        if percent >= last[0] + 5 or fraction >= 1.0:  # a notification every 5 %, not every frame
            last[0] = percent
            anyio.from_thread.run(progress, fraction * FIT_SHARE, f"fitting the clip: {percent}% of the part")

    def work() -> FitResult:
        try:
            return fit_video(file.reader(), plan, _cache_dir(runtime), progress=report, cancel=cancel)
        finally:
            finished.set()

    await progress(0.0, f"fitting the clip: {plan.text}")
    try:
        return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        cancel.set()
        with anyio.CancelScope(shield=True):
            # The encoder stops at its next packet and removes its partial file; wait for that.
            await anyio.to_thread.run_sync(finished.wait, STOP_SECONDS)
        raise


def _cache_dir(runtime: Runtime) -> Path:
    return runtime.settings.fit_cache_dir or default_cache_dir()


@dataclass(frozen=True)
class Sent:
    """What is uploaded: the clip's own name, the length and size of what is sent, and the fit, if any."""

    name: str
    seconds: float
    width: int
    height: int
    fitted: FitResult | None


async def _send(
    runtime: Runtime, file: LocalFile, content_type: str, sent: Sent, progress: Progress, offset: float
) -> UploadResult:
    """Stream one open file to PixVerse and describe what was uploaded."""
    share = 100.0 - offset

    async def moved(done: int, total: int) -> None:
        await progress(
            offset + share * done / max(total, 1), f"uploaded {done / 1e6:.1f} of {total / 1e6:.1f} MB"
        )

    fitted = sent.fitted
    upload_name = f"{Path(sent.name).stem}-fitted.mp4" if fitted is not None else sent.name
    uploaded = await runtime.api.upload_file(
        file, file_name=upload_name, content_type=content_type, on_progress=moved
    )
    file_print = await anyio.to_thread.run_sync(fingerprint, file)
    remember_upload(runtime, uploaded.media_id, UploadedSource("file", sent.name, file_print, sent.seconds))
    message = _message(uploaded.media_type, uploaded.media_id)
    extra: dict[str, Any] = {}
    if fitted is not None:
        extra = {"fitted": True, "changes": list(fitted.changes), "copy_path": str(fitted.path)}
        message = f"Fitted ({'; '.join(fitted.changes)}), then uploaded. {message}"
    return UploadResult(
        media_id=str(uploaded.media_id),
        media_type=uploaded.media_type,
        url=uploaded.url,
        source="file",
        file_name=sent.name,
        duration_seconds=round(sent.seconds, 2),
        width=sent.width,
        height=sent.height,
        size_bytes=file.size,
        message=message,
        **extra,
    )


def _message(media_type: str, media_id: int) -> str:
    if media_type != "video":
        return f"PixVerse stored this as {media_type}, not video: restyle needs a video file."
    return f"Uploaded. Call restyle_video with video_media_id {media_id!s} and a style."
