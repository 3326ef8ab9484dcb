"""3. Upload: a 45 MiB clip through `upload_video` against a raw streamed httpx2 upload of the same file.

Both go to the same sandbox endpoint, alternating, with the sandbox emptied between rounds. The
server's memory is read from /proc: its peak (VmHWM) before and after the big uploads, after one
small warm-up upload that loads PyAV (whose libraries are not upload buffers).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
from _common import (
    SandboxProcess,
    Section,
    Summary,
    api_headers,
    big_clip,
    connect,
    find_tagged,
    multipart_stream,
    ours_params,
    proc_memory,
    say,
    small_clip,
)

GOAL_RATIO = 1.2
GOAL_GROWTH_MIB = 16.0


async def _raw_upload(http: httpx2.AsyncClient, base_url: str, path: Path) -> None:
    headers, body = multipart_stream(path)

    async def stream() -> AsyncIterator[bytes]:
        for chunk in body:
            yield chunk

    reply = await http.post(
        f"{base_url}/openapi/v2/media/upload", headers={**api_headers(), **headers}, content=stream()
    )
    if reply.json().get("ErrCode") != 0:
        raise RuntimeError(f"the raw upload was refused: {reply.text[:200]}")


def _local_checks(path: Path, root: Path) -> float:
    """Seconds the server's local checks (open once, probe with PyAV, limits) take on `path`."""
    from pixverse_mcp import rules

    began = time.perf_counter()
    rules.check_local_video(str(path), (root,)).close()
    return time.perf_counter() - began


async def run(sandbox: SandboxProcess, workdir: Path, rounds: int) -> Section:
    section = Section("Upload")
    say("  making the 45 MiB clip (cached in bench/.cache/clips)...")
    clip = shutil.copy(big_clip(), workdir / "big.mp4")
    small = shutil.copy(small_clip(), workdir / "small.mp4")
    size = Path(clip).stat().st_size
    tag = uuid.uuid4().hex
    async with (
        httpx2.AsyncClient(timeout=300) as http,
        connect(ours_params(sandbox.base_url, workdir, tag=tag), "upload-ours") as ours,
    ):
        pid = find_tagged(tag)

        async def tool(name: str) -> None:
            result = await ours.call_tool("upload_video", {"path": name})
            if result.is_error:
                raise RuntimeError(f"upload_video failed: {result.content}")

        started = proc_memory(pid)
        await tool("small.mp4")  # loads PyAV for the local checks
        warm = proc_memory(pid)
        await _raw_upload(http, sandbox.base_url, Path(small))
        raw_t: list[float] = []
        ours_t: list[float] = []
        peaks: list[int] = []
        for index in range(rounds):
            sides = [("raw", raw_t), ("ours", ours_t)]
            for side, samples in sides if index % 2 == 0 else sides[::-1]:
                sandbox.reset()
                began = time.perf_counter()
                if side == "raw":
                    await _raw_upload(http, sandbox.base_url, Path(clip))
                else:
                    await tool("big.mp4")
                    peaks.append(proc_memory(pid)["VmHWM"])
                samples.append(time.perf_counter() - began)
            say(f"  round {index + 1}/{rounds}: raw {raw_t[-1]:.2f} s, upload_video {ours_t[-1]:.2f} s")
        sandbox.reset()
        after = proc_memory(pid)

    ratio = Summary.of([o / r for o, r in zip(ours_t, raw_t, strict=True)])
    checks = Summary.of([_local_checks(Path(clip), workdir) for _ in range(3)])
    growth = (max(peaks) - warm["VmHWM"]) / 2**20
    first = (peaks[0] - warm["VmHWM"]) / 2**20
    section.row(f"floor: raw streamed httpx2 upload of {size / 2**20:.1f} MiB", Summary.of(raw_t).s())
    section.row("upload_video over stdio (local checks + streamed upload)", Summary.of(ours_t).s())
    section.row("upload_video / raw", ratio.x(), f"<= {GOAL_RATIO:.1f}x", ratio.median <= GOAL_RATIO)
    section.row("of which: the local checks alone (rules.check_local_video, in-process)", checks.ms())
    section.row(
        "server peak memory growth across the 45 MiB uploads (VmHWM)",
        f"+{growth:.1f} MiB (first upload +{first:.1f} MiB)",
        f"< {GOAL_GROWTH_MIB:.0f} MiB",
        growth < GOAL_GROWTH_MIB,
    )
    section.row(
        "server memory: at start / after a small upload (PyAV loaded) / after all",
        f"{started['VmRSS'] / 2**20:.0f} / {warm['VmRSS'] / 2**20:.0f} / {after['VmRSS'] / 2**20:.0f} MiB "
        "resident",
    )
    section.notes.append(
        f"{rounds} rounds, raw and upload_video alternating (order flipped each round), the sandbox "
        "reset before each upload. Memory growth is the server process's VmHWM after the big uploads "
        "minus its VmHWM after a warm-up upload of a small clip, which loads PyAV for the local "
        f"checks (that load alone: {(warm['VmHWM'] - started['VmHWM']) / 2**20:+.1f} MiB of peak)."
    )
    return section
