"""9. Compare looks: one clip in four styles with restyle_many, against one restyle of the same clip.

One stdio server and one sandbox in its own process (jobs of a fixed length). Each round times both
sides from the first call to the answer that holds the finished result(s), as an assistant would
drive them: upload_video + restyle_video + get_status until done, against restyle_many with four
items + get_status(group_id) until done (its answer carries the contact sheet). Both include the one
upload of the clip. The sides alternate which goes first. The sandbox counts the status requests.

The plan's concurrency decides whether four jobs can run side by side: the main rows use a plan
of five jobs at once; one more round with PixVerse's smallest plan of three shows the fourth job
waiting for a slot (about twice as long, by design).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from _common import SandboxProcess, Section, Summary, connect, ours_params, say, small_clip
from mcp import Client

GOAL_RATIO = 1.3
STYLES = ("1001", "1003", "1004", "1006")


async def _single(client: Client, clip: Path) -> None:
    uploaded = await client.call_tool("upload_video", {"path": str(clip)})
    media_id = (uploaded.structured_content or {})["media_id"]
    result = await client.call_tool("restyle_video", {"video_media_id": media_id, "restyle_id": STYLES[0]})
    answer = result.structured_content or {}
    while not result.is_error and answer.get("status") == "generating":
        result = await client.call_tool("get_status", {"video_id": answer["video_id"]})
        answer = result.structured_content or {}
    if result.is_error or answer.get("status") != "succeeded":
        raise RuntimeError(f"the single restyle did not succeed: {result.content}")


async def _group(client: Client, clip: Path) -> None:
    items = [{"path": str(clip), "restyle_id": style} for style in STYLES]
    result = await client.call_tool("restyle_many", {"items": items})
    answer = result.structured_content or {}
    while not result.is_error and answer.get("status") != "done":
        result = await client.call_tool("get_status", {"group_id": answer["group_id"]})
        answer = result.structured_content or {}
    statuses = [item.get("status") for item in answer.get("items", [])]
    if result.is_error or statuses != ["succeeded"] * len(STYLES) or not answer.get("contact_sheet_path"):
        raise RuntimeError(f"the group did not succeed: {result.content}")


async def _timed(sandbox: SandboxProcess, client: Client, side: Any, clip: Path) -> tuple[float, int]:
    """Wall time of one side, and the status requests it made."""
    sandbox.reset()
    began = time.monotonic()
    await side(client, clip)
    wall = time.monotonic() - began
    return wall, int(sandbox.stats()["requests"]["result"])


async def _rounds(
    workdir: Path, rounds: int, job_seconds: float, max_jobs: int, name: str
) -> dict[str, list[Any]]:
    folder = workdir / name
    folder.mkdir()
    clip = Path(shutil.copy(small_clip(), folder / "clip.mp4"))
    found: dict[str, list[Any]] = {"single": [], "group": []}
    with SandboxProcess(job_seconds=job_seconds, max_jobs=max_jobs, name=f"{name}-sandbox") as sandbox:
        async with connect(ours_params(sandbox.base_url, folder), name) as client:
            for number in range(rounds):
                order = [("single", _single), ("group", _group)]
                for side, run in order if number % 2 == 0 else order[::-1]:
                    found[side].append(await _timed(sandbox, client, run, clip))
                say(
                    f"  round {number + 1}: single {found['single'][-1][0]:.2f} s, "
                    f"four styles {found['group'][-1][0]:.2f} s"
                )
    return found


async def run(workdir: Path, rounds: int, job_seconds: float) -> Section:
    section = Section("Compare looks")
    found = await _rounds(workdir, rounds, job_seconds, 5, "compare")
    single = [wall for wall, _ in found["single"]]
    group = [wall for wall, _ in found["group"]]
    ratio = Summary.of([g / s for g, s in zip(group, single, strict=True)])
    section.row("one restyle, upload to result", Summary.of(single).s())
    section.row("four styles in one call, upload to contact sheet", Summary.of(group).s())
    section.row(
        "four styles / one restyle, wall time", ratio.x(), f"<= {GOAL_RATIO:g}x", ratio.median <= GOAL_RATIO
    )
    single_rate = Summary.of([polls / wall * 60 for wall, polls in found["single"]])
    group_rate = Summary.of([polls / wall * 60 for wall, polls in found["group"]])
    per_job = Summary.of([polls / wall * 60 / len(STYLES) for wall, polls in found["group"]])
    section.row(
        "status requests a minute, one job",
        f"{single_rate.median:.0f} ({single_rate.low:.0f}-{single_rate.high:.0f})",
    )
    section.row(
        "status requests a minute per job, four-style group",
        f"{per_job.median:.0f} ({per_job.low:.0f}-{per_job.high:.0f}); "
        f"the group in all {group_rate.median:.0f}",
        "<= one job's",
        per_job.median <= single_rate.median,
    )
    small_plan = await _rounds(workdir, 1, job_seconds, 3, "compare-plan3")
    (wall3, _), (single3, _) = small_plan["group"][0], small_plan["single"][0]
    section.row(
        "four styles on a plan of 3 jobs at once / one restyle",
        f"{wall3 / single3:.2f}x (the fourth job waits for a free slot)",
    )
    section.notes.append(
        f"Jobs of {job_seconds:g} s on a sandbox in its own process, a plan of 5 jobs at once (one round "
        f"also with 3); {rounds} rounds, the sides alternating. One side: upload_video, restyle_video, then "
        "get_status until succeeded. The other: restyle_many with the same clip in four styles (one "
        "upload), "
        "then get_status(group_id) until done, with the contact sheet. Status requests are counted by the "
        "sandbox over each side's wall time; the group polls all its pending jobs in one loop, one request "
        "per job per round at the same intervals as one job, so its rate per job matches one job's."
    )
    return section
