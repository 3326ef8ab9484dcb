"""The stages a frame goes through in fitting: scaled and turned upright, sound cut, encoded and muxed.

``transcode`` runs them: ``Scaler`` and ``SoundCutter`` in its reader thread, ``Writer`` in the
calling thread. PyAV is imported inside the functions, so importing this module stays fast.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pixverse_mcp.fitplan import FitPlan

VIDEO_TIME_BASE = Fraction(1, 90_000)


def upright_filters(matrix: tuple[int, ...] | None, rotation: int) -> list[tuple[str, str]]:
    """FFmpeg filters that show the stored picture as the display matrix says (as ffmpeg's autorotate)."""
    if matrix is None:
        return []
    if rotation == 90:
        return [("transpose", "cclock_flip" if matrix[3] > 0 else "clock")]
    if rotation == 270:
        return [("transpose", "clock_flip" if matrix[3] < 0 else "cclock")]
    filters = []
    if rotation == 180 and matrix[0] < 0:
        filters.append(("hflip", ""))
    if matrix[4] < 0:
        filters.append(("vflip", ""))
    return filters


class Scaler:
    """Scales a decoded frame to the copy's size and turns it upright (in the reader thread)."""

    def __init__(self, plan: FitPlan, threads: int) -> None:
        from av.video.reformatter import VideoReformatter

        info = plan.source
        self.threads = threads
        self.scaler = VideoReformatter()
        filters = upright_filters(info.display_matrix, info.rotation)
        turned = info.rotation in (90, 270) and bool(filters)
        self.scaled_size = (plan.height, plan.width) if turned else (plan.width, plan.height)
        self.graph = self._rotation_graph(filters) if filters else None

    def _rotation_graph(self, filters: list[tuple[str, str]]) -> Any:
        from av.filter import Graph
        from av.video.format import VideoFormat

        graph = Graph()
        width, height = self.scaled_size
        picture = VideoFormat("yuv420p")
        chain = [graph.add_buffer(width=width, height=height, format=picture, time_base=VIDEO_TIME_BASE)]
        chain += [graph.add(name, args or None) for name, args in filters]
        chain.append(graph.add("buffersink"))
        for before, after in itertools.pairwise(chain):
            before.link_to(after)
        graph.configure()
        return graph

    def __call__(self, frame: Any, pts: int) -> Any:
        width, height = self.scaled_size
        scaled = self.scaler.reformat(
            frame, width, height, "yuv420p", interpolation="BICUBIC", threads=self.threads
        )
        scaled.pts, scaled.time_base = pts, VIDEO_TIME_BASE
        if self.graph is not None:
            self.graph.push(scaled)
            scaled = self.graph.pull()
            scaled.pts, scaled.time_base = pts, VIDEO_TIME_BASE
        return scaled


class Writer:
    """The output side, in the calling thread: the encoders and the muxer."""

    def __init__(self, output: Any, plan: FitPlan, threads: int) -> None:
        info = plan.source
        self.output = output
        rate = Fraction(info.frame_rate or 30).limit_denominator(1001)
        self.video = output.add_stream("libx264", rate=rate)
        self.video.width, self.video.height, self.video.pix_fmt = plan.width, plan.height, "yuv420p"
        self.video.codec_context.time_base = VIDEO_TIME_BASE
        self.video.codec_context.thread_count = threads
        self.video.options = plan.x264_options()
        self.audio: Any = None
        if plan.keep_audio:
            layout = "stereo" if plan.audio_channels >= 2 else "mono"
            self.audio = output.add_stream("aac", rate=plan.audio_rate, layout=layout)
            self.audio.bit_rate = plan.audio_bitrate
        self.last_pts = -1
        self.pending: Any = None
        self.durations: dict[int, int] = {}

    def picture(self, scaled: Any) -> None:
        pts = scaled.pts
        if pts <= self.last_pts:
            return  # two frames on one instant: keep the first
        # Each frame is encoded once the next one is known: its duration is the gap between them,
        # so a variable frame rate keeps its timing and the last frame ends with the part.
        if self.pending is not None:
            self._encode(self.pending, pts - self.last_pts)
        self.pending, self.last_pts = scaled, pts

    def _encode(self, frame: Any, duration: int) -> None:
        self.durations[frame.pts] = duration
        for packet in self.video.encode(frame):
            self._mux_picture(packet)

    def _mux_picture(self, packet: Any) -> None:
        # x264 does not carry frame durations over to its packets; the muxer needs the last one.
        packet.duration = self.durations.pop(packet.pts, 0) if packet.pts is not None else 0
        self.output.mux_one(packet)

    def sound(self, frame: Any) -> None:
        self.output.mux(self.audio.encode(frame))

    def finish(self, length: float, interval: float) -> None:
        if self.pending is not None:
            natural = round(interval / VIDEO_TIME_BASE)
            self._encode(self.pending, max(1, min(natural, round(length / VIDEO_TIME_BASE) - self.last_pts)))
        for packet in self.video.encode(None):
            self._mux_picture(packet)
        if self.audio is not None:
            self.output.mux(self.audio.encode(None))


class SoundCutter:
    """Cuts the input's sound to the part, sample exact, in the encoder's rate and layout."""

    def __init__(self, stream: Any, plan: FitPlan, start: float, end: float) -> None:
        from av.filter import Graph

        self.rate = plan.audio_rate
        self.offset = round(start * self.rate)
        layout = "stereo" if plan.audio_channels >= 2 else "mono"
        self.graph = Graph()
        chain = [
            self.graph.add_abuffer(template=stream),
            self.graph.add("atrim", f"start={start}:end={end}"),
            self.graph.add("aresample", str(self.rate)),
            self.graph.add("aformat", f"sample_fmts=fltp:channel_layouts={layout}"),
            self.graph.add("abuffersink"),
        ]
        for before, after in itertools.pairwise(chain):
            before.link_to(after)
        self.graph.configure()

    def push(self, frame: Any) -> list[Any]:
        self.graph.push(frame)
        return self._pull()

    def close(self) -> list[Any]:
        self.graph.push(None)
        return self._pull()

    def _pull(self) -> list[Any]:
        import av

        frames: list[Any] = []
        while True:
            try:
                frame: Any = self.graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return frames
            # Timestamps of the part: the first sample kept is 0.
            frame.pts = max(0, round(float(frame.pts * frame.time_base) * self.rate) - self.offset)
            frame.time_base = Fraction(1, self.rate)
            frames.append(frame)
