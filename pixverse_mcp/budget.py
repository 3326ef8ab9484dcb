"""One time budget per tool call, which every step of the call draws from.

Common MCP clients give up on a tool call after about 60 s. A call here may check the catalog,
start a job (with the retries that keep a lost reply from costing a second job), wait for it,
download it and make a preview; each step used to have its own timeout, and together they could
pass a minute. Now a call gets one `CallBudget` when it starts: the whole call ends by
`ends_at` (``PIXVERSE_MAX_WAIT_SECONDS`` after its start), and each step asks the budget how
long it may take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import anyio

ANSWER_RESERVE_SECONDS = 3.0
"""Kept back from the waiting for what comes after it: the last status check, the answer
(at most a tenth of the call, for a server set to very short calls)."""
CATALOG_CHECK_SECONDS = 5.0
"""Checking a restyle_id against the catalog; if it takes longer, PixVerse judges the id."""
START_SECONDS_MIN = 25.0
"""Starting a job may take this long even when the wait is shorter: a generate's retries need it."""
REQUEST_SECONDS_MIN = 10.0
"""No single request is started with less time than this (a shorter one would be cut by design)."""
FIRST_CHECK_SECONDS = 10.0
"""The first status check of a job this call just started gets at least this long."""
PREVIEW_SECONDS = 10.0
"""The preview picture is a nicety: it gets at most this long."""


@dataclass(frozen=True)
class CallBudget:
    """The time one tool call may take, in `anyio.current_time()` seconds.

    Attributes:
        started: When the call began.
        wait_until: When waiting for the job ends (the call's `wait_seconds`).
        ends_at: When the whole call must have answered: no step runs past it.
    """

    started: float
    wait_until: float
    ends_at: float

    @classmethod
    def start(cls, wait_seconds: float, max_call_seconds: float) -> CallBudget:
        """A budget starting now: wait at most `wait_seconds`, answer within `max_call_seconds`."""
        now = anyio.current_time()
        ends_at = now + max_call_seconds
        reserve = min(ANSWER_RESERVE_SECONDS, max_call_seconds / 10)
        wait_until = min(now + wait_seconds, ends_at - reserve)
        return cls(started=now, wait_until=max(now, wait_until), ends_at=ends_at)

    @property
    def wait_seconds(self) -> float:
        """How long this call waits for the job, all told."""
        return self.wait_until - self.started

    def elapsed(self) -> float:
        return anyio.current_time() - self.started

    def left(self) -> float:
        """Seconds until the call must have answered (never negative)."""
        return max(0.0, self.ends_at - anyio.current_time())

    def wait_left(self) -> float:
        """Seconds of waiting for the job still allowed (never negative)."""
        return max(0.0, self.wait_until - anyio.current_time())

    def step(self, at_most: float, *, at_least: float = 0.0) -> float:
        """Seconds one step may take: `at_most`, or what is left of the wait if that is less, but
        at least `at_least` as long as the call's end allows it."""
        wanted = max(min(at_most, self.wait_left()), at_least)
        return max(0.0, min(wanted, self.left()))


class Reporter(Protocol):
    """What progress needs of the MCP context (`Context.report_progress`)."""

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None: ...


class CallProgress:
    """Progress notifications of one call, on one scale: seconds of the call's budget.

    Every step (waiting for a slot, waiting for the job, downloading) reports on this scale, with
    what it is doing in the message, so a client's progress bar moves forward and never jumps.
    """

    def __init__(self, reporter: Reporter, budget: CallBudget) -> None:
        self._reporter = reporter
        self._budget = budget
        self._last = 0.0

    async def report(self, message: str) -> None:
        total = self._budget.ends_at - self._budget.started
        self._last = min(total, max(self._last, self._budget.elapsed()))
        await self._reporter.report_progress(round(self._last, 2), round(total, 2), message)
