"""What a clip holds, measured for fitting: the probe behind ``fit.plan_fit``.

Beyond the upload checks it reads what a fitted copy depends on: the display matrix (phones film
upright and store the picture sideways with a rotation), the pixel aspect, the first timestamp,
the pixel format and the audio. It works on a path or on an already open binary file, so a
caller that opened the file once (after checking where it lives) never opens it again by name.

PyAV is imported inside the functions that need it, so importing this module stays fast.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from pixverse_mcp.errors import InputError
from pixverse_mcp.video import OPEN_OPTIONS, packet_span, stream_duration
from pixverse_mcp.video import container_name as probe_container_name


class BinaryReader(Protocol):
    """What fitting reads an open file through: an io file object, or a `LocalFile.reader()`."""

    def read(self, size: int = -1, /) -> bytes: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def tell(self) -> int: ...
    def fileno(self) -> int: ...


Source = Path | str | BinaryReader
"""A path, or an open binary file (read from the start; its position is not relied on)."""

# Bounds on what fitting takes on, chosen so one fit stays within minutes and a few hundred MB.
MAX_FIT_INPUT_BYTES = 2 * 1024**3
MAX_FIT_INPUT_SECONDS = 20 * 60.0
MAX_FIT_INPUT_SIDE = 8192
MAX_FIT_INPUT_PIXELS = 7680 * 4320  # 8K UHD: a larger picture would hold too much in the decoder

# The demuxer and protocol whitelists (OPEN_OPTIONS) are the upload probe's, from video.py.
_ATTACHED_PICTURE = 0x400  # AV_DISPOSITION_ATTACHED_PIC: cover art shows up as a video stream


class ClipInfo(BaseModel):
    """What a video holds, measured from its content (a superset of the upload probe)."""

    model_config = ConfigDict(frozen=True)

    path: Path | None
    """The file's path, or None for an open file given without one."""
    container: str
    """"mp4" or "mov" (told apart by the ftyp brand), else the demuxer's name ("webm", "matroska", ...)."""
    format_name: str
    duration_seconds: float
    width: int
    """Stored width in pixels, before rotation."""
    height: int
    size_bytes: int
    video_codec: str
    pix_fmt: str
    frame_rate: float | None
    start_time: float
    """Seconds of the first timestamp: the clip's 0:00."""
    rotation: int
    """Degrees (0, 90, 180, 270) a player turns the stored picture clockwise to show it."""
    display_matrix: tuple[int, ...] | None
    """The stream's 3x3 display matrix (16.16 fixed point), when it has one."""
    pixel_aspect: float
    """Width of a pixel over its height (1.0 for square pixels)."""
    has_audio: bool
    audio_codec: str | None = None
    audio_channels: int = 0
    audio_rate: int = 0

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as a player shows the picture (pixel aspect and rotation applied)."""
        width = max(1, round(self.width * self.pixel_aspect))
        return (self.height, width) if self.rotation in (90, 270) else (width, self.height)


def source_label(source: Source) -> str:
    if isinstance(source, (str, Path)):
        return repr(str(source))
    name = getattr(source, "name", None)
    return repr(name) if isinstance(name, str) else "the given file"


def source_size(source: Source) -> int:
    """The size in bytes of a path or an open file."""
    if isinstance(source, (str, Path)):
        try:
            return Path(source).stat().st_size
        except OSError as exc:
            raise InputError(
                f"the file {source_label(source)} cannot be read ({exc.strerror}).", argument="path"
            ) from exc
    with contextlib.suppress(AttributeError, OSError, ValueError):
        return os.fstat(source.fileno()).st_size
    here = source.tell()
    try:
        return source.seek(0, os.SEEK_END)
    finally:
        source.seek(here)


def read_at(source: Source, offset: int, size: int) -> bytes:
    """Up to ``size`` bytes at ``offset``, without moving an open file's position for long."""
    if isinstance(source, (str, Path)):
        with Path(source).open("rb") as file:
            file.seek(offset)
            return file.read(size)
    with contextlib.suppress(AttributeError, OSError, ValueError):
        return os.pread(source.fileno(), size, offset)
    here = source.tell()
    try:
        source.seek(offset)
        return source.read(size)
    finally:
        source.seek(here)


@contextlib.contextmanager
def open_input(source: Source) -> Iterator[Any]:
    """Open a clip with PyAV, kept to this one local file; failures become an InputError."""
    import av

    target: Any = str(source) if isinstance(source, (str, Path)) else source
    if not isinstance(source, (str, Path)):
        source.seek(0)
    try:
        container = av.open(target, mode="r", options=OPEN_OPTIONS, metadata_errors="replace")
    except (av.error.FFmpegError, OSError, ValueError, UnicodeError) as exc:
        raise unreadable(source, reason(exc)) from exc
    try:
        yield container
    finally:
        container.close()


def unreadable(source: Source, detail: str) -> InputError:
    return InputError(
        f"the file {source_label(source)} could not be read as a video ({detail}). It may be damaged, "
        "still being written, or not a video; export it again from the app that made it (as mp4).",
        argument="path",
    )


def reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).rstrip(".")


def video_stream(container: Any) -> Any:
    """The first real video stream (not cover art), or None."""
    for stream in container.streams.video:
        if not int(stream.disposition or 0) & _ATTACHED_PICTURE:
            return stream
    return None


def container_name(format_name: str, head: bytes) -> str:
    """The container's name as fitting reports it: the upload probe's, with a name of its own for an
    old QuickTime layout without an ftyp box (which restyle does not take as mov)."""
    name = probe_container_name(format_name, head)
    return "mov-without-ftyp" if name.startswith("mov,mp4") else name


def _rotation(matrix: tuple[int, ...] | None, frame_rotation: float) -> int:
    """Clockwise degrees, to the nearest quarter turn (phones only ever use quarter turns)."""
    if matrix is None:
        return 0
    return round(-frame_rotation / 90) % 4 * 90


def _display_matrix(frame: Any) -> tuple[tuple[int, ...] | None, float]:
    from av.sidedata.sidedata import Type

    for side_data in frame.side_data:
        if side_data.type == Type.DISPLAYMATRIX and len(bytes(side_data)) >= 36:
            return struct.unpack("=9i", bytes(side_data)[:36]), float(frame.rotation)
    return None, 0.0


def probe_clip(source: Source) -> ClipInfo:
    """Measure a clip for fitting, refusing what fitting cannot take on.

    Args:
        source: A path, or an open binary file.

    Returns:
        The measured values.

    Raises:
        InputError: (argument "path") empty, unreadable, no video stream (audio only), an unknown
            or undecodable video codec, no frames, or over the input limits (2 GiB, 20 minutes,
            8192 pixels on a side, 8K in all).
    """
    import av

    label = source_label(source)
    size = source_size(source)
    if size == 0:
        raise InputError(f"the file {label} is empty (0 bytes); it is not a video.", argument="path")
    if size > MAX_FIT_INPUT_BYTES:
        raise InputError(
            f"the file {label} is {size / 1024**3:.1f} GiB; fitting takes files up to "
            f"{MAX_FIT_INPUT_BYTES // 1024**3} GiB. Export the part you want from your video app first.",
            argument="path",
        )
    with open_input(source) as container:
        format_name = str(container.format.name)
        stream = video_stream(container)
        if stream is None:
            what = "only audio" if container.streams.audio else "neither audio nor video"
            raise InputError(
                f"the file {label} has no video stream (it holds {what}); restyle needs a video.",
                argument="path",
            )
        context = stream.codec_context
        if context is None:
            raise InputError(
                f"the video in {label} uses a codec this server does not know, so it cannot be "
                "converted; export it again as H.264 mp4 from the app that made it.",
                argument="path",
            )
        codec = str(context.name or "unknown")
        _check_picture_size(label, int(context.width or 0), int(context.height or 0))  # before decoding
        duration = stream_duration(container, stream)
        start = container.start_time
        start_time = float(start) / 1_000_000 if start is not None else 0.0  # AV_TIME_BASE
        try:
            frame = next(container.decode(stream), None)
        except av.error.DecoderNotFoundError as exc:
            raise InputError(
                f"the video in {label} is {codec}, which this server cannot decode; export it again as "
                "H.264 mp4.",
                argument="path",
            ) from exc
        except (av.error.FFmpegError, ValueError) as exc:
            raise unreadable(source, f"its first picture cannot be decoded: {reason(exc)}") from exc
        if frame is None:
            raise InputError(f"the file {label} has a video stream with no frames.", argument="path")
        matrix, frame_rotation = _display_matrix(frame)
        aspect = stream.sample_aspect_ratio or context.sample_aspect_ratio
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_context = audio.codec_context if audio is not None else None
        rate = stream.average_rate or stream.guessed_rate
        width, height = int(context.width or frame.width), int(context.height or frame.height)
        _check_picture_size(label, width, height)
        pix_fmt = str(frame.format.name)
    if duration is None:
        with open_input(source) as container:
            try:
                duration = packet_span(container, video_stream(container))
            except (av.error.FFmpegError, ValueError) as exc:
                raise unreadable(source, reason(exc)) from exc
    if duration is None or duration <= 0:
        raise InputError(
            f"the file {label} has no length (0 s); it holds no playable video.", argument="path"
        )
    if duration > MAX_FIT_INPUT_SECONDS:
        raise InputError(
            f"the clip {label} is {duration / 60:.1f} minutes long; fitting takes clips up to "
            f"{MAX_FIT_INPUT_SECONDS / 60:.0f} minutes. Export the part you want from your video app first.",
            argument="path",
        )
    return ClipInfo(
        path=Path(source) if isinstance(source, (str, Path)) else _name_path(source),
        container=container_name(format_name, read_at(source, 0, 4096)),
        format_name=format_name,
        duration_seconds=duration,
        width=width,
        height=height,
        size_bytes=size,
        video_codec=codec,
        pix_fmt=pix_fmt,
        frame_rate=float(rate) if rate else None,
        start_time=start_time,
        rotation=_rotation(matrix, frame_rotation),
        display_matrix=matrix,
        pixel_aspect=float(aspect) if isinstance(aspect, Fraction) and aspect > 0 else 1.0,
        has_audio=audio_context is not None,
        audio_codec=str(audio_context.name) if audio_context is not None else None,
        audio_channels=int(audio_context.channels or 0) if audio_context is not None else 0,
        audio_rate=int(audio_context.sample_rate or 0) if audio_context is not None else 0,
    )


def _check_picture_size(label: str, width: int, height: int) -> None:
    if max(width, height) > MAX_FIT_INPUT_SIDE or width * height > MAX_FIT_INPUT_PIXELS:
        raise InputError(
            f"the video {label} is {width}x{height}; fitting takes at most {MAX_FIT_INPUT_SIDE} pixels "
            "on a side and 8K (7680x4320) in all. Export it at a lower resolution first.",
            argument="path",
        )


def _name_path(source: BinaryReader) -> Path | None:
    name = getattr(source, "name", None)
    return Path(name) if isinstance(name, str) and name else None
