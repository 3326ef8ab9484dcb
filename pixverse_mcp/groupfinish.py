"""Finishing a group's call: saved copies, joined split clips, the contact sheet, the journal, the answer.

Everything here runs within what is left of the call's budget and is optional: a download, a join
or a sheet that does not fit or fails leaves a note, and the answer still carries every item's
status and url. A later get_status with the group_id picks up what is missing (a join, the sheet).
"""

from __future__ import annotations

import base64
import logging
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
from mcp.types import CallToolResult, ImageContent

from pixverse_mcp import jobs
from pixverse_mcp.bookkeeping import record, status_update
from pixverse_mcp.budget import CallBudget, CallProgress
from pixverse_mcp.contactsheet import MAX_SHEET_BYTES, SheetRow, make_contact_sheet
from pixverse_mcp.delivery import SAVE_RESERVE_SECONDS, file_link, structured
from pixverse_mcp.fetching import FetchRules
from pixverse_mcp.groupanswer import ItemView, group_result, sheet_label, views_of
from pixverse_mcp.grouprun import GroupRun
from pixverse_mcp.joining import JoinPart, join_parts
from pixverse_mcp.localfile import LocalFile
from pixverse_mcp.paths import ensure_inside, open_local_file, safe_filename
from pixverse_mcp.results import GroupResult
from pixverse_mcp.wire import JobState

log = logging.getLogger(__name__)

SHEET_SECONDS = 15.0
"""The contact sheet reads its videos for at most this long."""
DOWNLOADS_AT_ONCE = 3
JOIN_MIN_SECONDS = 5.0
"""A join is not begun with less time than this left in the call."""


async def finish_group(
    run: GroupRun,
    *,
    download: bool | None,
    roots: tuple[Path, ...],
    note: str | None = None,
    estimated: int | None = None,
    balance_after: int | None = None,
) -> CallToolResult:
    """Save, join, compare and record what this call saw; answer with every item."""
    runtime, budget, plan = run.runtime, run.budget, run.plan
    settings = runtime.settings
    views = views_of(plan, run.parts)
    want_download = settings.auto_download if download is None else download
    if want_download:
        await _downloads(run, views, budget, run.progress)
    for view in views:
        if view.split and view.parts_succeeded and not view.joined:
            await _join(run, view, roots, budget)
    for part in run.parts:
        if part.result is not None and part.video_id is not None:
            status = jobs.to_status(part.result)
            status.local_path = next(
                (v.local_path for v in views if v.index == part.item and not v.split), None
            )
            await record(runtime.journal.update_status(part.video_id, status_update(status)))
    sheet: bytes | None = None
    sheet_note: str | None = "The contact sheet comes when every item has ended."
    if all(view.ended for view in views) and not any(
        v.split and v.parts_succeeded and not v.joined for v in views
    ):
        sheet, sheet_note = await _contact_sheet(run, views, budget)
    await record(runtime.journal.record_group(plan.group_id, plan.model_dump_json(exclude_none=True)))
    answer = group_result(
        plan,
        views,
        wait=settings.default_wait_seconds,
        waited=budget.elapsed(),
        sheet_path=plan.contact_sheet_path if sheet is not None else None,
        sheet_note=sheet_note,
        note=" ".join(filter(None, [note, run.queue_note])) or None,
        estimated=estimated,
        balance_after=balance_after,
    )
    return _result(answer, sheet, views)


def _result(answer: GroupResult, sheet: bytes | None, views: list[ItemView]) -> CallToolResult:
    extra: list[Any] = []
    if sheet is not None:
        extra.append(
            ImageContent(type="image", data=base64.b64encode(sheet).decode(), mime_type="image/jpeg")
        )
    for view in views:
        path = view.result_path()
        if path is not None and Path(path).is_file():
            extra.append(file_link(Path(path)))
    return structured(answer, extra)


async def _downloads(
    run: GroupRun, views: list[ItemView], budget: CallBudget, progress: CallProgress
) -> None:
    settings = run.runtime.settings
    limiter = anyio.CapacityLimiter(DOWNLOADS_AT_ONCE)

    async def save(view: ItemView) -> None:
        part = view.parts[0]
        assert part.result is not None
        async with limiter:
            seconds = min(settings.timeouts.download, budget.left() - SAVE_RESERVE_SECONDS)
            if seconds <= 0:
                view.notes.append("No time was left to save a copy; get_status with download=true saves it.")
                return
            await progress.report(f"saving {view.plan.label}")
            try:
                saved = await jobs.save_video(
                    run.runtime.api,
                    part.result,
                    settings.output_dir,
                    seconds=seconds,
                    max_bytes=settings.max_download_bytes,
                )
            except Exception as exc:  # the copy is optional: the url is the answer
                view.notes.append(f"Saving a local copy failed: {exc}")
                return
            view.local_path = part.local_path = str(saved)

    async with anyio.create_task_group() as tasks:
        for view in views:
            if not view.split and view.status == JobState.SUCCEEDED.value and view.local_path is None:
                tasks.start_soon(save, view)


async def _join(run: GroupRun, view: ItemView, roots: tuple[Path, ...], budget: CallBudget) -> None:
    """Download the restyled parts of a split clip and join them, with the clip's sound, into one mp4."""
    runtime, settings = run.runtime, run.runtime.settings
    if budget.left() < JOIN_MIN_SECONDS + SAVE_RESERVE_SECONDS:
        return  # the answer says to call get_status again for the join
    folder = Path(tempfile.mkdtemp(prefix="pixverse-join-"))
    sound: LocalFile | None = None
    try:
        files = []
        for number, part in enumerate(view.parts):
            if part.result is None or not part.result.url:
                view.notes.append(
                    f"PixVerse gave no URL for part {number + 1} yet; get_status joins them later."
                )
                return
            await run.progress.report(
                f"joining {view.plan.label}: fetching part {number + 1} of {len(view.parts)}"
            )
            dest = folder / f"part-{number}.mp4"
            seconds = min(settings.timeouts.download, budget.left() - SAVE_RESERVE_SECONDS)
            await runtime.api.download(
                part.result.url, dest, max_bytes=settings.max_download_bytes, seconds=seconds
            )
            files.append(JoinPart(dest, part.plan.start_seconds or 0.0, part.plan.end_seconds or 0.0))
        try:
            sound = await anyio.to_thread.run_sync(open_local_file, view.plan.split_path or "", roots)
        except Exception as exc:
            view.notes.append(
                f"The original clip could not be opened again ({exc}), so the video has no sound."
            )
        await run.progress.report(f"joining {view.plan.label}: {len(files)} parts")
        joined = await _join_in_thread(files, folder / "joined.mp4", sound, budget)
        out_dir = settings.output_dir
        await anyio.Path(out_dir).mkdir(parents=True, exist_ok=True)
        label = safe_filename(view.plan.label, max_len=40) or "restyle"
        wanted = ensure_inside(
            out_dir / f"pixverse-group-{run.plan.group_id[:8]}-{view.index + 1}-{label}.mp4", out_dir
        )
        tmp = ensure_inside(out_dir / f".{wanted.name}.{uuid.uuid4().hex[:8]}.part", out_dir)
        try:
            await anyio.to_thread.run_sync(shutil.copyfile, joined, tmp)
            final = await anyio.to_thread.run_sync(jobs.claim_name, tmp, wanted)
        finally:
            tmp.unlink(missing_ok=True)
        view.plan.joined_path = str(final)
    except Exception as exc:  # the parts stay at their urls; the next get_status tries again
        log.info("joining group %s item %d failed: %s", run.plan.group_id, view.index, exc)
        view.notes.append(f"Joining the parts failed: {exc}")
    finally:
        if sound is not None:
            sound.close()
        await anyio.to_thread.run_sync(shutil.rmtree, folder, True)


async def _join_in_thread(
    files: list[JoinPart], dest: Path, sound: LocalFile | None, budget: CallBudget
) -> Path:
    cancel = threading.Event()
    deadline = time.monotonic() + max(0.0, budget.left() - SAVE_RESERVE_SECONDS)
    reader = sound.reader() if sound is not None else None
    try:
        await anyio.to_thread.run_sync(
            lambda: join_parts(files, dest, sound=reader, cancel=cancel, deadline=deadline),
            abandon_on_cancel=True,
        )
    except anyio.get_cancelled_exc_class():
        cancel.set()  # the worker stops at its next frame
        raise
    return dest


async def _contact_sheet(
    run: GroupRun, views: list[ItemView], budget: CallBudget
) -> tuple[bytes | None, str | None]:
    """The sheet: the one made earlier for this group, or a new one saved in the output folder."""
    plan, settings = run.plan, run.runtime.settings
    earlier = Path(plan.contact_sheet_path) if plan.contact_sheet_path else None
    if earlier is not None and earlier.is_file() and earlier.stat().st_size <= 2 * MAX_SHEET_BYTES:
        return await anyio.Path(earlier).read_bytes(), None
    rows = [SheetRow(sheet_label(view), _video_of(view), view.status.replace("_", " ")) for view in views]
    seconds = min(SHEET_SECONDS, budget.left() - SAVE_RESERVE_SECONDS)
    if seconds <= 0:
        return None, "No time was left for the contact sheet; get_status with the group_id makes it."
    await run.progress.report("making the contact sheet")
    rules = FetchRules.for_base_url(run.runtime.api.base_url)
    try:
        sheet = await anyio.to_thread.run_sync(
            lambda: make_contact_sheet(
                rows, rules=rules, max_read_bytes=settings.max_download_bytes, seconds=seconds
            )
        )
    except Exception as exc:
        return None, f"No contact sheet: {exc}"[:300]
    note = "; ".join(sheet.problems) or None
    try:
        out_dir = settings.output_dir
        await anyio.Path(out_dir).mkdir(parents=True, exist_ok=True)
        wanted = ensure_inside(out_dir / f"pixverse-group-{plan.group_id}-contact.jpg", out_dir)
        tmp = ensure_inside(out_dir / f".{wanted.name}.{uuid.uuid4().hex[:8]}.part", out_dir)
        try:
            await anyio.Path(tmp).write_bytes(sheet.jpeg)
            plan.contact_sheet_path = str(await anyio.to_thread.run_sync(jobs.claim_name, tmp, wanted))
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        note = f"The contact sheet could not be saved ({exc}); it is in this answer."
    return sheet.jpeg, note


def _video_of(view: ItemView) -> Path | str | None:
    """Where the sheet takes an item's frames from: its file here (a Path), else its url (a str)."""
    if view.status != JobState.SUCCEEDED.value:
        return None
    local = view.result_path()
    if local is not None:
        return Path(local)
    result = view.parts[0].result
    return result.url if not view.split and result is not None and result.url else None
