"""Probing and restyling videos with PyAV.

Everything here is blocking and CPU-bound: callers run it in a worker thread. PyAV is imported
inside the functions so that importing the sandbox stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from .catalog import FilterStep

# Demuxer names PyAV reports for the containers the upload endpoint accepts.
MP4_MOV = "mov,mp4,m4a,3gp,3g2,mj2"
WEBM = "matroska,webm"
VIDEO_CONTAINERS = frozenset({MP4_MOV, WEBM})


class ProbeError(Exception):
    """The file is not a readable video (or audio) resource."""


class RenderError(Exception):
    """The restyle could not be rendered."""


@dataclass(frozen=True)
class ProbeInfo:
    """What the sandbox needs to know about an uploaded file."""

    container: str
    media_type: str  # "video" or "audio"
    duration: float
    width: int
    height: int

    @property
    def is_mp4_or_mov(self) -> bool:
        return self.container == MP4_MOV


@dataclass(frozen=True)
class RenderResult:
    """The rendered file's facts, as the result endpoint reports them."""

    width: int
    height: int
    frames: int


def probe(path: Path) -> ProbeInfo:
    """Open ``path`` and describe it; raise :class:`ProbeError` if it is not a video/audio file."""
    import av

    try:
        with av.open(str(path)) as container:
            fmt = container.format.name
            if fmt not in VIDEO_CONTAINERS:
                raise ProbeError(f"unsupported container {fmt!r}")
            duration = _duration(container)
            if container.streams.video:
                stream = container.streams.video[0]
                width, height = stream.codec_context.width, stream.codec_context.height
                if not width or not height:
                    raise ProbeError("video stream without a size")
                # Decode one frame: a container with a broken stream is not a video resource.
                next(container.decode(stream))
                return ProbeInfo(fmt, "video", duration, width, height)
            if container.streams.audio:
                return ProbeInfo(fmt, "audio", duration, 0, 0)
    except ProbeError:
        raise
    except (av.error.FFmpegError, StopIteration, OSError, ValueError) as exc:
        raise ProbeError(str(exc)) from exc
    raise ProbeError("no video or audio stream")


def _duration(container: Any) -> float:
    if container.duration is not None:
        return float(container.duration) / 1_000_000
    for stream in container.streams:
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
    return 0.0


def _build_graph(source: Any, steps: Sequence[FilterStep]) -> Any:
    """Link ``source`` -> steps -> buffersink in a new graph (``source`` is a stream or a filter)."""
    import av

    graph = av.filter.Graph()
    first = graph.add_buffer(template=source) if not isinstance(source, tuple) else graph.add(*source)
    nodes = [first, *(graph.add(name, args) for name, args in steps), graph.add("buffersink")]
    graph.link_nodes(*nodes)
    graph.configure()
    return graph


def _drain(graph: Any) -> list[Any]:
    """Pull every frame the graph has ready right now."""
    import av

    frames = []
    while True:
        try:
            frames.append(graph.pull())
        except (av.error.BlockingIOError, av.error.EOFError):
            return frames


def render(src: Path, dst: Path, steps: Sequence[FilterStep]) -> RenderResult:
    """Restyle the first video stream of ``src`` into an H.264 mp4 at ``dst``.

    Same size (rounded down to even) and frame rate as the input; audio is dropped.
    """
    import av

    try:
        with av.open(str(src)) as inp:
            in_stream = inp.streams.video[0]
            in_stream.thread_type = "AUTO"
            rate = in_stream.average_rate or in_stream.guessed_rate or Fraction(25)
            graph = _build_graph(in_stream, steps)
            with av.open(str(dst), "w", format="mp4") as out:
                out_stream: Any = None
                frames = 0
                for packet_frames in _frames(inp, in_stream, graph):
                    for frame in packet_frames:
                        if out_stream is None:
                            out_stream = _add_encoder(out, rate, frame.width, frame.height)
                        frame.pts = frames
                        frame.time_base = out_stream.codec_context.time_base
                        frames += 1
                        out.mux(out_stream.encode(frame))
                if out_stream is None:
                    raise RenderError("the source has no decodable frames")
                out.mux(out_stream.encode(None))
                return RenderResult(out_stream.codec_context.width, out_stream.codec_context.height, frames)
    except RenderError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise RenderError(str(exc)) from exc


def _frames(inp: Any, stream: Any, graph: Any) -> Any:
    """Yield lists of filtered frames, flushing the graph at the end."""
    for frame in inp.decode(stream):
        graph.push(frame)
        yield _drain(graph)
    graph.push(None)
    yield _drain(graph)


def _add_encoder(out: Any, rate: Fraction, width: int, height: int) -> Any:
    """H.264 when this FFmpeg has libx264, else MPEG-4 Part 2 (both play in browsers/players)."""
    import av

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    stream = out.add_stream(codec, rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.codec_context.time_base = 1 / Fraction(rate)
    if codec == "libx264":
        # Fast presets: the sandbox must finish a short clip in well under a second.
        stream.options = {"preset": "veryfast", "crf": "23"}
    return stream


def render_cover(steps: Sequence[FilterStep], width: int = 320, height: int = 180) -> bytes:
    """A JPEG of the style applied to a synthetic test frame."""
    import av

    source = ("testsrc2", f"size={width}x{height}:rate=1:duration=1")
    graph = _build_graph(source, [*steps, ("format", "yuvj420p")])
    frame = graph.pull()
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = frame.width, frame.height, "yuvj420p"
    codec.time_base = Fraction(1, 1)
    frame.pts = 0
    return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])


def write_test_clip(
    path: Path, seconds: float = 3.0, width: int = 320, height: int = 240, fps: int = 25
) -> Path:
    """Write a synthetic mp4 (FFmpeg's ``testsrc2`` pattern): handy for demos without a video."""
    import av

    graph = _build_graph(
        ("testsrc2", f"size={width}x{height}:rate={fps}:duration={seconds}"), [("format", "yuv420p")]
    )
    with av.open(str(path), "w", format="mp4") as out:
        stream = _add_encoder(out, Fraction(fps), width, height)
        for index, frame in enumerate(_drain(graph)):
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path
