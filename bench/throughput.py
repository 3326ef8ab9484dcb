"""5. HTTP throughput: `get_status` calls a second over streamable HTTP, 1, 8 and 32 clients.

The server runs as `python -m pixverse_mcp serve --transport streamable-http` (with and without
`--stateless`), the sandbox in its own process, and the clients in this one: on a 2-core machine
the three share the cores, so the CPU each used is reported beside the rate.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import anyio
import httpx2
from _common import (
    PYTHON,
    SandboxProcess,
    Section,
    Summary,
    free_port,
    log_file,
    proc_cpu_seconds,
    say,
    server_env,
    small_clip,
    start_job,
    stop_process,
)
from mcp import Client


class HttpServer:
    """`pixverse-mcp serve --transport streamable-http` in a child process."""

    def __init__(self, base_url: str, workdir: Path, *, stateless: bool) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        args = [PYTHON, "-m", "pixverse_mcp", "serve", "--transport", "streamable-http"]
        args += ["--port", str(self.port)] + (["--stateless"] if stateless else [])
        self._errlog = log_file(f"http-{'stateless' if stateless else 'stateful'}")
        self.proc = subprocess.Popen(
            args,
            env=server_env(base_url, workdir),
            cwd=str(workdir),
            stdin=subprocess.DEVNULL,
            stdout=self._errlog,
            stderr=self._errlog,
        )
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                self._errlog.close()
                raise RuntimeError(f"the HTTP server exited with {self.proc.returncode}")
            try:
                httpx2.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                break
            except httpx2.TransportError:
                if time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("the HTTP server did not start within 20 s") from None
                time.sleep(0.05)

    def close(self) -> None:
        stop_process(self.proc)
        self._errlog.close()


async def _load(
    url: str, video_id: int, clients: int, seconds: float, pids: tuple[int, ...] = ()
) -> tuple[int, list[float], float, list[float]]:
    """`clients` sessions calling get_status for `seconds`.

    Returns the calls made in the window, their latencies, the window's length, and the CPU seconds
    each of `pids` and then this process used in it.
    """
    latencies: list[float] = []
    cpu: list[list[float]] = []

    def snapshot() -> None:
        cpu.append([*(proc_cpu_seconds(p) for p in pids), time.process_time()])

    async def closing() -> None:
        await ready.wait()
        await anyio.sleep(max(0.0, window["end"] - time.perf_counter()))
        snapshot()

    count = 0
    ready = anyio.Event()
    connected = 0
    window: dict[str, float] = {}

    async def one() -> None:
        nonlocal count, connected
        async with Client(url) as client:

            async def call() -> None:
                result = await client.call_tool("get_status", {"video_id": str(video_id), "wait_seconds": 0})
                if result.is_error:
                    raise RuntimeError(f"get_status failed: {result.content}")

            for _ in range(3):
                await call()
            connected += 1
            if connected == clients:
                snapshot()
                window["start"] = time.perf_counter()
                window["end"] = window["start"] + seconds
                ready.set()
            await ready.wait()
            while (now := time.perf_counter()) < window["end"]:
                await call()
                done = time.perf_counter()
                if done <= window["end"]:
                    latencies.append(done - now)
                    count += 1

    async with anyio.create_task_group() as group:
        group.start_soon(closing)
        for _ in range(clients):
            group.start_soon(one)
    return count, latencies, seconds, [b - a for a, b in zip(cpu[0], cpu[1], strict=True)]


async def run(
    sandbox: SandboxProcess, workdir: Path, concurrency: tuple[int, ...], seconds: float
) -> Section:
    section = Section("HTTP throughput")
    video_id = start_job(sandbox.base_url, small_clip())
    for stateless in (False, True):
        mode = "stateless" if stateless else "stateful"
        try:
            server = HttpServer(sandbox.base_url, workdir, stateless=stateless)
        except RuntimeError as exc:
            section.row(f"{mode}: could not run", str(exc))
            continue
        try:
            await _load(server.url, video_id, 1, 0.3)  # warm the server's code paths
            for clients in concurrency:
                pids = (server.proc.pid, sandbox.pid)
                calls, latencies, took, used = await _load(server.url, video_id, clients, seconds, pids)
                lat = Summary.of(latencies)
                say(f"  {mode}, {clients} clients: {calls / took:.0f} calls/s")
                section.row(
                    f"{mode}, {clients} concurrent client{'s' if clients > 1 else ''}",
                    f"{calls / took:.0f} calls/s; latency {lat.median * 1e3:.0f} ms, "
                    f"p95 {lat.p95 * 1e3:.0f} ms; "
                    f"CPU server {used[0] / took:.0%} ({used[0] / calls * 1e3:.1f} ms a call), "
                    f"sandbox {used[1] / took:.0%}, clients {used[2] / took:.0%}",
                )
        finally:
            server.close()
    section.notes.append(
        f"Each level runs {seconds:g} s after every client has connected and made 3 calls; each client "
        "is its own MCP session on its own connection, calling get_status with wait_seconds=0 on a "
        "generating job (one status request to the sandbox per call). CPU is a share of one core "
        "over the window: 200% would be both cores."
    )
    return section
