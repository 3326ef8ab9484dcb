"""Fitting through the protocol: upload_video(fit=true, start_seconds, end_seconds) on real clips,
then restyled end to end on the sandbox, which applies PixVerse's own rules to what it receives."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ProgressLog, call_error, call_ok
from mcp import Client

from pixverse_mcp.config import Settings
from pixverse_mcp.fit import probe_clip
from pixverse_mcp.samples import make_clip
from pixverse_mcp.sandbox import SandboxServer
from pixverse_mcp.server import create_server

pytestmark = pytest.mark.anyio


def _uploads(sandbox: SandboxServer) -> int:
    return int(sandbox.state.stats()["requests"].get("upload", 0))


@pytest.fixture
def fit_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.with_changes(fit_cache_dir=tmp_path / "fitted")


@pytest.fixture
async def fit_client(fit_settings: Settings) -> Client:  # type: ignore[misc]
    async with Client(create_server(fit_settings)) as connected:
        yield connected


@pytest.fixture
def long_clip(videos: Path) -> Path:
    return make_clip(videos / "phone.mp4", seconds=20, width=160, height=90, fps=4, audio=True)


async def test_without_fit_a_long_clip_is_refused_with_what_fit_would_do(
    fit_client: Client, sandbox: SandboxServer, long_clip: Path
) -> None:
    text = await call_error(fit_client, "upload_video", {"path": str(long_clip)})
    assert "20.0 s" in text and "fit=true" in text and "0:00-0:15.9" in text and "H.264 mp4" in text
    assert _uploads(sandbox) == 0


async def test_a_long_clip_is_fitted_uploaded_and_restyled(
    fit_client: Client, sandbox: SandboxServer, long_clip: Path, fit_settings: Settings
) -> None:
    progress = ProgressLog()
    uploaded = await call_ok(
        fit_client, "upload_video", {"path": str(long_clip), "fit": True}, progress_callback=progress
    )
    assert uploaded["fitted"] is True and any(c.startswith("length: 20.0 s") for c in uploaded["changes"])
    assert uploaded["duration_seconds"] < 16 and uploaded["file_name"] == "phone.mp4"
    copy = Path(uploaded["copy_path"])
    assert copy.parent == fit_settings.fit_cache_dir
    measured = probe_clip(copy)
    assert measured.duration_seconds < 16 and measured.video_codec == "h264" and measured.container == "mp4"
    assert measured.has_audio
    # One scale: percent, the copy first, then the upload, ending at 100.
    assert any(m.startswith("fitting the clip:") for m in progress.messages)
    assert progress.values[-1] == (100.0, 100.0)
    assert [v for v, _ in progress.values] == sorted(v for v, _ in progress.values)
    done = await call_ok(
        fit_client,
        "restyle_video",
        {"video_media_id": uploaded["media_id"], "restyle_prompt": "pencil sketch", "wait_seconds": 14},
    )
    assert done["status"] == "succeeded"


async def test_a_part_alone_is_enough_when_only_the_length_is_wrong(
    fit_client: Client, sandbox: SandboxServer, long_clip: Path
) -> None:
    uploaded = await call_ok(
        fit_client, "upload_video", {"path": str(long_clip), "start_seconds": 5, "end_seconds": 12}
    )
    assert uploaded["fitted"] is True and 6.5 < uploaded["duration_seconds"] <= 7.1
    assert probe_clip(Path(uploaded["copy_path"])).duration_seconds < 7.2


async def test_a_part_of_a_4k_clip_without_fit_says_fit_is_needed(
    fit_client: Client, sandbox: SandboxServer, videos: Path
) -> None:
    big = make_clip(videos / "uhd.mp4", seconds=1, width=3840, height=2160, fps=2)
    text = await call_error(fit_client, "upload_video", {"path": str(big), "end_seconds": 0.5})
    assert "3840x2160" in text and "1920x1080" in text and "fit=true" in text
    assert _uploads(sandbox) == 0
    fitted = await call_ok(fit_client, "upload_video", {"path": str(big), "fit": True})
    assert (fitted["width"], fitted["height"]) == (1920, 1080)


async def test_a_clip_that_fits_is_uploaded_untouched(
    fit_client: Client, sandbox: SandboxServer, clip: Path
) -> None:
    uploaded = await call_ok(fit_client, "upload_video", {"path": str(clip), "fit": True})
    assert uploaded["fitted"] is None and uploaded["copy_path"] is None
    assert uploaded["size_bytes"] == clip.stat().st_size


async def test_a_rotated_webm_is_made_an_upright_mp4(
    fit_client: Client, sandbox: SandboxServer, videos: Path
) -> None:
    turned = make_clip(videos / "portrait.mov", seconds=1, width=160, height=90, fps=4, rotation=90)
    uploaded = await call_ok(fit_client, "upload_video", {"path": str(turned), "fit": True})
    assert (uploaded["width"], uploaded["height"]) == (90, 160)
    copy = probe_clip(Path(uploaded["copy_path"]))
    assert copy.rotation == 0 and (copy.width, copy.height) == (90, 160)
    webm = make_clip(videos / "screen.webm", seconds=1, width=160, height=90, fps=4, video_codec="libvpx")
    converted = await call_ok(fit_client, "upload_video", {"path": str(webm), "fit": True})
    assert any("webm" in change and "mp4" in change for change in converted["changes"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"start_seconds": 8, "end_seconds": 3}, "end_seconds"),
        ({"start_seconds": 40}, "start_seconds"),
        ({"start_seconds": -1}, "start_seconds"),
        ({"end_seconds": True}, "end_seconds"),
    ],
)
async def test_a_bad_part_is_refused_naming_the_value(
    fit_client: Client, sandbox: SandboxServer, long_clip: Path, args: dict[str, object], needle: str
) -> None:
    text = await call_error(fit_client, "upload_video", {"path": str(long_clip), "fit": True, **args})
    assert needle in text and _uploads(sandbox) == 0


async def test_fit_needs_a_local_file(fit_client: Client, sandbox: SandboxServer) -> None:
    text = await call_error(fit_client, "upload_video", {"url": "https://example.com/a.mp4", "fit": True})
    assert "local files only" in text and _uploads(sandbox) == 0


async def test_audio_only_and_garbage_are_refused_even_with_fit(
    fit_client: Client, sandbox: SandboxServer, videos: Path
) -> None:
    voice = make_clip(videos / "voice.m4a", seconds=1, video=False, audio=True)
    text = await call_error(fit_client, "upload_video", {"path": str(voice), "fit": True})
    assert "video" in text
    junk = videos / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    text = await call_error(fit_client, "upload_video", {"path": str(junk), "fit": True})
    assert "could not be read" in text and _uploads(sandbox) == 0


def _hevc_mov(videos: Path) -> Path:
    return make_clip(
        videos / "phone.mov", seconds=17, width=64, height=48, fps=2, video_codec="libx265", audio=True
    )


def _vfr_mkv(videos: Path) -> Path:
    times = [0.0, 0.033, 0.1, 0.5, 0.533, 1.0, 1.04, 1.9, 2.5]
    return make_clip(videos / "screen.mkv", seconds=3, width=96, height=64, frame_times=times, audio=True)


def _over_50_mb(videos: Path) -> Path:
    return make_clip(
        videos / "big.mp4", seconds=12, width=480, height=270, fps=24, pattern="noise", bitrate=36_400_000
    )


def _long_1080p(videos: Path) -> Path:
    return make_clip(videos / "long1080.mp4", seconds=40, width=1920, height=1080, fps=1)


@pytest.mark.parametrize(
    ("make", "changed"),
    [
        (_hevc_mov, "HEVC + AAC in mov -> H.264 + AAC in mp4"),
        (_vfr_mkv, "in matroska -> H.264 + AAC in mp4"),
        (_over_50_mb, "size:"),
        (_long_1080p, "length: 40.0 s"),
    ],
    ids=["hevc-mov", "vfr-mkv", "over-50-mb", "40s-1080p"],
)
async def test_real_clips_are_fitted_and_restyled_end_to_end(
    fit_client: Client, sandbox: SandboxServer, videos: Path, make: object, changed: str
) -> None:
    source = make(videos)  # type: ignore[operator]
    refused = await call_error(fit_client, "upload_video", {"path": str(source)})
    assert "fit=true" in refused
    uploaded = await call_ok(fit_client, "upload_video", {"path": str(source), "fit": True})
    assert any(changed in line for line in uploaded["changes"]), uploaded["changes"]
    copy = probe_clip(Path(uploaded["copy_path"]))
    assert copy.container == "mp4" and copy.video_codec == "h264" and copy.rotation == 0
    assert copy.duration_seconds < 16 and copy.size_bytes < 50 * 1024 * 1024
    assert max(copy.width, copy.height) <= 1920
    done = await call_ok(
        fit_client,
        "restyle_video",
        {"video_media_id": uploaded["media_id"], "restyle_prompt": "film noir", "wait_seconds": 14},
    )
    assert done["status"] == "succeeded"
