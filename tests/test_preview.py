"""The preview strip: one small JPEG of a few frames side by side, built with PyAV alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import pytest

from pixverse_mcp.bounded_io import ReadLimits
from pixverse_mcp.preview import PreviewUnavailable, make_preview_strip, running_previews
from pixverse_mcp.samples import make_clip


def decode_jpeg(data: bytes, tmp_path: Path) -> Any:
    """Decode a JPEG with PyAV (no Pillow here) and return its one frame."""
    picture = tmp_path / "preview.jpg"
    picture.write_bytes(data)
    with av.open(str(picture)) as container:
        return next(container.decode(video=0))


def assert_jpeg(data: bytes) -> None:
    assert data[:2] == b"\xff\xd8", "no JPEG start marker"
    assert data[-2:] == b"\xff\xd9", "no JPEG end marker"


def test_strip_of_four_frames(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=3.0, width=320, height=240)
    data = make_preview_strip(clip)
    assert_jpeg(data)
    assert len(data) <= 100_000
    frame = decode_jpeg(data, tmp_path)
    # 320x240 scaled to 180 high is 240 wide; four tiles side by side.
    assert (frame.width, frame.height) == (4 * 240, 180)


def test_tiles_are_different_moments(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=3.0)
    frame = decode_jpeg(make_preview_strip(clip, frames=2), tmp_path)
    luma = frame.planes[0]
    raw, stride, half = bytes(luma), luma.line_size, frame.width // 2
    left = b"".join(raw[r * stride : r * stride + half] for r in range(frame.height))
    right = b"".join(raw[r * stride + half : r * stride + 2 * half] for r in range(frame.height))
    assert left != right


def test_one_frame_video(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "one.mp4", seconds=1 / 24)
    data = make_preview_strip(clip)
    assert_jpeg(data)
    frame = decode_jpeg(data, tmp_path)
    assert (frame.width, frame.height) == (240, 180)  # one distinct frame, shown once


def test_tight_cap_lowers_quality_and_still_fits(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=3.0)
    roomy = make_preview_strip(clip)
    tight = make_preview_strip(clip, max_bytes=8000)
    assert_jpeg(tight)
    assert len(tight) <= 8000 < len(roomy)
    frame = decode_jpeg(tight, tmp_path)
    assert frame.height <= 180 and frame.width % 2 == 0


def test_impossible_cap_is_reported(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    with pytest.raises(PreviewUnavailable, match="over the 50-byte limit"):
        make_preview_strip(clip, max_bytes=50)


def test_portrait_and_odd_sizes_give_even_tiles(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "tall.mp4", seconds=1.0, width=240, height=320)
    frame = decode_jpeg(make_preview_strip(clip, frames=3, tile_height=101), tmp_path)
    assert frame.height % 2 == 0 and frame.width % 6 == 0  # three tiles of an even width
    assert frame.width / 3 == pytest.approx(frame.height * 0.75, abs=2)


def test_mov_with_audio(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mov", seconds=1.0, audio=True)
    data = make_preview_strip(clip)
    assert_jpeg(data)
    assert decode_jpeg(data, tmp_path).width == 4 * 240


@pytest.mark.parametrize(
    ("name", "options"),
    [("clip.webm", {"container": "webm"}), ("raw.h264", {"container": "h264"})],
)
def test_only_mp4_and_mov_are_read(tmp_path: Path, name: str, options: dict[str, Any]) -> None:
    # What restyle makes is mp4; every other demuxer stays shut, whatever the file holds.
    clip = make_clip(tmp_path / name, seconds=1.0, **options)
    with pytest.raises(PreviewUnavailable, match="could not be opened as an mp4 or mov video"):
        make_preview_strip(clip)


@pytest.mark.parametrize(
    "listing",
    [
        "ffconcat version 1.0\nfile neighbour.mp4\n",
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nneighbour.mp4\n#EXT-X-ENDLIST\n",
    ],
)
def test_a_list_of_other_files_opens_none_of_them(tmp_path: Path, listing: str) -> None:
    make_clip(tmp_path / "neighbour.mp4", seconds=1.0)
    saved = tmp_path / "pixverse-1-Noir.mp4"
    saved.write_text(listing)
    with pytest.raises(PreviewUnavailable, match="could not be opened as an mp4 or mov video"):
        make_preview_strip(saved)


@pytest.mark.parametrize("text", ["/etc/passwd", "file:///etc/passwd", "clip.mp4", "ftp://example.com/a.mp4"])
def test_a_string_is_only_ever_an_http_url(tmp_path: Path, text: str) -> None:
    make_clip(tmp_path / "clip.mp4", seconds=1.0)
    with pytest.raises(PreviewUnavailable, match=r"not an http\(s\) link"):
        make_preview_strip(text)


def test_the_byte_budget_covers_a_local_file(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=2.0)
    with pytest.raises(PreviewUnavailable, match="read limit"):
        make_preview_strip(clip, limits=ReadLimits.start(clip.stat().st_size // 4, 10))
    assert running_previews() == 0


def test_a_deadline_or_a_cancel_stops_reading(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    with pytest.raises(PreviewUnavailable, match="took over 0 s"):
        make_preview_strip(clip, limits=ReadLimits.start(10**9, 0))
    gave_up = ReadLimits.start(10**9, 10)
    gave_up.cancel()
    with pytest.raises(PreviewUnavailable, match="stopped waiting"):
        make_preview_strip(clip, limits=gave_up)
    assert running_previews() == 0


def test_unreadable_file_raises(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    with pytest.raises(PreviewUnavailable, match=r"broken\.mp4 could not be opened"):
        make_preview_strip(broken)
    with pytest.raises(PreviewUnavailable):
        make_preview_strip(tmp_path / "missing.mp4")


def test_audio_only_raises(tmp_path: Path) -> None:
    song = make_clip(tmp_path / "song.m4a", seconds=0.5, video=False)
    with pytest.raises(PreviewUnavailable, match="no video stream"):
        make_preview_strip(song)
