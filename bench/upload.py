"""3. Upload: a 45 MiB clip through `upload_video` against a raw streamed httpx2 upload of the same file.

Both go to the same sandbox endpoint, alternating, with the sandbox emptied between rounds: once on
loopback, once against a sandbox that paces its reads like a 100 Mbit/s link (on loopback the raw
upload takes a fraction of a second, so the call's fixed costs weigh more than on any real link).
The pre-flight check (open, probe, limits) is timed on its own, in-process. The server's memory is
read from /proc: its peak (VmHWM) before and after the big uploads, after one small warm-up upload
that loads PyAV (whose libraries are not upload buffers).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
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
GOAL_CHECK_MS = 50.0
CHECK_RUNS = 9
LINK_BYTES_PER_SECOND = 12.5e6  # 100 Mbit/s


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


def check_function() -> tuple[str, Callable[[str, Sequence[Path]], object]]:
    """The package's pre-flight check of a local upload (open once, probe with PyAV, limits)."""
    from pixverse_mcp import rules

    return "rules.check_local_video", rules.check_local_video


def _time_check(
    check: Callable[[str, Sequence[Path]], object], path: Path, root: Path
) -> tuple[float, float]:
    """Seconds and CPU seconds one pre-flight check takes on `path` (closing what it opened, if it
    hands back a file). The CPU time is this process's, which does nothing else meanwhile."""
    began, cpu = time.perf_counter(), time.process_time()
    checked = check(str(path), (root,))
    close = getattr(checked, "close", None)
    if callable(close):
        close()
    return time.perf_counter() - began, time.process_time() - cpu


async def _compare(
    sandbox: SandboxProcess,
    http: httpx2.AsyncClient,
    upload: Callable[[], Awaitable[None]],
    clip: Path,
    rounds: int,
    label: str,
) -> tuple[list[float], list[float]]:
    """`rounds` rounds of a raw upload and `upload()`, alternating, the sandbox emptied before each."""
    raw_t: list[float] = []
    ours_t: list[float] = []
    for index in range(rounds):
        sides = [("raw", raw_t), ("ours", ours_t)]
        for side, samples in sides if index % 2 == 0 else sides[::-1]:
            sandbox.reset()
            began = time.perf_counter()
            if side == "raw":
                await _raw_upload(http, sandbox.base_url, clip)
            else:
                await upload()
            samples.append(time.perf_counter() - began)
        say(f"  {label} round {index + 1}/{rounds}: raw {raw_t[-1]:.2f} s, upload_video {ours_t[-1]:.2f} s")
    sandbox.reset()
    return raw_t, ours_t


async def _throttled(workdir: Path, clip: Path, rounds: int) -> tuple[list[float], list[float]]:
    """The same comparison against a sandbox that reads upload bodies at LINK_BYTES_PER_SECOND."""
    tag = uuid.uuid4().hex
    with SandboxProcess(name="sandbox-throttled", upload_bytes_per_second=LINK_BYTES_PER_SECOND) as sandbox:
        async with (
            httpx2.AsyncClient(timeout=300) as http,
            connect(ours_params(sandbox.base_url, workdir, tag=tag), "upload-throttled") as ours,
        ):

            async def upload() -> None:
                result = await ours.call_tool("upload_video", {"path": clip.name})
                if result.is_error:
                    raise RuntimeError(f"upload_video failed: {result.content}")

            await upload()  # loads PyAV and warms the connection
            return await _compare(sandbox, http, upload, clip, rounds, "100 Mbit/s")


async def run(sandbox: SandboxProcess, workdir: Path, rounds: int, throttled_rounds: int) -> Section:
    section = Section("Upload")
    say("  making the 45 MiB clip (cached in bench/.cache/clips)...")
    clip = Path(shutil.copy(big_clip(), workdir / "big.mp4"))
    small = shutil.copy(small_clip(), workdir / "small.mp4")
    size = clip.stat().st_size
    tag = uuid.uuid4().hex
    async with (
        httpx2.AsyncClient(timeout=300) as http,
        connect(ours_params(sandbox.base_url, workdir, tag=tag), "upload-ours") as ours,
    ):
        pid = find_tagged(tag)
        peaks: list[int] = []

        async def tool(name: str) -> None:
            result = await ours.call_tool("upload_video", {"path": name})
            if result.is_error:
                raise RuntimeError(f"upload_video failed: {result.content}")

        async def big_upload() -> None:
            await tool(clip.name)
            peaks.append(proc_memory(pid)["VmHWM"])

        started = proc_memory(pid)
        await tool("small.mp4")  # loads PyAV for the local checks
        warm = proc_memory(pid)
        await _raw_upload(http, sandbox.base_url, Path(small))
        raw_t, ours_t = await _compare(sandbox, http, big_upload, clip, rounds, "loopback")
        after = proc_memory(pid)
    slow_raw, slow_ours = await _throttled(workdir, clip, throttled_rounds)

    name, check = check_function()
    _time_check(check, clip, workdir)  # unmeasured: imports PyAV, reads the file into the page cache
    timed = [_time_check(check, clip, workdir) for _ in range(CHECK_RUNS)]
    checks = Summary.of([wall for wall, _ in timed])
    check_cpu = Summary.of([cpu for _, cpu in timed])
    ratio = Summary.of([o / r for o, r in zip(ours_t, raw_t, strict=True)])
    slow = Summary.of([o / r for o, r in zip(slow_ours, slow_raw, strict=True)])
    growth = (max(peaks) - warm["VmHWM"]) / 2**20
    first = (peaks[0] - warm["VmHWM"]) / 2**20
    section.row(
        f"loopback: raw streamed httpx2 upload of {size / 2**20:.1f} MiB (floor)", Summary.of(raw_t).s()
    )
    section.row(
        "loopback: upload_video over stdio (pre-flight check + streamed upload)", Summary.of(ours_t).s()
    )
    section.row(
        "loopback: upload_video / raw", ratio.x(), f"<= {GOAL_RATIO:.1f}x", ratio.median <= GOAL_RATIO
    )
    section.row("100 Mbit/s link: raw streamed httpx2 upload (floor)", Summary.of(slow_raw).s())
    section.row("100 Mbit/s link: upload_video over stdio", Summary.of(slow_ours).s())
    section.row(
        "100 Mbit/s link: upload_video / raw", slow.x(), f"<= {GOAL_RATIO:.1f}x", slow.median <= GOAL_RATIO
    )
    section.row(
        f"pre-flight check of the 45 MiB 1080p clip ({name}, in-process), median of {CHECK_RUNS}",
        f"{checks.ms()}; CPU {check_cpu.median * 1e3:.1f} ms",
        f"<= {GOAL_CHECK_MS:.0f} ms",
        checks.median * 1e3 <= GOAL_CHECK_MS,
    )
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
        f"Loopback: {rounds} rounds, raw and upload_video alternating (order flipped each round), the "
        "sandbox reset before each upload; the raw upload takes a fraction of a second there, so the "
        "fixed costs of a call weigh more than on any real link. 100 Mbit/s: the same, "
        f"{throttled_rounds} rounds, against a second sandbox that reads upload bodies at "
        f"{LINK_BYTES_PER_SECOND / 1e6:g} MB/s (SandboxConfig.upload_bytes_per_second), with its own "
        f"server. The pre-flight check is timed in this process, {CHECK_RUNS} runs after an unmeasured "
        "one (PyAV imported, the file in the page cache), with the stdio servers stopped; the goal "
        "applies to the wall-clock median; the CPU time beside it (this process's, all threads) is "
        "less swayed by other work on the machine. Memory growth is "
        "the loopback server's VmHWM after the big uploads minus its VmHWM after a warm-up upload of a "
        "small clip, which loads PyAV for the local checks (that load alone: "
        f"{(warm['VmHWM'] - started['VmHWM']) / 2**20:+.1f} MiB of peak)."
    )
    return section
