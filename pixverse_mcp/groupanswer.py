"""What a group's answer says: each item's status, result and next step, and the group's summary.

An item is one job, or the parts of one split clip. Its status is the job's, or for parts: done
when every part succeeded and they were joined, the first failure when a part failed, else the
state of the parts still on their way. The group is done when every item has ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pixverse_mcp import jobs
from pixverse_mcp.groupplan import GroupPlan, ItemPlan
from pixverse_mcp.grouprun import QUEUED, REFUSED, UNCERTAIN, PartRun
from pixverse_mcp.results import GroupItem, GroupPart, GroupResult
from pixverse_mcp.wire import JobState

FAILURES = ("moderation_failed", "failed", "deleted", REFUSED)
_CUTS = {"scene change": "scene changes", "keyframe": "keyframes", "time": "even times"}


@dataclass
class ItemView:
    """One item and its jobs, as this call left them."""

    index: int
    plan: ItemPlan
    parts: list[PartRun]
    local_path: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def split(self) -> bool:
        return self.plan.split_path is not None

    @property
    def ended(self) -> bool:
        return all(p.ended for p in self.parts)

    @property
    def parts_succeeded(self) -> bool:
        return all(p.state == JobState.SUCCEEDED.value for p in self.parts)

    @property
    def status(self) -> str:
        states = [p.state for p in self.parts]
        failed = next((s for s in states if s in FAILURES), None)
        if failed is not None and self.ended:
            return failed
        if self.parts_succeeded:
            return JobState.SUCCEEDED.value if not self.split or self.joined else JobState.GENERATING.value
        if any(s in (JobState.GENERATING.value, JobState.UNKNOWN.value) for s in states):
            return JobState.GENERATING.value
        if UNCERTAIN in states:
            return UNCERTAIN
        return QUEUED if QUEUED in states else (failed or JobState.UNKNOWN.value)

    @property
    def joined(self) -> bool:
        return self.plan.joined_path is not None and Path(self.plan.joined_path).is_file()

    @property
    def credits(self) -> int | None:
        known = [p.credits for p in self.parts if p.credits is not None]
        return sum(known) if known else None

    def result_path(self) -> str | None:
        """The file this item's result is on this machine: the download, or the joined video."""
        if self.split:
            return self.plan.joined_path if self.joined else None
        return self.local_path


def views_of(plan: GroupPlan, parts: list[PartRun]) -> list[ItemView]:
    views = []
    for index, item in enumerate(plan.items):
        own = [p for p in parts if p.item == index]
        local = next((p.local_path for p in own if p.local_path and Path(p.local_path).is_file()), None)
        views.append(ItemView(index, item, own, local_path=local))
    return views


def _item_message(view: ItemView, group_id: str, wait: float) -> str:
    status = view.status
    first = view.parts[0]
    if status == QUEUED:
        return (
            "Queued here for a free generation slot; nothing was spent on it yet. When the group's running "
            f"jobs end, call restyle_many with group_id {group_id} to start it."
        )
    if status == UNCERTAIN:
        return (
            "The outcome of its generate is unknown. restyle_many with group_id "
            f"{group_id} sends it again with the same trace_id, so PixVerse answers with the job it made "
            "(it never starts a second one)."
        )
    if status == REFUSED:
        reason = next((p.plan.refused for p in view.parts if p.plan.refused), "")
        return f"PixVerse refused this restyle; no job was made and nothing was spent: {reason}"
    if view.split:
        return _split_message(view, group_id)
    if first.gone:
        return first.gone
    code = first.result.status if first.result is not None else 5
    return jobs.status_message(code, first.video_id or 0, wait_seconds=wait)


def _split_message(view: ItemView, group_id: str) -> str:
    count = len(view.parts)
    failed = next(((n, p) for n, p in enumerate(view.parts, 1) if p.state in FAILURES), None)
    if failed is not None:
        number, part = failed
        return (
            f"Part {number} of {count} ended {part.state}, so the parts cannot be joined into one video; "
            "the other parts' urls are in parts. Restyle the clip again (or that part alone)."
        )
    if view.status == JobState.SUCCEEDED.value:
        kinds = sorted({_CUTS.get(p.plan.cut or "", "even times") for p in view.parts[1:]})
        return (
            f"Restyled in {count} parts and joined into one video with the original sound: local_path. "
            f"The parts were cut at {' and '.join(kinds)} (see parts); at each seam the look may change "
            "a little."
        )
    if view.parts_succeeded:
        return (
            f"All {count} parts are done; joining them did not finish in this call. Call get_status with "
            f"group_id {group_id} and wait_seconds=0 to join them."
        )
    done = sum(1 for p in view.parts if p.ended)
    return f"{done} of {count} parts done; the parts are joined into one video when all are."


def group_result(
    plan: GroupPlan,
    views: list[ItemView],
    *,
    wait: float,
    waited: float,
    sheet_path: str | None,
    sheet_note: str | None,
    note: str | None,
    estimated: int | None = None,
    balance_after: int | None = None,
) -> GroupResult:
    """The group's answer: every item, and one line on what to do next."""
    items = [_item(view, plan.group_id, wait) for view in views]
    done = sum(1 for view in views if view.ended and view.status != JobState.GENERATING.value)
    total = len(views)
    statuses = [view.status for view in views]
    if done == total:
        status = "done"
        good = statuses.count(JobState.SUCCEEDED.value)
        tail = f"; {total - good} did not (see each item's message)" if good < total else ""
        sheet = " The contact sheet (the picture) compares them." if sheet_path or sheet_note is None else ""
        message = (
            f"All {total} items ended: {good} succeeded{tail}.{sheet} Share each item's url or local_path."
        )
    else:
        waiting = statuses.count(QUEUED) + statuses.count(UNCERTAIN)
        status = "generating" if JobState.GENERATING.value in statuses or not waiting else "queued"
        message = f"{done} of {total} items done."
        if JobState.GENERATING.value in statuses:
            message += (
                f" The rest is still generating: call get_status with group_id {plan.group_id} (it waits up "
                f"to about {wait:g} s) until status is done. Do not restyle them again: that would pay twice."
            )
        if waiting:
            message += (
                f" {waiting} item{'s are' if waiting > 1 else ' is'} still to start (queued for a free "
                f"generation slot, or of unknown outcome): call restyle_many with group_id {plan.group_id} "
                "when the running jobs have ended; they were counted in the estimate."
            )
    credits = [c for c in (view.credits for view in views) if c is not None]
    sources = {item.source for item in plan.items}
    return GroupResult(
        group_id=plan.group_id,
        status=status,
        message=message,
        title="Compare" if len(sources) == 1 else "Batch",
        done=done,
        total=total,
        items=items,
        credits=sum(credits) if credits else None,
        estimated_credits=estimated,
        balance_after=balance_after,
        contact_sheet_path=sheet_path,
        contact_sheet_note=sheet_note,
        waited_seconds=round(waited, 1),
        check_again_in_seconds=None if status == "done" else jobs.CHECK_AGAIN_SECONDS,
        note=note,
    )


def _item(view: ItemView, group_id: str, wait: float) -> GroupItem:
    plan = view.plan
    first = view.parts[0]
    single = not view.split
    result = first.result if single else None
    url = result.url if result is not None and result.state is JobState.SUCCEEDED and result.url else None
    parts = None
    if view.split:
        parts = [
            GroupPart(
                start_seconds=round(p.plan.start_seconds or 0.0, 3),
                end_seconds=round(p.plan.end_seconds or 0.0, 3),
                cut=p.plan.cut,
                status=p.state,
                video_id=str(p.video_id) if p.video_id is not None else None,
                url=p.result.url if p.result is not None and p.state == "succeeded" else None,
                credits=p.credits,
            )
            for p in view.parts
        ]
    return GroupItem(
        label=plan.label,
        status=view.status,
        message=" ".join([_item_message(view, group_id, wait), *view.notes]),
        video_id=str(first.video_id) if single and first.video_id is not None else None,
        url=url,
        local_path=view.result_path(),
        credits=view.credits,
        style=plan.style,
        restyle_id=plan.restyle_id,
        restyle_prompt=plan.restyle_prompt,
        source=plan.source,
        seed=plan.seed,
        trace_id=first.plan.trace_id if single and first.state == UNCERTAIN else None,
        parts=parts,
    )


def sheet_label(view: ItemView) -> str:
    """The row's label on the contact sheet: number, label, and credits or what went wrong."""
    credits = view.credits
    status = view.status
    if status == JobState.SUCCEEDED.value:
        tail = f" - {credits} credits" if credits is not None else ""
    else:
        tail = f" - {status.replace('_', ' ')}"
    return f"{view.index + 1}. {view.plan.label}{tail}"
