"""A throwaway PostgreSQL cluster for the tests: Debian's initdb and pg_ctl in a temporary folder.

The server listens only on a Unix socket in that folder, with trust authentication. initdb refuses
to run as root, so as root the cluster is made and run by the `postgres` user (Debian's package
creates it) in a folder that user owns; root connects through the socket as user postgres.
Each test gets a schema of its own (`new_url`), so one cluster serves the whole session.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import psycopg

START_SECONDS = 30


def postgres_bin() -> Path:
    """The folder of initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    if found := shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql (see .ci/run)")
    return versions[-1].parent


class PostgresCluster:
    """A cluster of its own, started once; `stop()` and `start()` again to play an outage."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="pixverse-pg-"))
        self.data = self.root / "data"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._schemas = itertools.count(1)
        # A UTF-8 locale, as real databases have: lower() then folds every letter, not only ASCII.
        initdb = ["-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"]
        self._run("initdb", *initdb, "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=START_SECONDS + 10, check=False
        )
        if done.returncode:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr}{done.stdout}\n{log}")

    def start(self) -> None:
        options = f"-k {self.root} -c listen_addresses='' -c fsync=off -c synchronous_commit=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "-t",
            str(START_SECONDS),
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, schema: str | None = None) -> str:
        """A postgresql:// URL to the socket; with `schema`, the journal's tables go there."""
        url = f"postgresql://postgres@/postgres?host={quote(str(self.root), safe='')}"
        return url + (f"&options={quote(f'-csearch_path={schema}', safe='')}" if schema else "")

    def new_url(self) -> str:
        """A URL to a new, empty schema: a journal of its own."""
        schema = f"test_{os.getpid()}_{next(self._schemas)}"
        self.execute(f"CREATE SCHEMA {schema}")
        return self.url(schema)

    def execute(self, sql: str, url: str | None = None) -> list[tuple[object, ...]]:
        with psycopg.connect(url or self.url(), autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []
