"""5. HTTP throughput: `get_status` calls a second over streamable HTTP, 1, 8 and 32 clients.

The server runs as `python -m pixverse_mcp serve --transport streamable-http` (with and without
`--stateless`), the sandbox in its own process, and the clients in this one: on a 2-core machine
the three share the cores, so the CPU each used is reported beside the rate.

The floor is the bare hello-world `MCPServer` (`hello_server.py --http`) served the same way, with
the same clients calling its hello tool; the two servers take turns at each level, and the figure
compared is the server process's CPU time per call (from /proc), which the other processes on the
machine do not inflate the way they inflate wall-clock rates.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
from _common import (
    BENCH,
    PYTHON,
    SandboxProcess,
    Section,
    Summary,
    api_headers,
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

GOAL_CPU_RATIO = 1.3


@dataclass(frozen=True)
class Load:
    """What one load window measured."""

    calls: int
    latencies: list[float]
    seconds: float
    cpu: list[float]  # CPU seconds of each watched pid, then of this process

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def server_ms(self) -> float:
        """Server CPU milliseconds a call (the first watched pid is the server)."""
        return self.cpu[0] / self.calls * 1e3


class HttpServer:
    """An MCP server on streamable HTTP in a child process: ours, or the hello-world floor."""

    def __init__(self, base_url: str, workdir: Path, *, stateless: bool, floor: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        mode = "stateless" if stateless else "stateful"
        if floor:
            args = [PYTHON, str(BENCH / "hello_server.py"), "--http", str(self.port)]
            env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(workdir))}
        else:
            args = [PYTHON, "-m", "pixverse_mcp", "serve", "--transport", "streamable-http"]
            args += ["--port", str(self.port)]
            env = server_env(base_url, workdir)
        args += ["--stateless"] if stateless else []
        self._errlog = log_file(f"http-{'hello-' if floor else ''}{mode}")
        self.proc = subprocess.Popen(
            args,
            env=env,
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
    url: str, tool: tuple[str, dict[str, Any]], clients: int, seconds: float, pids: tuple[int, ...] = ()
) -> Load:
    """`clients` sessions calling `tool` (name, arguments) for `seconds`.

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
                result = await client.call_tool(*tool)
                if result.is_error:
                    raise RuntimeError(f"{tool[0]} failed: {result.content}")

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
    return Load(count, latencies, seconds, [b - a for a, b in zip(cpu[0], cpu[1], strict=True)])


async def _raw_get_cpu(base_url: str, video_id: int, calls: int = 300) -> float:
    """CPU milliseconds this process spends on one raw httpx2 GET of the status (what get_status sends)."""
    url = f"{base_url}/openapi/v2/video/result/{video_id}"
    async with httpx2.AsyncClient(timeout=30) as http:
        for _ in range(20):  # warm the connection
            (await http.get(url, headers=api_headers())).raise_for_status()
        began = time.process_time()
        for _ in range(calls):
            (await http.get(url, headers=api_headers())).json()
        return (time.process_time() - began) / calls * 1e3


def _plural(clients: int) -> str:
    return f"{clients} concurrent client{'s' if clients > 1 else ''}"


async def run(
    sandbox: SandboxProcess, workdir: Path, concurrency: tuple[int, ...], seconds: float
) -> Section:
    section = Section("HTTP throughput")
    video_id = start_job(sandbox.base_url, small_clip())
    status = ("get_status", {"video_id": str(video_id), "wait_seconds": 0})
    hello = ("hello", {"name": "bench"})
    raw_ms = await _raw_get_cpu(sandbox.base_url, video_id)
    for stateless in (False, True):
        mode = "stateless" if stateless else "stateful"
        try:
            ours = HttpServer(sandbox.base_url, workdir, stateless=stateless)
        except RuntimeError as exc:
            section.row(f"{mode}: could not run", str(exc))
            continue
        try:
            floor: HttpServer | None = HttpServer(sandbox.base_url, workdir, stateless=stateless, floor=True)
        except RuntimeError as exc:
            floor = None
            section.row(f"{mode} floor: could not run", str(exc))
        try:
            await _load(ours.url, status, 1, 0.3)  # warm the servers' code paths
            if floor is not None:
                await _load(floor.url, hello, 1, 0.3)
            for level, clients in enumerate(concurrency):
                sides: list[tuple[str, HttpServer, tuple[str, dict[str, Any]]]] = [("ours", ours, status)]
                if floor is not None:
                    sides.append(("floor", floor, hello))
                loads: dict[str, Load] = {}
                for side, server, tool in sides if level % 2 == 0 else sides[::-1]:
                    loads[side] = await _load(
                        server.url, tool, clients, seconds, (server.proc.pid, sandbox.pid)
                    )
                got = loads["ours"]
                lat = Summary.of(got.latencies)
                say(f"  {mode}, {clients} clients: {got.rate:.0f} calls/s, {got.server_ms():.2f} ms CPU/call")
                section.row(
                    f"{mode}, {_plural(clients)}",
                    f"{got.rate:.0f} calls/s; latency {lat.median * 1e3:.0f} ms, "
                    f"p95 {lat.p95 * 1e3:.0f} ms; "
                    f"CPU server {got.cpu[0] / got.seconds:.0%} ({got.server_ms():.1f} ms a call), "
                    f"sandbox {got.cpu[1] / got.seconds:.0%}, clients {got.cpu[2] / got.seconds:.0%}",
                )
                if (bare := loads.get("floor")) is not None:
                    ratio = got.server_ms() / bare.server_ms()
                    say(f"    floor: {bare.rate:.0f} calls/s, {bare.server_ms():.2f} ms CPU/call")
                    section.row(
                        f"{mode}, {_plural(clients)}: server CPU a call, ours / floor (bare hello tool)",
                        f"{ratio:.2f}x ({got.server_ms():.2f} / {bare.server_ms():.2f} ms; floor "
                        f"{bare.rate:.0f} calls/s, latency {Summary.of(bare.latencies).median * 1e3:.0f} ms)",
                        f"<= {GOAL_CPU_RATIO:g}x",
                        ratio <= GOAL_CPU_RATIO,
                    )
        finally:
            ours.close()
            if floor is not None:
                floor.close()
    section.row(
        "for scale: CPU of the raw httpx2 status GET each get_status makes (client side, in-process)",
        f"{raw_ms:.2f} ms a call",
    )
    section.notes.append(
        f"Each level runs {seconds:g} s after every client has connected and made 3 calls; each client "
        "is its own MCP session on its own connection, calling get_status with wait_seconds=0 on a "
        "generating job (one status request to the sandbox per call). CPU is a share of one core "
        "over the window: 200% would be both cores. The floor is a bare MCPServer with one hello tool "
        "(bench/hello_server.py), served as ours is (the SDK's streamable HTTP app, streamed replies, "
        "the loopback Host check, uvicorn), called by the same clients in its own window right before "
        "or after ours (the order alternates by level); both servers run throughout, the idle one "
        "costing nothing. The ratio is of server CPU time per call, read from /proc/<pid>/stat; "
        "get_status also makes one HTTP request to the sandbox and parses its reply, which the hello "
        "tool does not."
    )
    return section
