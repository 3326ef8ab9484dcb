"""Local video checks before an upload, and confinement of file paths to allowed folders.

PixVerse's restyle takes an mp4 or mov of at most 16 s, 1920 pixels on the longer side and
50 MB. Checking that here, before the upload, saves the user an upload and a confusing API error,
and lets each refusal say the measured value and the command that fixes it.

Paths come from the model, so they are untrusted: every path is resolved (symlinks included)
and must land inside one of the allowed folders (``PIXVERSE_ALLOWED_DIRS``); download names are
kept inside the output folder whatever text they are made from.

PyAV is imported inside the functions that need it, so importing this module stays fast.
"""

from __future__ import annotations

import difflib
import os
import shlex
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from pydantic import BaseModel, ConfigDict

from pixverse_mcp.errors import InputError

MAX_RESTYLE_SECONDS = 16.0
MAX_RESTYLE_SIDE = 1920
MAX_RESTYLE_BYTES = 50 * 1024 * 1024
RESTYLE_CONTAINERS = ("mp4", "mov")
MAX_URL_LENGTH = 2048

_MB = 1024 * 1024
# An AAC track often runs a few milliseconds past the picture (encoder priming and padding), so a
# clip cut at exactly 16 s may measure 16.02 s. The limit stays strict (PixVerse's tolerance is not
# documented), and the suggested cut leaves that margin instead.
_TRIM_TO_SECONDS = 15.9
# Demuxers FFmpeg may use on a user's file. Anything else (notably playlist formats such as HLS
# or concat, which make FFmpeg open further files or URLs) is refused as unreadable.
_DEMUXERS = "mov,matroska,webm,avi,flv,mpegts,mpeg,asf,ogg,gif,mp3,wav,aac,flac,ivf,h264,hevc"
_OPEN_OPTIONS = {"format_whitelist": _DEMUXERS, "protocol_whitelist": "file"}
_CONTAINER_LABELS = {
    "mp4": "an MP4",
    "mov": "a QuickTime (mov)",
    "webm": "a WebM",
    "matroska": "a Matroska (mkv)",
    "avi": "an AVI",
    "flv": "an FLV",
    "mpegts": "an MPEG transport stream (ts)",
    "mpeg": "an MPEG program stream (mpg)",
    "asf": "a Windows Media (asf/wmv)",
    "ogg": "an Ogg",
    "gif": "a GIF",
    "mov,mp4,m4a,3gp,3g2,mj2": (
        "a QuickTime file without an ftyp header (an old mov layout); it is not an mp4 or mov"
    ),
}
_VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".flv", ".ts", ".mpg", ".wmv"}
_MAX_LISTED = 2000  # folder entries looked at for "did you mean" (a huge folder stays fast)
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{i}" for p in ("com", "lpt") for i in range(1, 10)}


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


# --------------------------------------------------------------------------- paths


def _roots_text(roots: Sequence[Path]) -> str:
    return ", ".join(str(r) for r in roots)


def _resolve(path: Path, argument: str) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loop, NUL byte, ...
        raise InputError(f"the path {str(path)!r} cannot be resolved ({exc}).", argument=argument) from exc


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _clean_raw_path(raw: str) -> str:
    text = raw.strip()
    # Assistants sometimes quote a path or pass a file:// URI; both name the same file.
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    if text.lower().startswith("file://"):
        text = url2pathname(urlsplit(text).path)  # undoes %20 etc.; drive letters on Windows
    return text


def _suggestions(missing: Path) -> str:
    """A "did you mean" hint from the names in the missing file's folder (which must exist)."""
    folder = missing.parent
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for _, entry in zip(range(_MAX_LISTED), entries, strict=False)]
    except OSError:
        return ""
    # Compare case-insensitively: "Clip.MP4" should be found for "clip.mp4".
    by_lower = {name.lower(): name for name in names}
    close = difflib.get_close_matches(missing.name.lower(), list(by_lower), n=3, cutoff=0.6)
    if close:
        return " Did you mean " + " or ".join(repr(str(folder / by_lower[c])) for c in close) + "?"
    videos = sorted(n for n in names if Path(n).suffix.lower() in _VIDEO_SUFFIXES)[:5]
    if videos:
        return " Videos in that folder: " + ", ".join(repr(v) for v in videos) + "."
    return " That folder holds no video files."


def resolve_local_path(raw: str, roots: Sequence[Path]) -> Path:
    """Resolve a path given by the model to an existing file inside the allowed folders.

    ``~`` expands to the home folder, a relative path is taken relative to ``roots[0]``, and
    symlinks are followed before the check, so neither ``../`` nor a link can lead outside.

    Args:
        raw: The path as the model wrote it.
        roots: The allowed folders (``PIXVERSE_ALLOWED_DIRS``); the first one anchors relative paths.

    Returns:
        The resolved path of a regular file.

    Raises:
        InputError: (argument "path") empty path, outside the roots, missing, a folder, not a file.
    """
    text = _clean_raw_path(raw)
    if not text:
        raise InputError("the path is empty; give the path of a local mp4 or mov file.", argument="path")
    if not roots:
        raise InputError(
            "no folders are allowed for local files; set PIXVERSE_ALLOWED_DIRS to the folders "
            "that hold your videos, or pass a public URL instead.",
            argument="path",
        )
    resolved_roots = [_resolve(Path(r).expanduser(), "path") for r in roots]
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        candidate = resolved_roots[0] / candidate
    path = _resolve(candidate, "path")

    if not _inside(path, resolved_roots):
        raise InputError(
            f"the path {text!r} resolves to {str(path)!r}, which is outside the folders this server may "
            f"read ({_roots_text(resolved_roots)}). Move or copy the file into one of them, or set "
            f"PIXVERSE_ALLOWED_DIRS to include its folder (several folders are separated by "
            f"{os.pathsep!r}) and restart the server.",
            argument="path",
        )
    if not path.exists():
        hint = ""
        if path.parent.is_dir() and _inside(path.parent, resolved_roots):
            hint = _suggestions(path)
        elif not path.parent.exists():
            hint = f" The folder {str(path.parent)!r} does not exist either."
        raise InputError(f"there is no file at {str(path)!r}.{hint}", argument="path")
    if path.is_dir():
        raise InputError(
            f"{str(path)!r} is a folder, not a file; give the path of a video file in it."
            + _folder_videos(path),
            argument="path",
        )
    if not path.is_file():
        raise InputError(
            f"{str(path)!r} is not a regular file (a device, socket or pipe); give the path of a video file.",
            argument="path",
        )
    return path


def _folder_videos(folder: Path) -> str:
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for _, entry in zip(range(_MAX_LISTED), entries, strict=False)]
    except OSError:
        return ""
    videos = sorted(n for n in names if Path(n).suffix.lower() in _VIDEO_SUFFIXES)[:5]
    return (" Videos in it: " + ", ".join(repr(v) for v in videos) + ".") if videos else ""


def ensure_inside(path: Path, root: Path, *, argument: str = "path") -> Path:
    """Resolve a path to write and make sure it stays inside ``root``.

    Args:
        path: A name or path; a relative one is taken relative to ``root``.
        root: The folder all writes must stay in (the output folder).
        argument: The tool argument to name in the error.

    Returns:
        The resolved path, strictly inside the resolved ``root``.

    Raises:
        InputError: the path escapes ``root`` (``../``, an absolute path, a symlink) or is ``root`` itself.
    """
    base = _resolve(Path(root).expanduser(), argument)
    candidate = Path(path).expanduser()
    resolved = _resolve(candidate if candidate.is_absolute() else base / candidate, argument)
    if resolved == base or not resolved.is_relative_to(base):
        raise InputError(
            f"the file name {str(path)!r} would be written to {str(resolved)!r}, outside the output folder "
            f"{str(base)!r}. Use a plain file name without folders or '..'.",
            argument=argument,
        )
    return resolved


def safe_filename(text: str, max_len: int = 80, *, fallback: str = "video") -> str:
    """Turn any text (a style name, an id, a hostile string) into a safe file-name part.

    Letters and digits of any script, ``-``, ``_`` and ``.`` are kept; everything else (slashes,
    spaces, control characters, emoji) becomes ``-``. The result never starts with a dot (no
    hidden files, no ``..``), is never a Windows device name, and is at most ``max_len`` characters.

    Args:
        text: Any text.
        max_len: Longest result, in characters (at least 1).
        fallback: What to return when nothing usable is left.

    Returns:
        A non-empty name part without a path separator.
    """
    # NFKC folds look-alikes such as the fullwidth solidus into plain characters first.
    normalized = unicodedata.normalize("NFKC", text)
    chars = [ch if (ch.isalnum() or ch in "-_.") else "-" for ch in normalized]
    name = "".join(chars)
    while "--" in name:
        name = name.replace("--", "-")
    while ".." in name:
        name = name.replace("..", ".")
    name = name.strip("-_.")[: max(1, max_len)].strip("-_.")
    if not name:
        name = safe_filename(fallback, max_len) if fallback.strip("-_. ") else "video"
    if name.split(".")[0].lower() in _WINDOWS_RESERVED:
        # "CON", "nul.txt" and friends name devices on Windows, not files.
        name = f"_{name}"[: max(1, max_len)]
    return name


# --------------------------------------------------------------------------- probing


def _read_head(path: Path, size: int = 64) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(size)
    except OSError as exc:
        raise InputError(
            f"the file {str(path)!r} cannot be opened ({exc.strerror}).", argument="path"
        ) from exc


def _container_name(format_name: str, head: bytes) -> str:
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


def _unreadable(path: Path, detail: str) -> InputError:
    return InputError(
        f"the file {str(path)!r} could not be read as a video ({detail}). It may be damaged, still "
        f"being written, or not a video. Re-export it as mp4 (H.264), e.g. "
        f"{_ffmpeg(path, '-c:v libx264 -pix_fmt yuv420p -c:a aac', _sibling(path, '-fixed', '.mp4'))}",
        argument="path",
    )


def _duration(container: Any, stream: Any) -> float | None:
    """The clip's length in seconds from the container, else the stream, else the frame count."""
    if container.duration and container.duration > 0:
        return float(container.duration) / 1_000_000  # AV_TIME_BASE
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return None


def _duration_by_demuxing(path: Path) -> float | None:
    """Last resort: the span of the video packets' timestamps, or their count over the frame rate.

    Only demuxes (no decoding), in a fresh open: raw streams cannot seek back to the start.
    """
    import av

    with av.open(str(path), mode="r", options=_OPEN_OPTIONS, metadata_errors="replace") as container:
        stream = container.streams.video[0]
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
    # Raw streams carry no packet durations, so the timestamp span misses the last frame; the
    # frame count over the rate does not. Take the longer (the safer for a length limit).
    spans = [end - start] if start is not None and end is not None and end > start else []
    if count and rate:
        spans.append(float(count / rate))
    return max(spans) if spans else None


def probe_video(path: Path) -> VideoProbe:
    """Measure a local video by its content (not its file name).

    Args:
        path: A file path (already checked by ``resolve_local_path`` when it comes from the model).

    Returns:
        The measured values.

    Raises:
        InputError: (argument "path") unreadable or corrupt bytes, or no video stream.
    """
    import av

    path = Path(path)
    head = _read_head(path, 4096)
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"the file {str(path)!r} is empty (0 bytes); it is not a video.", argument="path")
    try:
        # The whitelists keep FFmpeg to this one local file: no playlists, no network.
        container: Any = av.open(
            str(path),
            mode="r",
            options=_OPEN_OPTIONS,
            metadata_errors="replace",
        )
    except (av.error.FFmpegError, OSError, ValueError, UnicodeError) as exc:
        raise _unreadable(path, _reason(exc)) from exc
    try:
        format_name = str(container.format.name)
        videos = [s for s in container.streams.video if not _is_cover_art(s)]
        has_audio = bool(container.streams.audio)
        if not videos:
            what = "only audio" if has_audio else "neither audio nor video"
            raise InputError(
                f"the file {str(path)!r} has no video stream (it holds {what}). Restyle needs a video; "
                "give an mp4 or mov with a picture track.",
                argument="path",
            )
        stream = videos[0]
        width = int(stream.codec_context.width or 0)
        height = int(stream.codec_context.height or 0)
        codec = str(stream.codec_context.name or "unknown")
        duration = _duration(container, stream)
        # Decode one frame: a file whose header is fine but whose picture is broken is caught
        # here instead of after a paid upload. It also fills in a size the header lacked.
        try:
            frame = next(container.decode(stream), None)
        except (av.error.FFmpegError, ValueError) as exc:
            raise _unreadable(path, _reason(exc)) from exc
        if frame is None:
            raise _unreadable(path, "the video stream has no frames")
        width, height = width or frame.width, height or frame.height
    finally:
        container.close()
    if duration is None:
        try:
            duration = _duration_by_demuxing(path)
        except (av.error.FFmpegError, ValueError) as exc:
            raise _unreadable(path, _reason(exc)) from exc
    if duration is None:
        raise _unreadable(path, "its length cannot be determined")
    return VideoProbe(
        path=path,
        container=_container_name(format_name, head),
        format_name=format_name,
        duration_seconds=duration,
        width=width,
        height=height,
        size_bytes=size,
        video_codec=codec,
        has_audio=has_audio,
    )


def _is_cover_art(stream: Any) -> bool:
    """An attached picture (album art) shows up as a video stream but is not one."""
    try:
        return bool(stream.disposition & 0x400)  # AV_DISPOSITION_ATTACHED_PIC
    except (AttributeError, TypeError):
        return False


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).rstrip(".")


# --------------------------------------------------------------------------- limits


def _quote(path: Path | str) -> str:
    text = str(path)
    if any(ch in text for ch in '"$`\\'):
        return shlex.quote(text)
    return f'"{text}"'


def _sibling(path: Path, tag: str, suffix: str | None = None) -> Path:
    return path.with_name(f"{path.stem}{tag}{suffix or path.suffix or '.mp4'}")


def _ffmpeg(path: Path, args: str, out: Path) -> str:
    return f"ffmpeg -i {_quote(path)} {args} {_quote(out)}"


def _seconds(value: float, limit: float) -> str:
    """Show a measured length so that it never looks equal to the limit it breaks."""
    for digits in (1, 2, 3):
        text = f"{value:.{digits}f}"
        if float(text) != limit:
            return text
    return repr(value)


def _megabytes(size: int) -> str:
    text = f"{size / _MB:.1f}"
    if float(text) * _MB <= MAX_RESTYLE_BYTES < size:
        return f"{text} MB ({size:,} bytes)"
    return f"{text} MB"


def _size_problem(path: Path, size: int) -> str | None:
    if size <= MAX_RESTYLE_BYTES:
        return None
    command = _ffmpeg(
        path, "-c:v libx264 -crf 28 -preset medium -c:a aac -b:a 128k", _sibling(path, "-small", ".mp4")
    )
    return (
        f"the file is {_megabytes(size)}; restyle takes at most {MAX_RESTYLE_BYTES // _MB} MB. Shorten it "
        f"or re-encode with a higher -crf, e.g. {command}"
    )


def _problems(probe: VideoProbe) -> list[str]:
    """Every restyle rule the probed video breaks, each with the measured value and the fix."""
    path = probe.path
    problems: list[str] = []
    size = _size_problem(path, probe.size_bytes)
    if size:
        problems.append(size)
    if probe.container not in RESTYLE_CONTAINERS:
        label = _CONTAINER_LABELS.get(probe.container, f"a {probe.container}")
        if not label.endswith(("file", "mp4 or mov")):
            label += " file"
        out = path.with_suffix(".mp4") if path.suffix.lower() != ".mp4" else _sibling(path, "-h264", ".mp4")
        problems.append(
            f"the file is {label} (by its content, whatever its name says); restyle takes mp4 or mov. "
            f"Convert it: {_ffmpeg(path, '-c:v libx264 -pix_fmt yuv420p -c:a aac', out)}"
        )
    if probe.duration_seconds > MAX_RESTYLE_SECONDS:
        limit, cut = f"{MAX_RESTYLE_SECONDS:g}", f"{_TRIM_TO_SECONDS:g}"
        problems.append(
            f"the clip is {_seconds(probe.duration_seconds, MAX_RESTYLE_SECONDS)} s; restyle takes at most "
            f"{limit} s. Trim it, e.g. {_ffmpeg(path, f'-t {cut} -c copy', _sibling(path, f'-{limit}s'))}"
        )
    longer = max(probe.width, probe.height)
    if longer > MAX_RESTYLE_SIDE:
        side = MAX_RESTYLE_SIDE
        scale = f"-vf \"scale='if(gt(iw,ih),{side},-2)':'if(gt(iw,ih),-2,{side})'\""
        problems.append(
            f"the video is {probe.width}x{probe.height}; restyle takes at most {side} pixels on the longer "
            f"side. Scale it down, e.g. {_ffmpeg(path, scale, _sibling(path, f'-{side}'))}"
        )
    return problems


def _raise_problems(problems: list[str]) -> None:
    if not problems:
        return
    if len(problems) == 1:
        message = problems[0]
    else:
        # One message for all problems, so the assistant can fix them in one ffmpeg run.
        message = f"the video breaks {len(problems)} restyle rules: " + " ALSO: ".join(
            f"({i}) {p}" for i, p in enumerate(problems, 1)
        )
    raise InputError(message, argument="path")


def check_restyle_limits(probe: VideoProbe) -> None:
    """Refuse a probed video that PixVerse's restyle would refuse.

    Raises:
        InputError: (argument "path") size, container, length or resolution out of bounds; one
            message lists every broken rule with its measured value and a fixing ffmpeg command.
    """
    _raise_problems(_problems(probe))


def check_local_video(raw_path: str, roots: Sequence[Path]) -> VideoProbe:
    """Resolve a path from the model, then check the file against the restyle limits.

    The size is checked from ``stat`` before the file is opened, so an oversized file is refused
    without being read.

    Args:
        raw_path: The path as the model wrote it.
        roots: The allowed folders; the first one anchors relative paths.

    Returns:
        The probe of a video that restyle accepts.

    Raises:
        InputError: (argument "path") any path or video rule broken.
    """
    path = resolve_local_path(raw_path, roots)
    size = path.stat().st_size
    too_big = _size_problem(path, size)
    if too_big:
        raise InputError(too_big, argument="path")
    probe = probe_video(path)
    check_restyle_limits(probe)
    return probe


# --------------------------------------------------------------------------- URLs


def _url_error(problem: str) -> InputError:
    return InputError(
        f"{problem} PixVerse downloads the video from this URL itself, so it must be a plain, publicly "
        "reachable http(s) link to the video file (no login, no local or intranet address).",
        argument="url",
    )


def validate_video_url(url: str) -> str:
    """Check a video URL that PixVerse will fetch, and return it stripped.

    Args:
        url: The URL from the model.

    Returns:
        The URL without surrounding whitespace.

    Raises:
        InputError: (argument "url") empty, too long, not http(s), no host, whitespace or control
            characters inside, credentials in it, or a bad port.
    """
    text = url.strip()
    if not text:
        raise _url_error("the URL is empty.")
    if len(text) > MAX_URL_LENGTH:
        raise _url_error(f"the URL is {len(text)} characters long; at most {MAX_URL_LENGTH} are allowed.")
    for index, ch in enumerate(text):
        if ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F:
            kind = "a space" if ch.isspace() else "a control character"
            raise _url_error(
                f"the URL contains {kind} ({ch!r}) at character {index + 1}; percent-encode it "
                "(a space is %20)."
            )
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"uses the {scheme!r} scheme" if scheme else "has no scheme"
        raise _url_error(f"the URL {shown}; only http:// and https:// URLs are accepted.")
    if "@" in parts.netloc:
        raise _url_error("the URL carries a user name or password (user:pass@host); remove them.")
    if not parts.hostname:
        raise _url_error("the URL has no host name (expected https://host/path/video.mp4).")
    try:
        port = parts.port
    except ValueError:
        raise _url_error(f"the URL has an invalid port in {parts.netloc!r}.") from None
    if port == 0:
        raise _url_error("the URL has port 0, which is not a valid port.")
    return text


__all__ = [
    "MAX_RESTYLE_BYTES",
    "MAX_RESTYLE_SECONDS",
    "MAX_RESTYLE_SIDE",
    "MAX_URL_LENGTH",
    "RESTYLE_CONTAINERS",
    "VideoProbe",
    "check_local_video",
    "check_restyle_limits",
    "ensure_inside",
    "probe_video",
    "resolve_local_path",
    "safe_filename",
    "validate_video_url",
]
