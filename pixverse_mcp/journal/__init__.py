"""The job journal: every job this server starts or reads, kept across restarts.

One interface, three implementations:

    Journal              the interface below; no method ever raises for a storage fault
    ├── NoJournal        PIXVERSE_JOURNAL=off: remembers nothing, answers neutral values
    └── SqlJournal       (sql.py) the shared statements and the fault guard
        ├── SqliteJournal    (sqlite.py) the default: a file in the user's state folder
        └── PostgresJournal  (postgres.py) PIXVERSE_JOURNAL_URL=postgresql://...: shared by replicas

A storage fault (unwritable or damaged file, full disk, database gone) is logged once per outage,
and the method returns a neutral value (None, [] or nothing); later calls try again.

How the tools use it:

    key = request_key(body)                                  # restyle_video
    trace_id = await journal.find_recent_uncertain(key) or new_trace_id()
    start = JobStart(trace_id, key, source_kind=..., source=..., ...)
    await journal.record_sending(start)                      # before the request goes out
    job = ...                                                # the generate request
    await journal.record_started(start, job.video_id, job.credits)
    #   outcome unknown: record_uncertain(start); clean refusal (500044): discard_attempt(trace_id)
    await journal.update_status(video_id, StatusUpdate(...)) # get_status, and the end of a wait

    await journal.record_group(group_id, plan_json)         # restyle_many, before its first job
    start = JobStart(..., group_id=group_id, group_item=2, group_part=0)
    await journal.get_group(group_id), await journal.jobs_in_group(group_id)   # get_status(group_id)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pixverse_mcp.config import Settings, sqlite_journal_path
from pixverse_mcp.journal.records import (
    CostSample,
    GroupRecord,
    JobRecord,
    JobStart,
    SourceKind,
    StatusUpdate,
    file_fingerprint,
    request_key,
)

__all__ = [
    "UNCERTAIN_WINDOW",
    "Clock",
    "CostSample",
    "GroupRecord",
    "JobRecord",
    "JobStart",
    "Journal",
    "NoJournal",
    "SourceKind",
    "StatusUpdate",
    "create_journal",
    "default_journal_path",
    "file_fingerprint",
    "journal_for",
    "request_key",
    "utc_now",
]

UNCERTAIN_WINDOW = timedelta(minutes=30)
"""How long an uncertain generate's trace id is offered for reuse."""
APP_NAME = "pixverse-restyle-mcp"
LIST_LIMIT_MAX = 200

Clock = Callable[[], datetime]
"""The current time as a timezone-aware UTC datetime."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Journal(ABC):
    """Where jobs are recorded. Every method is safe to call at any time: none raises for a storage fault."""

    kind: str = "off"

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the journal lives, for logs and answers (never a password)."""

    @property
    def enabled(self) -> bool:
        return True

    async def open(self) -> None:
        """Connect and migrate now rather than on the first call (a failure is logged, not raised)."""
        return None

    async def close(self) -> None:
        """Release files and connections; the journal may be opened again later."""
        return None

    @abstractmethod
    async def record_sending(self, start: JobStart) -> None:
        """Called before a generate is sent: the trace id is on record even if the reply is lost."""

    @abstractmethod
    async def record_started(self, start: JobStart, video_id: int | str, credits: int | None) -> None:
        """PixVerse answered the generate with a video id (and the credits it costs)."""

    @abstractmethod
    async def record_uncertain(self, start: JobStart) -> None:
        """The generate's outcome is unknown: PixVerse may have made the job."""

    @abstractmethod
    async def discard_attempt(self, trace_id: str) -> None:
        """PixVerse refused the generate cleanly (no job exists): forget the attempt."""

    @abstractmethod
    async def find_recent_uncertain(
        self, request_key: str, within: timedelta = UNCERTAIN_WINDOW
    ) -> str | None:
        """The trace id of the newest uncertain generate of the same request within `within`, if any."""

    @abstractmethod
    async def update_status(self, video_id: int | str, update: StatusUpdate) -> None:
        """Record a status PixVerse reported; a job unknown to the journal is added."""

    @abstractmethod
    async def get_job(self, video_id: int | str) -> JobRecord | None:
        """One job by its video id."""

    @abstractmethod
    async def list_jobs(self, status: str | None = None, query: str = "", limit: int = 20) -> list[JobRecord]:
        """Newest first. `query` words must all appear (case-insensitive) in the style name, prompt,
        source (file name, URL or media id), restyle id or video id; `status` is a status name."""

    @abstractmethod
    async def credits_spent(self, since: datetime) -> int | None:
        """Credits of the jobs started since `since`, refunded ones left out; None when unknown."""

    @abstractmethod
    async def cost_samples(self, limit: int = 20) -> list[CostSample]:
        """The newest jobs with both their credits and their source's length known."""

    @abstractmethod
    async def record_group(self, group_id: str, plan: str, client_name: str | None = None) -> None:
        """Keep a group's plan (JSON written by the group tools), replacing an earlier one of the same id."""

    @abstractmethod
    async def get_group(self, group_id: str) -> GroupRecord | None:
        """One group by its id."""

    @abstractmethod
    async def jobs_in_group(self, group_id: str) -> list[JobRecord]:
        """The group's jobs by item and part (each job's `group_item`, `group_part`), those
        still being sent or of unknown outcome included."""


class NoJournal(Journal):
    """PIXVERSE_JOURNAL=off: the same interface, remembering nothing."""

    @property
    def location(self) -> str:
        return "off (PIXVERSE_JOURNAL=off)"

    @property
    def enabled(self) -> bool:
        return False

    async def record_sending(self, start: JobStart) -> None:
        return None

    async def record_started(self, start: JobStart, video_id: int | str, credits: int | None) -> None:
        return None

    async def record_uncertain(self, start: JobStart) -> None:
        return None

    async def discard_attempt(self, trace_id: str) -> None:
        return None

    async def find_recent_uncertain(
        self, request_key: str, within: timedelta = UNCERTAIN_WINDOW
    ) -> str | None:
        return None

    async def update_status(self, video_id: int | str, update: StatusUpdate) -> None:
        return None

    async def get_job(self, video_id: int | str) -> JobRecord | None:
        return None

    async def list_jobs(self, status: str | None = None, query: str = "", limit: int = 20) -> list[JobRecord]:
        return []

    async def credits_spent(self, since: datetime) -> int | None:
        return None

    async def cost_samples(self, limit: int = 20) -> list[CostSample]:
        return []

    async def record_group(self, group_id: str, plan: str, client_name: str | None = None) -> None:
        return None

    async def get_group(self, group_id: str) -> GroupRecord | None:
        return None

    async def jobs_in_group(self, group_id: str) -> list[JobRecord]:
        return []


def default_journal_path() -> Path:
    """The SQLite file in the user's state folder (e.g. ~/.local/state/pixverse-restyle-mcp/)."""
    from platformdirs import user_state_dir

    return Path(user_state_dir(APP_NAME)) / "journal.sqlite3"


def create_journal(
    url: str | None = None,
    *,
    enabled: bool = True,
    clock: Clock = utc_now,
    retry_interval: float | None = None,
) -> Journal:
    """The journal the settings ask for; nothing is opened until first use (or `open()`).

    Args:
        url: None for the default SQLite file, `sqlite:///path`, or `postgresql://...`.
        enabled: False gives the no-op journal.
        clock: the current time (tests move it).
        retry_interval: seconds between reconnection attempts during an outage (backend default if None).
    """
    if not enabled:
        return NoJournal()
    if url is None or url.startswith("sqlite:"):
        from pixverse_mcp.journal.sqlite import SqliteJournal

        path = default_journal_path() if url is None else sqlite_journal_path(url)
        return SqliteJournal(path, clock=clock, retry_interval=retry_interval or 0.0)
    if url.startswith(("postgresql://", "postgres://")):
        from pixverse_mcp.journal.postgres import PostgresJournal

        if retry_interval is None:
            return PostgresJournal(url, clock=clock)
        return PostgresJournal(url, clock=clock, retry_interval=retry_interval)
    raise ValueError("PIXVERSE_JOURNAL_URL must start with postgresql:// or sqlite:///")


def journal_for(settings: Settings, *, clock: Clock = utc_now) -> Journal:
    """The journal the settings describe (PIXVERSE_JOURNAL, PIXVERSE_JOURNAL_URL)."""
    url = settings.journal_url.get_secret_value() if settings.journal_url is not None else None
    return create_journal(url, enabled=settings.journal_enabled, clock=clock)
