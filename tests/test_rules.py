"""Local video checks (probe and restyle rules), on real files made with samples.make_clip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pixverse_mcp import rules
from pixverse_mcp.errors import InputError
from pixverse_mcp.localfile import LocalFile
from pixverse_mcp.rules import MAX_RESTYLE_BYTES, check_local_video, check_restyle_limits
from pixverse_mcp.samples import make_clip
from pixverse_mcp.video import VideoProbe, probe_video


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder.resolve()


def refused(raw: str, roots: list[Path]) -> InputError:
    """The InputError that check_local_video raises for ``raw``."""
    with pytest.raises(InputError) as info:
        check_local_video(raw, roots)
    assert info.value.argument == "path"
    return info.value


# --------------------------------------------------------------------------- valid files


def test_valid_clip_is_measured(root: Path) -> None:
    clip = make_clip(root / "clip.mp4", seconds=3.0, width=320, height=240)
    with check_local_video(str(clip), [root]) as checked:
        probe = checked.probe
        assert checked.file.size == clip.stat().st_size
    assert probe.path == clip
    assert probe.mime_type == "video/mp4"
    assert probe.container == "mp4"
    assert probe.format_name.startswith("mov,mp4")
    assert probe.duration_seconds == pytest.approx(3.0, abs=0.1)
    assert (probe.width, probe.height) == (320, 240)
    assert probe.size_bytes == clip.stat().st_size
    assert probe.video_codec == "h264"
    assert probe.has_audio is False


def test_mov_is_accepted_and_reported_as_mov(root: Path) -> None:
    clip = make_clip(root / "clip.mov", seconds=1.0, audio=True)
    with check_local_video(str(clip), [root]) as checked:
        probe = checked.probe
    assert probe.container == "mov"
    assert probe.mime_type == "video/quicktime"
    assert probe.has_audio is True


def test_probe_is_frozen(root: Path) -> None:
    probe = probe_video(make_clip(root / "clip.mp4", seconds=0.5))
    with pytest.raises(ValueError):
        probe.width = 10  # type: ignore[misc]


# --------------------------------------------------------------------------- restyle rules


def test_too_long_clip_is_refused_with_trim_command(root: Path) -> None:
    clip = make_clip(root / "long clip.mp4", seconds=17.0, width=64, height=64, fps=5)
    message = str(refused(str(clip), [root]))
    assert "17.0 s" in message
    assert "at most 16 s" in message
    assert f'ffmpeg -i "{clip}" -t 15.9 -c copy' in message


@pytest.mark.parametrize(("width", "height"), [(1922, 64), (64, 1921)])
def test_too_many_pixels_is_refused_with_scale_command(root: Path, width: int, height: int) -> None:
    clip = make_clip(root / "wide.mp4", seconds=1.0, width=width, height=height, fps=1)
    message = str(refused("wide.mp4", [root]))
    assert f"{width}x{height}" in message
    assert "at most 1920 pixels on the longer side" in message
    assert "scale='if(gt(iw,ih),1920,-2)':'if(gt(iw,ih),-2,1920)'" in message
    assert str(clip) in message


def test_webm_named_mp4_is_refused_by_content(root: Path) -> None:
    clip = make_clip(root / "fake.mp4", seconds=1.0, container="webm")
    message = str(refused(str(clip), [root]))
    assert "WebM" in message
    assert "mp4 or mov" in message
    assert f'ffmpeg -i "{clip}" -c:v libx264 -pix_fmt yuv420p' in message


def test_matroska_named_mp4_is_refused(root: Path) -> None:
    clip = make_clip(root / "fake.mp4", seconds=0.5, container="matroska")
    assert probe_video(clip).container == "matroska"
    assert "Matroska" in str(refused(str(clip), [root]))


def test_audio_only_file_is_refused(root: Path) -> None:
    clip = make_clip(root / "song.mp4", seconds=1.0, video=False)
    message = str(refused(str(clip), [root]))
    assert "has no video stream" in message
    assert "only audio" in message


@pytest.mark.parametrize(
    "content", [b"\x00\x01garbage" * 500, b"\x00\x00\x00\x20ftypisom" + b"\x00" * 2000, b"x"]
)
def test_corrupt_bytes_are_refused(root: Path, content: bytes) -> None:
    (root / "broken.mp4").write_bytes(content)
    message = str(refused("broken.mp4", [root]))
    assert "could not be read as a video" in message
    assert "mp4 (H.264)" in message
    assert "ffmpeg -i" in message


def test_empty_file_is_refused(root: Path) -> None:
    (root / "empty.mp4").touch()
    assert "empty (0 bytes)" in str(refused("empty.mp4", [root]))


def test_oversized_file_is_refused_before_reading(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = root / "big.mp4"
    with big.open("wb") as file:
        file.truncate(MAX_RESTYLE_BYTES + 1)  # sparse: no 50 MB actually written

    def must_not_probe(file: LocalFile) -> VideoProbe:
        raise AssertionError("the file was read although its size alone refuses it")

    monkeypatch.setattr(rules, "probe_file", must_not_probe)
    message = str(refused(str(big), [root]))
    assert "50.0 MB (52,428,801 bytes)" in message  # never looks equal to the limit
    assert "at most 50 MB" in message
    assert "-crf" in message


def test_several_problems_are_reported_together(root: Path) -> None:
    clip = make_clip(root / "both.mp4", seconds=17.0, width=2000, height=100, fps=1)
    message = str(refused(str(clip), [root]))
    assert "2 restyle rules" in message
    assert "2000x100" in message
    assert "17.0 s" in message


def _probe(**changes: object) -> VideoProbe:
    values: dict[str, object] = {
        "path": Path("/videos/in.mp4"),
        "container": "mp4",
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
        "duration_seconds": 5.0,
        "width": 1280,
        "height": 720,
        "size_bytes": 1000,
        "video_codec": "h264",
        "has_audio": True,
    }
    return VideoProbe.model_validate({**values, **changes})


def test_limits_on_measured_values() -> None:
    check_restyle_limits(_probe(duration_seconds=16.0, width=1920, height=1080))
    with pytest.raises(
        InputError, match=r"16\.02 s; restyle takes at most 16 s\. Trim it, e\.g\. .*-t 15\.9"
    ):
        check_restyle_limits(_probe(duration_seconds=16.02))
    with pytest.raises(InputError, match=r"the clip is 21\.4 s; restyle takes at most 16 s\. Trim it"):
        check_restyle_limits(_probe(duration_seconds=21.4))
    with pytest.raises(InputError, match=r"the video is 3840x2160; restyle takes at most 1920 pixels"):
        check_restyle_limits(_probe(width=3840, height=2160))
    with pytest.raises(InputError, match=r"52\.4 MB; restyle takes at most 50 MB"):
        check_restyle_limits(_probe(size_bytes=int(52.4 * 1024 * 1024)))
    with pytest.raises(InputError, match="an AVI file"):
        check_restyle_limits(_probe(container="avi", format_name="avi"))


def test_module_imports_without_pyav() -> None:
    # Importing the local checks must not pull in PyAV: the stdio server has to start fast.
    import subprocess
    import sys

    code = (
        "import sys, pixverse_mcp.paths, pixverse_mcp.video, pixverse_mcp.rules, pixverse_mcp.preview, "
        "pixverse_mcp.samples; "
        "print('av' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "False"
