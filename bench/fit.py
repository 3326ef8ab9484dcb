"""6. Fit: a 60 s 4K HEVC phone clip made into a 15.9 s 1080p H.264 copy, against the ffmpeg CLI.

Both sides do the same work with the same settings and thread count: decode HEVC from the start,
stop at 15.9 s, scale to 1920x1080 (bicubic), encode x264 (the plan's preset, crf, maxrate,
bufsize and lookahead, profile high, yuv420p) and AAC (128 kbit/s, 48 kHz stereo) into an mp4
with faststart.
Ours runs in a child process (`python bench/fit.py --child`): probe, plan and fit_video into an
empty cache folder, timed inside the child (the server has no interpreter to start) with the
child's peak memory (ru_maxrss) read after. The CLI is timed as a whole process. The two sides
alternate, the order flipped each round.

    python bench/fit.py            # alone: prints the rows
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
# Only the standard library at the top: the child that runs the fit must not load the benchmark's
# other modules (mcp, httpx2), whose memory would count in its peak.
if TYPE_CHECKING:
    from _common import Section

GOAL_RATIO = 1.15
GOAL_PEAK_MIB = 300.0
CLIP_SECONDS, CLIP_FPS = 60, 10


def phone_clip() -> Path:
    """60 s of 3840x2160 HEVC (tagged hvc1, as iPhones write it) with stereo AAC, in mov (cached).

    10 frames a second keeps the one-time encode to a few minutes; both sides decode the same
    frames, so the comparison holds.
    """
    from _common import CACHE, say

    from pixverse_mcp.samples import make_clip

    path = CACHE / "clips" / f"phone-4k-hevc-{CLIP_SECONDS}s-{CLIP_FPS}fps.mov"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        say(f"  making the {CLIP_SECONDS} s 4K HEVC clip once (cached in bench/.cache/clips; minutes)...")
        tmp = path.with_suffix(".tmp.mov")
        make_clip(
            tmp,
            seconds=CLIP_SECONDS,
            width=3840,
            height=2160,
            fps=CLIP_FPS,
            video_codec="libx265",
            audio=True,
            container="mov",
        )
        tmp.rename(path)
    return path


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _child(clip: Path, folder: Path, threads: int) -> None:
    """The fit, as the server's worker thread runs it; prints seconds, peak memory and the plan."""
    from pixverse_mcp.fit import fit_video, plan_fit, probe_clip

    began, cpu = time.perf_counter(), _cpu_seconds(resource.RUSAGE_SELF)
    plan = plan_fit(probe_clip(clip))
    result = fit_video(clip, plan, folder, threads=threads)
    took, cpu = time.perf_counter() - began, _cpu_seconds(resource.RUSAGE_SELF) - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert result.path is not None and not result.cached
    print(
        json.dumps(
            {
                "seconds": took,
                "cpu": cpu,
                "peak": peak,
                "size": result.after.size_bytes,
                "duration": result.after.duration_seconds,
                "x264": plan.x264_options(),
                "length": plan.length_seconds,
                "size_wh": [plan.width, plan.height],
            }
        )
    )


def _ours(clip: Path, work: Path, threads: int) -> dict[str, object]:
    from _common import PYTHON, ROOT

    folder = Path(tempfile.mkdtemp(prefix="fit-", dir=work))
    try:
        done = subprocess.run(
            [PYTHON, __file__, "--child", str(clip), str(folder), str(threads)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            timeout=600,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _cli(
    ffmpeg: str, clip: Path, work: Path, threads: int, plan: dict[str, object]
) -> tuple[float, float, int]:
    """Seconds, CPU seconds and peak memory of the ffmpeg CLI doing the same fit."""
    x264 = plan["x264"]
    assert isinstance(x264, dict)
    width, height = plan["size_wh"]
    out = work / "cli.mp4"
    command = [
        ffmpeg, "-nostdin", "-v", "error", "-y", "-threads", str(threads), "-i", str(clip),
        "-t", str(plan["length"]), "-vf", f"scale={width}:{height}:flags=bicubic",
        "-c:v", "libx264", "-preset", x264["preset"], "-crf", x264["crf"], "-maxrate", x264["maxrate"],
        "-bufsize", x264["bufsize"], "-rc-lookahead", x264["rc-lookahead"], "-profile:v", x264["profile"],
        "-pix_fmt", "yuv420p", "-threads", str(threads),
        "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", "-movflags", "+faststart", str(out),
    ]  # fmt: skip
    log = work / "cli.log"
    began = time.perf_counter()
    with log.open("w") as errors:  # a file, not a pipe: a chatty ffmpeg can never block on it
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {log.read_text()[:300]}")
    out.unlink(missing_ok=True)
    return took, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def measure(work: Path, rounds: int) -> Section:
    from _common import Section, Summary, say

    from pixverse_mcp.fit import default_threads

    section = Section("Fit")
    clip = phone_clip()
    threads = default_threads()
    ffmpeg = shutil.which("ffmpeg")
    ours_t: list[float] = []
    cli_t: list[float] = []
    ours_cpu: list[float] = []
    cli_cpu: list[float] = []
    peaks: list[int] = []
    cli_peaks: list[int] = []
    last: dict[str, object] = {}
    for index in range(rounds):
        sides = ["ours", "cli"] if index % 2 == 0 else ["cli", "ours"]
        for side in sides:
            if side == "ours":
                last = _ours(clip, work, threads)
                ours_t.append(float(last["seconds"]))
                ours_cpu.append(float(last["cpu"]))
                peaks.append(int(last["peak"]))
            elif ffmpeg:
                plan = last or _ours(clip, work, threads)
                took, cpu, peak = _cli(ffmpeg, clip, work, threads, plan)
                cli_t.append(took)
                cli_cpu.append(cpu)
                cli_peaks.append(peak)
        cli_text = f", ffmpeg CLI {cli_t[-1]:.2f} s" if cli_t else ""
        say(f"  round {index + 1}/{rounds}: fit_video {ours_t[-1]:.2f} s{cli_text}")
    peak_mib = max(peaks) / 2**20
    section.row(
        f"fit_video: {CLIP_SECONDS} s 4K HEVC mov -> {float(last['duration']):.1f} s 1080p H.264 mp4 "
        f"({int(last['size']) / 2**20:.1f} MiB), {threads} threads",
        Summary.of(ours_t).s(),
    )
    if cli_t:
        ratio = Summary.of([o / c for o, c in zip(ours_t, cli_t, strict=True)])
        version = subprocess.run([ffmpeg or "ffmpeg", "-version"], capture_output=True, text=True).stdout
        section.row(f"ffmpeg CLI, same settings ({version.split(' Copyright')[0]})", Summary.of(cli_t).s())
        section.row("fit_video / ffmpeg CLI", ratio.x(), f"<= {GOAL_RATIO:.2f}x", ratio.median <= GOAL_RATIO)
        section.row(
            "CPU time (user + system): fit_video / ffmpeg CLI",
            f"{Summary.of(ours_cpu).median:.2f} s / {Summary.of(cli_cpu).median:.2f} s",
        )
        section.row("ffmpeg CLI peak memory (ru_maxrss)", f"{max(cli_peaks) / 2**20:.0f} MiB")
    else:
        section.row("ffmpeg CLI", "not measured: ffmpeg is not installed (apt-get install ffmpeg)")
    section.row(
        "fit_video peak memory (ru_maxrss of the child process)",
        f"{peak_mib:.0f} MiB",
        f"< {GOAL_PEAK_MIB:.0f} MiB",
        peak_mib < GOAL_PEAK_MIB,
    )
    section.notes.append(
        f"{rounds} rounds, the two sides alternating (order flipped each round). The clip: "
        f"{CLIP_SECONDS} s of 3840x2160 HEVC at {CLIP_FPS} fps with stereo AAC in mov, made once with "
        "PyAV (samples.make_clip). Ours is timed inside a child process around probe_clip, plan_fit and "
        "fit_video (which also probes the copy to verify it), with an empty cache folder each round; "
        "the CLI as a whole process with the same x264 and AAC settings and the same -threads for "
        "decoding and encoding. Peak memory is each process's ru_maxrss."
    )
    return section


async def run(work: Path, rounds: int) -> Section:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(measure, work, rounds)


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return 0
    with tempfile.TemporaryDirectory(prefix="pixverse-bench-fit-") as tmp:
        section = measure(Path(tmp), 5)
    for row in section.rows:
        print(f"{row.what}: {row.figure} {row.goal} {row.verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
