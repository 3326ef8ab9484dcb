"""Small sample clips for the demo and the tests, made with PyAV alone.

The default picture is FFmpeg's ``testsrc2`` pattern: colour bars, a moving gradient and a
running counter, so a restyled copy is visibly different from the source and every frame differs
from the one before. Other patterns serve tests that check pixels: ``counter`` shows each frame's
index as four grey bands (read back with ``read_counter``), ``marker`` is black with a white square
in the top-left corner (to see where a rotation put it), ``noise`` is incompressible (a file of a
chosen size with ``bitrate``). The optional sound is a sine tone.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

# Muxers that take only their own codecs: a request for H.264 in them gets a codec they accept,
# so a test can ask for "a webm file" without knowing which codecs WebM allows.
_VIDEO_CODEC_FOR_MUXER = {"webm": "libvpx", "ogg": "libtheora"}
_AUDIO_CODEC_FOR_MUXER = {"webm": "libopus", "ogg": "libopus", "matroska": "libopus"}
_AUDIO_RATE = 48_000
_PATTERNS = ("testsrc2", "counter", "marker", "noise")
# The counter: four bands, each one base-6 digit of the frame index, as a grey level far enough
# from its neighbours to survive lossy encoding and scaling.
_COUNTER_BANDS = 4
_COUNTER_BASE = 6
_COUNTER_LOW = 32
_COUNTER_STEP = 36
_TIME_BASE_VFR = Fraction(1, 1000)


def make_clip(
    path: Path,
    *,
    seconds: float = 3.0,
    width: int = 320,
    height: int = 240,
    fps: int = 24,
    container: str | None = None,
    video_codec: str = "libx264",
    audio: bool = False,
    video: bool = True,
    pattern: str = "testsrc2",
    rotation: int = 0,
    frame_times: Sequence[float] | None = None,
    bitrate: int | None = None,
    beeping: bool = False,
) -> Path:
    """Write a short clip with a test picture.

    Args:
        path: Where to write; its folder must exist. The suffix picks the muxer unless
            ``container`` is given.
        seconds: Length of the clip.
        width: Frame width in pixels.
        height: Frame height in pixels.
        fps: Frames per second (the nominal rate when ``frame_times`` is given).
        container: FFmpeg muxer name ("mp4", "mov", "webm", "matroska", "avi", ...), used
            whatever the file name says, so a WebM file can be named ``.mp4``.
        video_codec: Encoder for the picture ("libx264", "libx265", ...). In WebM (which takes no
            H.264) the default becomes VP8.
        audio: Add a 440 Hz sine tone (AAC, or Opus for WebM and Matroska).
        video: False writes an audio-only file (``audio`` is then implied).
        pattern: "testsrc2", "counter", "marker" or "noise" (see the module docstring).
        rotation: Degrees (90, 180, 270) a player turns the picture clockwise, written as the
            stream's display matrix (mp4 and mov), as phones do for a clip filmed upright.
        frame_times: Presentation times in seconds, one per frame, for a variable frame rate;
            the clip then ends with the last one.
        bitrate: Video bits per second (x264 at a fixed rate) instead of a quality setting.
        beeping: The tone sounds only in even seconds (0-1, 2-3, ...), silent in odd ones, so
            a cut's sound can be checked against its picture.

    Returns:
        ``path``.
    """
    import av

    if seconds <= 0 or width <= 0 or height <= 0 or fps <= 0:
        raise ValueError("seconds, width, height and fps must be positive")
    if pattern not in _PATTERNS:
        raise ValueError(f"pattern must be one of {_PATTERNS}")
    if not video:
        audio = True
    times = list(frame_times) if frame_times is not None else None
    output: Any = av.open(str(path), mode="w", format=container)
    try:
        muxer = output.format.name
        # Every stream must exist before the first packet is muxed (that writes the header).
        sources: list[Iterator[tuple[float, Any, Any]]] = []
        streams: list[Any] = []
        if video:
            if video_codec == "libx264" and muxer in _VIDEO_CODEC_FOR_MUXER:
                video_codec = _VIDEO_CODEC_FOR_MUXER[muxer]
            stream = _video_stream(output, video_codec, width, height, fps, bitrate, times is not None)
            if rotation:
                # PyAV counts counter-clockwise; a player turns the picture the other way.
                stream.set_display_rotation(-rotation)
            frames = _video_frames(pattern, seconds, width, height, fps, times, stream.pix_fmt)
            sources.append(_tagged(stream, frames))
            streams.append(stream)
        if audio:
            stream, tone = _audio_stream(output, _AUDIO_CODEC_FOR_MUXER.get(muxer, "aac"), seconds, beeping)
            sources.append(_tagged(stream, ((float(f.pts) / _AUDIO_RATE, f) for f in _pull_all(tone))))
            streams.append(stream)
        # Picture and sound in time order, so a long clip is interleaved as a camera writes it.
        for _, stream, frame in heapq.merge(*sources, key=lambda item: item[0]):
            output.mux(stream.encode(frame))
        for stream in streams:
            output.mux(stream.encode(None))
    finally:
        output.close()
    return path


def read_counter(frame: Any) -> int:
    """The frame index shown by a frame of the ``counter`` pattern (after any scaling)."""
    gray = frame.reformat(format="gray")
    plane = gray.planes[0]
    row = bytes(plane)[(gray.height // 2) * plane.line_size :][: gray.width]
    index = 0
    band = gray.width / _COUNTER_BANDS
    for digit_at in range(_COUNTER_BANDS):
        middle = row[int(band * digit_at + band / 4) : int(band * digit_at + band * 3 / 4)]
        level = sum(middle) / len(middle)
        digit = min(_COUNTER_BASE - 1, max(0, round((level - _COUNTER_LOW) / _COUNTER_STEP)))
        index = index * _COUNTER_BASE + digit
    return index


def _tagged(stream: Any, frames: Iterator[tuple[float, Any]]) -> Iterator[tuple[float, Any, Any]]:
    for when, frame in frames:
        yield when, stream, frame


def _pull_all(graph: Any) -> Iterator[Any]:
    """Drain a filter graph whose only source is a generator (testsrc2, sine)."""
    import av

    while True:
        try:
            yield graph.pull()
        except (av.error.EOFError, av.error.BlockingIOError):
            return


def _video_stream(
    output: Any, codec: str, width: int, height: int, fps: int, bitrate: int | None, vfr: bool
) -> Any:
    """Add a video stream to ``output`` with the fastest settings of its encoder."""
    # x264 and VP8 need even sizes for 4:2:0 chroma; an odd size (a test of the 1921-pixel limit)
    # gets full-resolution chroma instead of being silently rounded.
    pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    if codec == "mjpeg":
        pix_fmt = "yuvj420p" if pix_fmt == "yuv420p" else "yuvj444p"
    stream = output.add_stream(codec, rate=fps)
    stream.width = width
    stream.height = height
    stream.pix_fmt = pix_fmt
    if vfr:
        stream.codec_context.time_base = _TIME_BASE_VFR
    # Fastest settings: the clips are throwaway and must be made in a fraction of a second.
    if codec == "libx264":
        quality = {"b": str(bitrate), "maxrate": str(bitrate), "bufsize": str(bitrate)} if bitrate else {}
        # A keyframe every 2 s, as cameras write them, so seeking into a long clip has a target.
        stream.options = {"preset": "ultrafast", "g": str(2 * fps), **(quality or {"crf": "28"})}
    elif codec in ("libx265", "hevc"):
        stream.options = {"preset": "ultrafast", "crf": "30", "x265-params": "log-level=error"}
        if output.format.name in ("mp4", "mov"):
            stream.codec_tag = "hvc1"  # how Apple devices tag HEVC
    elif codec in ("libvpx", "libvpx-vp9"):
        stream.options = {"deadline": "realtime", "cpu-used": "8", "b": "500k"}
    return stream


def _video_frames(
    pattern: str,
    seconds: float,
    width: int,
    height: int,
    fps: int,
    times: list[float] | None,
    pix_fmt: str,
) -> Iterator[tuple[float, Any]]:
    """(time, frame) pairs of the picture, with pts set in the encoder's time base."""
    count = len(times) if times is not None else max(1, round(seconds * fps))
    if pattern in ("counter", "marker"):
        pictures: Iterator[Any] = (_drawn_frame(pattern, i, width, height) for i in range(count))
    else:
        pictures = _pull_all(_pattern_graph(pattern, width, height, fps, count / fps, pix_fmt))
    for index, frame in zip(range(count), pictures, strict=False):
        when = times[index] if times is not None else index / fps
        time_base = _TIME_BASE_VFR if times is not None else Fraction(1, fps)
        frame.pts = round(when / time_base)
        frame.time_base = time_base
        yield when, frame


def _pattern_graph(pattern: str, width: int, height: int, fps: int, seconds: float, pix_fmt: str) -> Any:
    from av.filter import Graph

    graph = Graph()
    chain = [graph.add("testsrc2", f"size={width}x{height}:rate={fps}:duration={seconds}")]
    if pattern == "noise":
        chain.append(graph.add("noise", "alls=100:allf=t"))
    chain += [graph.add("format", f"pix_fmts={pix_fmt}"), graph.add("buffersink")]
    for before, after in itertools.pairwise(chain):
        before.link_to(after)
    graph.configure()
    return graph


def _drawn_frame(pattern: str, index: int, width: int, height: int) -> Any:
    """A yuv420p frame of the counter (frame ``index``) or of the corner marker."""
    import av

    if width % 2 or height % 2:
        raise ValueError("the counter and marker patterns need an even width and height")
    frame = av.VideoFrame(width, height, "yuv420p")
    luma = frame.planes[0]
    pad = bytes(luma.line_size - width)
    if pattern == "counter":
        digits = [(index // _COUNTER_BASE**p) % _COUNTER_BASE for p in reversed(range(_COUNTER_BANDS))]
        row = bytes(_COUNTER_LOW + _COUNTER_STEP * digits[x * _COUNTER_BANDS // width] for x in range(width))
        luma.update((row + pad) * height)
    else:
        side = max(2, min(width, height) // 4)
        lit = bytes([235]) * side + bytes([16]) * (width - side) + pad
        dark = bytes([16]) * width + pad
        luma.update(lit * side + dark * (height - side))
    for chroma in frame.planes[1:]:
        chroma.update(bytes([128]) * chroma.buffer_size)
    return frame


def _audio_stream(output: Any, codec: str, seconds: float, beeping: bool) -> tuple[Any, Any]:
    """Add an audio stream to ``output``; return it with a filter graph that yields a sine tone."""
    from av.filter import Graph

    graph = Graph()
    chain = [graph.add("sine", f"frequency=440:sample_rate={_AUDIO_RATE}:duration={seconds}")]
    if beeping:
        chain.append(graph.add("volume", "volume=0:enable='gte(mod(t,2),1)'"))
    chain += [graph.add("aformat", "sample_fmts=fltp:channel_layouts=mono"), graph.add("abuffersink")]
    for before, after in itertools.pairwise(chain):
        before.link_to(after)
    graph.configure()
    return output.add_stream(codec, rate=_AUDIO_RATE, layout="mono"), graph
