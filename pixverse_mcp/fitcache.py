"""The folder of fitted copies: one file per input and settings, cleaned by age and total size.

A copy's name is a hash of the input's fingerprint (size, modification time, and a hash of its
first and last MiB) and of the fit's settings, so the same clip fitted the same way is found
again instead of transcoded twice, and a changed clip or other settings get a new copy. Copies
are written under a temporary name and renamed when complete, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

from pixverse_mcp.fitprobe import Source, read_at, source_size

APP_NAME = "pixverse-restyle-mcp"
DEFAULT_MAX_AGE_SECONDS = 7 * 24 * 3600.0
DEFAULT_MAX_BYTES = 2 * 1024**3
_SAMPLE_BYTES = 1024 * 1024
# A partial file this old belongs to a process that died mid-way.
_STALE_PARTIAL_SECONDS = 24 * 3600.0
# Bumped when the fitting itself changes, so copies made the old way are not reused.
_FORMAT = "fit-1"
_COPY_NAME = re.compile(r"^[0-9a-f]{32}\.mp4$")
_PARTIAL_NAME = re.compile(r"^\.[0-9a-f]{32}\.[0-9a-f]{12}\.partial$")


def default_cache_dir() -> Path:
    """``<user cache dir>/pixverse-restyle-mcp/fitted`` (e.g. ``~/.cache/...`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME)) / "fitted"


def _modified_ns(source: Source) -> int | None:
    if isinstance(source, (str, Path)):
        return Path(source).stat().st_mtime_ns
    with contextlib.suppress(AttributeError, OSError, ValueError):
        return os.fstat(source.fileno()).st_mtime_ns
    return None


def cache_key(source: Source, settings: dict[str, Any]) -> str | None:
    """The copy's name for this input and these settings; None when the input has no file behind it."""
    modified = _modified_ns(source)
    if modified is None:
        return None  # an in-memory file has no modification time to tell versions apart
    size = source_size(source)
    sample = hashlib.sha256(read_at(source, 0, _SAMPLE_BYTES))
    sample.update(read_at(source, max(0, size - _SAMPLE_BYTES), _SAMPLE_BYTES))
    text = json.dumps(
        {"format": _FORMAT, "size": size, "mtime_ns": modified, "sample": sample.hexdigest(), **settings},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def copy_path(folder: Path, key: str) -> Path:
    return folder / f"{key}.mp4"


def partial_path(folder: Path, key: str) -> Path:
    """A fresh temporary name beside the copy (unique, so parallel fits never share one)."""
    return folder / f".{key}.{uuid.uuid4().hex[:12]}.partial"


def prepare(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def find_copy(folder: Path, key: str) -> Path | None:
    """The finished copy for ``key``, marked as just used; None when there is none."""
    path = copy_path(folder, key)
    try:
        status = path.lstat()
    except OSError:
        return None
    if not path.is_file() or path.is_symlink() or status.st_size == 0:
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # age counts from the last use
    return path


def clean_cache(
    folder: Path,
    *,
    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    keep: Path | None = None,
    now: float | None = None,
) -> list[Path]:
    """Remove copies unused for ``max_age_seconds``, then the oldest until ``max_bytes`` remain.

    Only files named as this module names them are touched (never links, folders or other
    files); ``keep`` (the copy just handed out) is never removed.

    Returns:
        The removed files.
    """
    now = time.time() if now is None else now
    removed: list[Path] = []
    copies: list[tuple[float, int, Path]] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            status = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        path = Path(entry.path)
        if _PARTIAL_NAME.match(entry.name):
            if now - status.st_mtime > _STALE_PARTIAL_SECONDS and _remove(path):
                removed.append(path)
        elif _COPY_NAME.match(entry.name) and path != keep:
            if now - status.st_mtime > max_age_seconds:
                if _remove(path):
                    removed.append(path)
            else:
                copies.append((status.st_mtime, status.st_size, path))
    total = sum(size for _, size, _ in copies)
    if keep is not None:
        with contextlib.suppress(OSError):
            total += keep.stat().st_size
    for _, size, path in sorted(copies):
        if total <= max_bytes:
            break
        if _remove(path):
            removed.append(path)
            total -= size
    return removed


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False  # another process cleaned it first
    except OSError:
        return False
    return True
