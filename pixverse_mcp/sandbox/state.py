"""The sandbox's in-memory world: media, jobs, credits, counters, trace ids and fault rules.

One :class:`SandboxState` per app. Request handlers run on the event loop and render workers run
in threads, so every mutation happens under one lock; nothing awaits while holding it.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
import threading
import time
import weakref
from collections import Counter, defaultdict, deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import render
from .catalog import Style
from .endpoints import ENDPOINT_NAMES
from .faults import Fault
from .replies import Reply

# Ids start above 2**53: a client that reads ids as JSON doubles gets them wrong and fails.
ID_BASE = 2**53
TRACE_IDS_KEPT = 10_000
RUNNING_STATUSES = frozenset({2, 3, 5})  # queued, in progress, generating


class SandboxConfig(BaseModel):
    """How the sandbox behaves. Defaults suit a newcomer trying the flow by hand."""

    model_config = ConfigDict(frozen=True)

    api_key: str = Field(default="sk-sandbox", repr=False)
    job_seconds: float = Field(default=3.0, ge=0)
    max_concurrent_jobs: int = Field(default=3, ge=1)
    credit_monthly: int = Field(default=1000, ge=0)
    credit_package: int = Field(default=500, ge=0)
    restyle_credits: int = Field(default=30, ge=0)
    path_prefix: str = ""
    list_max_page_size: int = Field(default=6, ge=1)
    data_dir: Path | None = None
    render_workers: int = Field(default=2, ge=1)
    account_id: int = ID_BASE + 4242
    # How the replies look. The defaults follow the documentation; the others are shapes seen live.
    list_shape: Literal["documented", "web"] = "documented"
    result_id: Literal["present", "absent", "zero"] = "present"
    queued_statuses: bool = False
    generate_credit_key: Literal["credits", "credit"] = "credits"
    # Read upload bodies at this rate (a throttled link: 12.5e6 is 100 Mbit/s); None: unthrottled.
    upload_bytes_per_second: float | None = Field(default=None, gt=0)

    @field_validator("path_prefix")
    @classmethod
    def _normalize_prefix(cls, value: str) -> str:
        value = value.strip().strip("/")
        return f"/{value}" if value else ""


@dataclass
class Media:
    """An uploaded file."""

    media_id: int
    path: Path
    info: render.ProbeInfo
    size: int


@dataclass
class Job:
    """A restyle job. Its status is derived from time and the render's progress."""

    video_id: int
    trace_id: str
    source: Path
    style: Style
    prompt: str
    seed: int
    credits: int
    from_monthly: int
    from_package: int
    started: float  # time.monotonic()
    create_time: str
    outcome: int | None = None  # forced final status from a job_outcome fault
    render_done: bool = False
    render_error: str | None = None
    output: Path | None = None
    output_size: int = 0
    width: int = 0
    height: int = 0
    final: int | None = None
    modify_time: str = ""


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SandboxState:
    """Live state of one sandbox; also the in-process control surface for tests."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.lock = threading.RLock()
        if self.config.data_dir is not None:
            self.data_dir = self.config.data_dir
            self.data_dir.mkdir(parents=True, exist_ok=True)
        else:
            self.data_dir = Path(tempfile.mkdtemp(prefix="pixverse-sandbox-"))
            # Removed on close(), or at garbage collection / exit if nobody calls close().
            self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.data_dir), True)
        self._executor = ThreadPoolExecutor(self.config.render_workers, thread_name_prefix="sandbox-render")
        self._next_id = ID_BASE + random.randrange(1_000, 1_000_000)
        self.covers: dict[int, bytes] = {}
        self.closing = threading.Event()  # set by close(): hanging replies give up at once
        self._files: set[Path] = set()
        self.reset()

    # -- bookkeeping -------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget faults, jobs, media, counters and trace ids; refill the credits."""
        with self.lock:
            self.faults: list[Fault] = []
            self.media: dict[int, Media] = {}
            self.jobs: dict[int, Job] = {}
            self.requests: Counter[str] = Counter({name: 0 for name in ENDPOINT_NAMES})
            # Bounded: a long --sandbox session polls for hours; tests need only the recent ones.
            self.trace_ids: dict[str, deque[str]] = {
                name: deque(maxlen=TRACE_IDS_KEPT) for name in ENDPOINT_NAMES
            }
            self.upload_pauses = 0
            self.upload_bytes_paced = 0
            self.jobs_per_trace_id: Counter[str] = Counter()
            self.jobs_created = 0
            self._key_hashes: set[str] = set()
            self._replies: dict[str, dict[str, Reply]] = defaultdict(dict)
            self.credit_monthly = self.config.credit_monthly
            self.credit_package = self.config.credit_package
            files, self._files = self._files, set()
        for path in files:
            path.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop the render workers and remove the temporary data directory (if it is ours)."""
        self.closing.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self.config.data_dir is None:
            self._cleanup()

    def new_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id

    def new_file(self, suffix: str) -> Path:
        """A fresh, unguessable file name in the data directory (served under /files/)."""
        import secrets

        path = self.data_dir / f"{secrets.token_hex(8)}{suffix}"
        with self.lock:
            self._files.add(path)
        return path

    def count_request(self, endpoint: str, trace_id: str | None, api_key: str | None) -> None:
        with self.lock:
            self.requests[endpoint] += 1
            if trace_id:
                self.trace_ids[endpoint].append(trace_id)
            if api_key is not None:
                # Only a hash is kept: the sandbox never stores or echoes keys.
                self._key_hashes.add(hashlib.sha256(api_key.encode()).hexdigest())

    def count_upload_pause(self, paced_bytes: int) -> None:
        """One pause of a paced upload body (see ``SandboxConfig.upload_bytes_per_second``)."""
        with self.lock:
            self.upload_pauses += 1
            self.upload_bytes_paced += paced_bytes

    def stats(self) -> dict[str, Any]:
        """Counters for tests: requests per endpoint, jobs per trace id, trace ids seen."""
        with self.lock:
            return {
                "requests": dict(self.requests),
                "jobs_created": self.jobs_created,
                "jobs_per_trace_id": dict(self.jobs_per_trace_id),
                "trace_ids": {name: list(ids) for name, ids in self.trace_ids.items()},
                "api_keys_seen": len(self._key_hashes),
                "faults_pending": len(self.faults),
                "credit_monthly": self.credit_monthly,
                "credit_package": self.credit_package,
                "upload_pauses": self.upload_pauses,
                "upload_bytes_paced": self.upload_bytes_paced,
            }

    # -- faults ------------------------------------------------------------------------------

    def add_fault(self, rule: Fault | Mapping[str, Any] | None = None, /, **fields: Any) -> Fault:
        """Add a fault rule: ``state.add_fault(kind="html", endpoint="result", count=2)``."""
        fault = rule if isinstance(rule, Fault) else Fault.model_validate({**(rule or {}), **fields})
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take_fault(self, endpoint: str, when: str) -> Fault | None:
        """Use up one count of the first rule matching this request, if any."""
        with self.lock:
            for index, fault in enumerate(self.faults):
                if fault.when == when and fault.matches(endpoint):
                    return self._use(index, fault)
        return None

    def _use(self, index: int, fault: Fault) -> Fault:
        if fault.count <= 1:
            del self.faults[index]
        else:
            self.faults[index] = fault.model_copy(update={"count": fault.count - 1})
        return fault

    def _take_job_outcome(self) -> int | None:
        for index, fault in enumerate(self.faults):
            if fault.kind == "job_outcome":
                return self._use(index, fault).job_status
        return None

    # -- trace-id replay ---------------------------------------------------------------------

    def replay(self, endpoint: str, trace_id: str) -> Reply | None:
        with self.lock:
            return self._replies[endpoint].get(trace_id)

    def remember(self, endpoint: str, trace_id: str, reply: Reply) -> Reply:
        """Keep ``reply`` for ``trace_id``, unless a concurrent request got there first."""
        with self.lock:
            return self._replies[endpoint].setdefault(trace_id, reply)

    # -- media -------------------------------------------------------------------------------

    def add_media(self, path: Path, info: render.ProbeInfo) -> Media:
        media = Media(self.new_id(), path, info, path.stat().st_size)
        with self.lock:
            self.media[media.media_id] = media
        return media

    # -- jobs --------------------------------------------------------------------------------

    def running_jobs(self) -> int:
        with self.lock:
            return sum(1 for job in self.jobs.values() if self.status(job) in RUNNING_STATUSES)

    def admission_error(self) -> int | None:
        """500044 past the concurrency limit, 500090 without enough credits, else None."""
        with self.lock:
            if self.running_jobs() >= self.config.max_concurrent_jobs:
                return 500044
            if self.credit_monthly + self.credit_package < self.config.restyle_credits:
                return 500090
        return None

    def create_job(self, trace_id: str, source: Path, style: Style, prompt: str, seed: int) -> Job:
        """Create a job and take its credits (monthly first). Call admission_error() first."""
        with self.lock:
            cost = self.config.restyle_credits
            from_monthly = min(cost, self.credit_monthly)
            from_package = cost - from_monthly
            self.credit_monthly -= from_monthly
            self.credit_package -= from_package
            job = Job(
                video_id=self.new_id(),
                trace_id=trace_id,
                source=source,
                style=style,
                prompt=prompt,
                seed=seed,
                credits=cost,
                from_monthly=from_monthly,
                from_package=from_package,
                started=time.monotonic(),
                create_time=_now_text(),
                outcome=self._take_job_outcome(),
            )
            job.modify_time = job.create_time
            self.jobs[job.video_id] = job
            self.jobs_created += 1
            self.jobs_per_trace_id[trace_id] += 1
        if job.outcome is None:
            try:
                self._executor.submit(self._render, job)
            except RuntimeError:  # executor shut down: the sandbox is stopping
                self._finish(job, None, "the sandbox is shutting down")
        else:
            job.render_done = True
        return job

    def _render(self, job: Job) -> None:
        output = self.new_file(".mp4")
        try:
            result = render.render(job.source, output, job.style.steps(job.seed))
        except render.RenderError as exc:
            self._finish(job, None, str(exc))
        else:
            self._finish(job, (output, result), None)

    def _finish(self, job: Job, done: tuple[Path, render.RenderResult] | None, error: str | None) -> None:
        with self.lock:
            if done is not None:
                job.output, result = done
                job.output_size = job.output.stat().st_size
                job.width, job.height = result.width, result.height
            job.render_error = error
            job.render_done = True

    def status(self, job: Job) -> int:
        """1/2/3/5/6/7/8. Status 5 lasts until the render is done AND job_seconds have passed.

        With ``queued_statuses`` the job says 2 (queued) for the first third of job_seconds and
        3 (in progress) for the second third, as some live replies do, then 5.
        """
        with self.lock:
            if job.final is not None:
                return job.final
            elapsed, seconds = time.monotonic() - job.started, self.config.job_seconds
            if elapsed < seconds or not job.render_done:
                if self.config.queued_statuses and elapsed < seconds * 2 / 3:
                    return 2 if elapsed < seconds / 3 else 3
                return 5
            if job.outcome is not None:
                job.final = job.outcome
                if job.outcome == 7:  # moderation failures are refunded, as PixVerse does
                    self.credit_monthly += job.from_monthly
                    self.credit_package += job.from_package
            else:
                job.final = 8 if job.render_error else 1
            job.modify_time = _now_text()
            return job.final
