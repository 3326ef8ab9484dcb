"""Fitting clips PixVerse's restyle refuses, on real files made with samples.make_clip.

Every fitted copy is probed again (length, size, codec, container, orientation) and, where the
point is the picture or the sound, decoded: the counter pattern tells which source frame a copy's
frame is, the marker pattern where a rotation put the top-left corner, the beeping tone whether
the sound was cut at the same instant as the picture.
"""

from __future__ import annotations

import os
import threading
from array import array
from pathlib import Path
from typing import Any

import av
import pytest

from pixverse_mcp import fit as fit_module
from pixverse_mcp.errors import InputError
from pixverse_mcp.fit import (
    FitCancelledError,
    FitPlan,
    FitResult,
    fit_video,
    plan_fit,
    probe_clip,
)
from pixverse_mcp.fitcache import clean_cache
from pixverse_mcp.fitplan import clock
from pixverse_mcp.rules import MAX_RESTYLE_BYTES
from pixverse_mcp.samples import make_clip, read_counter


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def fit(path: Path, cache: Path, **part: float) -> tuple[FitPlan, FitResult, list[float]]:
    """Probe, plan and fit a clip; returns the plan, the result and the progress reported."""
    plan = plan_fit(probe_clip(path), **part)
    fractions: list[float] = []
    result = fit_video(path, plan, cache, progress=fractions.append)
    return plan, result, fractions


def check_copy(result: FitResult, plan: FitPlan) -> fit_module.ClipInfo:
    """Probe the copy again: an upright H.264 mp4 of the part's length and size, under every rule."""
    assert result.path is not None and result.path.is_file() and not result.untouched
    copy = probe_clip(result.path)
    assert (copy.container, copy.video_codec, copy.pix_fmt) == ("mp4", "h264", "yuv420p")
    assert (copy.width, copy.height) == (plan.width, plan.height)
    assert max(copy.width, copy.height) <= 1920 and copy.width % 2 == 0 and copy.height % 2 == 0
    assert copy.rotation == 0 and copy.display_matrix is None
    assert copy.duration_seconds < 16.0
    assert abs(copy.duration_seconds - plan.length_seconds) < 0.08
    assert copy.size_bytes <= MAX_RESTYLE_BYTES and copy.size_bytes <= plan.estimated_bytes
    assert result.after.size_bytes == copy.size_bytes == result.path.stat().st_size
    boxes = top_level_boxes(result.path)
    assert boxes.index("moov") < boxes.index("mdat")  # faststart: a player can start before the end
    return copy


def top_level_boxes(path: Path) -> list[str]:
    """The types of an mp4 file's top-level boxes, in file order."""
    types = []
    with path.open("rb") as file:
        while header := file.read(8):
            size, kind = int.from_bytes(header[:4], "big"), header[4:].decode("latin-1")
            if size == 1:
                size = int.from_bytes(file.read(8), "big") - 8
            types.append(kind)
            file.seek(size - 8, os.SEEK_CUR)
    return types


def pictures(path: Path) -> list[tuple[float, Any]]:
    with av.open(str(path)) as container:
        return [(float(f.pts * f.time_base), f) for f in container.decode(video=0)]


def loudness(path: Path, begin: float, end: float) -> float:
    """The loudest sample of the copy's sound between two instants, counting samples as played."""
    peak = 0.0
    played = 0
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.audio[0]):
            samples = array("f", bytes(frame.planes[0]))[: frame.samples]
            for index, value in enumerate(samples):
                if begin <= (played + index) / frame.sample_rate < end:
                    peak = max(peak, abs(value))
            played += frame.samples
    return peak


def sound_length(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return float(stream.duration * stream.time_base)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 s, each frame showing its index (5 fps, a keyframe every 2 s), with a beeping tone."""
    folder = tmp_path_factory.mktemp("long")
    return make_clip(
        folder / "long.mp4",
        seconds=40,
        width=160,
        height=120,
        fps=5,
        pattern="counter",
        audio=True,
        beeping=True,
    )


def test_a_long_clip_is_cut_to_the_first_15_9_seconds(long_clip: Path, cache: Path) -> None:
    plan, result, fractions = fit(long_clip, cache)
    assert not plan.fits and (plan.start_seconds, plan.end_seconds) == (0.0, 15.9)
    assert plan.text.startswith("0:00-0:15.9 at 160x120 as H.264 mp4, at most ")
    assert "length: 40.0 s -> 15.9 s (the part 0:00-0:15.9)" in result.changes
    copy = check_copy(result, plan)
    assert copy.has_audio and copy.audio_codec == "aac"
    assert abs(sound_length(result.path) - 15.9) < 0.05  # type: ignore[arg-type]
    frames = pictures(result.path)  # type: ignore[arg-type]
    assert [read_counter(f) for _, f in frames] == list(range(80))  # 0 s .. 15.8 s, every frame once
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 10


def test_a_chosen_part_starts_on_the_frame_shown_at_its_start(long_clip: Path, cache: Path) -> None:
    # 13.1 s lies between the keyframes at 12 and 14 s, and between frames 65 (13.0 s) and 66.
    plan, result, _ = fit(long_clip, cache, start_seconds=13.1, end_seconds=17.1)
    assert (plan.start_seconds, plan.end_seconds) == (13.1, 17.1)
    assert plan.text.startswith("0:13.1-0:17.1 at 160x120")
    check_copy(result, plan)
    frames = pictures(result.path)  # type: ignore[arg-type]
    assert [read_counter(f) for _, f in frames] == list(range(65, 86))
    assert [round(t, 3) for t, _ in frames[:3]] == [0.0, 0.1, 0.3]
    # The sound is cut at the same instant: 13.1-14 s of the source is silent, 14-15 s beeps.
    path: Path = result.path  # type: ignore[assignment]
    assert loudness(path, 0.1, 0.8) < 0.01
    assert loudness(path, 1.0, 1.8) > 0.05
    assert loudness(path, 1.95, 2.8) < 0.01
    assert abs(sound_length(path) - 4.0) < 0.05


def test_a_part_longer_than_15_9_seconds_is_shortened_from_its_start(long_clip: Path) -> None:
    plan = plan_fit(probe_clip(long_clip), start_seconds=20, end_seconds=39)
    assert (plan.start_seconds, plan.end_seconds) == (20.0, 35.9)
    plan = plan_fit(probe_clip(long_clip), start_seconds=30, end_seconds=400)
    assert (plan.start_seconds, plan.end_seconds) == (30.0, 40.0)  # clamped to the clip


def test_a_4k_clip_is_scaled_to_1920x1080(tmp_path: Path, cache: Path) -> None:
    clip = make_clip(tmp_path / "4k.mp4", seconds=3, width=3840, height=2160, fps=1)
    plan, result, _ = fit(clip, cache)
    assert (plan.width, plan.height) == (1920, 1080)
    assert "resolution: 3840x2160 -> 1920x1080" in result.changes
    check_copy(result, plan)


def test_a_tall_odd_sized_clip_keeps_its_aspect_with_even_sides(tmp_path: Path, cache: Path) -> None:
    clip = make_clip(tmp_path / "tall.mkv", seconds=0.5, width=1081, height=2401, fps=2, container="matroska")
    plan, result, _ = fit(clip, cache)
    assert plan.height == 1920 and plan.width == 864  # 1081 * 1920 / 2401 = 864.4
    check_copy(result, plan)


def test_an_hevc_mov_that_needs_cutting_becomes_h264_mp4(tmp_path: Path, cache: Path) -> None:
    clip = make_clip(
        tmp_path / "phone.mov", seconds=17, width=64, height=48, fps=2, video_codec="libx265", audio=True
    )
    info = probe_clip(clip)
    assert (info.container, info.video_codec) == ("mov", "hevc")
    plan, result, _ = fit(clip, cache)
    assert "codec/container: HEVC + AAC in mov -> H.264 + AAC in mp4" in result.changes
    assert result.before.video_codec == "hevc" and result.after.video_codec == "h264"
    assert check_copy(result, plan).has_audio


def test_a_clip_that_already_fits_is_left_untouched(tmp_path: Path, cache: Path) -> None:
    for clip in (
        make_clip(tmp_path / "ok.mp4", seconds=2, audio=True),
        make_clip(tmp_path / "ok.mov", seconds=1, width=64, height=48, video_codec="libx265"),
    ):
        plan, result, fractions = fit(clip, cache)
        assert plan.fits and plan.reasons == () and "already fits" in plan.text
        assert result.untouched and result.path == clip and result.changes == ()
        assert fractions == [1.0]
    assert not cache.exists()  # nothing written
    # The same clip with a part chosen inside it is cut (a cut is a re-encode).
    plan, result, _ = fit(tmp_path / "ok.mp4", cache, start_seconds=0.5)
    assert not plan.fits and plan.reasons == ("a part of the clip was chosen",)
    check_copy(result, plan)


def test_webm_and_an_open_file_become_h264_aac_mp4(tmp_path: Path, cache: Path) -> None:
    clip = make_clip(tmp_path / "screen.webm", seconds=2, audio=True)
    with clip.open("rb") as file:
        info = probe_clip(file)
        assert (info.container, info.video_codec, info.audio_codec) == ("webm", "vp8", "opus")
        plan = plan_fit(info)
        result = fit_video(file, plan, cache)
    assert "codec/container: VP8 + Opus in webm -> H.264 + AAC in mp4" in result.changes
    assert check_copy(result, plan).audio_codec == "aac"


def test_variable_frame_rate_mkv_keeps_its_timing(tmp_path: Path, cache: Path) -> None:
    times = [0.0, 0.033, 0.1, 0.5, 0.533, 1.0, 1.04, 1.9, 2.5]
    clip = make_clip(
        tmp_path / "vfr.mkv", seconds=3, width=96, height=64, pattern="counter", frame_times=times, audio=True
    )
    plan, result, _ = fit(clip, cache)
    check_copy(result, plan)
    frames = pictures(result.path)  # type: ignore[arg-type]
    assert [read_counter(f) for _, f in frames] == list(range(len(times)))
    assert [round(t, 3) for t, _ in frames] == times


@pytest.mark.parametrize(("turn", "corner"), [(90, "top right"), (180, "bottom right"), (270, "bottom left")])
def test_a_rotated_clip_is_stored_upright(tmp_path: Path, cache: Path, turn: int, corner: str) -> None:
    # The stored picture is 320x240 with a white square in its top-left corner; the file asks
    # players to turn it clockwise, as ffmpeg and phones do.
    clip = make_clip(tmp_path / "turned.mp4", seconds=0.5, fps=4, pattern="marker", rotation=turn)
    info = probe_clip(clip)
    assert info.rotation == turn
    plan, result, _ = fit(clip, cache)
    upright = (240, 320) if turn in (90, 270) else (320, 240)
    assert (plan.width, plan.height) == upright and plan.rotation == turn
    assert f"turned {turn}° upright" in plan.text
    check_copy(result, plan)
    frame = pictures(result.path)[0][1].reformat(format="gray")  # type: ignore[arg-type]
    width, height = upright
    plane = bytes(frame.planes[0])
    line = frame.planes[0].line_size

    def level(x: int, y: int) -> int:
        return plane[y * line + x]

    corners = {
        "top left": level(8, 8),
        "top right": level(width - 8, 8),
        "bottom left": level(8, height - 8),
        "bottom right": level(width - 8, height - 8),
    }
    assert {name for name, value in corners.items() if value > 128} == {corner}


def test_a_clip_over_50_mb_is_made_small_enough(tmp_path: Path, cache: Path) -> None:
    clip = make_clip(
        tmp_path / "big.mp4", seconds=12, width=480, height=270, fps=24, pattern="noise", bitrate=36_400_000
    )
    assert clip.stat().st_size > MAX_RESTYLE_BYTES
    plan, result, _ = fit(clip, cache)
    assert plan.reasons[0].startswith("it is 54 MB") or "MB (restyle takes at most 50 MB)" in plan.reasons[0]
    copy = check_copy(result, plan)
    assert abs(copy.duration_seconds - 12.0) < 0.08


def test_the_same_clip_and_settings_are_not_transcoded_twice(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = fit_module.transcode

    def counted(*args: Any, **kwargs: Any) -> None:
        calls.append(args[2])
        real(*args, **kwargs)

    monkeypatch.setattr(fit_module, "transcode", counted)
    clip = make_clip(tmp_path / "clip.webm", seconds=1, fps=8)
    _, first, _ = fit(clip, cache)
    _, second, fractions = fit(clip, cache)
    assert len(calls) == 1 and second.cached and not first.cached and fractions == [1.0]
    assert second.path == first.path and second.path.stat().st_ino == os.stat(first.path).st_ino  # type: ignore[union-attr]
    _, other_part, _ = fit(clip, cache, start_seconds=0.5)
    assert len(calls) == 2 and other_part.path != first.path
    make_clip(clip, seconds=1, fps=8, width=160, height=120)  # the file changes
    _, changed, _ = fit(clip, cache)
    assert len(calls) == 3 and changed.path != first.path and not changed.cached


def test_the_cache_is_cleaned_by_age_then_size_oldest_first(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    now = 1_900_000_000.0

    def copy(name: str, size: int, age_days: float) -> Path:
        path = folder / name
        path.write_bytes(b"x" * size)
        os.utime(path, (now - age_days * 86400, now - age_days * 86400))
        return path

    stale = copy("a" * 32 + ".mp4", 10, 8)
    old = copy("b" * 32 + ".mp4", 400, 3)
    middle = copy("c" * 32 + ".mp4", 400, 2)
    new = copy("d" * 32 + ".mp4", 400, 1)
    dead_partial = copy("." + "e" * 32 + ".0123456789ab.partial", 10, 2)
    live_partial = copy("." + "f" * 32 + ".0123456789ab.partial", 10, 0.01)
    other = copy("notes.txt", 5000, 30)
    (folder / ("9" * 32 + ".mp4")).symlink_to(other)
    week = 7 * 86400
    # By age: unused for over a week, and partial files a day old (a process died mid-way).
    assert set(clean_cache(folder, max_age_seconds=week, max_bytes=10**9, now=now)) == {stale, dead_partial}
    # By size: the oldest first, until what is left (with the copy just handed out) fits.
    assert clean_cache(folder, max_age_seconds=week, max_bytes=900, keep=new, now=now) == [old]
    assert middle.exists() and new.exists() and live_partial.exists() and other.exists()
    # The copy just handed out is kept even when it alone is over the size; others are never touched.
    assert clean_cache(folder, max_age_seconds=week, max_bytes=100, keep=new, now=now) == [middle]
    assert new.exists() and other.exists() and (folder / ("9" * 32 + ".mp4")).is_symlink()


def test_cancelling_midway_stops_and_removes_the_partial_copy(long_clip: Path, cache: Path) -> None:
    plan = plan_fit(probe_clip(long_clip))
    cancel = threading.Event()
    fractions: list[float] = []

    def progress(fraction: float) -> None:
        fractions.append(fraction)
        if fraction >= 0.3:
            cancel.set()

    with pytest.raises(FitCancelledError):
        fit_video(long_clip, plan, cache, progress=progress, cancel=cancel)
    assert 0.3 <= fractions[-1] < 0.5
    assert list(cache.iterdir()) == []


# --------------------------------------------------------------------------- bad input


def refused(source: Path, argument: str = "path", **part: float) -> str:
    with pytest.raises(InputError) as caught:
        plan_fit(probe_clip(source), **part)
    assert caught.value.argument == argument
    return str(caught.value)


def test_files_that_are_not_videos_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert "empty (0 bytes)" in refused(empty)
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(os.urandom(5000))
    assert "could not be read as a video" in refused(noise)
    song = make_clip(tmp_path / "song.m4a", seconds=0.5, video=False)
    assert "no video stream (it holds only audio)" in refused(song)
    hollow = tmp_path / "hollow.mp4"
    with av.open(str(hollow), "w") as output:
        stream = output.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        output.start_encoding()
    assert "no video stream (it holds neither audio nor video)" in refused(hollow)  # a track with no frames


def test_an_unknown_codec_is_named_as_unknown(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.5)
    data = bytearray(clip.read_bytes())
    entry = data.find(b"avc1", data.find(b"stsd"))
    data[entry : entry + 4] = b"zzzz"  # the sample entry's codec fourcc
    clip.write_bytes(bytes(data))
    assert "uses a codec this server does not know" in refused(clip)


def test_a_clip_damaged_in_the_middle_is_refused_and_leaves_nothing(tmp_path: Path, cache: Path) -> None:
    clip = make_clip(tmp_path / "damaged.mp4", seconds=4, fps=24)
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8000] = os.urandom(8000)
    clip.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"picture in .* is damaged at about \d\.\d s") as caught:
        fit(clip, cache, start_seconds=0.1)
    assert caught.value.argument == "path"
    assert list(cache.iterdir()) == []


def test_a_clip_cut_short_is_refused(tmp_path: Path, cache: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=8, width=64, height=48, fps=10)
    with (
        av.open(str(clip)) as source,
        av.open(str(tmp_path / "fast.mp4"), "w", options={"movflags": "+faststart"}) as output,
    ):
        stream_in = source.streams.video[0]
        stream = output.add_stream_from_template(stream_in)
        for packet in source.demux(stream_in):
            if packet.dts is not None:
                packet.stream = stream
                output.mux(packet)
    fast = tmp_path / "fast.mp4"
    fast.write_bytes(fast.read_bytes()[: fast.stat().st_size // 2])  # a copy that stopped halfway
    with pytest.raises(InputError, match=r"stops at \d\.\d s though it says it lasts 8\.0 s"):
        fit(fast, cache, start_seconds=0.1)


@pytest.mark.parametrize(
    ("part", "argument", "words"),
    [
        (
            {"start_seconds": 50},
            "start_seconds",
            "start_seconds=50 is not inside the clip, which is 40.00 s long",
        ),
        ({"start_seconds": 5, "end_seconds": 5}, "end_seconds", "end_seconds=5 is not after start_seconds=5"),
        ({"start_seconds": 9, "end_seconds": 2}, "end_seconds", "is not after"),
        ({"start_seconds": -1}, "start_seconds", "start_seconds=-1 is negative"),
        ({"end_seconds": float("nan")}, "end_seconds", "must be a number of seconds"),
        ({"start_seconds": 39.95}, "end_seconds", "shorter than 0.1 s"),
    ],
)
def test_a_bad_part_is_refused_naming_the_argument(
    long_clip: Path, part: dict[str, float], argument: str, words: str
) -> None:
    assert words in refused(long_clip, argument, **part)


def test_inputs_over_the_limits_are_refused_before_any_work(tmp_path: Path) -> None:
    huge = tmp_path / "huge.mp4"
    with huge.open("wb") as file:
        file.truncate(2 * 1024**3 + 1)  # sparse: no disk used
    assert "fitting takes files up to 2 GiB" in refused(huge)
    endless = make_clip(tmp_path / "endless.mkv", seconds=1, width=32, height=32, frame_times=[0, 1300])
    assert "21.7 minutes long; fitting takes clips up to 20 minutes" in refused(endless)
    wide = make_clip(tmp_path / "wide.mkv", seconds=0.5, width=8194, height=16, fps=2, container="matroska")
    assert "8194x16; fitting takes at most 8192 pixels on a side" in refused(wide)
    huge_picture = make_clip(tmp_path / "16k.mkv", seconds=0.5, width=7000, height=5000, fps=2)
    assert "7000x5000; fitting takes at most 8192 pixels on a side and 8K" in refused(huge_picture)


def test_a_file_changed_after_its_plan_is_not_fitted(tmp_path: Path, cache: Path) -> None:
    clip = make_clip(tmp_path / "clip.webm", seconds=1, fps=8)
    plan = plan_fit(probe_clip(clip))
    with clip.open("ab") as file:
        file.write(b"more")
    with pytest.raises(InputError, match="changed since it was checked"):
        fit_video(clip, plan, cache)


def test_clock_shows_points_as_players_do() -> None:
    assert [clock(s) for s in (0, 15.9, 62.25, 600, 3600.5)] == [
        "0:00",
        "0:15.9",
        "1:02.25",
        "10:00",
        "1:00:00.5",
    ]
