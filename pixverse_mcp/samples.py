"""Small sample clips for the demo and the tests, made with PyAV alone.

The picture is FFmpeg's ``testsrc2`` pattern: colour bars, a moving gradient and a running
counter, so a restyled copy is visibly different from the source and every frame differs from
the one before. The optional sound is a sine tone.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

# Muxers that take only their own codecs: a request for H.264 in them gets a codec they accept,
# so a test can ask for "a webm file" without knowing which codecs WebM allows.
_VIDEO_CODEC_FOR_MUXER = {"webm": "libvpx", "ogg": "libtheora"}
_AUDIO_CODEC_FOR_MUXER = {"webm": "libopus", "ogg": "libopus", "matroska": "libopus"}
_AUDIO_RATE = 48_000


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
) -> Path:
    """Write a short clip with a moving, colourful test pattern.

    Args:
        path: Where to write; its folder must exist. The suffix picks the muxer unless
            ``container`` is given.
        seconds: Length of the clip.
        width: Frame width in pixels.
        height: Frame height in pixels.
        fps: Frames per second.
        container: FFmpeg muxer name ("mp4", "mov", "webm", "matroska", "avi", ...), used
            whatever the file name says, so a WebM file can be named ``.mp4``.
        video_codec: Encoder for the picture. In WebM (which takes no H.264) the default
            becomes VP8.
        audio: Add a 440 Hz sine tone (AAC, or Opus for WebM and Matroska).
        video: False writes an audio-only file (``audio`` is then implied).

    Returns:
        ``path``.
    """
    import av

    if seconds <= 0 or width <= 0 or height <= 0 or fps <= 0:
        raise ValueError("seconds, width, height and fps must be positive")
    if not video:
        audio = True
    output: Any = av.open(str(path), mode="w", format=container)
    try:
        muxer = output.format.name
        # Every stream must exist before the first packet is muxed (that writes the header).
        video_stream = audio_stream = None
        if video:
            if video_codec == "libx264" and muxer in _VIDEO_CODEC_FOR_MUXER:
                video_codec = _VIDEO_CODEC_FOR_MUXER[muxer]
            video_stream, pattern = _video_stream(output, video_codec, seconds, width, height, fps)
        if audio:
            audio_stream, tone = _audio_stream(output, _AUDIO_CODEC_FOR_MUXER.get(muxer, "aac"), seconds)
        if video_stream is not None:
            for index, frame in enumerate(_pull_all(pattern)):
                frame.pts = index
                frame.time_base = Fraction(1, fps)
                output.mux(video_stream.encode(frame))
            output.mux(video_stream.encode(None))
        if audio_stream is not None:
            for frame in _pull_all(tone):
                output.mux(audio_stream.encode(frame))
            output.mux(audio_stream.encode(None))
    finally:
        output.close()
    return path


def _pull_all(graph: Any) -> list[Any]:
    """Drain a filter graph whose only source is a generator (testsrc2, sine)."""
    import av

    frames = []
    while True:
        try:
            frames.append(graph.pull())
        except (av.error.EOFError, av.error.BlockingIOError):
            return frames


def _video_stream(
    output: Any, codec: str, seconds: float, width: int, height: int, fps: int
) -> tuple[Any, Any]:
    """Add a video stream to ``output``; return it with a filter graph that yields the pattern."""
    from av.filter import Graph

    # x264 and VP8 need even sizes for 4:2:0 chroma; an odd size (a test of the 1921-pixel limit)
    # gets full-resolution chroma instead of being silently rounded.
    pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    if codec == "mjpeg":
        pix_fmt = "yuvj420p" if pix_fmt == "yuv420p" else "yuvj444p"
    graph = Graph()
    source = graph.add("testsrc2", f"size={width}x{height}:rate={fps}:duration={seconds}")
    convert = graph.add("format", f"pix_fmts={pix_fmt}")
    sink = graph.add("buffersink")
    source.link_to(convert)
    convert.link_to(sink)
    graph.configure()

    stream = output.add_stream(codec, rate=fps)
    stream.width = width
    stream.height = height
    stream.pix_fmt = pix_fmt
    # Fastest settings: the clips are throwaway and must be made in a fraction of a second.
    if codec == "libx264":
        stream.options = {"preset": "ultrafast", "crf": "28"}
    elif codec in ("libvpx", "libvpx-vp9"):
        stream.options = {"deadline": "realtime", "cpu-used": "8", "b": "500k"}
    return stream, graph


def _audio_stream(output: Any, codec: str, seconds: float) -> tuple[Any, Any]:
    """Add an audio stream to ``output``; return it with a filter graph that yields a sine tone."""
    from av.filter import Graph

    graph = Graph()
    source = graph.add("sine", f"frequency=440:sample_rate={_AUDIO_RATE}:duration={seconds}")
    convert = graph.add("aformat", "sample_fmts=fltp:channel_layouts=mono")
    sink = graph.add("abuffersink")
    source.link_to(convert)
    convert.link_to(sink)
    graph.configure()
    return output.add_stream(codec, rate=_AUDIO_RATE, layout="mono"), graph
