"""Long clips by segments: where to cut a clip longer than 16 s into parts that restyle takes.

Each part is restyled on its own, so each seam between two parts may show: the style can drift a
little from one part to the next (colours, textures, how edges are drawn), and the motion of
generated detail starts afresh. A seam hides best where the picture changes anyway, so the cuts
go, in this order of preference:

1. at a scene change near the ideal cut (the largest jump between two consecutive frames within
   2 s of it, if it is a real jump);
2. at a keyframe near it (encoders put keyframes at scene changes and every few seconds);
3. at the ideal cut itself (the clip divided into equal parts), frame accurate.

Every part is at most ``FIT_MAX_SECONDS`` (15.9 s) and at least ``MIN_PART_SECONDS``. Only the
windows around the ideal cuts are decoded, never the whole clip. Blocking: run it in a thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from pixverse_mcp.errors import InputError
from pixverse_mcp.fitplan import FIT_MAX_SECONDS
from pixverse_mcp.fitprobe import ClipInfo, Source, open_input, video_stream

MIN_PART_SECONDS = 1.0
WINDOW_SECONDS = 2.0
"""How far from the ideal cut a scene change or keyframe may move it."""
SCENE_THRESHOLD = 0.12
"""A jump between two frames counts as a scene change above this mean luma difference (0 to 1)."""
_THUMB = (32, 18)

CutKind = Literal["start", "scene change", "keyframe", "time"]


@dataclass(frozen=True)
class Segment:
    """One part of a long clip: seconds from the clip's start, and how its start was chosen."""

    start: float
    end: float
    cut: CutKind

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class CutHints:
    """What the windows around the ideal cuts hold: keyframe times and scene changes (seconds)."""

    keyframes: tuple[float, ...] = ()
    scenes: tuple[float, ...] = ()


def part_count(duration: float, max_part: float = FIT_MAX_SECONDS) -> int:
    """How many parts a clip of ``duration`` seconds needs."""
    return max(1, math.ceil(duration / max_part - 1e-9))


def ideal_cuts(duration: float, max_part: float = FIT_MAX_SECONDS) -> list[float]:
    """The cuts that divide the clip into equal parts."""
    count = part_count(duration, max_part)
    return [duration * i / count for i in range(1, count)]


def plan_cuts(duration: float, hints: CutHints, max_part: float = FIT_MAX_SECONDS) -> list[Segment]:
    """Consecutive parts covering [0, duration), each at most ``max_part`` long (pure).

    Each cut may move from its ideal place to a scene change, else a keyframe, within
    ``WINDOW_SECONDS``, as long as every part stays between ``MIN_PART_SECONDS`` and ``max_part``
    and the rest of the clip still fits in the parts left.
    """
    count = part_count(duration, max_part)
    segments: list[Segment] = []
    previous, kind = 0.0, "start"
    for index, ideal in enumerate(ideal_cuts(duration, max_part), start=1):
        low = max(previous + MIN_PART_SECONDS, duration - (count - index) * max_part)
        high = min(previous + max_part, duration - MIN_PART_SECONDS)
        cut, how = _choose(ideal, low, high, hints)
        segments.append(Segment(previous, cut, kind))  # type: ignore[arg-type]
        previous, kind = cut, how
    segments.append(Segment(previous, duration, kind))  # type: ignore[arg-type]
    return segments


def _choose(ideal: float, low: float, high: float, hints: CutHints) -> tuple[float, CutKind]:
    for kind, times in (("scene change", hints.scenes), ("keyframe", hints.keyframes)):
        near = [t for t in times if low <= t <= high and abs(t - ideal) <= WINDOW_SECONDS]
        if near:
            return min(near, key=lambda t: abs(t - ideal)), kind  # type: ignore[return-value]
    return min(max(ideal, low), high), "time"


def plan_segments(source: Source, info: ClipInfo, max_part: float = FIT_MAX_SECONDS) -> list[Segment]:
    """The parts of a probed clip, cut at scene changes or keyframes where it can be (see the module)."""
    duration = info.duration_seconds
    ideals = ideal_cuts(duration, max_part)
    hints = find_cut_hints(source, info, ideals) if ideals else CutHints()
    return plan_cuts(duration, hints, max_part)


def find_cut_hints(source: Source, info: ClipInfo, ideals: list[float]) -> CutHints:
    """Decode the frames within ``WINDOW_SECONDS`` of each ideal cut: their keyframes and the
    biggest jump between two frames, when it is big enough to be a scene change.

    A clip that cannot be read there gives no hints (the cuts then fall at the ideal times).
    """
    import av

    keyframes: list[float] = []
    scenes: list[float] = []
    try:
        with open_input(source) as container:
            stream = video_stream(container)
            if stream is None or stream.time_base is None:
                return CutHints()
            stream.thread_type = "AUTO"
            for ideal in ideals:
                found = _scan_window(container, stream, info.start_time, ideal)
                keyframes.extend(found.keyframes)
                scenes.extend(found.scenes)
    except (av.error.FFmpegError, ValueError, OSError, InputError):
        pass  # what was found before the damage still helps
    return CutHints(tuple(sorted(set(keyframes))), tuple(sorted(set(scenes))))


def _scan_window(container: Any, stream: Any, origin: float, ideal: float) -> CutHints:
    begin, end = max(0.0, ideal - WINDOW_SECONDS), ideal + WINDOW_SECONDS
    container.seek(int((origin + begin) / stream.time_base), stream=stream, backward=True)
    keyframes: list[float] = []
    best, best_at = 0.0, None
    previous: bytes | None = None
    for frame in container.decode(stream):
        if frame.time is None:
            continue
        at = float(frame.time) - origin
        if at > end:
            break
        thumb = _thumbnail(frame)
        if at >= begin:
            if frame.key_frame:
                keyframes.append(at)
            if previous is not None:
                jump = sum(abs(a - b) for a, b in zip(thumb, previous, strict=True)) / (len(thumb) * 255)
                if jump > best:
                    best, best_at = jump, at
        previous = thumb
    scenes = (best_at,) if best_at is not None and best >= SCENE_THRESHOLD else ()
    return CutHints(tuple(keyframes), scenes)


def _thumbnail(frame: Any) -> bytes:
    """A tiny grey copy of the picture, for comparing two frames cheaply."""
    width, height = _THUMB
    small = frame.reformat(width=width, height=height, format="gray")
    plane = small.planes[0]
    data = bytes(plane)
    return b"".join(data[row * plane.line_size : row * plane.line_size + width] for row in range(height))
