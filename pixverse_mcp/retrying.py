"""The retry policy, one per kind of call, in one place.

- reads (status, style list, balance): retried with exponential backoff and jitter on transport
  failures, 5xx, and the ErrCodes the table in `errors.py` marks `retry_reads` (500069, 500100,
  99999), bounded in attempts and total time, `Retry-After` honoured (at most MAX_RETRY_AFTER);
- generate: re-sent only with the same `Ai-trace-id`, so PixVerse answers with the job it already
  made instead of starting a second one; an API error (500044, 500069, ...) is reported, not retried;
- upload: re-sent (same trace id) only when the connection could not be made, before any byte went out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx2

from pixverse_mcp.errors import ApiError, ConnectError, TransportError

CallKind = Literal["read", "generate", "upload"]
MAX_RETRY_AFTER = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one kind of call is tried."""

    attempts: int
    timeout: float
    wait_initial: float = 0.3
    wait_max: float = 4.0
    wait_jitter: float = 0.5


DEFAULT_POLICIES: dict[CallKind, RetryPolicy] = {
    "read": RetryPolicy(attempts=4, timeout=20.0),
    "generate": RetryPolicy(attempts=3, timeout=45.0),
    "upload": RetryPolicy(attempts=3, timeout=20.0),
}


def retry_after_seconds(response: httpx2.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def should_retry(kind: CallKind) -> Callable[[Exception], bool | float]:
    """The stamina hook for one kind of call: False, True, or the seconds to wait (Retry-After)."""

    def decide(exc: Exception) -> bool | float:
        if kind == "upload":
            retry = isinstance(exc, ConnectError)
        elif kind == "generate":
            retry = isinstance(exc, TransportError)
        else:
            retry = isinstance(exc, TransportError) or (isinstance(exc, ApiError) and exc.retry_reads)
        if not retry:
            return False
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), MAX_RETRY_AFTER)
        return True

    return decide
