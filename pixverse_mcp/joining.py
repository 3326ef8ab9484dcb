"""Joining restyled parts back into one video, with the original clip's sound, in one mp4 (PyAV).

Each part stands for a span of the source (`segments.Segment`). Its restyled frames are placed on
that span: a frame at t seconds into the part is shown at start + t in the joined video, so the
timestamps run on without a gap or a jump, whatever frame rate or length PixVerse gave the part.
A part longer than its span is cut at the span's end; a shorter one holds its last frame until
the next part begins. Frames of a part of another size are scaled to the first part's size.

The sound is the source's own, cut to the joined length and encoded again as AAC (the restyled
parts carry none). The picture is encoded once more with x264 (the parts come from separate
encodes and cannot simply be copied into one track).

The restyled parts come from PixVerse's file host: they are opened as fetched files are for a
preview (the mov demuxer only, nothing else opened), and pictures over 8K are refused.
Blocking: run it in a worker thread; it stops at `cancel` or the deadline, checked every frame.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixverse_mcp.fitplan import AAC_RATES, AUDIO_BITRATE, FitPlan, plan_fit
from pixverse_mcp.fitprobe import MAX_FIT_INPUT_PIXELS, ClipInfo, Source, open_input, probe_clip
from pixverse_mcp.fitstages import VIDEO_TIME_BASE, SoundCutter, Writer
from pixverse_mcp.preview import MOV_DEMUXER

_SAME_TIME = 0.001


class JoinError(Exception):
    """The parts could not be joined (a part unreadable, the time ran out, or cancelled)."""


@dataclass(frozen=True)
class JoinPart:
    """A restyled part on disk and the span of the source it stands for (seconds)."""

    path: Path
    start: float
    end: float


@dataclass(frozen=True)
class Joined:
    """What was written."""

    seconds: float
    width: int
    height: int
    sound: bool


def join_parts(
    parts: list[JoinPart],
    dest: Path,
    *,
    sound: Source | None,
    cancel: threading.Event,
    deadline: float,
    threads: int = 2,
) -> Joined:
    """Write the joined video to ``dest`` (the caller removes it if this raises).

    Args:
        parts: The restyled parts, in order, covering the source from 0 without gaps.
        dest: The mp4 to write.
        sound: The source clip (a path or an open file) whose sound is put back; None for none.
        cancel: Set it to stop.
        deadline: `time.monotonic()` by which the join must be done.
        threads: For the decoder and x264.

    Raises:
        JoinError: with what went wrong, in words for the answer.
    """
    import av

    if not parts:
        raise JoinError("there are no parts to join")
    total = parts[-1].end
    width, height, rate = _first_picture(parts[0].path)
    info = _sound_info(sound)
    plan = _plan(info, width, height, rate, total)
    try:
        with av.open(str(dest), mode="w", format="mp4", options={"movflags": "+faststart"}) as output:
            writer = Writer(output, plan, threads)
            sounds = _sound_frames(sound, plan, info, total) if plan.keep_audio else iter(())
            pending = next(sounds, None)
            for picture in _pictures(parts, width, height, cancel, deadline):
                writer.picture(picture)
                now = picture.pts * VIDEO_TIME_BASE
                # Sound up to the picture's time: the muxer gets both in time order.
                while pending is not None and pending.pts / plan.audio_rate <= now:
                    writer.sound(pending)
                    pending = next(sounds, None)
            if writer.last_pts < 0:
                raise JoinError("the restyled parts hold no picture")
            while pending is not None:
                writer.sound(pending)
                pending = next(sounds, None)
            writer.finish(total, total)  # the last picture, then both encoders flushed
    except av.error.FFmpegError as exc:
        raise JoinError(f"the joined video could not be written ({exc})") from exc
    return Joined(seconds=total, width=width, height=height, sound=plan.keep_audio)


def _open_part(path: Path) -> Any:
    """A restyled part, opened as a fetched file: mp4/mov only, no other file or URL it may name."""
    import av

    def refuse(url: str, flags: int, options: object) -> Any:
        raise JoinError("a restyled part refers to other files, which are not opened")

    try:
        return av.open(
            path.open("rb"),
            mode="r",
            options={"format_whitelist": MOV_DEMUXER, "protocol_whitelist": "file"},
            metadata_errors="replace",
            io_open=refuse,
        )
    except (av.error.FFmpegError, OSError, ValueError, UnicodeError) as exc:
        raise JoinError(f"the restyled part {path.name} is not a readable mp4 ({exc})") from exc


def _first_picture(path: Path) -> tuple[int, int, float]:
    """The size (made even) and frame rate of the first part: the joined video's."""
    with _open_part(path) as container:
        if not container.streams.video:
            raise JoinError(f"the restyled part {path.name} has no video")
        stream = container.streams.video[0]
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        if width < 2 or height < 2 or width * height > MAX_FIT_INPUT_PIXELS:
            raise JoinError(f"the restyled part {path.name} is {width}x{height}, which is not joined")
        rate = float(stream.average_rate or stream.guessed_rate or 30)
    return width - width % 2, height - height % 2, rate


def _sound_info(sound: Source | None) -> ClipInfo | None:
    if sound is None:
        return None
    info = probe_clip(sound)
    return info if info.has_audio else None


def _plan(info: ClipInfo | None, width: int, height: int, rate: float, total: float) -> FitPlan:
    """The encoder settings: fitting's, for the joined picture's size and the source's sound."""
    base = plan_fit(info) if info is not None else None
    if base is None:
        return FitPlan.model_validate(
            {
                "source": _silent_source(width, height, rate, total),
                "fits": False,
                "reasons": (),
                "start_seconds": 0.0,
                "end_seconds": total,
                "width": width,
                "height": height,
                "rotation": 0,
                "keep_audio": False,
                "audio_rate": 48_000,
                "audio_channels": 2,
                "audio_bitrate": 0,
                "video_bitrate": 12_000_000,
                "buffer_bits": 24_000_000,
                "estimated_bytes": 0,
            }
        )
    source = base.source.model_copy(update={"frame_rate": rate})
    # No size cap here: the joined file stays on this machine, it is never uploaded.
    return base.model_copy(
        update={
            "source": source,
            "width": width,
            "height": height,
            "rotation": 0,
            "video_bitrate": 12_000_000,
            "buffer_bits": 24_000_000,
            "keep_audio": True,
            "audio_rate": base.audio_rate if base.audio_rate in AAC_RATES else 48_000,
            "audio_channels": min(2, max(1, base.audio_channels)),
            "audio_bitrate": AUDIO_BITRATE,
        }
    )


def _silent_source(width: int, height: int, rate: float, total: float) -> ClipInfo:
    return ClipInfo(
        path=None,
        container="mp4",
        format_name="mov,mp4",
        duration_seconds=total,
        width=width,
        height=height,
        size_bytes=0,
        video_codec="h264",
        pix_fmt="yuv420p",
        frame_rate=rate,
        start_time=0.0,
        rotation=0,
        display_matrix=None,
        pixel_aspect=1.0,
        has_audio=False,
    )


def _pictures(
    parts: list[JoinPart], width: int, height: int, cancel: threading.Event, deadline: float
) -> Iterator[Any]:
    """Every restyled frame, scaled to the joined size, with its time on the joined timeline."""
    import av

    for part in parts:
        length = part.end - part.start
        with _open_part(part.path) as container:
            if not container.streams.video:
                raise JoinError(f"the restyled part {part.path.name} has no video")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            first: float | None = None
            try:
                for frame in container.decode(stream):
                    if cancel.is_set():
                        raise JoinError("joining was cancelled")
                    if time.monotonic() > deadline:
                        raise JoinError("joining the parts ran out of time")
                    if frame.width * frame.height > MAX_FIT_INPUT_PIXELS:
                        raise JoinError(f"the restyled part {part.path.name} holds a picture over 8K")
                    at = float(frame.time) if frame.time is not None else None
                    if at is None:
                        continue
                    first = at if first is None else first
                    offset = at - first
                    if offset >= length - _SAME_TIME:
                        break
                    picture = frame.reformat(width=width, height=height, format="yuv420p")
                    picture.pts = round((part.start + offset) / VIDEO_TIME_BASE)
                    picture.time_base = VIDEO_TIME_BASE
                    yield picture
            except (av.error.FFmpegError, ValueError) as exc:
                raise JoinError(f"the restyled part {part.path.name} is damaged ({exc})") from exc


def _sound_frames(sound: Source | None, plan: FitPlan, info: ClipInfo | None, total: float) -> Iterator[Any]:
    """The source's sound from its start to ``total``, in the encoder's format, pts in samples."""
    if sound is None or info is None:
        return
    with open_input(sound) as container:
        stream = container.streams.audio[0]
        origin = info.start_time
        cutter = SoundCutter(stream, plan, origin, origin + total)
        for packet in container.demux(stream):
            for frame in packet.decode():
                yield from cutter.push(frame)
            at = packet.pts * packet.time_base if packet.pts is not None and packet.time_base else None
            if at is not None and float(at) > origin + total + 1:
                break
        yield from cutter.close()
