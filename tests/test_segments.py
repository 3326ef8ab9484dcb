"""Long clips by segments: where the cuts go, and joining restyled parts into one video."""

from __future__ import annotations

import itertools
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest

from pixverse_mcp.fit import probe_clip
from pixverse_mcp.joining import JoinError, JoinPart, join_parts
from pixverse_mcp.samples import make_clip
from pixverse_mcp.segments import CutHints, part_count, plan_cuts, plan_segments


def _spans(segments: list[object]) -> list[tuple[float, float, str]]:
    return [(round(s.start, 3), round(s.end, 3), s.cut) for s in segments]  # type: ignore[attr-defined]


def test_without_hints_a_clip_is_cut_into_equal_parts() -> None:
    assert part_count(15.9) == 1 and part_count(15.91) == 2 and part_count(40.0) == 3
    assert _spans(plan_cuts(40.0, CutHints())) == [
        (0.0, 13.333, "start"),
        (13.333, 26.667, "time"),
        (26.667, 40.0, "time"),
    ]
    assert _spans(plan_cuts(12.0, CutHints())) == [(0.0, 12.0, "start")]


def test_a_scene_change_beats_a_keyframe_and_a_keyframe_beats_the_ideal_time() -> None:
    hints = CutHints(keyframes=(12.0, 14.0, 26.0), scenes=(14.5,))
    assert _spans(plan_cuts(40.0, hints)) == [
        (0.0, 14.5, "start"),
        (14.5, 26.0, "scene change"),  # each part says how its start was chosen
        (26.0, 40.0, "keyframe"),
    ]


def test_no_part_passes_the_limit_whatever_the_hints() -> None:
    # A scene change near the ideal cut (15.5 s) that would leave the last part over 15.9 s is not taken.
    hints = CutHints(keyframes=(15.8,), scenes=(14.0,))
    assert _spans(plan_cuts(31.0, hints)) == [(0.0, 15.8, "start"), (15.8, 31.0, "keyframe")]
    for duration in (16.5, 31.8, 31.81, 47.7, 119.0):
        parts = plan_cuts(duration, CutHints(keyframes=tuple(float(t) for t in range(0, 120, 7))))
        assert len(parts) == part_count(duration)
        assert all(1.0 <= p.end - p.start <= 15.9 + 1e-9 for p in parts)
        assert all(a.end == b.start for a, b in itertools.pairwise(parts))


def _scene_clip(path: Path, *, seconds: float, change_at: float, fps: int = 4) -> Path:
    """A dark picture that turns bright at `change_at`: one scene change, keyframes only at the start."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": "1000", "sc_threshold": "0"}
        for index in range(int(seconds * fps)):
            frame = av.VideoFrame(64, 48, "yuv420p")
            level = 200 if index / fps >= change_at else 40
            frame.planes[0].update(bytes([level]) * frame.planes[0].buffer_size)
            for chroma in frame.planes[1:]:
                chroma.update(bytes([128]) * chroma.buffer_size)
            frame.pts, frame.time_base = index, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_a_real_scene_change_near_the_ideal_cut_is_found(tmp_path: Path) -> None:
    clip = _scene_clip(tmp_path / "scene.mp4", seconds=20.0, change_at=9.25)
    segments = plan_segments(clip, probe_clip(clip))
    assert _spans(segments) == [(0.0, 9.25, "start"), (9.25, 20.0, "scene change")]


def _part(path: Path, seconds: float, width: int, height: int, fps: int = 8) -> Path:
    return make_clip(path, seconds=seconds, width=width, height=height, fps=fps)


def test_parts_are_joined_on_one_timeline_with_the_sound(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "source.mp4", seconds=4.0, width=64, height=48, fps=8, audio=True)
    # The second part came back smaller and shorter than its span: it is scaled, and its last
    # frame holds until the end.
    parts = [
        JoinPart(_part(tmp_path / "a.mp4", 2.5, 64, 48), 0.0, 2.0),
        JoinPart(_part(tmp_path / "b.mp4", 1.5, 32, 24, fps=5), 2.0, 4.0),
    ]
    dest = tmp_path / "joined.mp4"
    joined = join_parts(parts, dest, sound=source, cancel=threading.Event(), deadline=time.monotonic() + 30)
    assert (joined.width, joined.height, joined.sound) == (64, 48, True)
    with av.open(str(dest)) as container:
        assert abs(container.duration / 1_000_000 - 4.0) <= 0.1
        assert container.streams.audio and container.streams.video[0].codec_context.width == 64
        times = [float(frame.time) for frame in container.decode(video=0)]
    assert times == sorted(times) and times[0] == 0.0
    assert len([t for t in times if t < 2.0]) == 16  # the first part cut at its span's end
    assert min(t for t in times if t >= 2.0) == pytest.approx(2.0)


def test_a_part_that_is_not_an_mp4_is_refused(tmp_path: Path) -> None:
    webm = make_clip(tmp_path / "part.mp4", seconds=1.0, width=32, height=24, container="webm")
    with pytest.raises(JoinError, match="not a readable mp4"):
        join_parts(
            [JoinPart(webm, 0.0, 1.0)],
            tmp_path / "out.mp4",
            sound=None,
            cancel=threading.Event(),
            deadline=time.monotonic() + 30,
        )


def test_a_join_stops_when_cancelled(tmp_path: Path) -> None:
    part = _part(tmp_path / "a.mp4", 1.0, 32, 24)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(JoinError, match="cancelled"):
        join_parts(
            [JoinPart(part, 0.0, 1.0)],
            tmp_path / "out.mp4",
            sound=None,
            cancel=cancel,
            deadline=time.monotonic() + 30,
        )
