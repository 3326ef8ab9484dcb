"""Reading a request body at a set rate, like an upload over a slower link.

:class:`PacedReceive` wraps an ASGI ``receive``: it hands the body on in slices and, after each
slice, awaits until the time the slice would have arrived at ``bytes_per_second``. The server
stops reading the socket while the body waits (uvicorn's flow control), so the sender is slowed
too. Slices are cut at fixed offsets of the whole body, so the number of pauses depends only on
the body's size, not on how the network chunked it.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from starlette.types import Message, Receive

MIN_SLICE = 1024
MAX_SLICE = 1 << 20
PAUSES_PER_SECOND = 50  # slices are short enough to keep the pace smooth, long enough to be cheap


def slice_bytes(bytes_per_second: float) -> int:
    """The slice size for a rate: about 1/50 s of data, within 1 KiB .. 1 MiB."""
    return max(MIN_SLICE, min(MAX_SLICE, int(bytes_per_second / PAUSES_PER_SECOND)))


class PacedReceive:
    """An ASGI ``receive`` that delivers the request body at ``bytes_per_second``.

    ``on_pause(n)`` is called after each pause with the bytes it paced (the sandbox's accounting).
    """

    def __init__(
        self, receive: Receive, bytes_per_second: float, on_pause: Callable[[int], None] | None = None
    ) -> None:
        self._receive = receive
        self.rate = bytes_per_second
        self.slice = slice_bytes(bytes_per_second)
        self._on_pause = on_pause
        self._pending: list[Message] = []
        self._cut = 0  # body bytes already cut into pending pieces
        self._handed = 0  # body bytes handed on
        self._unpaced = 0  # bytes handed on since the last pause
        self._start: float | None = None

    async def __call__(self) -> Message:
        if not self._pending:
            message = await self._receive()
            if message["type"] != "http.request":
                return message  # http.disconnect: nothing to pace
            self._pending = self._cut_pieces(message)
        piece = self._pending.pop(0)
        size = len(piece["body"])
        if self._start is None:
            self._start = anyio.current_time()
        self._handed += size
        self._unpaced += size
        # Pause at every slice boundary and at the end of the body, never elsewhere.
        if self._unpaced and (self._handed % self.slice == 0 or not piece["more_body"]):
            await anyio.sleep(max(0.0, self._start + self._handed / self.rate - anyio.current_time()))
            if self._on_pause is not None:
                self._on_pause(self._unpaced)
            self._unpaced = 0
        return piece

    def _cut_pieces(self, message: Message) -> list[Message]:
        """``message`` split so that no piece crosses a slice boundary of the whole body."""
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        pieces: list[Message] = []
        while True:
            room = self.slice - self._cut % self.slice
            head, body = body[:room], body[room:]
            self._cut += len(head)
            pieces.append({"type": "http.request", "body": head, "more_body": bool(body) or more})
            if not body:
                return pieces
