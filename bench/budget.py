"""11. One time budget per call: the longest a call takes when PixVerse hangs at every step.

A sandbox that never answers (each request hangs far longer than any limit) at the step named, and
servers with `PIXVERSE_MAX_WAIT_SECONDS` set to LIMIT: the call must answer by the limit, whatever
hangs. Measured, not asserted by a test: tests never assert timings. Each row is one call.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from _common import SANDBOX_KEY, Section, say, small_clip
from mcp import Client
from pydantic import SecretStr

from pixverse_mcp.config import Settings
from pixverse_mcp.sandbox import SandboxConfig, SandboxServer
from pixverse_mcp.server import create_server

LIMIT = 12.0
HANG = 600.0
MARGIN = 1.0  # the answer itself, and the event loop's own latency


async def run(workdir: Path) -> Section:
    section = Section("Time budget")
    clip = small_clip()
    with SandboxServer(SandboxConfig(api_key=SANDBOX_KEY, job_seconds=0.0)) as sandbox:
        settings = Settings(
            api_key=SecretStr(SANDBOX_KEY),
            base_url=sandbox.base_url,
            allowed_dirs=(clip.parent,),
            output_dir=workdir / "budget-out",
            journal_enabled=False,
            max_wait_seconds=LIMIT,
            default_wait_seconds=LIMIT,
            log_level="ERROR",
        )
        async with Client(create_server(settings)) as client:
            uploaded = await client.call_tool("upload_video", {"path": str(clip)})
            media_id = (uploaded.structured_content or {})["media_id"]
            finished = await client.call_tool(
                "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 10}
            )
            done_id = (finished.structured_content or {})["video_id"]
            cases: list[tuple[str, str, str, dict[str, Any]]] = [
                (
                    "generate hangs",
                    "generate",
                    "restyle_video",
                    {"video_media_id": media_id, "restyle_prompt": "sepia"},
                ),
                ("status checks hang", "result", "get_status", {"video_id": done_id}),
                (
                    "catalog hangs (restyle_id check)",
                    "list",
                    "restyle_video",
                    {"video_media_id": media_id, "restyle_id": "1001"},
                ),
                (
                    "balance hangs (balance_after)",
                    "balance",
                    "restyle_video",
                    {"video_media_id": media_id, "restyle_prompt": "warm film"},
                ),
            ]
            for what, endpoint, tool, args in cases:
                sandbox.state.clear_faults()
                sandbox.state.add_fault(endpoint=endpoint, kind="hang", seconds=HANG, count=1000)
                began = time.perf_counter()
                result = await client.call_tool(tool, args)
                took = time.perf_counter() - began
                sandbox.state.clear_faults()
                outcome = "error" if result.is_error else (result.structured_content or {}).get("status", "?")
                say(f"  {what}: {tool} answered after {took:.1f} s ({outcome})")
                section.row(
                    f"{what}: `{tool}` answers ({outcome})",
                    f"{took:.1f} s",
                    f"<= {LIMIT + MARGIN:g} s",
                    took <= LIMIT + MARGIN,
                )
    section.notes.append(
        f"PIXVERSE_MAX_WAIT_SECONDS={LIMIT:g} and every request at the named step hanging {HANG:g} s; "
        "the default (50 s) keeps a call under the 60 s at which common clients give up, the same way."
    )
    return section
