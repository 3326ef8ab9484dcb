"""A local file opened once: reads by offset up to its size at opening, a view for PyAV, change checks.

`paths.open_local_file` makes these; everything after the opening (the probe, the upload) reads
through one, never by the file's name again.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from types import TracebackType


class LocalFile:
    """A regular file inside the allowed folders, opened once; read it only through this object.

    ``size`` is measured when it is opened, and every read stops there, so the probe and the upload
    see the same bytes; ``changed()`` tells whether the file was written to since.
    """

    def __init__(self, fd: int, path: Path, shown: str, status: os.stat_result) -> None:
        # A file object owns the descriptor: even a LocalFile that a cancelled caller drops is closed.
        self._file = io.FileIO(fd, "rb", closefd=True)
        self._lock = threading.Lock()
        self.path = path
        """The resolved path it was opened at (inside the allowed folders)."""
        self.shown = shown
        """The path argument as given, quoted, for error texts."""
        self.size = status.st_size
        self._stamp = _stamp(status)

    @property
    def fd(self) -> int:
        return self._file.fileno()

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset``, never past the size measured at opening."""
        length = max(0, min(length, self.size - offset))
        if length == 0:
            return b""
        if hasattr(os, "pread"):
            return os.pread(self.fd, length, offset)
        with self._lock:  # Windows has no pread: seek and read as one step
            os.lseek(self.fd, offset, os.SEEK_SET)
            return os.read(self.fd, length)

    def changed(self) -> bool:
        """Whether the file's size or modification time differ from when it was opened."""
        return _stamp(os.fstat(self.fd)) != self._stamp

    def reader(self) -> FileView:
        """A read-only file object over these bytes, from offset 0 (for PyAV)."""
        return FileView(self)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> LocalFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalFile({self.shown}, size={self.size})"


class FileView:
    """A seekable, read-only file object over a `LocalFile`, with a position of its own."""

    def __init__(self, file: LocalFile) -> None:
        self._file = file
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._file.size - self._position
        data = self._file.read_at(self._position, size)
        self._position += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._file.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def fileno(self) -> int:
        """The `LocalFile`'s descriptor, for `fstat` and `pread` (never closed through this view)."""
        return self._file.fd

    @property
    def name(self) -> str:
        return self._file.path.name

    def close(self) -> None:
        """Leaves the descriptor open: it belongs to the `LocalFile`."""


def _stamp(status: os.stat_result) -> tuple[int, int]:
    # Not the ctime: a new hard link or a chmod changes it, and neither changes the bytes.
    return status.st_size, status.st_mtime_ns


__all__ = ["FileView", "LocalFile"]
