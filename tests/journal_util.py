"""Shared by the journal tests: a clock the test moves, sample jobs, and the warnings logged."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta

import pytest

from pixverse_mcp.journal import JobStart, Journal, StatusUpdate

MAX_ID = 2**64 - 1
VID = 9_007_199_254_740_993  # 2^53 + 1: a double cannot hold it
DONE = StatusUpdate(status="succeeded", status_code=1, finished=True, url="https://cdn.example/v.mp4")
GENERATING = StatusUpdate(status="generating", status_code=5, finished=False)


class Clock:
    """The journal's clock, moved by the test instead of slept through."""

    def __init__(self) -> None:
        self.now = datetime(2026, 5, 20, 12, 0, 0, 123456, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def job_start(n: int, **changes: object) -> JobStart:
    base = JobStart(
        trace_id=f"trace-{n}",
        request_key=f"key-{n}",
        source_kind="file",
        source=f"clip{n}.mp4",
        source_fingerprint="sha256:" + "ab" * 32,
        source_seconds=4.0,
        restyle_id="1003",
        style_name="Pencil Sketch",
        seed=7,
        client_name="claude-ai",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


async def start_job(
    journal: Journal, n: int, video_id: int, credits: int | None = 30, **changes: object
) -> JobStart:
    start = job_start(n, **changes)
    await journal.record_sending(start)
    await journal.record_started(start, video_id, credits)
    return start


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
