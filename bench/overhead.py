"""2. Tool-call overhead: `get_status` over stdio against a raw httpx2 GET of the same endpoint.

The job stays "generating" (the sandbox's job lasts an hour) and `wait_seconds=0`, so each tool
call makes exactly one status request: what remains is the cost of MCP, the tool and its checks.
The peer's `get_video_status` is timed in its own phase, because it allows itself one request per
second: its calls are spaced by a second (its intrinsic cost), then three go back to back.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx2
from _common import (
    PYTHON,
    SANDBOX_KEY,
    SandboxProcess,
    Section,
    Summary,
    connect,
    hello_params,
    ours_params,
    say,
    small_clip,
    start_job,
)
from mcp import Client
from peer import Peer

GOAL_MS = 5.0
PEER_SPACING = 1.05


async def _timed(call: Any, *args: Any) -> float:
    started = time.perf_counter()
    await call(*args)
    return time.perf_counter() - started


async def run(
    sandbox: SandboxProcess, workdir: Path, calls: int, peer: Peer | None, peer_calls: int
) -> Section:
    section = Section("Tool-call overhead")
    video_id = start_job(sandbox.base_url, small_clip())
    url = f"{sandbox.base_url}/openapi/v2/video/result/{video_id}"

    async with (
        httpx2.AsyncClient(timeout=30) as http,
        connect(ours_params(sandbox.base_url, workdir), "overhead-ours") as ours,
        connect(hello_params(PYTHON, workdir), "overhead-hello") as hello,
    ):

        async def raw() -> None:
            headers = {"API-KEY": SANDBOX_KEY, "Ai-trace-id": str(uuid.uuid4())}
            reply = await http.get(url, headers=headers)
            if reply.json()["Resp"]["status"] != 5:
                raise RuntimeError(f"unexpected status reply: {reply.text[:200]}")

        async def tool() -> None:
            result = await ours.call_tool("get_status", {"video_id": str(video_id), "wait_seconds": 0})
            if result.is_error or (result.structured_content or {}).get("status") != "generating":
                raise RuntimeError(f"get_status failed: {result.content}")

        async def bare() -> None:
            await hello.call_tool("hello", {"name": "bench"})

        for _ in range(20):  # warm connections, caches and the server's code paths
            await raw()
            await tool()
            await bare()
        floor: list[float] = []
        ours_t: list[float] = []
        bare_t: list[float] = []
        for index in range(calls):
            pair = [(floor, raw), (ours_t, tool)]
            for samples, call in pair if index % 2 == 0 else pair[::-1]:
                samples.append(await _timed(call))
            bare_t.append(await _timed(bare))
        f, o, b = Summary.of(floor), Summary.of(ours_t), Summary.of(bare_t)
        say(f"  get_status median {o.median * 1e3:.1f} ms, raw GET {f.median * 1e3:.1f} ms")
        section.row("floor: raw httpx2 GET of video/result", f.ms(tail=True))
        section.row("get_status over stdio (one status request)", o.ms(tail=True))
        med, p95 = (o.median - f.median) * 1e3, (o.p95 - f.p95) * 1e3
        section.row("overhead, median", f"+{med:.1f} ms", f"<= {GOAL_MS:.0f} ms", med <= GOAL_MS)
        section.row("overhead, p95", f"+{p95:.1f} ms", f"<= {GOAL_MS:.0f} ms", p95 <= GOAL_MS)
        section.row("for scale: a bare hello tool over stdio (no HTTP)", b.ms(tail=True))
        section.notes.append(
            f"{calls} calls per side after 20 warm-up calls, raw and MCP alternating (order flipped "
            "each round); both sides use one kept-alive connection to the same sandbox process."
        )

        if peer is not None:
            async with connect(
                peer.params(sandbox.base_url, workdir), "overhead-peer", mode="legacy"
            ) as other:
                await _peer_phase(section, other, raw, tool, video_id, peer_calls)
    return section


async def _peer_phase(
    section: Section, other: Client, raw: Any, tool: Any, video_id: int, calls: int
) -> None:
    async def peer_call() -> None:
        result = await other.call_tool("get_video_status", {"video_id": video_id})
        if result.is_error:
            raise RuntimeError(f"the peer's get_video_status failed: {result.content}")

    await peer_call()
    last = time.monotonic()
    floor: list[float] = []
    ours_t: list[float] = []
    peer_t: list[float] = []
    for _ in range(calls):
        await anyio.sleep(max(0.0, last + PEER_SPACING - time.monotonic()))
        last = time.monotonic()
        peer_t.append(await _timed(peer_call))
        floor.append(await _timed(raw))
        ours_t.append(await _timed(tool))
    burst = [await _timed(peer_call) for _ in range(3)]
    f, p, o = Summary.of(floor), Summary.of(peer_t), Summary.of(ours_t)
    say(f"  peer get_video_status median {p.median * 1e3:.1f} ms (spaced), back to back {burst}")
    section.row("peer get_video_status, calls 1 s apart", p.ms(tail=True))
    section.row(
        "peer overhead over the raw GET (same phase), median", f"+{(p.median - f.median) * 1e3:.1f} ms"
    )
    section.row("ours in the same phase, median", f"+{(o.median - f.median) * 1e3:.1f} ms")
    section.row("peer get_video_status, 3 calls back to back", Summary.of(burst).ms())
    section.notes.append(
        f"Peer phase: {calls} rounds of peer, raw, ours, with the peer's calls spaced {PEER_SPACING} s "
        "apart; the peer's client waits until a second has passed since its previous request, so "
        "back-to-back calls cost about a second each."
    )
