"""Compare looks and restyle in batches: a group's life from one restyle_many call to its contact sheet.

    restyle_many(items)            check every item -> spend check for the whole group -> upload each
                                   source once -> the plan on record -> start and follow -> finish
    restyle_many(group_id)         start the group's jobs still queued (or of unknown outcome), follow
    get_status(group_id)           follow the group's jobs, join split clips, the contact sheet

The pieces: `groupplan` (items and the plan kept in the journal), `groupprep` (checks and
uploads), `grouprun` (starting and polling), `groupanswer` and `groupfinish` (the answer, saved
copies, joins, the sheet). Nothing is sent before every item passed its checks and the spending
rules passed for the whole group; every job is on record before it is sent.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import ValidationError

from pixverse_mcp import spend
from pixverse_mcp.bookkeeping import record
from pixverse_mcp.budget import CallBudget, CallProgress, Reporter
from pixverse_mcp.delivery import structured
from pixverse_mcp.errors import InputError
from pixverse_mcp.groupfinish import finish_group
from pixverse_mcp.groupplan import (
    MAX_ITEMS,
    MAX_JOBS,
    GroupPlan,
    checked_body,
    group_id_argument,
    labels,
    parse_items,
)
from pixverse_mcp.groupprep import Prepared, build_plan, check_items, estimate_starts, upload_items
from pixverse_mcp.grouprun import GroupRun, PartRun, parts_of
from pixverse_mcp.journal import JobStart
from pixverse_mcp.results import GroupItem, GroupResult
from pixverse_mcp.runtime import Runtime
from pixverse_mcp.spendguard import SpendCheck, balance_total, check_spend


class _Shifted:
    """Progress after a first phase measured in seconds: the same scale, moved on by that phase."""

    def __init__(self, reporter: Reporter, shift: float) -> None:
        self._reporter = reporter
        self._shift = shift

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        shifted_total = total + self._shift if total is not None else None
        await self._reporter.report_progress(round(progress + self._shift, 2), shifted_total, message)


async def restyle_new(
    runtime: Runtime,
    ctx: Context,
    items: object,
    *,
    wait: float,
    download: bool | None,
    dry_run: bool,
    roots: tuple[Path, ...],
    client_name: str | None,
) -> CallToolResult:
    """A new group: checked, priced, uploaded, on record, started and followed within the call."""
    requests, problems = parse_items(items)
    runtime.api.require_key()
    total = len(requests) + len(problems)
    prepared = await check_items(runtime, requests, roots, problems=problems, total=total)
    check = await check_spend(runtime, ctx, estimate_starts(prepared), dry_run=dry_run)
    if dry_run:
        return await _dry_run(runtime, prepared, check)
    began = anyio.current_time()

    async def report(message: str) -> None:
        await ctx.report_progress(round(anyio.current_time() - began, 2), None, message)

    notes = [check.note, *await upload_items(runtime, prepared, roots, report)]
    plan = build_plan(uuid.uuid4().hex[:16], prepared)
    # On record before the first job: get_status(group_id) and restyle_many(group_id) work from here on,
    # also after a cancelled call.
    await record(
        runtime.journal.record_group(plan.group_id, plan.model_dump_json(exclude_none=True), client_name)
    )
    budget = CallBudget.start(wait, runtime.settings.max_wait_seconds)
    progress = CallProgress(_Shifted(ctx, anyio.current_time() - began), budget)
    parts = [PartRun(i, k, part) for i, item in enumerate(plan.items) for k, part in enumerate(item.parts)]
    run = GroupRun(runtime, plan, parts, budget, progress)
    await run.run(parts, client_name=client_name)
    return await finish_group(
        run,
        download=download,
        roots=roots,
        note=" ".join(filter(None, notes)) or None,
        estimated=check.estimate.credits,
        balance_after=await balance_total(runtime),
    )


async def restyle_continue(
    runtime: Runtime,
    ctx: Context,
    group_id: object,
    *,
    wait: float,
    download: bool | None,
    dry_run: bool,
    roots: tuple[Path, ...],
    client_name: str | None,
) -> CallToolResult:
    """Start a group's jobs that are still queued (or of unknown outcome), then follow the group."""
    runtime.api.require_key()
    plan, parts = await load_group(runtime, group_id)
    todo = [part for part in parts if part.to_start]
    starts = [
        JobStart(trace_id="", request_key="", source_kind="file", source="", source_seconds=p.plan.seconds)
        for p in todo
    ]
    check = await check_spend(runtime, ctx, starts, dry_run=dry_run) if todo else None
    if dry_run:
        cost = check.estimate.describe() if check is not None else "nothing"
        answer = GroupResult(
            group_id=plan.group_id,
            status="dry_run",
            message=f"Nothing was started. Group {plan.group_id} has {len(todo)} job(s) left to start; they "
            f"would cost {cost}. Call restyle_many with the group_id and without dry_run to start them.",
            done=0,
            total=len(plan.items),
            items=[],
            estimated_credits=check.estimate.credits if check is not None else None,
            note=check.note if check is not None else None,
        )
        return structured(answer)
    budget = CallBudget.start(wait, runtime.settings.max_wait_seconds)
    run = GroupRun(runtime, plan, parts, budget, CallProgress(ctx, budget))
    await run.run(todo, client_name=client_name)
    note = check.note if check is not None else "No job was left to start; the group was followed."
    return await finish_group(
        run,
        download=download,
        roots=roots,
        note=note,
        estimated=check.estimate.credits if check is not None else None,
        balance_after=await balance_total(runtime) if todo else None,
    )


async def follow_group(
    runtime: Runtime,
    ctx: Context,
    group_id: object,
    *,
    budget: CallBudget,
    download: bool | None,
    roots: tuple[Path, ...],
) -> CallToolResult:
    """get_status with a group_id: follow every started job within the budget, then finish (free)."""
    plan, parts = await load_group(runtime, group_id)
    run = GroupRun(runtime, plan, parts, budget, CallProgress(ctx, budget))
    await run.run([], client_name=None)
    return await finish_group(run, download=download, roots=roots)


async def load_group(runtime: Runtime, group_id: object) -> tuple[GroupPlan, list[PartRun]]:
    """A group from the journal, with what is known of each of its jobs.

    Raises:
        InputError: a malformed id, an unknown group, the journal off, or a record that cannot be read.
    """
    checked = group_id_argument(group_id)
    journal = runtime.journal
    found = await journal.get_group(checked)
    if found is None:
        if not journal.enabled:
            raise InputError(
                "Groups are kept in the job journal, which is off (PIXVERSE_JOURNAL=off): follow each item "
                "with get_status and its video_id from the restyle_many answer.",
                argument="group_id",
            )
        raise InputError(
            f"There is no group {checked} in the job journal ({journal.location}). Check the id; list_jobs "
            "with the id as query lists the jobs it started.",
            argument="group_id",
        )
    try:
        plan = GroupPlan.model_validate_json(found.plan)
    except ValidationError:
        plan = None
    parts_count = sum(len(item.parts) for item in plan.items) if plan is not None else 0
    if (
        plan is None
        or plan.group_id != checked
        or not 0 < len(plan.items) <= MAX_ITEMS
        or parts_count > MAX_JOBS
    ):
        raise InputError(
            f"The journal's record of group {checked} cannot be read; list_jobs with the id as query lists "
            "its jobs, which get_status follows one by one.",
            argument="group_id",
        )
    try:
        for item in plan.items:
            for part in item.parts:
                part.body = checked_body(part.body)
    except InputError as exc:
        raise InputError(
            f"The journal's record of group {checked} holds a request that breaks the rules ({exc.message}); "
            "it was not sent. list_jobs with the id as query lists the group's jobs.",
            argument="group_id",
        ) from None
    _only_own_files(plan, runtime.settings.output_dir)
    return plan, parts_of(plan, await journal.jobs_in_group(checked))


def _only_own_files(plan: GroupPlan, output_dir: Path) -> None:
    """Forget paths in the record that are not this server's files in the output folder: a record
    edited by hand must not make the server read or hand over any other file."""
    folder = output_dir.expanduser().resolve()

    def own(path: str | None) -> str | None:
        if path is None:
            return None
        try:
            resolved = Path(path).resolve()
        except (OSError, RuntimeError, ValueError):
            return None
        inside = resolved.parent == folder and resolved.name.startswith("pixverse-group-")
        return str(resolved) if inside else None

    plan.contact_sheet_path = own(plan.contact_sheet_path)
    for item in plan.items:
        item.joined_path = own(item.joined_path)


async def _dry_run(runtime: Runtime, prepared: list[Prepared], check: SpendCheck) -> CallToolResult:
    balance = await balance_total(runtime)
    names = labels(
        [p.style_name or "restyle" for p in prepared],
        [p.source_name for p in prepared],
        [p.request.seed for p in prepared],
    )
    items: list[GroupItem] = []
    for ready, label in zip(prepared, names, strict=True):
        spans = ready.spans()
        costs = [(await spend.estimate(runtime.journal, seconds)).credits for _, _, seconds in spans]
        parts = f"{len(spans)} jobs (split at {', '.join(f'{s:.1f} s' for s, _, _ in spans[1:])})"
        items.append(
            GroupItem(
                label=label,
                status="dry_run",
                message=f"Would start {parts if len(spans) > 1 else 'one job'}.",
                estimated_credits=sum(c for c in costs if c is not None) if None not in costs else None,
                style=ready.style_name,
                source=ready.source_name,
                seed=ready.request.seed,
            )
        )
    cost = check.estimate.credits
    have = f" You have {balance:,} credits." if balance is not None else ""
    jobs_count = sum(len(p.spans()) for p in prepared)
    answer = GroupResult(
        status="dry_run",
        message=f"Nothing was started or uploaded. These {len(prepared)} items make {jobs_count} jobs and "
        f"would cost {check.estimate.describe()}.{have} Call restyle_many without dry_run to start them.",
        done=0,
        total=len(prepared),
        items=items,
        estimated_credits=cost,
        balance_after=balance - cost if balance is not None and cost is not None else None,
        note=check.note,
    )
    return structured(answer)
