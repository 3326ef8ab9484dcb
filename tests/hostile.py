"""A hostile fake PixVerse API on loopback: it answers whatever a test tells it to.

The API routes (result, generate, list, balance) answer the envelope
``{"ErrCode": 0, "ErrMsg": "ok", "Resp": ...}`` with ``HostileApi.result`` as the job; every other
path is served by a handler the test registers in ``routes``: a real video, a redirect, a body
that drips or never ends, a gzip bomb, a playlist. A raw asyncio server in a thread, one request
per connection, so a handler may stall or stream forever without holding up the others.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import socket
import threading
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

VIDEO_ID = 9007199254740993
_REASONS = {200: "OK", 206: "Partial Content", 302: "Found", 404: "Not Found", 416: "Range Not Satisfiable"}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


async def send_head(writer: asyncio.StreamWriter, status: int, headers: dict[str, str] | None = None) -> None:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Whatever')}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()


def reply(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    """A fixed answer."""

    async def handle(request: Request, writer: asyncio.StreamWriter) -> None:
        await send_head(writer, status, {"Content-Length": str(len(body)), **(headers or {})})
        writer.write(body)
        await writer.drain()

    return handle


def redirect(location: str, status: int = 302) -> Handler:
    return reply(b"", status, {"Location": location})


def video_file(path: Path) -> Handler:
    """A file served honestly, with Range requests answered."""

    async def handle(request: Request, writer: asyncio.StreamWriter) -> None:
        data = path.read_bytes()
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("range", ""))
        if wanted is None:
            await reply(data, headers={"Content-Type": "video/mp4"})(request, writer)
            return
        start = int(wanted.group(1))
        end = min(int(wanted.group(2) or len(data) - 1), len(data) - 1)
        if start >= len(data):
            await reply(b"", 416, {"Content-Range": f"bytes */{len(data)}"})(request, writer)
            return
        part = data[start : end + 1]
        headers = {"Content-Type": "video/mp4", "Content-Range": f"bytes {start}-{end}/{len(data)}"}
        await reply(part, 206, headers)(request, writer)

    return handle


def drip(interval: float) -> Handler:
    """A 200 whose body comes one byte every `interval` seconds, forever."""

    async def handle(request: Request, writer: asyncio.StreamWriter) -> None:
        await send_head(writer, 200, {"Content-Type": "video/mp4"})
        while True:
            writer.write(b"\0")
            await writer.drain()
            await asyncio.sleep(interval)

    return handle


def endless(total: int = 1 << 30, *, declare: bool = False) -> Handler:
    """`total` bytes of zeros (1 GiB by default), as fast as the reader takes them."""

    async def handle(request: Request, writer: asyncio.StreamWriter) -> None:
        await send_head(writer, 200, {"Content-Length": str(total)} if declare else {})
        chunk = bytes(64 * 1024)
        sent = 0
        while sent < total:
            writer.write(chunk[: total - sent])
            sent += len(chunk)
            await writer.drain()

    return handle


@functools.cache
def gzip_bomb_body(decoded_mb: int = 200) -> bytes:
    """About 200 KB of gzip that decodes to `decoded_mb` MB of zeros."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    return b"".join(packer.compress(block) for _ in range(decoded_mb)) + packer.flush()


def gzip_bomb(decoded_mb: int = 200) -> Handler:
    async def handle(request: Request, writer: asyncio.StreamWriter) -> None:
        body = gzip_bomb_body(decoded_mb)
        await reply(body, headers={"Content-Encoding": "gzip", "Content-Type": "video/mp4"})(request, writer)

    return handle


class HostileApi:
    """A PixVerse look-alike on 127.0.0.1 whose answers the test decides.

    ``with HostileApi() as api:`` then ``api.result["url"] = api.url("/v.mp4")`` and
    ``api.routes["/v.mp4"] = video_file(clip)``; ``api.hits`` lists every path asked for.
    """

    def __init__(self) -> None:
        self.result: dict[str, Any] = {
            "status": 1,
            "url": "",
            "size": 1,
            "style": "Hostile",
            "outputWidth": 320,
            "outputHeight": 240,
        }
        self.routes: dict[str, Handler] = {}
        self.hits: list[str] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def hits_of(self, prefix: str) -> int:
        return sum(1 for path in self.hits if path.startswith(prefix))

    # -- serving -------------------------------------------------------------------------------

    async def _api(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        path = request.path.split("?", 1)[0]
        resp: Any
        if path.startswith("/openapi/v2/video/result/"):
            resp = {"id": int(path.rsplit("/", 1)[1]), **self.result}
        elif path == "/openapi/v2/video/restyle/generate":
            resp = {"video_id": VIDEO_ID, "credits": 30}
        elif path == "/openapi/v2/video/restyle/list":
            resp = {"total": 0, "data": []}
        elif path == "/openapi/v2/account/balance":
            resp = {"account_id": 1, "credit_monthly": 100, "credit_package": 0}
        else:
            return False
        body = json.dumps({"ErrCode": 0, "ErrMsg": "ok", "Resp": resp}).encode()
        await reply(body, headers={"Content-Type": "application/json"})(request, writer)
        return True

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            first, *lines = head.split("\r\n")
            method, target, _ = first.split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}
            if length := int(headers.get("content-length", "0") or 0):
                await reader.readexactly(length)
            request = Request(method, target, headers)
            self.hits.append(target)
            if not await self._api(request, writer):
                handler = self.routes.get(target.split("?", 1)[0], reply(b"no such thing", 404))
                await handler(request, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def _serve(self, sock: socket.socket) -> None:
        self._stopping = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await self._connection(reader, writer)
            except asyncio.CancelledError:
                pass  # stopping: a handler that streams forever ends here
            finally:
                tasks.discard(task)

        server = await asyncio.start_server(accept, sock=sock)
        self._ready.set()
        await self._stopping.wait()
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        loop = self._loop
        self._thread = threading.Thread(
            target=lambda: loop.run_until_complete(self._serve(sock)), name="hostile-api", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the hostile API did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(5)
        if self._loop is not None:
            self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
