"""Shared pieces of the benchmarks: statistics, processes, the sandbox, clips and the results table."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = BENCH / ".cache"
LOGS = CACHE / "logs"
PYTHON = sys.executable
SANDBOX_KEY = "sk-sandbox"
TAG_VAR = "PIXVERSE_BENCH_TAG"


# -- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Median, spread and tail of one series of samples."""

    median: float
    low: float
    high: float
    p95: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            raise ValueError("no samples")
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
        return cls(statistics.median(ordered), ordered[0], ordered[-1], p95, len(ordered))

    def ms(self, *, tail: bool = False) -> str:
        """`12.3 ms (10.1-15.0)`, or with the p95 when `tail`."""
        text = f"{self.median * 1e3:.1f} ms ({self.low * 1e3:.1f}-{self.high * 1e3:.1f})"
        return f"{text}, p95 {self.p95 * 1e3:.1f} ms" if tail else text

    def s(self) -> str:
        return f"{self.median:.2f} s ({self.low:.2f}-{self.high:.2f})"

    def x(self) -> str:
        return f"{self.median:.2f}x ({self.low:.2f}-{self.high:.2f})"


@dataclass
class Row:
    """One line of the results table."""

    section: str
    what: str
    figure: str
    goal: str = ""
    met: bool | None = None

    @property
    def verdict(self) -> str:
        return "" if self.met is None else ("yes" if self.met else "**MISSED**")


@dataclass
class Section:
    """What one measurement hands back: table rows and notes for the report."""

    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def row(self, what: str, figure: str, goal: str = "", met: bool | None = None) -> None:
        self.rows.append(Row(self.title, what, figure, goal, met))


def say(text: str = "") -> None:
    """Progress goes to stderr, so stdout holds only the table."""
    print(text, file=sys.stderr, flush=True)


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes, from /proc (no psutil)."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024
    return values


def proc_cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def find_tagged(tag: str, timeout: float = 10.0) -> int:
    """The pid of the process started with PIXVERSE_BENCH_TAG=tag in its environment."""
    needle = f"{TAG_VAR}={tag}".encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    return int(entry.name)
        time.sleep(0.02)
    raise RuntimeError(f"no process carries {TAG_VAR}={tag}")


def log_file(name: str) -> TextIO:
    """A file for a child's stderr: servers log there, not over the table."""
    LOGS.mkdir(parents=True, exist_ok=True)
    return (LOGS / f"{name}.log").open("a", encoding="utf-8")


def server_env(base_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of a spawned MCP server: the sandbox, a confined folder, quiet logs."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(workdir)),
        "PIXVERSE_BASE_URL": base_url,
        "PIXVERSE_API_KEY": SANDBOX_KEY,
        "PIXVERSE_ALLOWED_DIRS": str(workdir),
        "PIXVERSE_OUTPUT_DIR": str(workdir / "out"),
        "PIXVERSE_LOG_LEVEL": "WARNING",
        **extra,
    }


def ours_params(base_url: str, workdir: Path, tag: str = "") -> StdioServerParameters:
    """`python -m pixverse_mcp serve` over stdio, as a desktop client starts it."""
    env = server_env(base_url, workdir, **({TAG_VAR: tag} if tag else {}))
    return StdioServerParameters(
        command=PYTHON, args=["-m", "pixverse_mcp", "serve"], env=env, cwd=str(workdir)
    )


def hello_params(python: str, workdir: Path) -> StdioServerParameters:
    """The bare hello-world server of the SDK installed for `python`."""
    return StdioServerParameters(
        command=python,
        args=[str(BENCH / "hello_server.py")],
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")},
        cwd=str(workdir),
    )


@contextlib.asynccontextmanager
async def connect(params: StdioServerParameters, name: str, mode: str = "auto") -> AsyncIterator[Client]:
    """An MCP client on a spawned stdio server whose stderr goes to a log file."""
    with log_file(name) as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode=mode) as client:
            yield client


# -- the sandbox --------------------------------------------------------------------------------


def stop_process(proc: subprocess.Popen[Any], *, gently: Callable[[], None] | None = None) -> None:
    """Ask a helper process to stop (`gently`, else SIGTERM), then kill it if it has not in 5 s."""
    if proc.poll() is not None:
        return
    (gently or proc.terminate)()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class SandboxProcess:
    """A PixVerse sandbox in its own process, so the benchmark's clients never share its GIL."""

    def __init__(
        self,
        *,
        job_seconds: float = 3600.0,
        max_jobs: int = 50,
        name: str = "sandbox",
        upload_bytes_per_second: float | None = None,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._errlog = log_file(name)
        options = f"job_seconds={job_seconds!r}, max_concurrent_jobs={max_jobs!r}"
        if upload_bytes_per_second is not None:  # a throttled link: the sandbox paces its reads
            options += f", upload_bytes_per_second={upload_bytes_per_second!r}"
        code = (
            "import sys\n"
            "from pixverse_mcp.sandbox import SandboxConfig, SandboxServer\n"
            f"cfg = SandboxConfig({options})\n"
            f"server = SandboxServer(cfg, port={self.port}).start()\n"
            "print(server.base_url, flush=True)\n"
            "sys.stdin.read()\n"
            "server.stop()\n"
        )
        self.proc = subprocess.Popen(
            [PYTHON, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errlog,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http"):
            self.close()
            raise RuntimeError(f"the sandbox did not start (see {LOGS / name}.log)")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def reset(self) -> None:
        """Forget jobs and media (and delete the uploaded files)."""
        httpx2.post(f"{self.base_url}/_sandbox/reset").raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(httpx2.get(f"{self.base_url}/_sandbox/stats").json())

    def close(self) -> None:
        stop_process(self.proc, gently=self._close_stdin)
        self._errlog.close()

    def _close_stdin(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def api_headers() -> dict[str, str]:
    return {"API-KEY": SANDBOX_KEY, "Ai-trace-id": str(uuid.uuid4())}


def multipart_stream(path: Path, chunk: int = 256 * 1024) -> tuple[dict[str, str], Iterator[bytes]]:
    """Headers and a streamed body for a multipart upload of `path` as field `file`."""
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        with path.open("rb") as file:
            while data := file.read(chunk):
                yield data
        yield tail

    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + path.stat().st_size + len(tail)),
    }
    return headers, body()


def start_job(base_url: str, clip: Path) -> int:
    """Upload `clip` and start a restyle straight on the sandbox API; returns the video id."""
    api = f"{base_url}/openapi/v2"
    with httpx2.Client(timeout=60) as http:
        headers, body = multipart_stream(clip)
        sent = http.post(f"{api}/media/upload", headers={**api_headers(), **headers}, content=body)
        media_id = sent.json()["Resp"]["media_id"]
        job = {"video_media_id": media_id, "restyle_prompt": "a pencil sketch"}
        started = http.post(f"{api}/video/restyle/generate", headers=api_headers(), json=job).json()
        if started.get("ErrCode") != 0:
            raise RuntimeError(f"the sandbox refused the restyle: {started}")
        return int(started["Resp"]["video_id"])


# -- clips --------------------------------------------------------------------------------------


def small_clip() -> Path:
    """A 2 s 320x240 clip (cached)."""
    from pixverse_mcp.samples import make_clip

    path = CACHE / "clips" / "small.mp4"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        make_clip(path.with_suffix(".tmp.mp4"), seconds=2.0, width=320, height=240).rename(path)
    return path


BIG_CLIP_BYTES = 45 * 1024 * 1024


def big_clip() -> Path:
    """A valid 45 MiB restyle input: 15 s of noisy 1920x1080 H.264 at a fixed bitrate (cached).

    Noise makes the picture incompressible, so x264 spends the whole bitrate and the file lands
    within a few percent of 45 MiB, under the 50 MB upload limit; it takes about two seconds.
    """
    import av
    from av.filter import Graph

    path = CACHE / "clips" / "big-45MiB-v2.mp4"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    seconds, fps = 15, 8
    rate = str(int(BIG_CLIP_BYTES * 8 * 0.97) // seconds)  # x264 and the muxer add about 3%
    graph = Graph()
    source = graph.add("testsrc2", f"size=1920x1080:rate={fps}:duration={seconds}")
    noise = graph.add("noise", "alls=40:allf=t")
    convert = graph.add("format", "pix_fmts=yuv420p")
    sink = graph.add("buffersink")
    source.link_to(noise)
    noise.link_to(convert)
    convert.link_to(sink)
    graph.configure()
    output: Any = av.open(str(tmp), mode="w")
    try:
        stream = output.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.options = {"preset": "ultrafast", "b": rate, "maxrate": rate, "bufsize": rate}
        index = 0
        while True:
            try:
                frame = graph.pull()
            except (av.error.EOFError, av.error.BlockingIOError):
                break
            frame.pts, frame.time_base = index, Fraction(1, fps)
            index += 1
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    finally:
        output.close()
    tmp.rename(path)
    return path


# -- the machine --------------------------------------------------------------------------------


def machine_line() -> str:
    """CPU model, cores, memory, OS and Python: where the figures came from."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB RAM"
    from importlib.metadata import version

    import mcp  # noqa: F401  (only for the version below)

    return (
        f"{cpu}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; mcp {version('mcp')}, httpx2 {version('httpx2')}, "
        f"av {version('av')}"
    )
