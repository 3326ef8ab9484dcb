"""Fitting: a copy of any clip that PixVerse's restyle accepts, made with PyAV.

Restyle takes an mp4 or mov of at most 16 s, 1920 pixels on the longer side and 50 MB. The clips
people have are longer, 4K, HEVC in mov, turned by a rotation flag, or WebM and MKV screen
recordings. ``plan_fit`` says what fitting would do; ``fit_video`` does it: cut the part (frame
accurate), scale, turn the picture upright, encode H.264 + AAC in mp4 at a bitrate that keeps the
copy well under 50 MB. A clip that already fits is left untouched. Copies go to a cache folder,
so the same clip with the same settings is not transcoded twice.

    probe_clip(path or open file) -> ClipInfo
    plan_fit(info, start_seconds, end_seconds) -> FitPlan       (plan.text: one line for messages)
    fit_video(source, plan, folder, progress=..., cancel=...) -> FitResult

Everything here blocks: call it from a worker thread. ``fit_video`` reports the fraction of the
part done and stops (removing its partial file) when its event is set.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from pixverse_mcp import fitcache
from pixverse_mcp.errors import InputError
from pixverse_mcp.fitcache import DEFAULT_MAX_AGE_SECONDS, DEFAULT_MAX_BYTES, default_cache_dir
from pixverse_mcp.fitplan import FIT_MAX_SECONDS, ClipSummary, FitPlan, megabytes, plan_fit
from pixverse_mcp.fitprobe import (
    MAX_FIT_INPUT_BYTES,
    MAX_FIT_INPUT_SECONDS,
    MAX_FIT_INPUT_SIDE,
    ClipInfo,
    Source,
    probe_clip,
    source_label,
    source_size,
)
from pixverse_mcp.rules import MAX_RESTYLE_BYTES, MAX_RESTYLE_SECONDS, MAX_RESTYLE_SIDE
from pixverse_mcp.transcode import FitCancelledError, FitFailedError, transcode

__all__ = [
    "DEFAULT_MAX_AGE_SECONDS",
    "DEFAULT_MAX_BYTES",
    "FIT_MAX_SECONDS",
    "MAX_FIT_INPUT_BYTES",
    "MAX_FIT_INPUT_SECONDS",
    "MAX_FIT_INPUT_SIDE",
    "ClipInfo",
    "ClipSummary",
    "FitCancelledError",
    "FitFailedError",
    "FitPlan",
    "FitResult",
    "default_cache_dir",
    "default_threads",
    "fit_video",
    "plan_fit",
    "probe_clip",
]


class FitResult(BaseModel):
    """What fitting did: before -> after, and where the copy is."""

    model_config = ConfigDict(frozen=True)

    path: Path | None
    """The copy to upload; for an untouched clip its own path (None for an open file without a name)."""
    untouched: bool
    """The clip already fitted: nothing was written."""
    cached: bool
    """The copy was made by an earlier call with the same clip and settings."""
    before: ClipSummary
    after: ClipSummary
    changes: tuple[str, ...]
    """One line per change, before -> after (empty when untouched)."""

    @property
    def text(self) -> str:
        if self.untouched:
            return f"the clip already fits ({self.before.describe()}); it is used as it is."
        where = f" The copy is {str(self.path)!r}" + (" (made earlier)." if self.cached else ".")
        return f"fitted: {self.before.describe()} -> {self.after.describe()}.{where}"


def default_threads() -> int:
    """Threads for the decoder, the scaler and x264: the cores, at most 4.

    More would cost memory (x264 and the decoder hold frames per thread) for little speed.
    """
    return max(1, min(4, os.cpu_count() or 1))


def _verify(path: Path, plan: FitPlan) -> ClipSummary:
    """Probe the copy again and check it against the rules it was made for."""
    try:
        info = probe_clip(path)
    except InputError as exc:
        raise FitFailedError(f"the fitted copy cannot be read back ({exc.message})") from exc
    problems = []
    if info.container != "mp4" or info.video_codec != "h264":
        problems.append(f"it is {info.video_codec} in {info.container}")
    if info.duration_seconds >= MAX_RESTYLE_SECONDS:
        problems.append(f"it is {info.duration_seconds:.2f} s long")
    if max(info.width, info.height) > MAX_RESTYLE_SIDE or info.rotation:
        problems.append(f"it is {info.width}x{info.height} turned {info.rotation}°")
    if info.size_bytes > MAX_RESTYLE_BYTES:
        problems.append(f"it is {megabytes(info.size_bytes)}")
    if problems:
        raise FitFailedError(
            f"the fitted copy does not meet the restyle rules ({'; '.join(problems)}); choose a shorter part."
        )
    return ClipSummary.of(info)


def fit_video(
    source: Source,
    plan: FitPlan,
    dest_dir: Path | None = None,
    *,
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
    threads: int | None = None,
    max_cache_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
    max_cache_bytes: int = DEFAULT_MAX_BYTES,
) -> FitResult:
    """Make (or find) the copy of ``source`` that ``plan`` describes.

    Args:
        source: The clip ``plan`` was made from: a path or an open binary file.
        plan: From ``plan_fit``.
        dest_dir: The cache folder for copies (made if missing); default ``default_cache_dir()``.
        progress: Called with the fraction of the part done (0 to 1), from this thread.
        cancel: Set it (from any thread) to stop; checked at every packet.
        threads: For the decoder, the scaler and x264; default ``default_threads()``.
        max_cache_age_seconds: Copies unused for longer are removed after this fit.
        max_cache_bytes: Then the oldest copies are removed until the folder holds at most this.

    Returns:
        Before -> after and the copy's path; for a clip that fits, the clip itself, untouched.

    Raises:
        InputError: (argument "path") the file changed since it was probed, or it is damaged in
            the part (or cut short).
        FitCancelledError: ``cancel`` was set; the partial copy is removed.
        FitFailedError: the copy could not be written, or came out breaking a rule.
    """
    report = progress or (lambda fraction: None)
    before = ClipSummary.of(plan.source)
    if plan.fits:
        report(1.0)
        path = Path(source) if isinstance(source, (str, Path)) else plan.source.path
        return FitResult(path=path, untouched=True, cached=False, before=before, after=before, changes=())
    if source_size(source) != plan.source.size_bytes:
        raise InputError(
            f"the file {source_label(source)} changed since it was checked; check it again.", argument="path"
        )
    folder = fitcache.prepare(dest_dir if dest_dir is not None else default_cache_dir())
    key = fitcache.cache_key(source, plan.settings())
    changes = tuple(plan.changes())
    if key is not None and (found := fitcache.find_copy(folder, key)) is not None:
        try:
            after = _verify(found, plan)
        except FitFailedError:
            found.unlink(missing_ok=True)  # a damaged copy is made again below
        else:
            report(1.0)
            return FitResult(
                path=found, untouched=False, cached=True, before=before, after=after, changes=changes
            )
    name = key or uuid.uuid4().hex
    final = fitcache.copy_path(folder, name)
    partial = fitcache.partial_path(folder, name)
    try:
        transcode(
            source,
            plan,
            partial,
            threads=threads or default_threads(),
            progress=report,
            cancel=cancel or threading.Event(),
        )
        after = _verify(partial, plan)
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    fitcache.clean_cache(folder, max_age_seconds=max_cache_age_seconds, max_bytes=max_cache_bytes, keep=final)
    return FitResult(path=final, untouched=False, cached=False, before=before, after=after, changes=changes)
