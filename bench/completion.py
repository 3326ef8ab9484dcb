"""4. Completion latency and polling cost: jobs of 5, 20 and 60 s, followed to the end over stdio.

Each job has its own sandbox (in this process, so the job's real finish time can be read) and its
own server; the jobs run side by side to keep the whole run short. The client calls
`restyle_video` and then `get_status` until the job is over, with the default waits, as an
assistant would. The job is finished when its time is up and its render is done, whichever is
later; the latency is from then to the return of the call that reports it (which includes the
preview picture that answer carries).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import anyio
from _common import (
    Section,
    api_headers,
    connect,
    multipart_stream,
    ours_params,
    say,
    small_clip,
)

GOAL_SECONDS = 1.0
JOB_ALLOWANCE_SECONDS = 120.0  # beyond the job's length, before it counts as unanswered


async def _follow(seconds: float, workdir: Path, out: dict[float, dict[str, Any]]) -> None:
    """Run one job of `seconds` end to end and record when it finished and when the answer came."""
    import httpx2

    from pixverse_mcp.sandbox import SandboxConfig, SandboxServer

    sandbox = SandboxServer(SandboxConfig(job_seconds=seconds, max_concurrent_jobs=5)).start()
    rendered: dict[int, float] = {}
    original = sandbox.state._finish

    def finish(job: Any, done: Any, error: str | None) -> None:
        original(job, done, error)
        rendered[job.video_id] = time.monotonic()

    seen: dict[int, float] = {}
    status = sandbox.state.status

    def observed(job: Any) -> int:
        code = status(job)
        if code != 5:
            seen.setdefault(job.video_id, time.monotonic())
        return code

    sandbox.state._finish = finish  # type: ignore[method-assign]
    sandbox.state.status = observed  # type: ignore[method-assign]
    folder = workdir / f"job-{seconds:g}"
    folder.mkdir()
    clip = shutil.copy(small_clip(), folder / "clip.mp4")
    try:
        headers, body = multipart_stream(Path(clip))
        async with httpx2.AsyncClient(timeout=60) as http:
            reply = await http.post(
                f"{sandbox.base_url}/openapi/v2/media/upload",
                headers={**api_headers(), **headers},
                content=b"".join(body),
            )
        media_id = reply.json()["Resp"]["media_id"]
        async with connect(ours_params(sandbox.base_url, folder), f"completion-{seconds:g}") as client:
            began = time.monotonic()
            result = await client.call_tool(
                "restyle_video", {"video_media_id": str(media_id), "restyle_prompt": "a pencil sketch"}
            )
            calls = 1
            answer = result.structured_content or {}
            while not result.is_error and answer.get("status") == "generating":
                result = await client.call_tool("get_status", {"video_id": answer["video_id"]})
                answer = result.structured_content or {}
                calls += 1
            returned = time.monotonic()
        if result.is_error or answer.get("status") != "succeeded":
            raise RuntimeError(f"the {seconds:g} s job did not succeed: {result.content}")
        job = sandbox.state.jobs[int(answer["video_id"])]
        finished = max(job.started + seconds, rendered[job.video_id])
        polls = sandbox.state.stats()["requests"]["result"]
        out[seconds] = {
            "latency": returned - finished,
            "noticed": seen[job.video_id] - finished,
            "waited": returned - began,
            "polls": polls,
            "calls": calls,
            "render": rendered[job.video_id] - job.started,
        }
        say(f"  {seconds:g} s job: answered {returned - finished:.2f} s after it finished, {polls} polls")
    finally:
        sandbox.stop()


async def _follow_or_note(
    seconds: float, workdir: Path, out: dict[float, dict[str, Any]], failed: dict[float, str]
) -> None:
    """`_follow`, bounded in time; a failure is noted for its own row and never cancels the other jobs."""
    try:
        with anyio.fail_after(seconds + JOB_ALLOWANCE_SECONDS):
            await _follow(seconds, workdir, out)
    except TimeoutError:
        failed[seconds] = f"no answer within {seconds + JOB_ALLOWANCE_SECONDS:g} s"
    except Exception as exc:  # the others' figures stay; this job's row says what went wrong
        failed[seconds] = f"{type(exc).__name__}: {exc}"[:300]
    if seconds in failed:
        say(f"  {seconds:g} s job failed: {failed[seconds]}")


async def run(workdir: Path, durations: tuple[float, ...]) -> Section:
    section = Section("Completion latency and polling")
    found: dict[float, dict[str, Any]] = {}
    failed: dict[float, str] = {}
    async with anyio.create_task_group() as group:
        for seconds in durations:
            group.start_soon(_follow_or_note, seconds, workdir, found, failed)
    for seconds in durations:
        if seconds in failed:
            section.row(
                f"{seconds:g} s job: answer after it finished",
                f"failed: {failed[seconds]}",
                f"< {GOAL_SECONDS:g} s",
                False,
            )
            continue
        got = found[seconds]
        per_minute = got["polls"] / (got["waited"] / 60)
        section.row(
            f"{seconds:g} s job: answer after it finished",
            f"{got['latency']:.2f} s",
            f"< {GOAL_SECONDS:g} s",
            got["latency"] < GOAL_SECONDS,
        )
        section.row(
            f"{seconds:g} s job: of which until a status request saw it done",
            f"{got['noticed']:.2f} s (then {got['latency'] - got['noticed']:.2f} s to answer)",
        )
        section.row(
            f"{seconds:g} s job: status requests",
            f"{got['polls']} in {got['waited']:.1f} s = {per_minute:.0f} a minute, over {got['calls']} tool "
            "calls",
        )
    section.notes.append(
        "One sandbox and one stdio server per job, the jobs side by side; restyle_video with the default "
        "wait, then get_status with the default wait until the job is over. The latency includes the "
        "preview picture the succeeded answer carries. A job that fails or gets no answer within "
        f"{JOB_ALLOWANCE_SECONDS:g} s of its length is reported on its own row; the others keep their "
        "figures."
    )
    measured = [s for s in durations if s in found]
    if measured:
        section.notes.append(
            "Render times of the 2 s source clip: "
            + ", ".join(f"{found[s]['render']:.1f} s" for s in measured)
            + "."
        )
    if measured and all(found[s]["render"] < s for s in measured):
        each = "each measured job" if failed else "each job"
        section.notes.append(f"Every render ended before its job's time was up, so {each} ended on time.")
    return section
