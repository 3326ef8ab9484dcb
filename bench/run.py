"""Benchmarks of pixverse-restyle-mcp: what a user feels, side by side with the floors and the peer.

    python3 bench/run.py            # the full run, about five minutes on 2 cores
    python3 bench/run.py --quick    # fewer rounds, shorter jobs: about a minute and a half

Started with a Python that lacks the project, it makes .venv/ (as dev.py does) and moves into it.

Prints the table (goals beside the figures) and writes it to bench/results.md. Every comparison
is measured in the same run, the two sides alternating, over several rounds. Progress goes to
stderr; the servers' own logs go to bench/.cache/logs/.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:
    import anyio
except ImportError:  # pragma: no cover - a plain `python bench/run.py`: move into the project's venv
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import dev

    dev.ensure_venv()
    os.execv(str(dev.PYTHON), [str(dev.PYTHON), __file__, *sys.argv[1:]])

import budget
import cold_start
import compare
import completion
import context
import fit
import journal
import overhead
import peer
import throughput
import upload
import viewer
from _common import BENCH, SandboxProcess, Section, machine_line, say

RESULTS = BENCH / "results.md"


def _table(sections: list[Section]) -> str:
    lines = ["| measurement | figure | goal | met |", "| --- | --- | --- | --- |"]
    for section in sections:
        lines.append(f"| **{section.title}** ({section.seconds:.0f} s) | | | |")
        for row in section.rows:
            figure = row.figure.replace("|", "/")
            lines.append(f"| {row.what} | {figure} | {row.goal} | {row.verdict} |")
    return "\n".join(lines)


def _report(sections: list[Section], machine: str, peer_note: str, started: float, quick: bool) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    missed = [
        f"{row.section}: {row.what} ({row.figure}; goal {row.goal})"
        for s in sections
        for row in s.rows
        if row.met is False
    ]
    parts = [
        "# Benchmark results",
        "",
        f"Made by `python bench/run.py{' --quick' if quick else ''}` on {when}, in "
        f"{time.monotonic() - started:.0f} s.",
        "",
        f"**Machine:** {machine}",
        "",
        f"**Peer:** {peer_note}",
        "",
        "Figures are medians with (min-max); ratios pair the two sides of each round. Goals come from "
        "the benchmark issue; a missed goal is marked **MISSED**.",
        "",
        _table(sections),
        "",
        "## Goals missed" if missed else "## Every goal met",
        "",
        *(f"- {line}" for line in missed),
        "",
        "## How each figure was measured",
        "",
    ]
    for section in sections:
        parts += [f"**{section.title}.** " + " ".join(section.notes), ""]
    return "\n".join(parts).rstrip() + "\n"


def _load_note(loads: list[float]) -> str:
    """How busy the machine was: the 1-minute load average before the run and at each section."""
    cores = os.cpu_count() or 1
    note = (
        f"1-minute load average {loads[0]:.1f} before the run, {min(loads[1:]):.1f}-{max(loads[1:]):.1f} "
        f"during it (at each section's start and at the end), on {cores} cores"
    )
    if loads[0] >= 0.5 * cores:
        note += (
            ": the machine was shared with other work (such as test suites) that ran beside the "
            "benchmark, which slows and spreads the wall-clock figures; ratios pair sides measured "
            "moments apart, and CPU times per call are less affected"
        )
    return note + "."


async def _main(quick: bool, skip_peer: bool) -> int:
    started = time.monotonic()
    machine = machine_line()
    say(f"Machine: {machine}")
    found: peer.Peer | None = None
    if skip_peer:
        peer_note = "skipped (--no-peer)."
    else:
        say("Peer: looking for the official pixverse-mcp (first run installs it under bench/.cache)...")
        found, why = peer.find_peer()
        peer_note = f"{found.version}, in its own venv." if found else f"not measured: {why}."
        say(f"Peer: {peer_note}")
    sections: list[Section] = []
    loads = [os.getloadavg()[0]]

    async def measure(title: str, step: Callable[[], Awaitable[Section]]) -> None:
        say(f"\n{title}")
        loads.append(os.getloadavg()[0])
        began = time.monotonic()
        try:
            section = await step()
        except Exception as exc:  # one broken measurement must not hide the others
            section = Section(title)
            section.row("could not be measured", f"{type(exc).__name__}: {exc}"[:300])
        section.seconds = time.monotonic() - began
        sections.append(section)

    with tempfile.TemporaryDirectory(prefix="pixverse-bench-") as tmp, SandboxProcess() as sandbox:
        work = Path(tmp)
        await measure("1. Cold start", lambda: cold_start.run(sandbox, work, 4 if quick else 12, found))
        await measure(
            "2. Tool-call overhead",
            lambda: overhead.run(sandbox, work, 100 if quick else 300, found, 4 if quick else 10),
        )
        await measure("3. Upload", lambda: upload.run(sandbox, work, 3 if quick else 8, 2 if quick else 4))
        await measure(
            "4. Completion latency and polling",
            lambda: completion.run(work, (5.0, 20.0) if quick else (5.0, 20.0, 60.0)),
        )
        await measure(
            "5. HTTP throughput",
            lambda: throughput.run(sandbox, work, (1, 8, 32), 1.5 if quick else 3.0),
        )
        await measure("6. Viewer", lambda: viewer.run(work, 3 if quick else 7))
        await measure("7. Context cost", lambda: context.run(work))
        await measure("8. Fit", lambda: fit.run(work, 3 if quick else 5))
        await measure("9. Compare looks", lambda: compare.run(work, 2 if quick else 4, 3.0 if quick else 5.0))
        await measure("10. Journal overhead", lambda: journal.run(work, 100 if quick else 300))
        await measure("11. Time budget", lambda: budget.run(work))

    loads.append(os.getloadavg()[0])
    report = _report(sections, f"{machine}. {_load_note(loads)}", peer_note, started, quick)
    RESULTS.write_text(report, encoding="utf-8")
    print(report)
    say(f"Written to {RESULTS} in {time.monotonic() - started:.0f} s.")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and shorter jobs")
    parser.add_argument("--no-peer", action="store_true", help="leave out the official pixverse-mcp")
    args = parser.parse_args()
    return anyio.run(_main, args.quick, args.no_peer)


if __name__ == "__main__":
    sys.exit(main())
