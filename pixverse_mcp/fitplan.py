"""What fitting does to a clip, decided before any work: the part, size, rotation, bitrate and estimate.

``plan_fit`` says it in numbers and in one line (for the message that refuses a clip without
fitting: "call again with fit=true to upload 0:00-0:15.9 at 1920x1080 as H.264 mp4, at most 26 MB").
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict

from pixverse_mcp.errors import InputError
from pixverse_mcp.fitprobe import MAX_FIT_INPUT_BYTES, MAX_FIT_INPUT_SECONDS, ClipInfo
from pixverse_mcp.rules import MAX_RESTYLE_BYTES, MAX_RESTYLE_SECONDS, MAX_RESTYLE_SIDE, RESTYLE_CONTAINERS

# The longest part fitting makes: strictly under the 16 s rule, with room for the few
# milliseconds an AAC track runs past the picture.
FIT_MAX_SECONDS = 15.9
MIN_PART_SECONDS = 0.1
# Codecs sent as they are when nothing else needs changing. PixVerse does not document codecs;
# these two are what phones and editors write in mp4/mov. Anything else is re-encoded to H.264.
AS_IS_CODECS = {"h264": ("yuv420p", "yuvj420p"), "hevc": ("yuv420p", "yuvj420p", "yuv420p10le")}
# The copy's size budget: 44 MiB leaves 6 MiB under the 50 MiB limit for the muxer and the margin.
TARGET_BYTES = 44 * 1024 * 1024
# x264 quality first (crf), with a rate cap (VBV) that bounds the size: a simple scene comes out
# small, a busy one at most at the cap. The cap scales with the picture; 12 Mbit/s at 1080p.
CRF = 20
PRESET = "veryfast"
# veryfast looks 10 frames ahead; each 1080p frame it holds costs about 7 MB, and a 4K HEVC
# decoder already holds about 115 MB. Five keeps a 4K fit under 300 MB at a negligible cost in
# quality for a copy that is restyled anyway.
LOOKAHEAD_FRAMES = 5
MAX_VIDEO_BITRATE_1080P = 12_000_000
MIN_VIDEO_BITRATE = 1_000_000
BUFFER_SECONDS = 2.0
AUDIO_BITRATE = 128_000
AAC_RATES = (48_000, 44_100, 32_000, 24_000, 22_050, 16_000)
_MB = 1024 * 1024
_CODEC_NAMES = {
    "h264": "H.264",
    "hevc": "HEVC",
    "vp8": "VP8",
    "vp9": "VP9",
    "av1": "AV1",
    "prores": "ProRes",
    "mpeg4": "MPEG-4 Part 2",
    "mjpeg": "Motion JPEG",
    "aac": "AAC",
    "opus": "Opus",
    "vorbis": "Vorbis",
    "mp3": "MP3",
    "flac": "FLAC",
    "alac": "ALAC",
}


def clock(seconds: float) -> str:
    """0:00, 0:15.9, 1:02.25, 1:00:00: a point in a clip as players show it."""
    cents = round(seconds * 100)
    whole, fraction = divmod(cents, 100)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    return f"{text}.{fraction:02d}".rstrip("0") if fraction else text


def codec_name(codec: str | None) -> str:
    return _CODEC_NAMES.get(codec or "", (codec or "no").upper())


def megabytes(size: float) -> str:
    if size < _MB:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size / _MB:.1f} MB" if size < 10 * _MB else f"{size / _MB:.0f} MB"


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


class ClipSummary(BaseModel):
    """One side of before -> after."""

    model_config = ConfigDict(frozen=True)

    duration_seconds: float
    width: int
    height: int
    video_codec: str
    audio_codec: str | None
    container: str
    size_bytes: int
    rotation: int

    def describe(self) -> str:
        turned = f", turned {self.rotation}°" if self.rotation else ""
        sound = f" + {codec_name(self.audio_codec)}" if self.audio_codec else ""
        return (
            f"{self.duration_seconds:.1f} s at {self.width}x{self.height}{turned}, "
            f"{codec_name(self.video_codec)}{sound} {self.container}, {megabytes(self.size_bytes)}"
        )

    @classmethod
    def of(cls, info: ClipInfo) -> ClipSummary:
        return cls(
            duration_seconds=info.duration_seconds,
            width=info.width,
            height=info.height,
            video_codec=info.video_codec,
            audio_codec=info.audio_codec,
            container=info.container,
            size_bytes=info.size_bytes,
            rotation=info.rotation,
        )


class FitPlan(BaseModel):
    """What fitting does to one clip, decided before any work."""

    model_config = ConfigDict(frozen=True)

    source: ClipInfo
    fits: bool
    """The clip already meets every rule: it is used as it is, with no re-encode."""
    reasons: tuple[str, ...]
    """Why a copy is needed (empty when it fits)."""
    start_seconds: float
    end_seconds: float
    width: int
    height: int
    rotation: int
    """Clockwise degrees the picture is turned to stand upright (0: none)."""
    keep_audio: bool
    audio_rate: int
    audio_channels: int
    audio_bitrate: int
    video_bitrate: int
    """x264's rate cap (maxrate), in bits per second."""
    buffer_bits: int
    estimated_bytes: int
    """The copy's size at most (the rate cap over the part, the buffer, the sound, the muxer)."""

    @property
    def length_seconds(self) -> float:
        return self.end_seconds - self.start_seconds

    @property
    def text(self) -> str:
        """One line: '0:00-0:15.9 at 1920x1080 as H.264 mp4, at most 26 MB'."""
        if self.fits:
            return f"the clip already fits ({ClipSummary.of(self.source).describe()}); it is used as it is"
        part = f"{clock(self.start_seconds)}-{clock(self.end_seconds)}"
        turned = f", turned {self.rotation}° upright" if self.rotation else ""
        return (
            f"{part} at {self.width}x{self.height}{turned} as H.264 mp4, at most "
            f"{megabytes(self.estimated_bytes)}"
        )

    def changes(self) -> list[str]:
        """What changes, before -> after, one line each (empty when the clip fits)."""
        if self.fits:
            return []
        info = self.source
        lines = []
        if self.start_seconds > 0 or self.end_seconds < info.duration_seconds:
            lines.append(
                f"length: {info.duration_seconds:.1f} s -> {self.length_seconds:.1f} s "
                f"(the part {clock(self.start_seconds)}-{clock(self.end_seconds)})"
            )
        if (self.width, self.height) != info.display_size or self.rotation:
            lines.append(f"resolution: {info.width}x{info.height} -> {self.width}x{self.height}")
        sound = f" + {codec_name(info.audio_codec)}" if info.has_audio else ""
        lines.append(
            f"codec/container: {codec_name(info.video_codec)}{sound} in {info.container} -> H.264"
            f"{' + AAC' if self.keep_audio else ''} in mp4"
        )
        if self.rotation:
            lines.append(
                f"rotation: the file asks players to turn it {self.rotation}°; the copy is stored upright "
                "with no rotation flag"
            )
        lines.append(f"size: {megabytes(info.size_bytes)} -> at most {megabytes(self.estimated_bytes)}")
        return lines

    def x264_options(self) -> dict[str, str]:
        return {
            "preset": PRESET,
            "crf": str(CRF),
            "maxrate": str(self.video_bitrate),
            "bufsize": str(self.buffer_bits),
            "rc-lookahead": str(LOOKAHEAD_FRAMES),
            "profile": "high",
        }

    def settings(self) -> dict[str, Any]:
        """Everything that shapes the copy (part of the cache key)."""
        return {
            "start": round(self.start_seconds, 6),
            "end": round(self.end_seconds, 6),
            "size": [self.width, self.height],
            "rotation": self.rotation,
            "audio": [self.keep_audio, self.audio_rate, self.audio_channels, self.audio_bitrate],
            "x264": self.x264_options(),
        }


def _check_seconds(name: str, value: float | None) -> None:
    if value is None:
        return
    if not math.isfinite(value):
        raise InputError(f"{name} must be a number of seconds, not {value!r}.", argument=name)
    if value < 0:
        raise InputError(
            f"{name}={value:g} is negative; give seconds from the start of the clip (0 or more).",
            argument=name,
        )


def _part(info: ClipInfo, start: float | None, end: float | None) -> tuple[float, float]:
    _check_seconds("start_seconds", start)
    _check_seconds("end_seconds", end)
    duration = info.duration_seconds
    first = start or 0.0
    if first >= duration:
        raise InputError(
            f"start_seconds={first:g} is not inside the clip, which is {duration:.2f} s long; choose a start "
            f"before {clock(duration)}.",
            argument="start_seconds",
        )
    if end is not None and end <= first:
        raise InputError(
            f"end_seconds={end:g} is not after start_seconds={first:g}; the part must end after it starts.",
            argument="end_seconds",
        )
    last = min(end, duration) if end is not None else duration
    if last - first < MIN_PART_SECONDS:
        raise InputError(
            f"the part {clock(first)}-{clock(last)} is shorter than {MIN_PART_SECONDS:g} s; choose a "
            "longer one.",
            argument="end_seconds",
        )
    return first, last


def _reasons(info: ClipInfo, whole: bool) -> list[str]:
    reasons = []
    if not whole:
        reasons.append("a part of the clip was chosen")
    if info.duration_seconds > MAX_RESTYLE_SECONDS:
        reasons.append(
            f"it is {info.duration_seconds:.1f} s long (restyle takes at most {MAX_RESTYLE_SECONDS:g} s)"
        )
    if max(info.width, info.height) > MAX_RESTYLE_SIDE:
        reasons.append(
            f"it is {info.width}x{info.height} (restyle takes at most {MAX_RESTYLE_SIDE} px a side)"
        )
    if info.size_bytes > MAX_RESTYLE_BYTES:
        reasons.append(
            f"it is {megabytes(info.size_bytes)} (restyle takes at most {MAX_RESTYLE_BYTES // _MB} MB)"
        )
    if info.container not in RESTYLE_CONTAINERS:
        reasons.append(f"it is {info.container}, not mp4 or mov")
    elif info.pix_fmt not in AS_IS_CODECS.get(info.video_codec, ()):
        reasons.append(
            f"its video is {codec_name(info.video_codec)} ({info.pix_fmt}), not H.264 or HEVC 4:2:0"
        )
    if info.rotation:
        reasons.append(
            f"it carries a rotation flag ({info.rotation}°), which players apply but renderers may not"
        )
    elif info.display_matrix and info.display_matrix[4] < 0:
        reasons.append("it carries a flag that mirrors the picture, which renderers may not apply")
    if abs(info.pixel_aspect - 1.0) > 0.01:
        reasons.append(f"its pixels are not square (aspect {info.pixel_aspect:.3f})")
    return reasons


def _target_size(info: ClipInfo) -> tuple[int, int]:
    width, height = info.display_size
    scale = min(1.0, MAX_RESTYLE_SIDE / max(width, height))
    return _even(width * scale), _even(height * scale)


def plan_fit(info: ClipInfo, start_seconds: float | None = None, end_seconds: float | None = None) -> FitPlan:
    """Decide what fitting does to a probed clip and a chosen part.

    Args:
        info: The clip, from ``probe_clip``.
        start_seconds: Start of the part (default 0). Must lie inside the clip.
        end_seconds: End of the part (default the clip's end); clamped to the clip. The part is cut
            to 15.9 s when longer.

    Returns:
        The plan: ``fits`` (nothing to do), else the part, size, rotation, bitrate and estimate.

    Raises:
        InputError: (argument "start_seconds"/"end_seconds") negative, not a number, outside the
            clip, an end not after the start, a part under 0.1 s; (argument "path") a clip over
            the input limits.
    """
    if info.size_bytes > MAX_FIT_INPUT_BYTES or info.duration_seconds > MAX_FIT_INPUT_SECONDS:
        raise InputError(
            f"the clip is over what fitting takes ({MAX_FIT_INPUT_BYTES // 1024**3} GiB, "
            f"{MAX_FIT_INPUT_SECONDS / 60:.0f} minutes).",
            argument="path",
        )
    first, last = _part(info, start_seconds, end_seconds)
    whole = first <= 0.0005 and last >= info.duration_seconds - 0.0005
    reasons = _reasons(info, whole)
    keep_audio = info.has_audio
    channels = min(2, info.audio_channels or 2)
    if not reasons:
        width, height = info.width, info.height
        return FitPlan(
            source=info,
            fits=True,
            reasons=(),
            start_seconds=0.0,
            end_seconds=info.duration_seconds,
            width=width,
            height=height,
            rotation=0,
            keep_audio=keep_audio,
            audio_rate=info.audio_rate,
            audio_channels=info.audio_channels,
            audio_bitrate=0,
            video_bitrate=0,
            buffer_bits=0,
            estimated_bytes=info.size_bytes,
        )
    if last - first > FIT_MAX_SECONDS:
        last = first + FIT_MAX_SECONDS
    length = last - first
    width, height = _target_size(info)
    audio_bits = AUDIO_BITRATE * length if keep_audio else 0.0
    cap = max(MIN_VIDEO_BITRATE, MAX_VIDEO_BITRATE_1080P * width * height / (1920 * 1080))
    # The rate cap over the part plus one buffer is the most x264 may spend (VBV).
    by_budget = (TARGET_BYTES * 8 - audio_bits) / (length + BUFFER_SECONDS)
    rate = int(min(cap, by_budget))
    buffer_bits = int(rate * BUFFER_SECONDS)
    estimated = (rate * length + buffer_bits + audio_bits) / 8 * 1.02 + 64 * 1024
    return FitPlan(
        source=info,
        fits=False,
        reasons=tuple(reasons),
        start_seconds=first,
        end_seconds=last,
        width=width,
        height=height,
        rotation=info.rotation,
        keep_audio=keep_audio,
        audio_rate=info.audio_rate if info.audio_rate in AAC_RATES else 48_000,
        audio_channels=channels,
        audio_bitrate=AUDIO_BITRATE,
        video_bitrate=rate,
        buffer_bits=buffer_bits,
        estimated_bytes=int(estimated),
    )
