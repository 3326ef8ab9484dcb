"""A small preview picture of a finished video: a few frames side by side in one JPEG.

The strip lets an assistant (and its user) see what a restyle did without opening the video.
It is built with PyAV alone (no numpy, no Pillow): frames are decoded, scaled to one height,
copied row by row into one wide frame, and encoded with FFmpeg's ``mjpeg`` encoder. If the JPEG
is over the byte budget, the quality and then the height go down until it fits, because a tool
result must stay small.

FFmpeg never gets a path or a URL: it reads through a bounded file-like object (`bounded_io`),
only with the mp4/mov demuxer, and may open nothing else (no playlists, no concat lists, no
references to other files). So a preview reads only the one file or URL it was given, within a
byte budget and a deadline, and stops when its caller gives up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

from pixverse_mcp.bounded_io import HttpVideoReader, LocalVideoReader, ReadLimits, ReadStopped
from pixverse_mcp.fetching import FetchRules, unfetchable_reason

_QUALITIES = (3, 5, 8, 12, 18, 25, 31)  # mjpeg qscale: 2 is best, 31 is worst
_MIN_TILE_HEIGHT = 16
_PIX_FMT = "yuvj420p"  # full-range 4:2:0, what JPEG viewers expect
# The mov demuxer only (mp4 and mov): what restyle makes, and nothing that names other files.
MOV_DEMUXER = "mov,mp4,m4a,3gp,3g2,mj2"
DEFAULT_READ_BYTES = 200 * 1024 * 1024
DEFAULT_READ_SECONDS = 10.0
_BUFFER_BYTES = 64 * 1024
_PREVIEW_THREADS = 2
_RUNNING = threading.BoundedSemaphore(_PREVIEW_THREADS)


class PreviewUnavailable(Exception):
    """The video cannot be read, so no preview picture can be made."""


def running_previews() -> int:
    """How many preview threads are working right now."""
    return _PREVIEW_THREADS - _RUNNING._value


def make_preview_strip(
    video: Path | str,
    *,
    frames: int = 4,
    max_bytes: int = 100_000,
    tile_height: int = 180,
    limits: ReadLimits | None = None,
    rules: FetchRules | None = None,
) -> bytes:
    """Make one JPEG holding ``frames`` frames taken evenly across a video, side by side.

    Args:
        video: A local mp4/mov file, or an http(s) URL of one (read with Range requests).
        frames: How many frames to show (fewer if the video has fewer distinct frames).
        max_bytes: Largest JPEG to return; quality, then tile height, are lowered to fit.
        tile_height: Height of each frame in the strip, in pixels (aspect kept, widths even).
        limits: The bytes and time the video may take to read (every pass counts), and the flag
            that stops reading when the caller gives up; by default 200 MB and 10 s.
        rules: Which addresses a URL may lead to; by default no internal address at all.

    Returns:
        The JPEG bytes (starting with FF D8, ending with FF D9).

    Raises:
        PreviewUnavailable: the video cannot be read, or no JPEG fits in ``max_bytes``.
        ValueError: ``frames``, ``max_bytes`` or ``tile_height`` is not positive.
    """
    if frames < 1 or max_bytes < 1 or tile_height < 1:
        raise ValueError("frames, max_bytes and tile_height must be positive")
    # A caller that gave up leaves its thread running; cap how many can pile up.
    if not _RUNNING.acquire(blocking=False):
        raise PreviewUnavailable("other previews are still being made; try again in a moment")
    try:
        limits = limits or ReadLimits.start(DEFAULT_READ_BYTES, DEFAULT_READ_SECONDS)
        try:
            with _bounded_source(video, limits, rules or FetchRules()) as reader:
                return _strip(reader, _label(video), frames, max_bytes, tile_height)
        except (ReadStopped, PreviewUnavailable) as exc:
            # A read that stopped is the real reason, whatever FFmpeg made of it.
            raise PreviewUnavailable(str(limits.stopped or exc)) from None
    finally:
        _RUNNING.release()


def grab_frames(
    video: Path | str, count: int, *, limits: ReadLimits, rules: FetchRules | None = None
) -> tuple[list[Any], float]:
    """Up to ``count`` distinct frames spread over a video, and its display aspect (width / height).

    Read as `make_preview_strip` reads (the same bounds, the same preview threads); for pictures
    made of several videos, such as a contact sheet.

    Raises:
        PreviewUnavailable: the video cannot be read within ``limits``.
    """
    if not _RUNNING.acquire(blocking=False):
        raise PreviewUnavailable("other previews are still being made; try again in a moment")
    try:
        try:
            with _bounded_source(video, limits, rules or FetchRules()) as reader:
                return _grab_frames(reader, _label(video), count)
        except (ReadStopped, PreviewUnavailable) as exc:
            raise PreviewUnavailable(str(limits.stopped or exc)) from None
    finally:
        _RUNNING.release()


def jpeg_within(picture: Any, max_bytes: int) -> bytes:
    """One frame as a JPEG of at most ``max_bytes``, the quality lowered until it fits.

    Raises:
        PreviewUnavailable: even the lowest quality is larger.
    """
    data = b""
    for quality in _QUALITIES:
        data = _encode_jpeg(picture, quality)
        if len(data) <= max_bytes:
            return data
    raise PreviewUnavailable(f"the picture is {len(data)} bytes at the lowest JPEG quality, over {max_bytes}")


@contextmanager
def _bounded_source(
    video: Path | str, limits: ReadLimits, rules: FetchRules
) -> Iterator[LocalVideoReader | HttpVideoReader]:
    """The bounded file-like object for a video: a local file, or an http(s) URL, never a path in a string."""
    source: LocalVideoReader | HttpVideoReader
    if isinstance(video, str):
        if (reason := unfetchable_reason(video)) is not None:
            raise PreviewUnavailable(reason)
        source = HttpVideoReader(video, rules, limits)
    else:
        try:
            source = LocalVideoReader(Path(video), limits)
        except OSError as exc:
            raise PreviewUnavailable(f"{video.name} could not be opened: {_reason(exc)}") from exc
    try:
        yield source
    finally:
        source.close()


def _strip(reader: Any, label: str, frames: int, max_bytes: int, tile_height: int) -> bytes:
    pictures, aspect = _grab_frames(reader, label, frames)
    height = max(_MIN_TILE_HEIGHT, _even(tile_height))
    while True:
        strip = _compose(pictures, height, aspect)
        for quality in _QUALITIES:
            data = _encode_jpeg(strip, quality)
            if len(data) <= max_bytes:
                return data
        if height <= _MIN_TILE_HEIGHT:
            raise PreviewUnavailable(
                f"even a {height}-pixel-high strip at the lowest JPEG quality is {len(data)} bytes, "
                f"over the {max_bytes}-byte limit"
            )
        height = max(_MIN_TILE_HEIGHT, _even(height * 3 // 4))


def _even(value: float) -> int:
    """Round to the nearest even number, at least 2 (4:2:0 chroma needs even sizes)."""
    return max(2, 2 * round(value / 2))


def _label(video: Path | str) -> str:
    """A short name for messages: the file name, or the last part of a URL's path."""
    if isinstance(video, Path):
        return video.name
    return video.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or video


def _grab_frames(video: Any, label: str, count: int) -> tuple[list[Any], float]:
    """Decode up to ``count`` distinct frames spread evenly over the video.

    Returns:
        The frames, and the display aspect ratio (width / height, sample aspect included).
    """
    import av

    try:
        container = _open(video)
    except (av.error.FFmpegError, OSError, ValueError, UnicodeError) as exc:
        raise PreviewUnavailable(
            f"{label} could not be opened as an mp4 or mov video: {_reason(exc)}"
        ) from exc
    try:
        if not container.streams.video:
            raise PreviewUnavailable(f"{label} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        sar = stream.codec_context.sample_aspect_ratio
        targets = _target_times(container, stream, count)
        pictures: list[Any] = []
        if targets:
            try:
                pictures = _grab_by_seeking(container, stream, targets)
            except (av.error.FFmpegError, ValueError):
                # Not seekable (a pipe, a server without range requests): one pass instead.
                pictures = []
    finally:
        container.close()
    try:
        if not pictures:
            pictures = _grab_in_one_pass(video, targets) if targets else _grab_by_count(video, count)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise PreviewUnavailable(f"{label} could not be decoded: {_reason(exc)}") from exc
    if not pictures:
        raise PreviewUnavailable(f"{label} has no decodable frames")
    first = pictures[0]
    aspect = first.width / first.height * (float(sar) if sar else 1.0)
    return pictures, aspect


def _target_times(container: Any, stream: Any, count: int) -> list[float]:
    """The middle of each of ``count`` equal slices of the video (empty if its length is unknown).

    Middles, not edges: the first frame is often black and the last one a fade-out.
    """
    time_base = stream.time_base
    if container.duration and container.duration > 0:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
    elif stream.duration and time_base:
        duration = float(stream.duration * time_base)
    else:
        return []
    start = float(stream.start_time * time_base) if stream.start_time is not None and time_base else 0.0
    return [start + duration * (index + 0.5) / count for index in range(count)]


def _keep(pictures: list[Any], frame: Any) -> None:
    """Add a frame unless it is already there (a short video gives the same frame twice)."""
    if all(p.pts != frame.pts for p in pictures):
        pictures.append(frame)


def _grab_by_seeking(container: Any, stream: Any, targets: list[float]) -> list[Any]:
    """For each target time, seek to the keyframe before it and decode up to it (fast)."""
    pictures: list[Any] = []
    for target in targets:
        container.seek(int(target / stream.time_base), stream=stream, backward=True)
        chosen = None
        for frame in container.decode(stream):
            chosen = frame
            if frame.time is not None and frame.time >= target:
                break
        if chosen is not None:
            _keep(pictures, chosen)
    return pictures


def _grab_in_one_pass(video: Any, targets: list[float]) -> list[Any]:
    """Decode from the start and keep the first frame at or after each target time."""
    pictures: list[Any] = []
    pending = list(targets)
    last = None
    with _open(video) as container:
        for frame in container.decode(video=0):
            last = frame
            while pending and frame.time is not None and frame.time >= pending[0]:
                pending.pop(0)
                _keep(pictures, frame)
            if not pending:
                break
    if pending and last is not None:
        _keep(pictures, last)  # the container claimed more length than the frames cover
    return pictures


def _grab_by_count(video: Any, count: int) -> list[Any]:
    """Length unknown: count the packets, then decode once and keep evenly spaced frames.

    Each pass opens the file afresh: a stream that cannot seek cannot rewind either.
    """
    with _open(video) as container:
        total = sum(1 for packet in container.demux(video=0) if packet.size)
    if total == 0:
        return []
    wanted = {min(total - 1, int(total * (i + 0.5) / count)) for i in range(count)}
    pictures: list[Any] = []
    with _open(video) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number in wanted:
                pictures.append(frame)
                if len(pictures) == len(wanted):
                    break
    return pictures


def _open(video: Any) -> Any:
    """Open the bounded reader afresh (from its first byte) with the mov demuxer only.

    Every pass reads through the same reader, so the byte budget and the deadline cover them all.
    """
    import av

    video.seek(0)
    return av.open(
        video,
        mode="r",
        options={"format_whitelist": MOV_DEMUXER, "protocol_whitelist": "file"},
        metadata_errors="replace",
        buffer_size=_BUFFER_BYTES,
        io_open=_refuse_other_files,
    )


def _refuse_other_files(url: str, flags: int, options: object) -> Any:
    """FFmpeg asks to open another file or URL (a reference inside the video): never allowed."""
    raise PreviewUnavailable("the video refers to other files, which are not opened")


def _compose(pictures: list[Any], height: int, aspect: float) -> Any:
    """Scale every picture to ``height`` and place them side by side in one frame."""
    from av.video.frame import VideoFrame

    width = _even(height * aspect)
    tiles = [p.reformat(width=width, height=height, format=_PIX_FMT, interpolation="AREA") for p in pictures]
    strip = VideoFrame(width * len(tiles), height, _PIX_FMT)
    for plane_index, target in enumerate(strip.planes):
        sources = [(memoryview(t.planes[plane_index]), t.planes[plane_index].line_size) for t in tiles]
        row_width = tiles[0].planes[plane_index].width  # bytes per row: one byte per 8-bit sample
        padding = bytes(target.line_size - row_width * len(tiles))
        rows: list[bytes | memoryview] = []
        for row in range(target.height):
            for data, stride in sources:
                rows.append(data[row * stride : row * stride + row_width])
            rows.append(padding)
        target.update(b"".join(rows))
    return strip


def _encode_jpeg(strip: Any, quality: int) -> bytes:
    """Encode one frame as a baseline JPEG at a fixed qscale (2 best .. 31 worst)."""
    import av

    codec: Any = av.CodecContext.create("mjpeg", "w")
    codec.width = strip.width
    codec.height = strip.height
    codec.pix_fmt = _PIX_FMT
    codec.time_base = Fraction(1, 1)
    # qmin = qmax pins the quantiser: the encoder's rate control has nothing to choose.
    codec.qmin = quality
    codec.qmax = quality
    strip.pts = 0
    packets = codec.encode(strip) + codec.encode(None)
    return b"".join(bytes(packet) for packet in packets)


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc or type(exc).__name__).rstrip(".")
