"""The statements both SQL backends share, and the guard that keeps a storage fault out of tool calls.

A backend supplies a connection (`_connect`, `_disconnect`) and two ways to run statements: one
statement in its own transaction (`_single`), or several in one write transaction (`_transaction`).
Statements are written once, with `:name` parameters, in the SQL both SQLite and PostgreSQL speak.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import anyio

from pixverse_mcp.journal import LIST_LIMIT_MAX, UNCERTAIN_WINDOW, Clock, Journal
from pixverse_mcp.journal.records import (
    UNREADABLE_TIME,
    CostSample,
    GroupRecord,
    JobRecord,
    JobStart,
    StatusUpdate,
    clip_text,
    job_record,
    storable_int,
    stored_time,
    video_key,
)
from pixverse_mcp.journal.statements import (
    COLUMNS,
    COST_SAMPLES,
    CREDITS_SPENT,
    FIND_UNCERTAIN,
    GET_GROUP,
    GROUP_JOBS_LIMIT,
    GROUP_PLAN_LIMIT,
    SEARCHED_TEXT,
    UPSERT_ATTEMPT,
    UPSERT_GROUP,
    UPSERT_STARTED,
    UPSERT_STATUS,
    like_pattern,
    start_params,
)

log = logging.getLogger("pixverse_mcp.journal")

T = TypeVar("T")

STALE_SENDING = timedelta(minutes=2)
"""A row still 'sending' after this long belongs to a process that stopped mid-request: uncertain."""
MAX_QUERY_WORDS = 8


class Statements(Protocol):
    """Runs statements on one connection."""

    async def execute(self, sql: str, params: Mapping[str, Any]) -> None: ...

    async def fetch(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]: ...


def _no_rows() -> list[tuple[Any, ...]]:
    return []


def _no_jobs() -> list[JobRecord]:
    return []


class SqlJournal(Journal):
    """The journal's behaviour over any SQL backend, with every fault caught, logged once, retried later."""

    def __init__(self, *, clock: Clock, retry_interval: float, op_timeout: float) -> None:
        self._clock = clock
        self._retry_interval = retry_interval
        self._op_timeout = op_timeout
        self._generation = 0  # counts connections, so a late failure never drops a newer one
        self._connected = False
        self._down = False
        self._next_attempt = float("-inf")
        self._connect_lock = anyio.Lock()

    # -- what a backend supplies ------------------------------------------------------------------

    @abstractmethod
    async def _connect(self) -> None:
        """Open the store and bring its schema up to date; raise on failure."""

    @abstractmethod
    async def _disconnect(self) -> None:
        """Drop the connection(s); must not raise."""

    @abstractmethod
    def _single(self) -> AbstractAsyncContextManager[Statements]:
        """A connection whose every statement commits on its own."""

    @abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Statements]:
        """A write transaction: all its statements commit together, or none does."""

    def _is_conflict(self, exc: Exception) -> bool:
        """True for a uniqueness conflict a concurrent writer caused (worth one more try)."""
        return False

    def _is_stale(self, exc: Exception) -> bool:
        """True when the failure is a connection the server closed, worth one reconnection at once."""
        return False

    def _hint(self, exc: Exception) -> str:
        """What the operator can do about this failure, if anything specific."""
        return ""

    def _scrub(self, text: str) -> str:
        """The text with any secret (a password in the URL) removed."""
        return text

    # -- the fault guard ----------------------------------------------------------------------------

    async def open(self) -> None:
        await self._ensure()

    async def close(self) -> None:
        async with self._connect_lock:
            if self._connected:
                self._connected = False
                await self._disconnect()

    async def _ensure(self) -> bool:
        if self._connected:
            return True
        if anyio.current_time() < self._next_attempt:
            return False
        async with self._connect_lock:
            if self._connected:
                return True
            try:
                with anyio.fail_after(self._op_timeout):
                    await self._connect()
            except Exception as exc:
                await self._failed("opening", exc, self._generation)
                return False
            self._generation += 1
            self._connected = True
            return True

    async def _write(self, what: str, work: Callable[[], Awaitable[None]]) -> None:
        await self._guarded(what, None, work, write=True)

    async def _read(self, what: str, default: T, work: Callable[[], Awaitable[T]]) -> T:
        return await self._guarded(what, default, work, write=False)

    async def _guarded(self, what: str, default: T, work: Callable[[], Awaitable[T]], *, write: bool) -> T:
        for attempt in range(2):
            if not await self._ensure():
                return default
            generation = self._generation
            try:
                with anyio.fail_after(self._op_timeout):
                    result = await work()
                break
            except Exception as exc:
                if attempt == 0 and self._is_stale(exc):
                    # A connection the database dropped while idle (a restart): reconnect once and go
                    # on. Every write is an idempotent upsert, so running one twice changes nothing.
                    await self._drop(generation)
                    continue
                await self._failed(what, exc, generation)
                return default
        # Only a write ends an outage: a full disk still serves reads, and must not flap the log.
        if self._down and write:
            self._down = False
            log.info("The job journal (%s) works again.", self.location)
        return result

    async def _drop(self, generation: int) -> None:
        if self._connected and generation == self._generation:
            self._connected = False
            with anyio.CancelScope(shield=True):
                await self._disconnect()

    async def _failed(self, what: str, exc: Exception, generation: int) -> None:
        self._next_attempt = anyio.current_time() + self._retry_interval
        await self._drop(generation)
        reason = self._scrub(f"{type(exc).__name__}: {exc}".strip())
        if self._down:
            log.debug("job journal still unavailable (%s): %s", what, reason)
            return
        self._down = True
        log.warning(
            "The job journal (%s) is unavailable while %s: %s.%s Tool calls go on without it; "
            "it tries again on later calls.",
            self.location,
            what,
            reason,
            self._hint(exc),
        )

    # -- the journal --------------------------------------------------------------------------------

    async def record_sending(self, start: JobStart) -> None:
        params = start_params(start) | {"status": "sending", "now": self._clock()}
        await self._write("recording a generate", lambda: self._execute(UPSERT_ATTEMPT, params))

    async def record_uncertain(self, start: JobStart) -> None:
        params = start_params(start) | {"status": "uncertain", "now": self._clock()}
        await self._write("recording an uncertain generate", lambda: self._execute(UPSERT_ATTEMPT, params))

    async def discard_attempt(self, trace_id: str) -> None:
        sql = "DELETE FROM pixverse_jobs WHERE trace_id = :trace_id AND video_id IS NULL"
        await self._write("forgetting a refused generate", lambda: self._execute(sql, {"trace_id": trace_id}))

    async def record_started(self, start: JobStart, video_id: int | str, credits: int | None) -> None:
        key = video_key(video_id)
        if key is None:
            log.debug("job journal: ignoring a started job with video id %r", video_id)
            return
        params = start_params(start) | {
            "video_id": key,
            "credits": storable_int(credits),
            "now": self._clock(),
        }
        await self._write("recording a started job", lambda: self._record_started(params))

    async def _record_started(self, params: dict[str, Any]) -> None:
        for attempt in range(2):
            try:
                async with self._transaction() as tx:
                    await self._merge_started(tx, params)
                return
            except Exception as exc:
                if attempt or not self._is_conflict(exc):
                    raise

    async def _merge_started(self, tx: Statements, params: dict[str, Any]) -> None:
        # A get_status may have recorded this video before its start was known (the journal was
        # down, or another replica read it first): that row is folded into the started one.
        rows = await tx.fetch(
            "SELECT trace_id, status, status_code, url, local_path, finished_at "
            "FROM pixverse_jobs WHERE video_id = :video_id",
            {"video_id": params["video_id"]},
        )
        carried: dict[str, Any] = {
            "status": "generating",
            "status_code": None,
            "url": None,
            "local_path": None,
            "finished_at": None,
        }
        if rows and rows[0][0] != params["trace_id"]:
            await tx.execute(
                "DELETE FROM pixverse_jobs WHERE video_id = :video_id", {"video_id": params["video_id"]}
            )
            _, status, code, url, local_path, finished_at = rows[0]
            carried = {
                "status": status,
                "status_code": code,
                "url": url,
                "local_path": local_path,
                "finished_at": stored_time(finished_at),
            }
        await tx.execute(UPSERT_STARTED, params | carried)

    async def find_recent_uncertain(
        self, request_key: str, within: timedelta = UNCERTAIN_WINDOW
    ) -> str | None:
        now = self._clock()
        params = {"request_key": request_key, "since": now - within, "stale": now - STALE_SENDING}
        rows = await self._read(
            "looking up an uncertain generate", _no_rows(), lambda: self._fetch(FIND_UNCERTAIN, params)
        )
        return str(rows[0][0]) if rows else None

    async def update_status(self, video_id: int | str, update: StatusUpdate) -> None:
        key = video_key(video_id)
        if key is None:
            log.debug("job journal: ignoring a status for video id %r", video_id)
            return
        now = self._clock()
        params = {
            "video_id": key,
            "status": clip_text(update.status, 40) or "unknown",
            "status_code": storable_int(update.status_code),
            "url": clip_text(update.url),
            "local_path": clip_text(update.local_path),
            "style_name": clip_text(update.style_name),
            "prompt": clip_text(update.prompt),
            "seed": storable_int(update.seed),
            "credits": storable_int(update.credits),
            "client_name": clip_text(update.client_name, 200),
            "finished_at": now if update.finished else None,
            "now": now,
        }
        await self._write("recording a status", lambda: self._execute(UPSERT_STATUS, params))

    async def get_job(self, video_id: int | str) -> JobRecord | None:
        key = video_key(video_id)
        if key is None:
            return None
        sql = f"SELECT {COLUMNS} FROM pixverse_jobs WHERE video_id = :video_id"
        jobs = await self._read("reading a job", _no_jobs(), lambda: self._fetch_jobs(sql, {"video_id": key}))
        return jobs[0] if jobs else None

    async def list_jobs(self, status: str | None = None, query: str = "", limit: int = 20) -> list[JobRecord]:
        sql = f"SELECT {COLUMNS} FROM pixverse_jobs WHERE 1 = 1"
        params: dict[str, Any] = {"limit": max(1, min(int(limit), LIST_LIMIT_MAX))}
        if status and status.strip():
            sql += " AND status = :status"
            params["status"] = status.strip().lower()
        for n, word in enumerate(query.split()[:MAX_QUERY_WORDS]):
            sql += f" AND {SEARCHED_TEXT} LIKE :word{n} ESCAPE '\\'"
            params[f"word{n}"] = like_pattern(word)
        sql += " ORDER BY started_at DESC, id DESC LIMIT :limit"
        return await self._read("listing jobs", _no_jobs(), lambda: self._fetch_jobs(sql, params))

    async def credits_spent(self, since: datetime) -> int | None:
        async def total() -> int:
            rows = await self._fetch(CREDITS_SPENT, {"since": since})
            return int(rows[0][0])

        return await self._read("adding up credits", None, total)

    async def cost_samples(self, limit: int = 20) -> list[CostSample]:
        params = {"limit": max(1, min(int(limit), LIST_LIMIT_MAX))}

        async def samples() -> list[CostSample]:
            rows = await self._fetch(COST_SAMPLES, params)
            return [CostSample(credits=int(c), source_seconds=float(s)) for c, s in rows]

        return await self._read("reading job costs", [], samples)

    async def record_group(self, group_id: str, plan: str, client_name: str | None = None) -> None:
        if not group_id or len(group_id) > 200 or len(plan) > GROUP_PLAN_LIMIT:
            log.warning("job journal: a group plan of %d characters was not kept (too long)", len(plan))
            return
        params = {
            "group_id": group_id,
            "plan": plan,
            "client_name": clip_text(client_name, 200),
            "now": self._clock(),
        }
        await self._write("recording a group", lambda: self._execute(UPSERT_GROUP, params))

    async def get_group(self, group_id: str) -> GroupRecord | None:
        if not group_id or len(group_id) > 200:
            return None

        async def read() -> GroupRecord | None:
            rows = await self._fetch(GET_GROUP, {"group_id": group_id})
            if not rows:
                return None
            found, plan, client_name, created_at, updated_at = rows[0]
            created = stored_time(created_at) or UNREADABLE_TIME
            return GroupRecord(
                group_id=str(found),
                plan=str(plan),
                client_name=client_name,
                created_at=created,
                updated_at=stored_time(updated_at) or created,
            )

        return await self._read("reading a group", None, read)

    async def jobs_in_group(self, group_id: str) -> list[JobRecord]:
        if not group_id or len(group_id) > 200:
            return []
        sql = (
            f"SELECT {COLUMNS} FROM pixverse_jobs WHERE group_id = :group_id "
            "ORDER BY group_item, group_part, started_at, id LIMIT :limit"
        )
        params = {"group_id": group_id, "limit": GROUP_JOBS_LIMIT}
        return await self._read("reading a group's jobs", _no_jobs(), lambda: self._fetch_jobs(sql, params))

    # -- helpers ------------------------------------------------------------------------------------

    async def _execute(self, sql: str, params: Mapping[str, Any]) -> None:
        async with self._single() as run:
            await run.execute(sql, params)

    async def _fetch(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        async with self._single() as run:
            return await run.fetch(sql, params)

    async def _fetch_jobs(self, sql: str, params: Mapping[str, Any]) -> list[JobRecord]:
        # Rows are read into records inside the guard: a value edited by hand fails here, not the call.
        return [job_record(row) for row in await self._fetch(sql, params)]
