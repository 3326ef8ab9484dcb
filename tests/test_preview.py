"""The preview strip: one small JPEG of a few frames side by side, built with PyAV alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import pytest

from pixverse_mcp.preview import PreviewUnavailable, make_preview_strip
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


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("clip.webm", {"container": "webm"}),
        ("clip.mov", {"audio": True}),
        ("raw.h264", {"container": "h264"}),
    ],
)
def test_other_containers(tmp_path: Path, name: str, options: dict[str, Any]) -> None:
    # A raw H.264 stream has no length in its header: frames are chosen by count instead.
    clip = make_clip(tmp_path / name, seconds=1.0, **options)
    data = make_preview_strip(clip)
    assert_jpeg(data)
    assert decode_jpeg(data, tmp_path).width == 4 * 240


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
