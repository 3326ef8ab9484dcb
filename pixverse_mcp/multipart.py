"""A local file as a streamed multipart/form-data body: exactly what was checked, or nothing.

The body is made again for each attempt (a retry re-reads from offset 0). Exactly the size measured
when the file was opened is sent, so the Content-Length always holds; a file that changed since (size
or modification time), or that ends early, breaks the request off before its end, so PixVerse stores
nothing, and an InputError says so.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import anyio

from pixverse_mcp.errors import InputError

ProgressCallback = Callable[[int, int], Awaitable[None]]
"""Called with (bytes done, bytes in all) while a file moves."""

# Big enough that the thread hop per chunk costs little, small enough to keep memory flat.
CHUNK_BYTES = 1024 * 1024


class UploadSource(Protocol):
    """An opened local file to upload (`localfile.LocalFile`): its size when opened, reads by offset,
    and whether it was written to since."""

    @property
    def size(self) -> int: ...
    def read_at(self, offset: int, length: int) -> bytes: ...
    def changed(self) -> bool: ...


FILE_CHANGED = "the file changed while uploading; try again when it is complete (the upload was broken off)."


class FileForm:
    """One multipart field named `file` holding an opened file."""

    def __init__(
        self,
        source: UploadSource,
        *,
        file_name: str,
        content_type: str,
        on_progress: ProgressCallback | None = None,
        field: str = "file",
    ) -> None:
        self._source = source
        self._size = source.size
        self._on_progress = on_progress
        boundary = uuid.uuid4().hex
        # A header value must be plain ASCII without quotes: anything else in a name becomes "_".
        filename = "".join(
            c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in file_name
        )
        self._head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        self.headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(self._head) + self._size + len(self._tail)),
        }

    async def body(self) -> AsyncIterator[bytes]:
        yield self._head
        sent = 0
        while sent < self._size:
            chunk = await anyio.to_thread.run_sync(
                self._source.read_at, sent, min(CHUNK_BYTES, self._size - sent)
            )
            if not chunk:
                raise InputError(FILE_CHANGED, argument="path")
            sent += len(chunk)
            if self._on_progress is not None:
                await self._on_progress(sent, self._size)
            yield chunk
        # The last check before the body is complete: a changed file never becomes a media.
        if await anyio.to_thread.run_sync(self._source.changed):
            raise InputError(FILE_CHANGED, argument="path")
        yield self._tail
