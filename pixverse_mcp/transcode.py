"""The PyAV pipeline that writes a fitted copy: trim, scale, turn upright, encode H.264 + AAC in mp4.

One pass in two threads, so decoding and encoding overlap as in a pipeline (PyAV lets go of the
GIL inside the codecs and the scaler): a reader thread demuxes, decodes, drops what lies before
the part, scales and turns the picture, and hands frames over a short queue to the calling
thread, which encodes and muxes (and so is the one that reports progress). Cuts are frame
accurate: it seeks to the keyframe before the part and decodes from there, and the frame that is
on screen at the start becomes the first frame. Timestamps come from the input (variable frame
rates stay as they are), rescaled to the part. The sound is cut to the same span, sample exact.

PyAV is imported inside the functions, so importing this module stays fast.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixverse_mcp.errors import InputError, PixVerseError
from pixverse_mcp.fitprobe import Source, open_input, reason, video_stream
from pixverse_mcp.fitstages import VIDEO_TIME_BASE, Scaler, SoundCutter, Writer

if TYPE_CHECKING:
    from pixverse_mcp.fitplan import FitPlan

# Seek this far before the part, so the keyframe found leaves room for sound that a container
# stores a little ahead of the picture.
_PREROLL_SECONDS = 0.5
_SAME_TIME = 0.001  # timestamps this close count as the same instant
# A video that stops this long before it says it ends was cut short (copied or written halfway).
_TRUNCATED_SECONDS = 1.0
# Scaled frames waiting between the reader and the encoder: enough to smooth out their pace,
# few enough to cost a few MB.
_QUEUE_FRAMES = 3
_PUT_WAIT_SECONDS = 0.1


class FitCancelledError(PixVerseError):
    """Fitting was cancelled; its partial copy is removed."""


class FitFailedError(PixVerseError):
    """The encoder or the muxer failed on input the probe accepted."""


def _damaged(source_label: str, what: str, seconds: float, exc: BaseException) -> InputError:
    return InputError(
        f"the {what} in {source_label} is damaged at about {seconds:.1f} s ({reason(exc)}). Choose a "
        "part that avoids that spot with start_seconds/end_seconds, or export the clip again.",
        argument="path",
    )


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

    ``progress`` is called from this thread; ``cancel`` is checked at every packet.

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
            reader = _Reader(container, plan, threads, cancel)
            _encode_all(reader, Writer(output, plan, threads), progress)
        except av.error.FFmpegError as exc:
            raise FitFailedError(f"the fitted copy could not be made: {reason(exc)}.") from exc
        finally:
            output.close()
    progress(1.0)


def _encode_all(reader: _Reader, writer: Writer, progress: Callable[[float], None]) -> None:
    """Run the reader in its own thread and encode what it hands over, until it is done."""
    thread = threading.Thread(target=reader.run, name="fit-reader", daemon=True)
    thread.start()
    reported = 0.0
    try:
        while True:
            kind, payload = reader.items.get()
            if reader.cancel.is_set():
                raise FitCancelledError("fitting was cancelled; nothing was kept.")
            if kind == "picture":
                writer.picture(payload)
                done = float(payload.pts * VIDEO_TIME_BASE) / reader.length
                if done - reported >= 0.01:
                    reported = done
                    progress(done)
            elif kind == "sound":
                writer.sound(payload)
            elif kind == "error":
                raise payload
            else:
                break
        if writer.last_pts < 0:
            raise InputError(f"the chosen part of {reader.label} holds no picture.", argument="start_seconds")
        writer.finish(reader.length, reader.interval)
    finally:
        reader.stop.set()
        while not reader.items.empty():  # free a reader blocked on a full queue
            reader.items.get_nowait()
        thread.join()  # the input is closed only after the reader has let go of it


class _Stopped(Exception):
    """The encoding side stopped (it failed or is done): the reader ends quietly."""


class _Reader:
    """The input side, in its own thread: the state of the cut while packets go by."""

    def __init__(self, container: Any, plan: FitPlan, threads: int, cancel: threading.Event) -> None:
        info = plan.source
        self.container, self.plan, self.cancel = container, plan, cancel
        self.items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=_QUEUE_FRAMES)
        self.stop = threading.Event()
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
        self.scale = Scaler(plan, threads)
        self.cutter = SoundCutter(self.ain, plan, self.start, self.end) if self.ain is not None else None
        self.held: Any = None  # the last frame before the start: it is on screen at the start
        self.seen = self.start  # the time of the latest frame decoded, for error messages
        self.video_done, self.audio_done = False, self.cutter is None
        self.cut_short = False

    def run(self) -> None:
        try:
            self._read()
            self._put("done", None)
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the calling thread, which raises it
            with contextlib.suppress(_Stopped):
                self._put("error", exc)

    def _put(self, kind: str, payload: Any) -> None:
        while not self.stop.is_set():
            try:
                self.items.put((kind, payload), timeout=_PUT_WAIT_SECONDS)
                return
            except queue.Full:
                continue
        raise _Stopped

    def _picture(self, frame: Any, seconds: float) -> None:
        self._put("picture", self.scale(frame, round(seconds / VIDEO_TIME_BASE)))

    def _read(self) -> None:
        if self.plan.start_seconds > _PREROLL_SECONDS:
            offset = int((self.start - _PREROLL_SECONDS) / self.vin.time_base)
            self.container.seek(offset, stream=self.vin, backward=True)
        for packet in self._packets():
            if self.cancel.is_set():
                raise FitCancelledError("fitting was cancelled; nothing was kept.")
            if self.stop.is_set():
                raise _Stopped
            if packet.stream is self.vin and not self.video_done:
                self._pictures(self._decode(packet, "picture"))
            elif packet.stream is self.ain and not self.audio_done:
                self._sounds(self._decode(packet, "sound"))
            if self.video_done and self.audio_done:
                break
        if self.held is not None:
            self._picture(self.held, 0.0)  # the part starts after the last frame: show that one
        self._check_complete()
        if self.cutter is not None:
            for piece in self.cutter.close():
                self._put("sound", piece)

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
                self._picture(self.held, 0.0)
            self.held = None
            if at >= self.length - _SAME_TIME:
                self.video_done = True
                return
            self._picture(frame, max(0.0, at))

    def _sounds(self, frames: list[Any]) -> None:
        assert self.cutter is not None
        for frame in frames:
            for piece in self.cutter.push(frame):
                self._put("sound", piece)
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
