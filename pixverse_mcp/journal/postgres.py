"""The shared journal for replicas: PostgreSQL through psycopg 3's async connection pool.

Replicas may start together: migrations run under a transaction-level advisory lock, so one
migrates and the others then find the schema current. Writes are single upserts (INSERT ... ON
CONFLICT) or short transactions, so two pools writing at once lose nothing. After a failure the pool
is dropped and a new one is made on a later call (at most every `retry_interval` seconds).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

from pixverse_mcp.journal import Clock, utc_now
from pixverse_mcp.journal.schema import POSTGRES_MIGRATIONS, SCHEMA_VERSION, SchemaTooNewError
from pixverse_mcp.journal.sql import SqlJournal

# The pool logs every failed reconnection itself; the journal reports an outage once, in its own words.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

MIGRATION_LOCK = 0x7069787665727365  # "pixverse" in ASCII: the advisory lock all replicas migrate under
_PARAMETER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@functools.lru_cache(maxsize=64)
def _pyformat(sql: str) -> str:
    """The shared statements' `:name` parameters in psycopg's `%(name)s` form."""
    return _PARAMETER.sub(r"%(\1)s", sql)


async def _migrate(conn: psycopg.AsyncConnection[Any]) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        # Look before creating: a role without CREATE on the schema can use a journal set up earlier.
        cur = await conn.execute("SELECT to_regclass('pixverse_schema') IS NOT NULL")
        exists = await cur.fetchone()
        version = 0
        if exists and exists[0]:
            cur = await conn.execute("SELECT version FROM pixverse_schema")
            row = await cur.fetchone()
            version = int(row[0]) if row else 0
        else:
            await conn.execute("CREATE TABLE pixverse_schema (version INTEGER NOT NULL)")
            await conn.execute("INSERT INTO pixverse_schema (version) VALUES (0)")
        if version > SCHEMA_VERSION:
            raise SchemaTooNewError(version)
        for migration in POSTGRES_MIGRATIONS[version:]:
            for statement in migration:
                await conn.execute(statement)
        if version < SCHEMA_VERSION:
            await conn.execute("UPDATE pixverse_schema SET version = %s", (SCHEMA_VERSION,))


class _Run:
    """Statements on one pooled connection."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Mapping[str, Any]) -> None:
        await self._conn.execute(_pyformat(sql), params)

    async def fetch(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        cur = await self._conn.execute(_pyformat(sql), params)
        return await cur.fetchall()


def _describe(parts: Mapping[str, Any]) -> str:
    host = parts.get("host") or "localhost"
    port = f":{parts['port']}" if parts.get("port") else ""
    database = parts.get("dbname") or parts.get("user") or "postgres"
    return f"PostgreSQL database {database} on {host}{port}"


class PostgresJournal(SqlJournal):
    """The journal in a PostgreSQL database, shared by every replica that points at it."""

    kind = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = utc_now,
        retry_interval: float = 10.0,
        connect_timeout: float = 3.0,
        op_timeout: float = 10.0,
        max_connections: int = 4,
    ) -> None:
        super().__init__(clock=clock, retry_interval=retry_interval, op_timeout=op_timeout)
        try:
            parts = conninfo_to_dict(url)
        except psycopg.Error:
            raise ValueError(
                "PIXVERSE_JOURNAL_URL is not a valid PostgreSQL URL: use "
                "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
            ) from None
        # The password as given in the URL (maybe percent-encoded) and as decoded: neither is ever logged.
        userinfo = url.partition("://")[2].rpartition("@")[0]
        raw_password = userinfo.partition(":")[2]
        self._secrets = tuple(s for s in {str(parts.get("password") or ""), raw_password} if s)
        self._location = _describe(parts)
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._conninfo = make_conninfo(
            url, connect_timeout=max(1, round(connect_timeout)), application_name="pixverse-mcp"
        )
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None

    def __repr__(self) -> str:
        return f"PostgresJournal({self._location})"

    @property
    def location(self) -> str:
        return self._location

    async def _connect(self) -> None:
        async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
            await _migrate(conn)
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._max_connections,
            kwargs={"autocommit": True},
            timeout=self._connect_timeout,
            name="pixverse-journal",
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await pool.close(timeout=1.0)
            raise
        self._pool = pool

    async def _disconnect(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.close(timeout=1.0)

    def _current(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        if self._pool is None:
            raise psycopg.OperationalError("the journal is closed")
        return self._pool

    @asynccontextmanager
    async def _single(self) -> AsyncIterator[_Run]:
        async with self._current().connection() as conn:
            yield _Run(conn)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Run]:
        async with self._current().connection() as conn, conn.transaction():
            yield _Run(conn)

    def _is_conflict(self, exc: Exception) -> bool:
        return isinstance(exc, psycopg.errors.UniqueViolation)

    def _is_stale(self, exc: Exception) -> bool:
        return isinstance(exc, psycopg.OperationalError)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _hint(self, exc: Exception) -> str:
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return (
                " The database role needs CREATE on the schema at the first start (the journal makes "
                "its tables), then SELECT, INSERT, UPDATE and DELETE on them."
            )
        if isinstance(exc, psycopg.OperationalError | TimeoutError):
            return " Check that PostgreSQL is running and reachable, and PIXVERSE_JOURNAL_URL."
        return ""
