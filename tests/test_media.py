"""Local video checks and path confinement, on real files made with samples.make_clip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixverse_mcp import media
from pixverse_mcp.errors import InputError
from pixverse_mcp.media import (
    MAX_RESTYLE_BYTES,
    MAX_URL_LENGTH,
    VideoProbe,
    check_local_video,
    check_restyle_limits,
    ensure_inside,
    probe_video,
    resolve_local_path,
    safe_filename,
    validate_video_url,
)
from pixverse_mcp.samples import make_clip


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder.resolve()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
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
    probe = check_local_video(str(clip), [root])
    assert probe.path == clip
    assert probe.container == "mp4"
    assert probe.format_name.startswith("mov,mp4")
    assert probe.duration_seconds == pytest.approx(3.0, abs=0.1)
    assert (probe.width, probe.height) == (320, 240)
    assert probe.size_bytes == clip.stat().st_size
    assert probe.video_codec == "h264"
    assert probe.has_audio is False


def test_mov_is_accepted_and_reported_as_mov(root: Path) -> None:
    clip = make_clip(root / "clip.mov", seconds=1.0, audio=True)
    probe = check_local_video(str(clip), [root])
    assert probe.container == "mov"
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

    def must_not_probe(path: Path) -> VideoProbe:
        raise AssertionError("the file was opened although its size alone refuses it")

    monkeypatch.setattr(media, "probe_video", must_not_probe)
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


# --------------------------------------------------------------------------- path confinement


def test_symlink_out_of_root_is_refused(root: Path, outside: Path) -> None:
    target = make_clip(outside / "secret.mp4", seconds=0.5)
    (root / "link.mp4").symlink_to(target)
    message = str(refused("link.mp4", [root]))
    assert "outside the folders" in message
    assert str(root) in message
    assert "PIXVERSE_ALLOWED_DIRS" in message
    assert "Move" in message


def test_dotdot_escape_is_refused(root: Path, outside: Path) -> None:
    make_clip(outside / "clip.mp4", seconds=0.5)
    for raw in ("../outside/clip.mp4", f"{root}/../outside/clip.mp4", "sub/../../outside/clip.mp4"):
        assert "outside the folders" in str(refused(raw, [root]))


def test_relative_path_resolves_against_first_root(root: Path, outside: Path) -> None:
    (root / "sub").mkdir()
    inside_first = make_clip(root / "sub" / "a.mp4", seconds=0.5)
    inside_second = make_clip(outside / "b.mp4", seconds=0.5)
    assert resolve_local_path("sub/a.mp4", [root, outside]) == inside_first
    assert resolve_local_path(str(inside_second), [root, outside]) == inside_second
    with pytest.raises(InputError, match="no file at"):
        resolve_local_path("b.mp4", [root, outside])  # relative: looked up in the first root only


def test_tilde_expands_to_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "Videos").mkdir(parents=True)
    clip = make_clip(home / "Videos" / "me.mp4", seconds=0.5)
    monkeypatch.setenv("HOME", str(home))
    assert resolve_local_path("~/Videos/me.mp4", [Path("~")]) == clip.resolve()


def test_quoted_path_and_file_uri_are_accepted(root: Path) -> None:
    clip = make_clip(root / "my clip.mp4", seconds=0.5)
    assert resolve_local_path(f'"{clip}"', [root]) == clip
    assert resolve_local_path(clip.as_uri(), [root]) == clip


def test_missing_file_gets_a_suggestion(root: Path) -> None:
    make_clip(root / "holiday.mp4", seconds=0.5)
    message = str(refused("holliday.mp4", [root]))
    assert "no file at" in message
    assert "Did you mean" in message
    assert str(root / "holiday.mp4") in message


def test_missing_file_outside_root_lists_nothing(root: Path, outside: Path) -> None:
    make_clip(outside / "private.mp4", seconds=0.5)
    message = str(refused(str(outside / "privat.mp4"), [root]))
    assert "outside the folders" in message
    assert "private.mp4" not in message


def test_directory_is_refused(root: Path) -> None:
    (root / "videos").mkdir()
    make_clip(root / "videos" / "x.mp4", seconds=0.5)
    message = str(refused("videos", [root]))
    assert "is a folder" in message
    assert "x.mp4" in message


@pytest.mark.parametrize("raw", ["", "   ", '""'])
def test_empty_path_is_refused(root: Path, raw: str) -> None:
    assert "empty" in str(refused(raw, [root]))


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    "url",
    ["https://cdn.example.com/v/clip.mp4", "  http://example.com:8080/a.mov?sig=abc  ", "HTTPS://x.io/a"],
)
def test_good_urls_pass_stripped(url: str) -> None:
    assert validate_video_url(url) == url.strip()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("", "empty"),
        ("ftp://example.com/a.mp4", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("example.com/a.mp4", "has no scheme"),
        ("https:///a.mp4", "no host"),
        ("https://user:secret@example.com/a.mp4", "user name or password"),
        ("https://example.com/my clip.mp4", "a space (' ') at character 23"),
        ("https://example.com/a\x00.mp4", "a control character"),
        ("https://example.com:99999/a.mp4", "invalid port"),
        ("https://example.com/" + "a" * MAX_URL_LENGTH, f"{MAX_URL_LENGTH + 20} characters long"),
    ],
)
def test_bad_urls_are_refused(url: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        validate_video_url(url)
    assert info.value.argument == "url"
    assert fragment in str(info.value)
    assert "publicly reachable" in str(info.value)


# --------------------------------------------------------------------------- file names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Anime Style", "Anime-Style"),
        ("../../etc/passwd", "etc-passwd"),
        ("a/b\\c", "a-b-c"),
        ("", "video"),
        ("....", "video"),
        (".hidden", "hidden"),
        ("CON", "_CON"),
        ("nul.mp4", "_nul.mp4"),
        ("赛博朋克 ✨", "赛博朋克"),
        ("ｆｕｌｌ／ｗｉｄｔｈ", "full-width"),
        ("12345678901234567890", "12345678901234567890"),
    ],
)
def test_safe_filename_examples(text: str, expected: str) -> None:
    assert safe_filename(text) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.integers(min_value=1, max_value=120))
def test_safe_filename_is_always_safe(text: str, max_len: int) -> None:
    name = safe_filename(text, max_len)
    assert name
    assert len(name) <= max_len or name == "video"
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".")
    assert ".." not in name


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=100))
def test_safe_names_stay_inside_output_folder(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    out = tmp_path_factory.getbasetemp() / "out"
    out.mkdir(exist_ok=True)
    written = ensure_inside(out / f"pixverse-1-{safe_filename(text)}.mp4", out)
    assert written.parent == out.resolve()


def test_ensure_inside_refuses_escapes(tmp_path: Path, outside: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "evil").symlink_to(outside)
    assert ensure_inside(Path("ok.mp4"), out) == out.resolve() / "ok.mp4"
    for hostile in ("../x.mp4", "a/../../x.mp4", "/etc/passwd", "evil/x.mp4", ".", ""):
        with pytest.raises(InputError, match="outside the output folder"):
            ensure_inside(Path(hostile), out)


def test_module_imports_without_pyav() -> None:
    # Importing media must not pull in PyAV: the stdio server has to start fast.
    import subprocess
    import sys

    code = (
        "import sys, pixverse_mcp.media, pixverse_mcp.preview, pixverse_mcp.samples; "
        "print('av' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "False"
