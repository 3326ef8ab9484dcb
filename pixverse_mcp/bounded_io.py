"""File-like objects PyAV reads a video through, each stopping at a byte budget, a deadline or a cancel flag.

FFmpeg's own file and network code cannot be stopped from outside once it blocks, and it opens
whatever a playlist names. Handing PyAV one of these objects instead keeps every byte it sees
under this server's control: a read past the budget, past the deadline, or after the caller gave
up raises `ReadStopped`, which PyAV passes back up and which ends the decoding.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from pixverse_mcp import __version__
from pixverse_mcp.errors import PixVerseError
from pixverse_mcp.fetching import FetchRules, open_stream_blocking

# Seeking forward by this much or less reads through the open response instead of a new request.
_SKIP_AHEAD_BYTES = 256 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


class ReadStopped(Exception):
    """A read went past its byte budget or deadline, failed, or its caller stopped waiting."""


@dataclass
class ReadLimits:
    """What one reader (or several in turn) may use: bytes in all, and time until `deadline`."""

    max_bytes: int
    seconds: float
    deadline: float = 0.0
    used: int = 0
    cancelled: threading.Event = field(default_factory=threading.Event)
    stopped: ReadStopped | None = None

    @classmethod
    def start(cls, max_bytes: int, seconds: float) -> ReadLimits:
        return cls(max_bytes=max_bytes, seconds=seconds, deadline=time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def cancel(self) -> None:
        """Called by the side that gave up waiting: the next read stops."""
        self.cancelled.set()

    def stop(self, reason: str) -> ReadStopped:
        """Remember why reading stopped (the first reason wins); every later read raises it again."""
        if self.stopped is None:
            self.stopped = ReadStopped(reason)
        return self.stopped

    def check(self) -> None:
        if self.stopped is not None:
            raise self.stopped
        if self.cancelled.is_set():
            raise self.stop("the caller stopped waiting for the video")
        if time.monotonic() >= self.deadline:
            raise self.stop(f"reading the video took over {self.seconds:g} s")

    def charge(self, count: int) -> None:
        self.used += count
        if self.used > self.max_bytes:
            raise self.stop(f"the video is bigger than the {self.max_bytes / 1024 / 1024:.3g} MB read limit")


class LocalVideoReader:
    """One local file, read under limits. FFmpeg sees only these bytes, never a path it could follow."""

    def __init__(self, path: Path, limits: ReadLimits) -> None:
        self._file = Path(path).open("rb")  # noqa: SIM115 -- owned by the reader, closed by close()
        self._limits = limits
        self.name = Path(path).name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self._limits.check()
        data = self._file.read(size if size >= 0 else _SKIP_AHEAD_BYTES)
        self._limits.charge(len(data))
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._limits.check()
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


class HttpVideoReader:
    """A video at an http(s) URL, read with Range requests through a blocking client, under limits.

    Reading on from where the last read stopped keeps one response streaming; a seek elsewhere
    starts a new Range request. A server that ignores Range is read from the start and the bytes
    before the wanted position are skipped (they count against the budget too).
    """

    def __init__(self, url: str, rules: FetchRules, limits: ReadLimits) -> None:
        self._url = url
        self._rules = rules
        self._limits = limits
        self._http = httpx2.Client(
            follow_redirects=False,
            headers={"User-Agent": f"pixverse-restyle-mcp/{__version__}", "Accept-Encoding": "identity"},
        )
        self._pos = 0
        self._size: int | None = None
        self._stream: ExitStack | None = None
        self._chunks: Iterator[bytes] | None = None
        self._stream_pos = 0  # the position of the first byte in `_pending`
        self._pending = b""
        self.name = url

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._limits.check()
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self._known_size() + offset
        else:
            raise OSError(f"unsupported seek mode {whence}")
        if target < 0:
            raise OSError("seek before the start of the video")
        self._pos = target
        return target

    def read(self, size: int = -1) -> bytes:
        self._limits.check()
        if self._size is not None and self._pos >= self._size:
            return b""
        ahead = self._pos - self._stream_pos
        if self._chunks is None or not 0 <= ahead <= _SKIP_AHEAD_BYTES + len(self._pending):
            self._guarded(lambda: self._open_at(self._pos))
        # Skip to the wanted position (after a short seek forward, or when Range was ignored).
        while self._stream_pos < self._pos:
            if not self._pending and not self._fill():
                return b""
            drop = min(len(self._pending), self._pos - self._stream_pos)
            self._pending = self._pending[drop:]
            self._stream_pos += drop
        if not self._pending and not self._fill():
            return b""
        count = len(self._pending) if size < 0 else min(size, len(self._pending))
        data, self._pending = self._pending[:count], self._pending[count:]
        self._pos += count
        self._stream_pos = self._pos
        return data

    def close(self) -> None:
        self._close_stream()
        self._http.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _guarded(self, action: Callable[[], None]) -> None:
        """Run a step that talks HTTP; any failure stops reading for good, with a reason."""
        try:
            action()
        except ReadStopped:
            raise
        except PixVerseError as exc:
            raise self._limits.stop(exc.message) from None
        except (httpx2.HTTPError, httpx2.InvalidURL, OSError) as exc:
            raise self._limits.stop(f"fetching the video failed ({type(exc).__name__})") from None

    def _fill(self) -> bool:
        """Get the next chunk of the open response into `_pending`; False at its end."""
        assert self._chunks is not None
        chunk = b""
        while not chunk:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return False
            except (httpx2.HTTPError, OSError) as exc:
                raise self._limits.stop(f"fetching the video failed ({type(exc).__name__})") from None
            self._limits.charge(len(chunk))
            self._limits.check()
        self._pending += chunk
        return True

    def _open_at(self, position: int) -> None:
        self._close_stream()
        stack = ExitStack()
        # Each look-up, connect and read may block at most until the deadline.
        self._limits.check()
        response, final_url = stack.enter_context(
            open_stream_blocking(
                self._http,
                self._url,
                self._rules,
                seconds=self._limits.remaining(),
                headers={"Range": f"bytes={position}-"},
            )
        )
        self._stream = stack
        self._url = final_url  # later Range requests skip the redirects
        if response.status_code == 416:
            self._size, self._stream_pos, self._chunks = position, position, iter(())
            return
        if response.status_code == 206 and (
            match := _CONTENT_RANGE.match(response.headers.get("content-range", ""))
        ):
            self._stream_pos = int(match.group(1))
            if match.group(2) != "*":
                self._size = int(match.group(2))
        elif response.status_code == 200:
            self._stream_pos = 0
            if (length := response.headers.get("content-length", "")).isdigit():
                self._size = int(length)
        else:
            raise self._limits.stop(f"the video URL answered HTTP {response.status_code}")
        self._pending = b""
        self._chunks = response.iter_bytes()

    def _known_size(self) -> int:
        if self._size is None:
            self._guarded(lambda: self._open_at(self._pos))
        if self._size is None:
            raise OSError("the video's length is unknown")
        return self._size

    def _close_stream(self) -> None:
        self._chunks = None
        self._pending = b""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.close()
