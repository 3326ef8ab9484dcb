"""1. Cold start: spawn the stdio server and time until the `tools/list` answer arrives.

Against the floor: a bare hello-world `MCPServer` spawned the same way. The sides alternate
within each round (the order rotates), and every ratio pairs the two sides of one round.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from _common import (
    PYTHON,
    TAG_VAR,
    SandboxProcess,
    Section,
    Summary,
    connect,
    find_tagged,
    hello_params,
    ours_params,
    proc_memory,
    say,
)
from mcp import StdioServerParameters
from peer import Peer

GOAL_RATIO = 1.15


async def _spawn(
    params: StdioServerParameters, name: str, probe: bool = False
) -> tuple[float, dict[str, int]]:
    """Seconds from spawn to the tools/list answer; with `probe`, the server's memory and maps."""
    found: dict[str, int] = {}
    started = time.perf_counter()
    async with connect(params, name, mode="legacy") as client:
        listed = await client.list_tools()
        took = time.perf_counter() - started
        if not listed.tools:
            raise RuntimeError(f"{name} listed no tools")
        if probe and params.env and TAG_VAR in params.env:
            pid = find_tagged(params.env[TAG_VAR])
            found = proc_memory(pid)
            maps = Path(f"/proc/{pid}/maps").read_text()
            found["av_loaded"] = int("libavcodec" in maps or "/av/" in maps)
    return took, found


async def run(sandbox: SandboxProcess, workdir: Path, rounds: int, peer: Peer | None) -> Section:
    section = Section("Cold start")
    sides: dict[str, StdioServerParameters] = {
        "floor": hello_params(PYTHON, workdir),
        "ours": ours_params(sandbox.base_url, workdir),
    }
    if peer is not None:
        sides["peer floor"] = hello_params(peer.python, workdir)
        sides["peer"] = peer.params(sandbox.base_url, workdir)
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # one unmeasured start each: warm the page cache and .pyc files
        await _spawn(sides[name], f"cold-{name.replace(' ', '-')}")
    for index in range(rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            took, _ = await _spawn(sides[name], f"cold-{name.replace(' ', '-')}")
            times[name].append(took)
        say(f"  round {index + 1}/{rounds}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in names))

    ratio = Summary.of([o / f for o, f in zip(times["ours"], times["floor"], strict=True)])
    section.row("floor: bare MCPServer hello-world, spawn to tools/list", Summary.of(times["floor"]).s())
    section.row("pixverse-restyle-mcp, spawn to tools/list", Summary.of(times["ours"]).s())
    section.row("ours / floor", ratio.x(), f"<= {GOAL_RATIO:.2f}x", ratio.median <= GOAL_RATIO)

    # Memory at rest, and whether PyAV was loaded by the start (it should not be).
    tag = uuid.uuid4().hex
    ours_probe = ours_params(sandbox.base_url, workdir, tag=tag)
    _, ours_mem = await _spawn(ours_probe, "cold-ours", probe=True)
    floor_probe = hello_params(PYTHON, workdir)
    floor_probe.env = {**(floor_probe.env or {}), TAG_VAR: tag + "-floor"}
    _, floor_mem = await _spawn(floor_probe, "cold-floor", probe=True)
    section.row(
        "resident memory after tools/list: ours vs floor",
        f"{ours_mem['VmRSS'] / 2**20:.1f} MiB vs {floor_mem['VmRSS'] / 2**20:.1f} MiB",
    )
    section.row(
        "PyAV loaded by the start",
        "yes" if ours_mem.get("av_loaded") else "no",
        "no",
        not ours_mem.get("av_loaded"),
    )

    if peer is not None:
        peer_ratio = Summary.of([p / f for p, f in zip(times["peer"], times["floor"], strict=True)])
        peer_own = Summary.of([p / f for p, f in zip(times["peer"], times["peer floor"], strict=True)])
        ours_vs_peer = Summary.of([o / p for o, p in zip(times["ours"], times["peer"], strict=True)])
        sdk = peer.version.split("(", 1)[-1].rstrip(")")
        section.row(f"peer floor: hello-world on {sdk}", Summary.of(times["peer floor"]).s())
        section.row(f"peer: {peer.version}", Summary.of(times["peer"]).s())
        section.row("peer / our floor", peer_ratio.x())
        section.row("peer / its own floor", peer_own.x())
        section.row("ours / peer", ours_vs_peer.x())
    section.notes.append(
        f"{rounds} rounds, sides alternating in rotating order after one unmeasured start each; every "
        "client uses the initialize handshake (what desktop clients send), so both SDK generations "
        "are timed the same way. Ratios pair the two sides of each round."
    )
    return section
