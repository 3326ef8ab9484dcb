"""What the journal keeps: the record of one job, what is known before it is sent, and the keys.

Video ids reach 2^64 and are kept as strings of decimal digits, never as a signed 64-bit integer.
Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

SourceKind = Literal["media", "file", "url", "video"]
"""media: a PixVerse media id; file: a local file (name and fingerprint); url: a public URL that
PixVerse fetched; video: an earlier PixVerse video (source_video_id)."""

FINGERPRINT_CHUNK = 1024 * 1024
STORED_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
"""How SQLite stores times: UTC, fixed width, so text order is time order."""
TEXT_LIMIT = 4096
"""Longest text kept in one field: prompts are at most 2048 characters, the rest is clipped."""


@dataclass(frozen=True, slots=True)
class JobStart:
    """What is known about a job before its generate request is sent."""

    trace_id: str
    request_key: str
    source_kind: SourceKind
    source: str
    source_fingerprint: str | None = None
    source_seconds: float | None = None
    restyle_id: str | None = None
    style_name: str | None = None
    prompt: str | None = None
    seed: int | None = None
    client_name: str | None = None
    group_id: str | None = None
    group_item: int | None = None
    """The job's item in its group (0-based), for a job of restyle_many."""
    group_part: int | None = None
    """The part of that item (0-based): an item split into parts has one job per part."""


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A job's state as PixVerse reported it (get_status, or the end of a restyle's wait)."""

    status: str
    status_code: int | None
    finished: bool
    """True for an end state (succeeded, deleted, moderation_failed, failed): sets finished_at once."""
    url: str | None = None
    local_path: str | None = None
    style_name: str | None = None
    prompt: str | None = None
    seed: int | None = None
    credits: int | None = None
    client_name: str | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job as the journal has it."""

    video_id: str | None
    """None while the generate is being sent, or when its outcome is unknown."""
    trace_id: str | None
    request_key: str | None
    status: str
    """PixVerse's status name, or sending / uncertain while the job has no video id."""
    status_code: int | None
    source_kind: str | None
    source: str | None
    source_fingerprint: str | None
    source_seconds: float | None
    restyle_id: str | None
    style_name: str | None
    prompt: str | None
    seed: int | None
    credits: int | None
    url: str | None
    local_path: str | None
    client_name: str | None
    group_id: str | None
    started_at: datetime
    """When the job was sent, or when this server first saw it (jobs it did not start)."""
    finished_at: datetime | None
    group_item: int | None = None
    group_part: int | None = None


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """A group of jobs started by one restyle_many call: its plan, kept as the tools wrote it."""

    group_id: str
    plan: str
    """JSON written and read by the group tools; the journal does not look inside."""
    client_name: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CostSample:
    """What one earlier job cost, for the estimate."""

    credits: int
    source_seconds: float


def request_key(body: Mapping[str, Any]) -> str:
    """A stable hash of a generate request's body: the same arguments give the same key."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def fingerprint(size: int, read_at: Callable[[int, int], bytes]) -> str:
    """sha256 of the size and the first and last MiB: cheap for any size, stable for one file.

    `read_at(offset, length)` reads the file; blocking: run it off the event loop.
    """
    digest = hashlib.sha256()
    digest.update(str(size).encode() + b"\n")
    digest.update(read_at(0, min(size, FINGERPRINT_CHUNK)))
    if size > FINGERPRINT_CHUNK:
        tail = max(size - FINGERPRINT_CHUNK, FINGERPRINT_CHUNK)
        digest.update(read_at(tail, size - tail))
    return f"sha256:{digest.hexdigest()}"


def file_fingerprint(path: Path) -> str:
    """The fingerprint of a file by its path (blocking)."""
    with path.open("rb") as f:

        def read_at(offset: int, length: int) -> bytes:
            f.seek(offset)
            return f.read(length)

        return fingerprint(os.fstat(f.fileno()).st_size, read_at)


def video_key(video_id: int | str) -> str | None:
    """The canonical decimal string of a video id, or None when it is not a non-negative integer."""
    text = str(video_id).strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 20):
        return None
    number = int(text)
    return str(number) if number < 10**20 else None


def clip_text(value: str | None, limit: int = TEXT_LIMIT) -> str | None:
    return value[:limit] if value is not None else None


def storable_int(value: int | None) -> int | None:
    """An integer both SQLite and PostgreSQL (BIGINT) can hold, or None: a hostile reply may send 10^30."""
    return value if value is not None and -(2**63) < value < 2**63 else None


def time_text(moment: datetime) -> str:
    """A time as SQLite stores it."""
    return moment.astimezone(UTC).strftime(STORED_TIME_FORMAT)


def stored_time(value: object) -> datetime | None:
    """A time as read back from the store (SQLite gives text, PostgreSQL a datetime); None if unreadable."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    try:
        return datetime.strptime(str(value), STORED_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None  # None, or a value edited by hand: the job stays listed all the same


UNREADABLE_TIME = datetime.fromtimestamp(0, UTC)
"""Shown for a start time that cannot be read (edited by hand), so the job is not hidden."""


def job_record(row: tuple[Any, ...]) -> JobRecord:
    """A job as read back from the store, in the order of `statements.COLUMNS`."""
    (video_id, trace_id, request_key, status, status_code, source_kind, source, fingerprint, seconds,
     restyle_id, style_name, prompt, seed, credits, url, local_path, client_name, group_id, started_at,
     finished_at, group_item, group_part) = row  # fmt: skip
    return JobRecord(
        video_id=video_id,
        trace_id=trace_id,
        request_key=request_key,
        status=status,
        status_code=status_code,
        source_kind=source_kind,
        source=source,
        source_fingerprint=fingerprint,
        source_seconds=float(seconds) if seconds is not None else None,
        restyle_id=restyle_id,
        style_name=style_name,
        prompt=prompt,
        seed=seed,
        credits=credits,
        url=url,
        local_path=local_path,
        client_name=client_name,
        group_id=group_id,
        started_at=stored_time(started_at) or UNREADABLE_TIME,
        finished_at=stored_time(finished_at),
        group_item=_number(group_item),
        group_part=_number(group_part),
    )


def _number(value: object) -> int | None:
    """A small whole number as stored, or None when it is missing or was edited into something else."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
