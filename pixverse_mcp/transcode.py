"""The PyAV pipeline that writes a fitted copy: trim, scale, turn upright, encode H.264 + AAC in mp4.

One pass, one thread of Python (the codecs and the scaler run their own threads without the
GIL): demux, decode, drop what lies before the part, scale, rotate, encode, mux. Cuts are frame
accurate: it seeks to the keyframe before the part and decodes from there, and the frame that is
on screen at the start becomes the first frame. Timestamps come from the input (variable frame
rates stay as they are), rescaled to the part. The sound is cut to the same span, sample exact.

PyAV is imported inside the functions, so importing this module stays fast.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixverse_mcp.errors import InputError, PixVerseError
from pixverse_mcp.fitprobe import Source, open_input, reason, video_stream

if TYPE_CHECKING:
    from pixverse_mcp.fitplan import FitPlan

VIDEO_TIME_BASE = Fraction(1, 90_000)
# Seek this far before the part, so the keyframe found leaves room for sound that a container
# stores a little ahead of the picture.
_PREROLL_SECONDS = 0.5
_SAME_TIME = 0.001  # timestamps this close count as the same instant
# A video that stops this long before it says it ends was cut short (copied or written halfway).
_TRUNCATED_SECONDS = 1.0


class FitCancelledError(PixVerseError):
    """Fitting was cancelled; its partial copy is removed."""


class FitFailedError(PixVerseError):
    """The encoder or the muxer failed on input the probe accepted."""


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


def _damaged(source_label: str, what: str, seconds: float, exc: BaseException) -> InputError:
    return InputError(
        f"the {what} in {source_label} is damaged at about {seconds:.1f} s ({reason(exc)}). Choose a "
        "part that avoids that spot with start_seconds/end_seconds, or export the clip again.",
        argument="path",
    )


class _Writer:
    """The output side: encoders, the scaler, the rotation graph, and the muxer."""

    def __init__(self, output: Any, plan: FitPlan, threads: int) -> None:
        from av.video.reformatter import VideoReformatter

        info = plan.source
        self.output = output
        self.plan = plan
        self.threads = threads
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
        self.scaler = VideoReformatter()
        filters = upright_filters(info.display_matrix, info.rotation)
        turned = info.rotation in (90, 270) and bool(filters)
        self.scaled_size = (plan.height, plan.width) if turned else (plan.width, plan.height)
        self.graph = self._rotation_graph(filters) if filters else None
        self.last_pts = -1
        self.pending: Any = None
        self.durations: dict[int, int] = {}

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

    def picture(self, frame: Any, seconds: float) -> None:
        pts = round(seconds / VIDEO_TIME_BASE)
        if pts <= self.last_pts:
            return  # two frames on one instant: keep the first
        width, height = self.scaled_size
        scaled = self.scaler.reformat(
            frame, width, height, "yuv420p", interpolation="BICUBIC", threads=self.threads
        )
        scaled.pts, scaled.time_base = pts, VIDEO_TIME_BASE
        if self.graph is not None:
            self.graph.push(scaled)
            scaled = self.graph.pull()
            scaled.pts, scaled.time_base = pts, VIDEO_TIME_BASE
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


class _SoundCutter:
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


def transcode(
    source: Source,
    plan: FitPlan,
    dest: Path,
    *,
    threads: int,
    progress: Callable[[float], None],
    cancel: threading.Event,
) -> None:
    """Write the fitted copy of ``source`` to ``dest`` (the caller removes it on failure).

    Raises:
        InputError: (argument "path") the picture or the sound is damaged in the part, or the
            file stops long before it says it ends.
        FitCancelledError: ``cancel`` was set.
        FitFailedError: the encoder or the muxer failed.
    """
    import av

    with open_input(source) as container:
        try:
            output = av.open(str(dest), mode="w", format="mp4", options={"movflags": "+faststart"})
        except (av.error.FFmpegError, OSError) as exc:
            raise FitFailedError(
                f"the fitted copy cannot be written to {str(dest)!r} ({reason(exc)})."
            ) from exc
        try:
            _Pass(container, output, plan, threads, progress, cancel).run()
        except av.error.FFmpegError as exc:
            raise FitFailedError(f"the fitted copy could not be made: {reason(exc)}.") from exc
        finally:
            output.close()
    progress(1.0)


class _Pass:
    """One pass over the input: the state of the cut while packets go by."""

    def __init__(
        self,
        container: Any,
        output: Any,
        plan: FitPlan,
        threads: int,
        progress: Callable[[float], None],
        cancel: threading.Event,
    ) -> None:
        info = plan.source
        self.container, self.plan, self.progress, self.cancel = container, plan, progress, cancel
        self.label = repr(str(info.path)) if info.path else "the given file"
        self.origin = info.start_time
        self.start = info.start_time + plan.start_seconds
        self.end = info.start_time + plan.end_seconds
        self.length = plan.end_seconds - plan.start_seconds
        self.interval = 1 / (info.frame_rate or 30)
        self.vin = video_stream(container)
        self.vin.thread_type = "AUTO"
        self.vin.codec_context.thread_count = threads
        self.ain = container.streams.audio[0] if plan.keep_audio and container.streams.audio else None
        self.writer = _Writer(output, plan, threads)
        self.cutter = _SoundCutter(self.ain, plan, self.start, self.end) if self.ain is not None else None
        self.held: Any = None  # the last frame before the start: it is on screen at the start
        self.seen = self.start  # the time of the latest frame decoded, for error messages
        self.reported = 0.0
        self.video_done, self.audio_done = False, self.cutter is None
        self.cut_short = False

    def run(self) -> None:
        if self.plan.start_seconds > _PREROLL_SECONDS:
            offset = int((self.start - _PREROLL_SECONDS) / self.vin.time_base)
            self.container.seek(offset, stream=self.vin, backward=True)
        for packet in self._packets():
            if self.cancel.is_set():
                raise FitCancelledError("fitting was cancelled; nothing was kept.")
            if packet.stream is self.vin and not self.video_done:
                self._pictures(self._decode(packet, "picture"))
            elif packet.stream is self.ain and not self.audio_done:
                self._sounds(self._decode(packet, "sound"))
            if self.video_done and self.audio_done:
                break
        if self.held is not None:
            self.writer.picture(self.held, 0.0)  # the part starts after the last frame: show that one
        if self.writer.last_pts < 0:
            raise InputError(f"the chosen part of {self.label} holds no picture.", argument="start_seconds")
        self._check_complete()
        if self.cutter is not None:
            for piece in self.cutter.close():
                self.writer.sound(piece)
        self.writer.finish(self.length, self.interval)

    def _packets(self) -> Iterator[Any]:
        import av

        packets = self.container.demux(*[s for s in (self.vin, self.ain) if s is not None])
        while True:
            try:
                packet = next(packets, None)
            except (av.error.FFmpegError, ValueError) as exc:
                raise _damaged(self.label, "file", self.seen - self.origin, exc) from exc
            if packet is None:
                return
            yield packet

    def _decode(self, packet: Any, what: str) -> list[Any]:
        import av

        # The demuxer marks a packet it could read only part of: the file ends there. (With frame
        # threads the decoder reports the error a packet or two later, hence the flag.)
        self.cut_short = self.cut_short or bool(packet.is_corrupt)
        try:
            return list(packet.decode())
        except (av.error.FFmpegError, ValueError) as exc:
            if self.cut_short:
                raise self._cut_short() from exc
            raise _damaged(self.label, what, self.seen - self.origin, exc) from exc

    def _pictures(self, frames: list[Any]) -> None:
        for frame in frames:
            self.seen = (
                float(frame.pts * frame.time_base) if frame.pts is not None else self.seen + self.interval
            )
            at = self.seen - self.start
            if at < -_SAME_TIME:
                self.held = frame
                continue
            if self.held is not None and at > _SAME_TIME:
                self.writer.picture(self.held, 0.0)
            self.held = None
            if at >= self.length - _SAME_TIME:
                self.video_done = True
                return
            self.writer.picture(frame, max(0.0, at))
            if at / self.length - self.reported >= 0.01:
                self.reported = at / self.length
                self.progress(self.reported)

    def _sounds(self, frames: list[Any]) -> None:
        assert self.cutter is not None
        for frame in frames:
            for piece in self.cutter.push(frame):
                self.writer.sound(piece)
            if frame.pts is not None and float(frame.pts * frame.time_base) >= self.end:
                self.audio_done = True
                return

    def _claimed_seconds(self) -> float | None:
        vin = self.vin
        return float(vin.duration * vin.time_base) if vin.duration and vin.time_base else None

    def _cut_short(self) -> InputError:
        claimed = self._claimed_seconds()
        says = f" though it says it lasts {claimed:.1f} s" if claimed else ""
        return InputError(
            f"the file {self.label} stops at {self.seen - self.origin:.1f} s{says}: it is cut short "
            "(damaged, or still being copied or written). Choose an earlier part, or export the clip again.",
            argument="path",
        )

    def _check_complete(self) -> None:
        """Refuse a file that stops well before its own stated length (cut short)."""
        claimed = self._claimed_seconds()
        if self.video_done or claimed is None:
            return
        if self.seen < min(self.end, self.origin + claimed) - _TRUNCATED_SECONDS:
            raise self._cut_short()
