"""What a local clip measures, by its content (PyAV): container, length, size in pixels, codec.

The clip is read through an already opened `LocalFile` (see `paths`), never by its name, and only
up to the size measured when it was opened. The FFmpeg whitelists keep the demuxer to that one
file: no playlists, no further files, no network.

PyAV is imported inside the functions that need it, so importing this module stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from pixverse_mcp.errors import InputError
from pixverse_mcp.localfile import FileView, LocalFile
from pixverse_mcp.paths import open_local_file

# Demuxers FFmpeg may use on a user's file. Anything else (notably playlist formats such as HLS
# or concat, which make FFmpeg open further files or URLs) is refused as unreadable.
DEMUXERS = "mov,matroska,webm,avi,flv,mpegts,mpeg,asf,ogg,gif,mp3,wav,aac,flac,ivf,h264,hevc"
OPEN_OPTIONS = {"format_whitelist": DEMUXERS, "protocol_whitelist": "file"}
MIME_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime"}


class VideoProbe(BaseModel):
    """What a local video file holds, measured from its content."""

    model_config = ConfigDict(frozen=True)

    path: Path
    container: str
    """"mp4" or "mov" (told apart by the ftyp brand), else the demuxer's name ("webm", "avi", ...)."""
    format_name: str
    """PyAV's (FFmpeg's) demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"."""
    duration_seconds: float
    width: int
    height: int
    size_bytes: int
    video_codec: str
    has_audio: bool

    @property
    def mime_type(self) -> str:
        """The media type of the container, as PixVerse should be told it ("video/mp4", ...)."""
        return MIME_TYPES.get(self.container, "application/octet-stream")


class UnreadableVideo(Exception):
    """The file's bytes could not be read as a video; ``detail`` says why, in a few words."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def container_name(format_name: str, head: bytes) -> str:
    """Name the container from FFmpeg's demuxer and the first bytes of the file."""
    if format_name.startswith("mov,mp4"):
        # FFmpeg reads mp4 and mov with one demuxer; the ftyp box's major brand tells them apart.
        if head[4:8] == b"ftyp":
            return "mov" if head[8:12] == b"qt  " else "mp4"
        return format_name
    if format_name.startswith("matroska"):
        # The EBML header's DocType says "webm" for WebM files, "matroska" for mkv.
        return "webm" if b"webm" in head else "matroska"
    return format_name.split(",")[0]


def stream_duration(container: Any, stream: Any) -> float | None:
    """The clip's length in seconds from the container, else the stream, else the frame count."""
    if container.duration and container.duration > 0:
        return float(container.duration) / 1_000_000  # AV_TIME_BASE
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return None


def _open(view: FileView) -> Any:
    import av

    # The whitelists keep FFmpeg to this one file: no playlists, no network.
    return av.open(view, mode="r", options=OPEN_OPTIONS, metadata_errors="replace")


def _duration_by_demuxing(file: LocalFile) -> float | None:
    """Last resort: demux (no decoding) in a fresh open, since raw streams cannot seek back."""
    with _open(file.reader()) as container:
        return packet_span(container, container.streams.video[0])


def packet_span(container: Any, stream: Any) -> float | None:
    """The span of a stream's packet timestamps, or their count over the frame rate: the longer.

    Raw streams carry no packet durations, so the timestamp span misses the last frame; the frame
    count over the rate does not. The longer is the safer for a length limit.
    """
    rate = stream.average_rate or stream.guessed_rate
    start: float | None = None
    end: float | None = None
    count = 0
    for packet in container.demux(stream):
        if not packet.size:
            continue
        count += 1
        if packet.pts is None or packet.time_base is None:
            continue
        begin = float(packet.pts * packet.time_base)
        finish = begin + float((packet.duration or 0) * packet.time_base)
        start = begin if start is None else min(start, begin)
        end = finish if end is None else max(end, finish)
    spans = [end - start] if start is not None and end is not None and end > start else []
    if count and rate:
        spans.append(float(count / rate))
    return max(spans) if spans else None


def probe_file(file: LocalFile) -> VideoProbe:
    """Measure an opened local video by its content (not its file name).

    Args:
        file: The file, opened by `paths.open_local_file`; only its first ``file.size`` bytes are read.

    Returns:
        The measured values.

    Raises:
        InputError: (argument "path") an empty file, or a file with no video stream.
        UnreadableVideo: bytes that are not a video FFmpeg can read, or a picture that does not decode.
    """
    import av

    if file.size == 0:
        raise InputError(f"the file {file.shown} is empty (0 bytes); it is not a video.", argument="path")
    head = file.read_at(0, 4096)
    try:
        container: Any = _open(file.reader())
    except (av.error.FFmpegError, OSError, ValueError, UnicodeError) as exc:
        raise UnreadableVideo(_reason(exc)) from exc
    try:
        format_name = str(container.format.name)
        videos = [s for s in container.streams.video if not _is_cover_art(s)]
        has_audio = bool(container.streams.audio)
        if not videos:
            what = "only audio" if has_audio else "neither audio nor video"
            raise InputError(
                f"the file {file.shown} has no video stream (it holds {what}). Restyle needs a video; "
                "give an mp4 or mov with a picture track.",
                argument="path",
            )
        stream = videos[0]
        width = int(stream.codec_context.width or 0)
        height = int(stream.codec_context.height or 0)
        codec = str(stream.codec_context.name or "unknown")
        duration = stream_duration(container, stream)
        # Decode one frame: a file whose header is fine but whose picture is broken is caught
        # here instead of after a paid upload. It also fills in a size the header lacked.
        try:
            frame = next(container.decode(stream), None)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise UnreadableVideo(_reason(exc)) from exc
        if frame is None:
            raise UnreadableVideo("the video stream has no frames")
        width, height = width or frame.width, height or frame.height
    finally:
        container.close()
    if duration is None:
        try:
            duration = _duration_by_demuxing(file)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise UnreadableVideo(_reason(exc)) from exc
    if duration is None:
        raise UnreadableVideo("its length cannot be determined")
    return VideoProbe(
        path=file.path,
        container=container_name(format_name, head),
        format_name=format_name,
        duration_seconds=duration,
        width=width,
        height=height,
        size_bytes=file.size,
        video_codec=codec,
        has_audio=has_audio,
    )


def probe_video(path: Path) -> VideoProbe:
    """Measure a video file the server itself chose (no allowed-folder check); see `probe_file`."""
    resolved = Path(path).resolve()
    with open_local_file(str(resolved), [resolved.parent]) as file:
        return probe_file(file)


def _is_cover_art(stream: Any) -> bool:
    """An attached picture (album art) shows up as a video stream but is not one."""
    try:
        return bool(stream.disposition & 0x400)  # AV_DISPOSITION_ATTACHED_PIC
    except (AttributeError, TypeError):
        return False


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).rstrip(".")


__all__ = [
    "DEMUXERS",
    "MIME_TYPES",
    "OPEN_OPTIONS",
    "UnreadableVideo",
    "VideoProbe",
    "probe_file",
    "probe_video",
]
