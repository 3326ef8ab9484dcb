"""One restyle's life: starting the job without ever paying twice, then following it to its answer.

Starting: a free slot is awaited on this side (``PIXVERSE_MAX_CONCURRENT_JOBS``) and at PixVerse
(500044) within the call's wait; one trace id serves every attempt of one request, so a retry is a
replay that PixVerse answers with the job it made. The moment PixVerse returns a `video_id`, it is
announced in a progress message and logged, so a client that cancels still knows the job it paid for.

Following: the job is polled within the budget; a job that this call started is never lost: if
checking on it fails, the answer still carries its id.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import anyio
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult

from pixverse_mcp import jobs
from pixverse_mcp.bookkeeping import record, status_update
from pixverse_mcp.budget import (
    FIRST_CHECK_SECONDS,
    REQUEST_SECONDS_MIN,
    START_SECONDS_MIN,
    CallBudget,
    CallProgress,
)
from pixverse_mcp.client import new_trace_id
from pixverse_mcp.delivery import answer, finish
from pixverse_mcp.errors import (
    ApiError,
    ConcurrencyLimitError,
    ConnectError,
    NotFoundError,
    PixVerseError,
    TransportError,
)
from pixverse_mcp.journal import JobStart
from pixverse_mcp.results import VideoStatus
from pixverse_mcp.runtime import Runtime
from pixverse_mcp.wire import JobState, StartedJob

log = logging.getLogger(__name__)

SLOT_WAIT_FIRST = 2.0
SLOT_WAIT_MIN = 1.0
SLOT_WAIT_MAX = 8.0
SLOT_CHECK_SECONDS = 5.0


@dataclass(frozen=True)
class Started:
    """A job PixVerse confirmed, and the trace id of the request that made it."""

    job: StartedJob
    trace_id: str


class NoFreeSlotError(ToolError):
    """No generation slot came free within the wait: no job was started, no credits were spent."""


class OutcomeUnknownError(ToolError):
    """A generate whose outcome is unknown: PixVerse may have made the job under `trace_id`."""

    def __init__(self, message: str, trace_id: str) -> None:
        super().__init__(message)
        self.trace_id = trace_id


def recovery_error(reason: str, trace_id: str) -> OutcomeUnknownError:
    """The answer to a generate whose outcome is unknown: how to learn it without starting another job."""
    return OutcomeUnknownError(
        f"{reason} PixVerse may have started the job anyway. Do not start a new one: call restyle_video "
        f"again with the same arguments and trace_id {trace_id!r}. PixVerse then answers with the job it "
        "made for that trace id instead of starting another (if it made none, it starts it then).",
        trace_id,
    )


async def start_restyle(
    runtime: Runtime,
    body: dict[str, Any],
    budget: CallBudget,
    progress: CallProgress,
    start: JobStart,
    *,
    slot_wait: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> Started:
    """Start the job, waiting within the budget's wait for a free slot on this side and at PixVerse.

    Starting may take START_SECONDS_MIN even when the wait is shorter (a generate's retries need
    the time), never past the call's end. One trace id (`start.trace_id`) serves every attempt
    unless PixVerse refused cleanly (500044): then no job exists and the next attempt needs a fresh
    trace id, or PixVerse would replay the refusal.

    The journal has the trace id before each request goes out; then the job, or "uncertain" when
    the outcome is unknown (also when the call is cancelled meanwhile), or nothing when PixVerse
    refused and so made no job.

    `slot_wait(seconds)` is the pause before trying again for a slot; a group ends it early when
    one of its own jobs ends.

    Raises:
        NoFreeSlotError: no slot came free within the wait; no job was started.
        OutcomeUnknownError: the job may exist under its trace id (a lost reply, no time left).
        ApiError: PixVerse refused the generate (moderation, credits, a bad id): no job was made.
    """
    client = runtime.api
    journal = runtime.journal
    slots = runtime.job_slots
    pause = SLOT_WAIT_FIRST
    start_until = max(budget.wait_until, budget.started + START_SECONDS_MIN)
    while True:
        trace = start.trace_id
        refusal: str | None = None
        retry_after: float | None = None
        if await slots.reserve(client, seconds=budget.step(SLOT_CHECK_SECONDS, at_least=SLOT_CHECK_SECONDS)):
            job: StartedJob | None = None
            settled = False
            await record(journal.record_sending(start))
            try:
                # The request may take longer than the wait: its retries are what keeps a lost
                # reply from costing a second job. It never runs past the call's end. (Not
                # budget.step: that would cut it back to the wait.)
                starting = max(start_until - anyio.current_time(), REQUEST_SECONDS_MIN)
                allowed = min(starting, budget.left())
                with anyio.move_on_after(allowed) as scope:
                    job, _ = await client.restyle(body, trace_id=trace)
                if scope.cancelled_caught or job is None:
                    raise recovery_error("PixVerse did not confirm the job in time.", trace)
                await record(journal.record_started(start, job.video_id, job.credits))
                settled = True
                log.info("restyle started: video_id=%s trace_id=%s", job.video_id, trace)
                await progress.report(f"job started: video_id {job.video_id}")
                return Started(job, trace)
            except ConnectError as exc:
                # No attempt reached PixVerse (the client reports one that did as uncertain): no job.
                await record(journal.discard_attempt(trace))
                settled = True
                raise ToolError(f"{exc} No job was started and no credits were spent.") from None
            except TransportError as exc:
                raise recovery_error(str(exc), trace) from None
            except ConcurrencyLimitError as exc:
                refusal, retry_after = str(exc), exc.retry_after
                await record(journal.discard_attempt(trace))
                settled = True
                start = replace(start, trace_id=new_trace_id())
            except ApiError:
                # PixVerse answered with a refusal (moderation, credits, a bad id): it made no job.
                await record(journal.discard_attempt(trace))
                settled = True
                raise
            finally:
                if not settled:
                    # Unknown outcome: lost reply, time out, or the call cancelled while in flight.
                    await record(journal.record_uncertain(start))
                slots.settle(job.video_id if job is not None else None)
        else:
            refusal = f"This server already runs {slots.limit} jobs, its PIXVERSE_MAX_CONCURRENT_JOBS."
        if retry_after is not None:
            pause = retry_after
        pause = min(max(pause, SLOT_WAIT_MIN), SLOT_WAIT_MAX)
        # Wait for a slot only within the wait, and only if the next request still fits in the call.
        now = anyio.current_time()
        if now + pause > budget.wait_until or now + pause + REQUEST_SECONDS_MIN > budget.ends_at:
            raise NoFreeSlotError(
                f"{refusal} Waited {budget.elapsed():.0f} s for a free generation slot; none came free. "
                "No job was started and no credits were spent. Try again later, or check running jobs "
                "with get_status."
            )
        await progress.report(f"waiting for a free generation slot ({budget.elapsed():.0f} s)")
        await slot_wait(pause)
        pause *= 1.5


async def follow(
    runtime: Runtime,
    video_id: int,
    budget: CallBudget,
    progress: CallProgress,
    download: bool | None,
    *,
    result_type: type[VideoStatus],
    extra: dict[str, Any],
    started_here: bool,
) -> CallToolResult:
    """Wait for a job within the budget, then answer with its status, a saved copy and a preview.

    Running out of wait while the job generates answers `generating` with `check_again_in_seconds`.
    A job this call started (`started_here`) is never lost: if checking on it fails, the answer
    still carries its id; for any other job the failure is the answer.
    """
    client = runtime.api
    settings = runtime.settings
    # Even with no wait left, the first check gets a few seconds: a job that is already done
    # should say so. It never runs past the call's end.
    first_check = budget.step(float("inf"), at_least=FIRST_CHECK_SECONDS)
    try:
        result = await jobs.wait_for_job(
            client,
            video_id,
            budget,
            first_check_seconds=first_check,
            max_interval=settings.poll_max_interval,
            on_progress=progress.report,
        )
        if result is None:
            reason = f"PixVerse did not answer the status check within {first_check:.0f} s."
            if not started_here:
                raise ToolError(f"{reason} Try get_status again in a minute.")
            return _unknown(result_type, video_id, reason, budget, extra)
        if result.state.ended:
            runtime.job_slots.finished(video_id)
        status = result_type.model_validate(
            {
                **jobs.to_status(
                    result, waited=budget.elapsed(), wait_seconds=settings.default_wait_seconds
                ).model_dump(),
                **extra,
            }
        )
        if result.state is JobState.SUCCEEDED:
            want_download = settings.auto_download if download is None else download
            answered = await finish(runtime, result, status, want_download, budget, progress)
        else:
            answered = answer(status)
        await record(runtime.journal.update_status(video_id, status_update(status)))
        return answered
    except NotFoundError:
        runtime.job_slots.finished(video_id)
        raise
    except Exception as exc:
        if not started_here:
            raise
        # The job exists; losing its id would make the user pay again to find out how it went.
        if not isinstance(exc, PixVerseError | ToolError):
            log.exception("following job %s failed", video_id)
        return _unknown(result_type, video_id, f"Checking on it failed: {exc}", budget, extra)


def _unknown(
    result_type: type[VideoStatus], video_id: int, reason: str, budget: CallBudget, extra: dict[str, Any]
) -> CallToolResult:
    return answer(
        result_type(
            video_id=str(video_id),
            status=JobState.UNKNOWN.value,
            status_code=None,
            message=f"The job started. {reason} Call get_status with video_id {video_id} in a minute.",
            waited_seconds=round(budget.elapsed(), 1),
            **extra,
        )
    )
