"""Hostile local files through the MCP protocol: swapped links and pipes, odd names, files that change.

Each test talks to the server with the in-memory MCP client; the server uploads over real HTTP to
the sandbox (or to a recording server started here), and the test checks what arrived there.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import call_error, call_ok, result_text
from mcp import Client

from pixverse_mcp.config import Settings
from pixverse_mcp.samples import make_clip
from pixverse_mcp.sandbox import SandboxServer
from pixverse_mcp.server import create_server

pytestmark = pytest.mark.anyio

SWAPS = 20_000  # upper bound on the swaps a swapping thread makes, should the calls never end


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tiny_clip(path: Path, seconds: float = 0.3) -> Path:
    return make_clip(path, seconds=seconds, width=64, height=64, fps=10)


class Swapper:
    """A thread that keeps flipping what a name in the allowed folder is, until stopped or bounded."""

    def __init__(self, flips: list[Callable[[], None]], release: Callable[[], None] = lambda: None) -> None:
        self._flips = flips
        self._release = release
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        done = 0
        try:
            while done < SWAPS and not self._stop.is_set():
                self._flips[done % len(self._flips)]()
                done += 1
            while done % len(self._flips):  # finish the cycle: back to the state it started from
                self._flips[done % len(self._flips)]()
                done += 1
        finally:
            self._release()

    def __enter__(self) -> Swapper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive()


def _replace_with_link(target: Path, make: Callable[[Path], None]) -> None:
    """Atomically put a new entry (made by ``make`` at a temporary name) at ``target``."""
    temporary = target.with_name(f".{target.name}.swap")
    temporary.unlink(missing_ok=True)
    make(temporary)
    os.replace(temporary, target)


def _exchange(first: Path, second: Path) -> None:
    """Swap two names in one step where the system can (Linux), else in three."""
    if _renameat2 is not None and _renameat2(_AT_FDCWD, bytes(first), _AT_FDCWD, bytes(second), 2) == 0:
        return  # 2 is RENAME_EXCHANGE
    parked = first.with_name(f".{first.name}.parked")
    os.rename(first, parked)
    os.rename(second, first)
    os.rename(parked, second)


_AT_FDCWD = -100
_renameat2 = getattr(ctypes.CDLL(None), "renameat2", None) if sys.platform == "linux" else None


@pytest.mark.parametrize("swapped", ["final symlink", "folder symlink"])
async def test_a_symlink_swapped_in_after_the_check_never_sends_the_outside_file(
    settings: Settings, sandbox: SandboxServer, videos: Path, tmp_path: Path, swapped: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    inside_clip = _tiny_clip(videos / "inside.mp4")
    outside_clip = _tiny_clip(outside / "clip.mp4", seconds=0.4)
    inside_hash, outside_hash = _digest(inside_clip), _digest(outside_clip)
    assert inside_hash != outside_hash

    if swapped == "final symlink":
        # videos/clip.mp4 is, in turn, the inside clip itself (a hard link) and a symlink to the outside one.
        argument, target = "clip.mp4", videos / "clip.mp4"
        os.link(inside_clip, target)
        flips = [
            lambda: _replace_with_link(target, lambda t: t.symlink_to(outside_clip)),
            lambda: _replace_with_link(target, lambda t: os.link(inside_clip, t)),
        ]
    else:
        # videos/sub is, in turn, a real folder holding the inside clip and a symlink to the outside folder.
        argument, sub, other = "sub/clip.mp4", videos / "sub", videos / "sub-other"
        sub.mkdir()
        os.link(inside_clip, sub / "clip.mp4")
        other.symlink_to(outside)
        flips = [lambda: _exchange(sub, other)] * 2

    answers = []
    async with Client(create_server(settings)) as client:
        with Swapper(flips), anyio.fail_after(60):
            for _ in range(100):
                answers.append(await client.call_tool("upload_video", {"path": argument}))
        # Once the name stays put on the inside clip, the same call uploads it.
        settled = await call_ok(client, "upload_video", {"path": argument})

    stored = {media_id: _digest(media.path) for media_id, media in sandbox.state.media.items()}
    assert outside_hash not in stored.values()
    assert set(stored.values()) == {inside_hash}
    for answer in answers:
        text = result_text(answer)
        if answer.is_error:
            assert "outside the folders" in text or "changed while" in text or "no file at" in text, text
            assert str(outside) not in text
        else:
            assert answer.structured_content is not None
            assert stored[int(answer.structured_content["media_id"])] == inside_hash
    assert stored[int(settled["media_id"])] == inside_hash


async def test_a_pipe_is_refused_at_once_and_forty_of_them_leave_the_server_answering(
    client: Client, sandbox: SandboxServer, videos: Path
) -> None:
    os.mkfifo(videos / "pipe.mp4")
    inside_clip = _tiny_clip(videos / "inside.mp4")
    # videos/clip.mp4 is, in turn, the clip and a pipe: a pipe swapped in after any check.
    held_pipe = videos / "held-pipe"
    os.mkfifo(held_pipe)
    target = videos / "clip.mp4"
    os.link(inside_clip, target)
    flips = [
        lambda: _replace_with_link(target, lambda t: os.link(held_pipe, t)),
        lambda: _replace_with_link(target, lambda t: os.link(inside_clip, t)),
    ]

    waiting_readers: list[Path] = []

    def release_pipe_readers() -> None:
        # Runs once every call has answered (or the swaps ran out): a writer can open a pipe only
        # while a reader waits on it, so each success here is an open that waited, and ends that wait.
        for pipe in (held_pipe, videos / "pipe.mp4"):
            for _ in range(1000):
                try:
                    os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    break  # no reader is waiting
                waiting_readers.append(pipe)

    texts: list[str] = []

    async def call(path: str) -> None:
        texts.append(result_text(await client.call_tool("upload_video", {"path": path})))

    with Swapper(flips, release=release_pipe_readers), anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for index in range(40):
                group.start_soon(call, "pipe.mp4" if index % 2 else "clip.mp4")
    assert not waiting_readers, "an open waited on a pipe"
    with anyio.fail_after(10):
        balance = await call_ok(client, "get_balance")
    assert balance["total"] > 0
    assert len(texts) == 40
    uploaded = {_digest(media.path) for media in sandbox.state.media.values()}
    assert uploaded <= {_digest(inside_clip)}
    for text in texts:
        if "media_id" in text:
            continue
        assert "is not a regular file" in text and "pipe" in text, text
        assert "failed unexpectedly" not in text


@pytest.mark.parametrize(
    ("argument", "needles"),
    [
        ("a" * 300 + ".mp4", ["name in it is too long", "255 bytes", "rename"]),
        ("é/" * 1500 + "clip.mp4", ["too long for this system", "4096 bytes", "shorter path"]),
        ("~nosuchuser-7d1f/clip.mp4", ["~nosuchuser-7d1f", "no user", "~/"]),
    ],
)
async def test_odd_paths_get_their_own_clear_message(
    client: Client, sandbox: SandboxServer, argument: str, needles: list[str]
) -> None:
    text = await call_error(client, "upload_video", {"path": argument})
    assert "failed unexpectedly" not in text
    for needle in needles:
        assert needle in text
    assert not sandbox.state.media


def _grow(path: Path) -> Callable[[float, float | None, str | None], Any]:
    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        with path.open("ab") as file:
            file.write(b"\0" * 4096)

    return on_progress


def _rewrite_in_place(path: Path) -> Callable[[float, float | None, str | None], Any]:
    os.utime(path, ns=(10**18, 10**18))  # an old mtime, so the rewrite below surely changes it

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        with path.open("r+b") as file:
            file.seek(-64, os.SEEK_END)
            file.write(b"\xff" * 64)

    return on_progress


@pytest.mark.parametrize("change", [_grow, _rewrite_in_place])
async def test_a_file_that_changes_while_it_uploads_is_refused_and_not_stored(
    settings: Settings, sandbox: SandboxServer, clip: Path, change: Callable[..., Any]
) -> None:
    # The in-process client runs the progress callback inside the upload, between reading the file and
    # the end of the request: the change always lands while the file is being sent.
    async with Client(create_server(settings)) as client:
        result = await client.call_tool("upload_video", {"path": clip.name}, progress_callback=change(clip))
        text = result_text(result)
        assert result.is_error, text
        assert "the file changed while uploading; try again when it is complete" in text
        assert not sandbox.state.media
        # Once it holds still, it uploads.
        assert (await call_ok(client, "upload_video", {"path": clip.name}))[
            "size_bytes"
        ] == clip.stat().st_size


async def test_error_texts_name_only_the_argument_and_the_allowed_folders(
    client: Client, videos: Path, sandbox: SandboxServer
) -> None:
    (videos / "cwd.mp4").symlink_to("/proc/self/cwd")
    (videos / "env.mp4").symlink_to("/proc/self/environ")
    for name in ("cwd.mp4", "env.mp4"):
        text = await call_error(client, "upload_video", {"path": name})
        assert "outside the folders" in text and repr(name) in text and str(videos) in text
        assert "/proc" not in text and str(Path.cwd()) not in text and "environ" not in text.replace(name, "")

    (videos / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (videos / "id_ed25519.pub").write_text("ssh-ed25519 AAAA\n")
    _tiny_clip(videos / "holiday.mp4")
    text = await call_error(client, "upload_video", {"path": "id_ed2551.mp4"})
    assert "id_ed25519" not in text and "holiday.mp4" in text
    text = await call_error(client, "upload_video", {"path": "holliday.mp4"})
    assert "Did you mean" in text and "holiday.mp4" in text
    assert not sandbox.state.media


class _Recorder(BaseHTTPRequestHandler):
    """A PixVerse stand-in that records each upload's request and answers with a media id."""

    uploads: list[dict[str, Any]]

    def do_POST(self) -> None:
        declared = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(declared)
        boundary = self.headers.get_param("boundary") or ""
        part = body.split(f"--{boundary}".encode())[1]
        part_head, _, part_body = part.partition(b"\r\n\r\n")
        headers = dict(
            line.split(": ", 1) for line in part_head.decode().strip().splitlines() if ": " in line
        )
        self.uploads.append(
            {
                "declared": declared,
                "received": len(body),
                "content_type": headers.get("Content-Type"),
                "bytes": part_body.removesuffix(b"\r\n"),
            }
        )
        reply = {"ErrCode": 0, "ErrMsg": "success", "Resp": {"media_id": 7, "media_type": "video"}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    uploads: list[dict[str, Any]] = []
    handler = type("Recorder", (_Recorder,), {"uploads": uploads})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", uploads
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize(
    ("name", "container", "content_type"),
    [("really-a-mov.mp4", "mov", "video/quicktime"), ("really-an-mp4.mov", "mp4", "video/mp4")],
)
async def test_the_upload_part_is_typed_by_content_not_by_name(
    settings: Settings,
    videos: Path,
    recorder: tuple[str, list[dict[str, Any]]],
    name: str,
    container: str,
    content_type: str,
) -> None:
    base_url, uploads = recorder
    clip = make_clip(videos / name, seconds=0.3, width=64, height=64, fps=10, container=container)
    async with Client(create_server(settings.with_changes(base_url=base_url))) as client:
        result = await client.call_tool("upload_video", {"path": name})
        assert not result.is_error, result_text(result)
    [upload] = uploads
    assert upload["content_type"] == content_type
    assert upload["declared"] == upload["received"]
    assert upload["bytes"] == clip.read_bytes()
