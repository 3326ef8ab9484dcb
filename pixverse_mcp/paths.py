"""Where a local file may be read from, and how it is opened: once, and checked after opening.

Paths come from the model, and any file in an allowed folder may be hostile: between two steps a
name can become a symlink to elsewhere, a pipe that blocks whoever opens it, or a growing file. So
a video to upload is opened exactly once (`open_local_file`): resolved and confined to the allowed
folders, opened without following a final symlink and without blocking, refused unless a regular
file, confined again *after* opening, then measured and uploaded from that one descriptor
(`LocalFile`), never by its name again.

Error texts name only the argument as given and the allowed folders, never where a link points
(over HTTP the caller is remote); "did you mean" suggests video files only. Download names stay
inside the output folder (`ensure_inside`, `safe_filename`).
"""

from __future__ import annotations

import difflib
import errno
import os
import stat
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from pixverse_mcp.errors import InputError
from pixverse_mcp.localfile import LocalFile

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".flv", ".ts", ".mpg", ".wmv"})
MAX_NAME_BYTES = 255  # the longest file or folder name on common file systems
MAX_PATH_BYTES = 4096  # PATH_MAX on Linux

# No following of a final symlink, no waiting on a pipe or device, no leaking into child processes.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_MAX_LISTED = 2000  # folder entries looked at for "did you mean" (a huge folder stays fast)
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{i}" for p in ("com", "lpt") for i in range(1, 10)}
_SHOWN_CHARS = 120


# --------------------------------------------------------------------------- resolving


def _shown(text: str) -> str:
    """The argument as given, quoted, and shortened when very long."""
    if len(text) > _SHOWN_CHARS:
        text = f"{text[:80]}…{text[-30:]}"
    return repr(text)


def _roots_text(roots: Sequence[Path]) -> str:
    return ", ".join(str(r) for r in roots)


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


def _expand(text: str, shown: str) -> Path:
    try:
        return Path(text).expanduser()
    except RuntimeError:  # "~name" for a user that does not exist, or no home folder at all
        user = text[1:].replace("\\", "/").split("/", 1)[0]
        if user:
            problem = f"starts with '~{user}', but there is no user {user!r} on this machine"
        else:
            problem = "starts with '~', but no home folder is known for the user this server runs as"
        raise InputError(
            f"the path {shown} {problem}. Use ~/... for the home folder of the server's user, "
            "or give the full path.",
            argument="path",
        ) from None


def _resolve(path: Path, shown: str, argument: str = "path") -> Path:
    try:
        return path.resolve()
    except RuntimeError:  # Python's text names the link's target: keep it out of the message
        raise InputError(
            f"the path {shown} cannot be resolved: it leads into a loop of symbolic links.",
            argument=argument,
        ) from None
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.EINVAL, errno.ENOTDIR):
            # A link seen a moment ago was gone (or was no link any more) when it was read.
            raise InputError(
                f"the path {shown} changed while it was being resolved (a symbolic link on the way came "
                "or went). Try again once it stays put.",
                argument=argument,
            ) from None
        raise InputError(
            f"the path {shown} cannot be resolved ({exc.strerror or type(exc).__name__}).", argument=argument
        ) from None
    except ValueError as exc:  # NUL byte, text the file system cannot encode, ...
        raise InputError(
            f"the path {shown} is not a usable file path ({exc or type(exc).__name__}).", argument=argument
        ) from None


def _outside(shown: str, roots: Sequence[Path]) -> InputError:
    return InputError(
        f"the path {shown} is outside the folders this server may read ({_roots_text(roots)}). Move or "
        f"copy the file into one of them, or set PIXVERSE_ALLOWED_DIRS to include its folder (several "
        f"folders are separated by {os.pathsep!r}) and restart the server.",
        argument="path",
    )


def allowed_roots(roots: Sequence[Path]) -> list[Path]:
    """The allowed folders, resolved (``~`` expanded, symlinks followed)."""
    if not roots:
        raise InputError(
            "no folders are allowed for local files; set PIXVERSE_ALLOWED_DIRS to the folders "
            "that hold your videos, or pass a public URL instead.",
            argument="path",
        )
    resolved = []
    for root in roots:
        try:
            resolved.append(Path(root).expanduser().resolve())
        except (OSError, RuntimeError, ValueError):
            continue  # an allowed folder that cannot be resolved allows nothing
    return resolved


def resolve_local_path(raw: str, roots: Sequence[Path]) -> Path:
    """Resolve a path given by the model, and make sure it lies inside the allowed folders.

    ``~`` expands to the home folder, a relative path is taken relative to ``roots[0]``, and
    symlinks are followed before the check, so neither ``../`` nor a link can lead outside. Nothing
    is opened: `open_local_file` opens the result and checks it again.

    Args:
        raw: The path as the model wrote it.
        roots: The allowed folders (``PIXVERSE_ALLOWED_DIRS``); the first one anchors relative paths.

    Returns:
        The resolved path (which may not exist).

    Raises:
        InputError: (argument "path") empty, unusable, or outside the allowed folders.
    """
    return _resolve_local(raw, roots)[0]


def _resolve_local(raw: str, roots: Sequence[Path]) -> tuple[Path, str, list[Path]]:
    """The resolved path, the argument as shown in errors, and the resolved allowed folders."""
    text = _clean_raw_path(raw)
    shown = _shown(text)
    if not text:
        raise InputError("the path is empty; give the path of a local mp4 or mov file.", argument="path")
    resolved_roots = allowed_roots(roots)
    candidate = _expand(text, shown)
    if not candidate.is_absolute():
        if not resolved_roots:
            raise _outside(shown, roots)
        candidate = resolved_roots[0] / candidate
    path = _resolve(candidate, shown)
    if not _inside(path, resolved_roots):
        raise _outside(shown, resolved_roots or roots)
    return path, shown, resolved_roots


# --------------------------------------------------------------------------- opening


def open_local_file(raw: str, roots: Sequence[Path]) -> LocalFile:
    """Open a file named by the model, once, and make sure it is a regular file in the allowed folders.

    The resolved path is opened without following a final symlink and without blocking (a pipe or
    device answers at once), and the opened file itself is checked: a regular file, inside the
    allowed folders (on Linux by the path the kernel reports for the descriptor). Read it only
    through the returned object.

    Args:
        raw: The path as the model wrote it.
        roots: The allowed folders; the first one anchors relative paths.

    Returns:
        The opened file; the caller closes it.

    Raises:
        InputError: (argument "path") every way a path or file can be refused, each with its own text.
    """
    path, shown, resolved_roots = _resolve_local(raw, roots)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise _refusal(exc, shown, path, resolved_roots) from None
    except ValueError as exc:
        raise InputError(f"the path {shown} is not a usable file path ({exc}).", argument="path") from None
    try:
        status = _check_opened(fd, shown, path, resolved_roots)
        if getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)  # a regular file: no reason to keep the flag
    except BaseException:
        os.close(fd)
        raise
    return LocalFile(fd, path, shown, status)


def _check_opened(fd: int, shown: str, path: Path, roots: Sequence[Path]) -> os.stat_result:
    status = os.fstat(fd)
    if not _opened_inside(fd, status, path, roots):
        # A folder on the way was swapped for a link after the path was resolved.
        raise _outside(shown, roots)
    if stat.S_ISDIR(status.st_mode):
        raise InputError(
            f"{shown} is a folder, not a file; give the path of a video file in it.{_videos_in(fd)}",
            argument="path",
        )
    if not stat.S_ISREG(status.st_mode):
        kind = "a pipe (FIFO)" if stat.S_ISFIFO(status.st_mode) else "a socket or device"
        raise InputError(
            f"{shown} is not a regular file but {kind}; give the path of a video file.", argument="path"
        )
    return status


def _opened_inside(fd: int, status: os.stat_result, path: Path, roots: Sequence[Path]) -> bool:
    """Whether the file behind ``fd`` lies inside the allowed folders, judged after opening."""
    try:
        # Linux names the file a descriptor is open on, whatever happened to the path since.
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        real = ""
    if real.startswith("/"):
        return _inside(Path(real.removesuffix(" (deleted)")), roots)
    # Elsewhere: the path, resolved again, must be inside and lead to the very file that was opened.
    try:
        again = Path(os.path.realpath(path))
        named = os.stat(again)
    except (OSError, ValueError):
        return False
    return _inside(again, roots) and (named.st_dev, named.st_ino) == (status.st_dev, status.st_ino)


def _refusal(exc: OSError, shown: str, path: Path, roots: Sequence[Path]) -> InputError:
    """The error for a file that could not be opened, by what went wrong, naming only the argument."""
    code = exc.errno
    if code == errno.ENOENT:
        text = f"there is no file at {shown}.{_missing_hint(path, roots)}"
    elif code == errno.ENOTDIR:
        text = f"there is no file at {shown}: a part of the path that should be a folder is a file."
    elif code == errno.ELOOP:
        # Every link was followed when the path was resolved: a link here took the file's place since.
        text = (
            f"the path {shown} changed while it was being opened (a symbolic link took the file's place). "
            "Try again once the file stays put."
        )
    elif code == errno.ENAMETOOLONG and any(len(os.fsencode(p)) > MAX_NAME_BYTES for p in path.parts):
        text = (
            f"the path {shown} cannot be opened: a file or folder name in it is too long (at most "
            f"{MAX_NAME_BYTES} bytes per name on this system). Check the path, or rename the file to a "
            "shorter name."
        )
    elif code == errno.ENAMETOOLONG:
        text = (
            f"the path {shown} is too long for this system (at most {MAX_PATH_BYTES} bytes). Give a "
            "shorter path, or move the file to a folder with a shorter path."
        )
    elif code in (errno.EACCES, errno.EPERM):
        text = (
            f"the file {shown} cannot be read: permission denied (the file, or a folder on its way, is "
            "not readable by the user this server runs as). Make it readable (chmod a+r on the file, "
            "a+x on its folders), or copy it into a readable folder."
        )
    elif code in (errno.ENXIO, errno.ENODEV, getattr(errno, "EOPNOTSUPP", -1)):
        text = f"{shown} is not a regular file (a socket or device); give the path of a video file."
    else:
        reason = (exc.strerror or type(exc).__name__).rstrip(".")
        text = f"the file {shown} cannot be opened ({reason}). Check the file, then try again."
    return InputError(text, argument="path")


# --------------------------------------------------------------------------- suggestions


def _video_names(folder: Path | int) -> list[str]:
    """The video file names in a folder (given by path or descriptor), sorted; hidden files left out."""
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for _, entry in zip(range(_MAX_LISTED), entries, strict=False)]
    except (OSError, ValueError):
        return []
    return sorted(n for n in names if Path(n).suffix.lower() in VIDEO_SUFFIXES and not n.startswith("."))


def _missing_hint(missing: Path, roots: Sequence[Path]) -> str:
    """A "did you mean" from the video files beside a missing file, if that folder is allowed."""
    folder = missing.parent
    if not _inside(folder, roots):
        return ""
    if not folder.is_dir():
        return " Its folder does not exist either."
    videos = _video_names(folder)
    # Compare case-insensitively: "Clip.MP4" should be found for "clip.mp4".
    by_lower = {name.lower(): name for name in videos}
    close = difflib.get_close_matches(missing.name.lower(), list(by_lower), n=3, cutoff=0.6)
    if close:
        return " Did you mean " + " or ".join(repr(str(folder / by_lower[c])) for c in close) + "?"
    if videos:
        return " Videos in that folder: " + ", ".join(repr(v) for v in videos[:5]) + "."
    return " That folder holds no video files."


def _videos_in(fd: int) -> str:
    # Listed through the descriptor, so it is the folder that was checked, whatever its name is now.
    videos = _video_names(fd)[:5] if os.scandir in os.supports_fd else []
    return (" Videos in it: " + ", ".join(repr(v) for v in videos) + ".") if videos else ""


# --------------------------------------------------------------------------- writing


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
    base = _resolve(Path(root).expanduser(), repr(str(root)), argument)
    candidate = Path(path).expanduser()
    shown = _shown(str(path))
    resolved = _resolve(candidate if candidate.is_absolute() else base / candidate, shown, argument)
    if resolved == base or not resolved.is_relative_to(base):
        raise InputError(
            f"the file name {shown} would be written outside the output folder {str(base)!r}. "
            "Use a plain file name without folders or '..'.",
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


__all__ = [
    "MAX_NAME_BYTES",
    "MAX_PATH_BYTES",
    "VIDEO_SUFFIXES",
    "allowed_roots",
    "ensure_inside",
    "open_local_file",
    "resolve_local_path",
    "safe_filename",
]
