"""10. Journal overhead: what recording each status in the SQLite journal adds to a `get_status` call.

Two in-process servers on one sandbox, identical but for `PIXVERSE_JOURNAL` (on: a SQLite file in
the run's folder; off), answer `get_status(wait_seconds=0)` on the same generating job (a typical
poll: no download, no preview picture to make), the two
alternating call by call so the machine's load falls on both alike. The figure is the difference
of the medians. Goal: at most 1 ms.
"""

from __future__ import annotations

import time
from pathlib import Path

from _common import SANDBOX_KEY, Section, Summary, say, small_clip
from mcp import Client
from pydantic import SecretStr

from pixverse_mcp.config import Settings
from pixverse_mcp.sandbox import SandboxConfig, SandboxServer
from pixverse_mcp.server import create_server

GOAL_MS = 1.0


async def run(workdir: Path, calls: int) -> Section:
    section = Section("Journal overhead")
    folder = workdir / "journal"
    folder.mkdir()
    clip = small_clip()
    with SandboxServer(SandboxConfig(api_key=SANDBOX_KEY, job_seconds=3600.0)) as sandbox:
        base = Settings(
            api_key=SecretStr(SANDBOX_KEY),
            base_url=sandbox.base_url,
            allowed_dirs=(clip.parent,),
            output_dir=folder / "out",
            log_level="WARNING",
        )
        with_journal = base.with_changes(journal_url=SecretStr(f"sqlite:///{folder / 'journal.sqlite3'}"))
        without = base.with_changes(journal_enabled=False)
        async with Client(create_server(with_journal)) as on, Client(create_server(without)) as off:
            uploaded = await on.call_tool("upload_video", {"path": str(clip)})
            media_id = (uploaded.structured_content or {})["media_id"]
            started = await on.call_tool(
                "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 0}
            )
            video_id = (started.structured_content or {})["video_id"]
            args = {"video_id": video_id, "wait_seconds": 0}
            for client in (on, off):  # warm both paths once
                await client.call_tool("get_status", args)
            timings: dict[str, list[float]] = {"on": [], "off": []}
            for _ in range(calls):
                for name, client in (("on", on), ("off", off)):
                    began = time.perf_counter()
                    result = await client.call_tool("get_status", args)
                    timings[name].append(time.perf_counter() - began)
                    if result.is_error:
                        raise RuntimeError(f"get_status failed: {result.content}")
    with_j, without_j = Summary.of(timings["on"]), Summary.of(timings["off"])
    overhead_ms = (with_j.median - without_j.median) * 1e3
    say(f"  journal on {with_j.ms()}, off {without_j.ms()}: +{overhead_ms:.2f} ms")
    section.row(f"`get_status` with the SQLite journal ({calls} calls)", with_j.ms(tail=True))
    section.row(f"`get_status` with the journal off ({calls} calls)", without_j.ms(tail=True))
    section.row(
        "journal overhead per `get_status` (difference of medians)",
        f"{overhead_ms:+.2f} ms",
        f"<= {GOAL_MS:g} ms",
        overhead_ms <= GOAL_MS,
    )
    section.notes.append(
        "Both servers in this process, on one sandbox, one generating job, calls alternating; the journal "
        "writes each status it is told (an upsert in WAL mode, off the event loop)."
    )
    return section
