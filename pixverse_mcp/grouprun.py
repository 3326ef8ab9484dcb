"""Running a group: its jobs started as slots allow, and every pending job polled in one loop.

Starting: one starter goes through the jobs still to start, in order, one generate at a time
(`restyle.start_restyle`: trace ids, 500044, the journal), so the jobs run side by side at PixVerse
while this side never floods it. When the plan's limit is reached (500044, or
``PIXVERSE_MAX_CONCURRENT_JOBS``), the next job waits here, queued, and is tried again as soon as
one of the group's own jobs ends (or after the usual pause, for slots held elsewhere). A job that
finds no slot within the call's wait stays queued, on record, for `restyle_many(group_id=...)`.

Polling: one loop for the whole group. Each round sends one status request per pending job, side
by side, then waits; rounds start quick and settle at the same interval as one job's polling. A
status check that fails keeps the job's last known state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import anyio

from pixverse_mcp.bookkeeping import job_start
from pixverse_mcp.budget import FIRST_CHECK_SECONDS, REQUEST_SECONDS_MIN, CallBudget, CallProgress
from pixverse_mcp.errors import ApiError, AuthError, CreditsError, NotFoundError, PixVerseError
from pixverse_mcp.groupplan import GroupPlan, PartPlan
from pixverse_mcp.jobs import FIRST_POLL_SECONDS, POLL_GROWTH
from pixverse_mcp.journal import JobRecord, JobStart
from pixverse_mcp.restyle import NoFreeSlotError, OutcomeUnknownError, start_restyle
from pixverse_mcp.runtime import Runtime
from pixverse_mcp.wire import JobState, VideoResult

log = logging.getLogger(__name__)

QUEUED = "queued"
REFUSED = "refused"
UNCERTAIN = "uncertain"
ENDED = frozenset({"succeeded", "deleted", "moderation_failed", "failed", REFUSED})


@dataclass
class PartRun:
    """One job of the group, as this call knows it."""

    item: int
    part: int
    plan: PartPlan
    video_id: int | None = None
    credits: int | None = None
    result: VideoResult | None = None
    local_path: str | None = None
    gone: str | None = None
    """PixVerse no longer knows the video (why)."""
    start: JobStart | None = None

    @property
    def state(self) -> str:
        if self.video_id is None:
            if self.plan.refused:
                return REFUSED
            return UNCERTAIN if self.plan.uncertain else QUEUED
        if self.gone:
            return JobState.DELETED.value
        return self.result.state.value if self.result is not None else JobState.GENERATING.value

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def to_start(self) -> bool:
        return self.state in (QUEUED, UNCERTAIN)


def parts_of(plan: GroupPlan, jobs: list[JobRecord]) -> list[PartRun]:
    """The group's jobs: the plan's parts, with what the journal knows of each (its video id, or an
    uncertain generate's trace id)."""
    found: dict[tuple[int, int], JobRecord] = {}
    for job in jobs:
        if job.group_item is None or job.group_part is None:
            continue
        key = (job.group_item, job.group_part)
        if key not in found or (job.video_id and not found[key].video_id):
            found[key] = job
    parts = []
    for item_index, item in enumerate(plan.items):
        for part_index, part in enumerate(item.parts):
            run = PartRun(item_index, part_index, part)
            known = found.get((item_index, part_index))
            if known is not None and known.video_id and known.video_id.isdigit():
                run.video_id, run.credits, run.local_path = (
                    int(known.video_id),
                    known.credits,
                    known.local_path,
                )
            elif known is not None and known.trace_id and known.status in (UNCERTAIN, "sending"):
                part.uncertain, part.trace_id = True, known.trace_id
            parts.append(run)
    return parts


class GroupRun:
    """One call's work on a group: start what it should, poll what runs, within the call's budget."""

    def __init__(
        self,
        runtime: Runtime,
        plan: GroupPlan,
        parts: list[PartRun],
        budget: CallBudget,
        progress: CallProgress,
    ) -> None:
        self.runtime = runtime
        self.plan = plan
        self.parts = parts
        self.budget = budget
        self.progress = progress
        self.queue_note: str | None = None
        self._freed = anyio.Event()
        self._starter_done = anyio.Event()

    async def run(self, todo: list[PartRun], *, client_name: str | None) -> None:
        """Start `todo` (in order) and follow every started job until all end or the wait is over."""
        for part in todo:
            start = await job_start(
                self.runtime,
                part.plan.body,
                part.plan.trace_id,
                client_name=client_name,
                group_id=self.plan.group_id,
            )
            part.start = _in_group(start, part)
        async with anyio.create_task_group() as tasks:
            if todo:
                tasks.start_soon(self._start_all, todo)
            else:
                self._starter_done.set()
            await self._poll()

    def items_done(self) -> int:
        return sum(
            1 for index in range(len(self.plan.items)) if all(p.ended for p in self.parts if p.item == index)
        )

    # -- starting ----------------------------------------------------------------------------------

    async def _start_all(self, todo: list[PartRun]) -> None:
        try:
            for position, part in enumerate(todo):
                if self.budget.left() < REQUEST_SECONDS_MIN:
                    self.queue_note = "The call's time ran out before every job was started."
                    return
                try:
                    await self._start(part)
                except NoFreeSlotError:
                    self.queue_note = (
                        "No generation slot came free within this call's wait (the plan, or "
                        "PIXVERSE_MAX_CONCURRENT_JOBS, limits how many jobs run at once): the jobs left are "
                        "queued here; no job was made and nothing was spent for them."
                    )
                    return
                except (AuthError, CreditsError) as exc:
                    # Every later job would be refused the same way: none is sent.
                    for rest in todo[position:]:
                        rest.plan.refused = str(exc)
                    return
        finally:
            self._starter_done.set()

    async def _start(self, part: PartRun) -> None:
        assert part.start is not None
        try:
            started = await start_restyle(
                self.runtime,
                part.plan.body,
                self.budget,
                self.progress,
                part.start,
                slot_wait=self._slot_wait,
            )
        except OutcomeUnknownError as exc:
            part.plan.uncertain, part.plan.trace_id = True, exc.trace_id
            return
        except (AuthError, CreditsError):
            raise
        except ApiError as exc:  # moderation, a bad id: this job was refused, the others go on
            part.plan.refused = str(exc)
            return
        except PixVerseError as exc:
            part.plan.refused = str(exc)
            return
        part.video_id, part.credits = started.job.video_id, started.job.credits
        part.plan.trace_id, part.plan.uncertain, part.plan.refused = started.trace_id, False, None

    async def _slot_wait(self, seconds: float) -> None:
        """Wait for a free slot: until one of the group's jobs ends, at most `seconds`."""
        freed = self._freed
        with anyio.move_on_after(seconds):
            await freed.wait()

    # -- polling -----------------------------------------------------------------------------------

    def _pending(self) -> list[PartRun]:
        return [p for p in self.parts if p.video_id is not None and not p.ended]

    async def _poll(self) -> None:
        interval = FIRST_POLL_SECONDS
        while True:
            await self._round()
            starter_done = self._starter_done.is_set()
            if starter_done and not self._pending():
                return
            if self.budget.wait_left() <= 0:
                # A generate in flight is never cut off: wait for it, then look at what it started.
                await self._starter_done.wait()
                if any(p.result is None for p in self._pending()):
                    await self._round()
                return
            await self.progress.report(
                f"{self.items_done()} of {len(self.plan.items)} done, {self.budget.elapsed():.0f} s elapsed"
            )
            with anyio.move_on_after(min(interval, self.budget.wait_left())):
                # The starter ending (its jobs just started, or none could) ends the pause early.
                await (self._starter_done.wait() if not starter_done else anyio.sleep_forever())
            interval = min(interval * POLL_GROWTH, self.runtime.settings.poll_max_interval)

    async def _round(self) -> None:
        pending = self._pending()
        if pending:
            async with anyio.create_task_group() as tasks:
                for part in pending:
                    tasks.start_soon(self._check, part)

    async def _check(self, part: PartRun) -> None:
        assert part.video_id is not None
        if part.result is None:
            seconds = self.budget.step(float("inf"), at_least=FIRST_CHECK_SECONDS)
        else:
            seconds = self.budget.wait_left()
        with anyio.move_on_after(seconds):
            try:
                part.result = await self.runtime.api.video_result(part.video_id)
            except NotFoundError as exc:
                part.gone = str(exc)
            except PixVerseError as exc:
                log.info(
                    "status check of %s failed, keeping the last status: %s",
                    part.video_id,
                    type(exc).__name__,
                )
                return
            if part.ended:
                self.runtime.job_slots.finished(part.video_id)
                freed, self._freed = self._freed, anyio.Event()
                freed.set()


def _in_group(start: JobStart, part: PartRun) -> JobStart:
    return replace(start, group_item=part.item, group_part=part.part)
