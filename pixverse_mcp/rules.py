"""What PixVerse's restyle accepts, and the fix for each way a local clip falls short.

Restyle takes an mp4 or mov of at most 16 s, 1920 pixels on the longer side and 50 MB. Checking
that here, before the upload, saves the user an upload and a confusing API error, and lets each
refusal say the measured value and the ffmpeg command that fixes it.

`check_local_video` is the whole local check of an upload: open the file once (`paths`), refuse
it by size before reading a byte, measure it (`video`), apply the rules. The caller uploads from
the same opened file and closes it.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pixverse_mcp.errors import InputError
from pixverse_mcp.localfile import LocalFile
from pixverse_mcp.paths import open_local_file
from pixverse_mcp.video import UnreadableVideo, VideoProbe, probe_file

MAX_RESTYLE_SECONDS = 16.0
MAX_RESTYLE_SIDE = 1920
MAX_RESTYLE_BYTES = 50 * 1024 * 1024
RESTYLE_CONTAINERS = ("mp4", "mov")

_MB = 1024 * 1024
# An AAC track often runs a few milliseconds past the picture (encoder priming and padding), so a
# clip cut at exactly 16 s may measure 16.02 s. The limit stays strict (PixVerse's tolerance is not
# documented), and the suggested cut leaves that margin instead.
_TRIM_TO_SECONDS = 15.9
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


@dataclass(frozen=True)
class CheckedVideo:
    """A local video that passed every check, still open: upload it from ``file``, then close it."""

    file: LocalFile
    probe: VideoProbe

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> CheckedVideo:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class RestyleLimitsError(InputError):
    """The video breaks restyle's limits (size, container, length, resolution): a fitted copy would not."""


def check_local_video(
    raw_path: str, roots: Sequence[Path], *, fix_hint: Callable[[LocalFile], str] | None = None
) -> CheckedVideo:
    """Open a path from the model once, then check the file against the restyle limits.

    The size is checked from the opened file's ``fstat`` before a byte is read, so an oversized
    file is refused without being read.

    Args:
        raw_path: The path as the model wrote it.
        roots: The allowed folders; the first one anchors relative paths.
        fix_hint: For a video that breaks the limits, a sentence added to the refusal (what a fitted
            copy would be), read from the same open file.

    Returns:
        The open file with its probe; the caller closes it (``with``).

    Raises:
        InputError: (argument "path") any path or video rule broken.
    """
    file = open_local_file(raw_path, roots)
    try:
        try:
            too_big = _size_problem(file.path, file.size)
            if too_big:
                raise RestyleLimitsError(too_big, argument="path")
            try:
                probe = probe_file(file)
            except UnreadableVideo as exc:
                raise _unreadable(file, exc.detail) from None
            check_restyle_limits(probe)
        except RestyleLimitsError as exc:
            if fix_hint is None:
                raise
            raise RestyleLimitsError(f"{exc.message} {fix_hint(file)}", argument="path") from None
    except BaseException:
        file.close()
        raise
    return CheckedVideo(file, probe)


def check_restyle_limits(probe: VideoProbe) -> None:
    """Refuse a probed video that PixVerse's restyle would refuse.

    Raises:
        InputError: (argument "path") size, container, length or resolution out of bounds; one
            message lists every broken rule with its measured value and a fixing ffmpeg command.
    """
    problems = _problems(probe)
    if not problems:
        return
    if len(problems) == 1:
        message = problems[0]
    else:
        # One message for all problems, so the assistant can fix them in one ffmpeg run.
        message = f"the video breaks {len(problems)} restyle rules: " + " ALSO: ".join(
            f"({i}) {p}" for i, p in enumerate(problems, 1)
        )
    raise RestyleLimitsError(message, argument="path")


def _unreadable(file: LocalFile, detail: str) -> InputError:
    path = file.path
    return InputError(
        f"the file {file.shown} could not be read as a video ({detail}). It may be damaged, still "
        f"being written, or not a video. Re-export it as mp4 (H.264), e.g. "
        f"{_ffmpeg(path, '-c:v libx264 -pix_fmt yuv420p -c:a aac', _sibling(path, '-fixed', '.mp4'))}",
        argument="path",
    )


# --------------------------------------------------------------------------- the rules


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


# --------------------------------------------------------------------------- the fixes, as text


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


__all__ = [
    "MAX_RESTYLE_BYTES",
    "MAX_RESTYLE_SECONDS",
    "MAX_RESTYLE_SIDE",
    "RESTYLE_CONTAINERS",
    "CheckedVideo",
    "check_local_video",
    "check_restyle_limits",
]
