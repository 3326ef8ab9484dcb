"""The default journal: one SQLite file (stdlib sqlite3), used from worker threads off the event loop.

WAL mode lets readers and one writer work at once, also across processes sharing the file;
`busy_timeout` makes a writer wait for another's transaction instead of failing, and write
transactions take the write lock up front (BEGIN IMMEDIATE) so two writers never deadlock.
One connection per journal, used by one thread at a time under a lock.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from pixverse_mcp.journal import Clock, utc_now
from pixverse_mcp.journal.records import time_text
from pixverse_mcp.journal.schema import SCHEMA_VERSION, SQLITE_MIGRATIONS, SchemaTooNewError
from pixverse_mcp.journal.sql import SqlJournal


def _lower(value: str | None) -> str | None:
    # SQLite's own lower() folds only ASCII; PostgreSQL's folds every letter. Python's does too.
    return value.lower() if isinstance(value, str) else value


def _adapt(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: time_text(v) if isinstance(v, datetime) else v for k, v in params.items()}


def _use_wal(conn: sqlite3.Connection, patience: float) -> None:
    # Switching a new file to WAL takes it exclusively without calling the busy handler, so two
    # processes opening the same new journal at once may see "database is locked": wait and retry.
    deadline = time.monotonic() + patience
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _migrate(conn: sqlite3.Connection) -> None:
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated meanwhile.
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise SchemaTooNewError(version)
        for migration in SQLITE_MIGRATIONS[version:]:
            for statement in migration:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        if conn.in_transaction:
            conn.execute("ROLLBACK")


class _Run:
    """Statements on the journal's connection, each in a worker thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Mapping[str, Any]) -> None:
        await anyio.to_thread.run_sync(self._conn.execute, sql, _adapt(params))

    async def fetch(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            return self._conn.execute(sql, _adapt(params)).fetchall()

        return await anyio.to_thread.run_sync(run)


class SqliteJournal(SqlJournal):
    """The journal in one SQLite file."""

    kind = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        clock: Clock = utc_now,
        retry_interval: float = 0.0,
        busy_timeout: float = 5.0,
        op_timeout: float = 15.0,
    ) -> None:
        super().__init__(clock=clock, retry_interval=retry_interval, op_timeout=op_timeout)
        self.path = path
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = anyio.Lock()

    @property
    def location(self) -> str:
        return str(self.path)

    async def _connect(self) -> None:
        self._conn = await anyio.to_thread.run_sync(self._open)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The journal holds prompts and file paths: private to the user from its first byte
        # (SQLite gives its -wal and -shm files the same permissions).
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        # A file this process may read but not write opens read-only: the history stays readable
        # and each write fails (reported once).
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.create_function("lower", 1, _lower, deterministic=True)
            _use_wal(conn, self._busy_timeout)
            # With WAL, NORMAL survives a crash of the process; only a power cut may lose the last writes.
            conn.execute("PRAGMA synchronous=NORMAL")
            _migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    async def _disconnect(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                await anyio.to_thread.run_sync(conn.close)

    def _current(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.OperationalError("the journal is closed")
        return self._conn

    @asynccontextmanager
    async def _single(self) -> AsyncIterator[_Run]:
        async with self._lock:
            yield _Run(self._current())

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Run]:
        async with self._lock:
            conn = self._current()
            await anyio.to_thread.run_sync(conn.execute, "BEGIN IMMEDIATE")
            try:
                yield _Run(conn)
                await anyio.to_thread.run_sync(conn.execute, "COMMIT")
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_rollback, conn)
                raise

    def _is_conflict(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def _hint(self, exc: Exception) -> str:
        text = str(exc).lower()
        if "not a database" in text or "malformed" in text:
            return " The file may be damaged: move it away (a new journal is then started) or restore a copy."
        if "full" in text:
            return " Free some disk space."
        if any(
            word in text for word in ("readonly", "read-only", "permission", "unable to open", "directory")
        ):
            return " Check that the path is a file the server may write, in a folder it may write."
        return ""
