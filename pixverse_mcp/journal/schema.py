"""The journal's tables, as numbered migrations for each backend.

Migration N brings the schema from version N-1 to N. SQLite keeps the version in `PRAGMA
user_version`, PostgreSQL in the one-row table `pixverse_schema`. Append new migrations, never edit
old ones: a journal written by an older server is brought forward when it is opened; one written by
a newer server is left alone (see SchemaTooNewError).
"""

from __future__ import annotations

SQLITE_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE pixverse_jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            video_id TEXT UNIQUE,
            trace_id TEXT UNIQUE,
            request_key TEXT,
            status TEXT NOT NULL,
            status_code INTEGER,
            source_kind TEXT,
            source TEXT,
            source_fingerprint TEXT,
            source_seconds REAL,
            restyle_id TEXT,
            style_name TEXT,
            prompt TEXT,
            seed INTEGER,
            credits INTEGER,
            url TEXT,
            local_path TEXT,
            client_name TEXT,
            group_id TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            updated_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX pixverse_jobs_started ON pixverse_jobs (started_at)",
        "CREATE INDEX pixverse_jobs_request ON pixverse_jobs (request_key, started_at)",
    ),
    # 2: groups of jobs (restyle_many): each job's item and part, and the group's plan.
    (
        "ALTER TABLE pixverse_jobs ADD COLUMN group_item INTEGER",
        "ALTER TABLE pixverse_jobs ADD COLUMN group_part INTEGER",
        "CREATE INDEX pixverse_jobs_group ON pixverse_jobs (group_id)",
        """
        CREATE TABLE pixverse_groups (
            group_id TEXT PRIMARY KEY,
            plan TEXT NOT NULL,
            client_name TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
    ),
)

POSTGRES_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE pixverse_jobs (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            video_id TEXT UNIQUE,
            trace_id TEXT UNIQUE,
            request_key TEXT,
            status TEXT NOT NULL,
            status_code BIGINT,
            source_kind TEXT,
            source TEXT,
            source_fingerprint TEXT,
            source_seconds DOUBLE PRECISION,
            restyle_id TEXT,
            style_name TEXT,
            prompt TEXT,
            seed BIGINT,
            credits BIGINT,
            url TEXT,
            local_path TEXT,
            client_name TEXT,
            group_id TEXT,
            started_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ,
            updated_at TIMESTAMPTZ NOT NULL
        )
        """,
        "CREATE INDEX pixverse_jobs_started ON pixverse_jobs (started_at)",
        "CREATE INDEX pixverse_jobs_request ON pixverse_jobs (request_key, started_at)",
    ),
    (
        "ALTER TABLE pixverse_jobs ADD COLUMN group_item INTEGER",
        "ALTER TABLE pixverse_jobs ADD COLUMN group_part INTEGER",
        "CREATE INDEX pixverse_jobs_group ON pixverse_jobs (group_id)",
        """
        CREATE TABLE pixverse_groups (
            group_id TEXT PRIMARY KEY,
            plan TEXT NOT NULL,
            client_name TEXT,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        )
        """,
    ),
)

SCHEMA_VERSION = len(SQLITE_MIGRATIONS)
assert len(POSTGRES_MIGRATIONS) == SCHEMA_VERSION


class SchemaTooNewError(RuntimeError):
    """The journal was written by a newer version of this server."""

    def __init__(self, found: int) -> None:
        super().__init__(
            f"its schema is version {found}, newer than this server's ({SCHEMA_VERSION}); "
            "upgrade pixverse-restyle-mcp, or point PIXVERSE_JOURNAL_URL at another journal"
        )
