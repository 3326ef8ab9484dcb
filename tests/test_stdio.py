"""The real thing: the server spawned as a stdio process, as desktop clients run it."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from conftest import SECRET_KEY, call_error, call_ok
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from pixverse_mcp import __version__
from pixverse_mcp.sandbox import SandboxServer

pytestmark = pytest.mark.anyio


def _env(sandbox: SandboxServer, videos: Path, out: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXVERSE_")}
    env.update(
        PIXVERSE_BASE_URL=sandbox.base_url,
        PIXVERSE_API_KEY=SECRET_KEY,
        PIXVERSE_ALLOWED_DIRS=str(videos),
        PIXVERSE_OUTPUT_DIR=str(out),
        PIXVERSE_LOG_LEVEL="DEBUG",
        **extra,
    )
    return env


async def test_flow_over_stdio(sandbox: SandboxServer, clip: Path, videos: Path, tmp_path: Path) -> None:
    errlog = tmp_path / "stderr.log"
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "pixverse_mcp"], env=_env(sandbox, videos, tmp_path / "out")
    )
    with errlog.open("w") as err:
        async with Client(stdio_client(params, errlog=err), mode="legacy") as client:
            styles = await call_ok(client, "list_restyles", {"query": "sketch"})
            uploaded = await call_ok(client, "upload_video", {"path": clip.name})
            done = await call_ok(
                client,
                "restyle_video",
                {
                    "video_media_id": uploaded["media_id"],
                    "restyle_id": styles["styles"][0]["restyle_id"],
                    "download": True,
                },
            )
            assert done["status"] == "succeeded" and Path(done["local_path"]).is_file()
            assert "400017" in await call_error(
                client, "restyle_video", {"video_media_id": "123", "restyle_prompt": "noir"}
            )
    logged = errlog.read_text()
    assert "tool=restyle_video outcome=ok" in logged and "trace_id=" in logged
    assert SECRET_KEY not in logged


async def test_starts_without_a_key_and_says_how_to_set_it(
    sandbox: SandboxServer, videos: Path, tmp_path: Path
) -> None:
    env = _env(sandbox, videos, tmp_path / "out")
    del env["PIXVERSE_API_KEY"]
    params = StdioServerParameters(command=sys.executable, args=["-m", "pixverse_mcp", "serve"], env=env)
    async with Client(params) as client:
        text = await call_error(client, "get_balance")
    assert "PIXVERSE_API_KEY" in text and "--sandbox" in text


STARTUP_SECONDS = 30.0


def _read_pipe(stream: IO[bytes], timeout: float, until: bytes | None = None) -> bytes:
    """Read a pipe until ``until`` shows up (or, without it, to its end), for at most ``timeout`` s."""
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while until is None or until not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise AssertionError(f"nothing more within {timeout:g} s; the server said: {seen[-2000:]!r}")
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                if until is None:
                    break
                raise AssertionError(f"the server closed stderr before {until!r}: {seen[-2000:]!r}")
            seen += chunk
    return seen


@pytest.fixture
def spawned(sandbox: SandboxServer, videos: Path, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pixverse_mcp", "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(sandbox, videos, tmp_path / "out"),
    )
    try:
        assert process.stderr is not None
        _read_pipe(process.stderr, STARTUP_SECONDS, until=b"ready:")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def _finish(process: subprocess.Popen[bytes]) -> str:
    assert process.stderr is not None
    rest = _read_pipe(process.stderr, 10).decode()  # to its end: the server has exited or closed it
    code = process.wait(timeout=10)
    assert code == 0, rest
    assert "Traceback" not in rest and "PixVerse client closed" in rest
    assert SECRET_KEY not in rest
    return rest


def test_sigterm_stops_the_server_cleanly(spawned: subprocess.Popen[bytes]) -> None:
    spawned.send_signal(signal.SIGTERM)
    assert "SIGTERM" in _finish(spawned)


def test_closing_stdin_stops_the_server_cleanly(spawned: subprocess.Popen[bytes]) -> None:
    assert spawned.stdin is not None
    spawned.stdin.close()
    _finish(spawned)


def test_version() -> None:
    out = subprocess.run([sys.executable, "-m", "pixverse_mcp", "--version"], capture_output=True, check=True)
    assert out.stdout.decode().strip() == f"pixverse-mcp {__version__}"
