"""Before a group's first job: every item's source checked and measured, then each source uploaded once.

`check_items` does what can fail without spending anything: local files opened (inside the allowed
folders) and probed, long clips planned into parts (`segments`), restyle_ids checked against the
catalog. Every problem is collected and the call refused naming each bad item. `upload_items`
then sends each distinct source once (a local file shared by four items is uploaded once; a file
that breaks a rule is fitted first; a split clip uploads one fitted part per job), and
`build_plan` writes the generate requests down.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from pixverse_mcp import arguments
from pixverse_mcp.bookkeeping import remember_upload
from pixverse_mcp.budget import CATALOG_CHECK_SECONDS
from pixverse_mcp.client import new_trace_id
from pixverse_mcp.errors import InputError, PixVerseError
from pixverse_mcp.fit import plan_fit, probe_clip
from pixverse_mcp.fitplan import FIT_MAX_SECONDS
from pixverse_mcp.groupplan import (
    MAX_JOBS,
    GroupPlan,
    ItemPlan,
    ItemRequest,
    PartPlan,
    labels,
    prompt_label,
    refusal,
)
from pixverse_mcp.journal import JobStart
from pixverse_mcp.paths import open_local_file
from pixverse_mcp.rules import MAX_RESTYLE_SECONDS
from pixverse_mcp.runtime import Runtime, UploadedSource
from pixverse_mcp.segments import Segment, part_count, plan_segments
from pixverse_mcp.uploading import upload_local

Report = Callable[[str], Awaitable[None]]


@dataclass
class Prepared:
    """One checked item: what its source is and how long, and how it will be sent."""

    request: ItemRequest
    source_name: str
    style_name: str | None
    seconds: float | None
    file_key: tuple[int, int] | None = None
    """The local file's device and inode: items naming one file by different paths share it."""
    segments: list[Segment] | None = None
    """A split clip's parts; None for one job."""
    uploads: list[tuple[dict[str, Any], float | None]] = field(default_factory=list)
    """Per job: the source fields of its generate request, and the length of what was sent."""
    fitted: list[str] | None = None
    local_path: str | None = None
    """The local file, resolved (inside the allowed folders)."""

    def spans(self) -> list[tuple[float | None, float | None, float | None]]:
        """Per job: (start, end, seconds) of the source it restyles."""
        if self.segments:
            return [(s.start, s.end, s.seconds) for s in self.segments]
        return [(None, None, self.seconds)]


@dataclass(frozen=True)
class _Measured:
    name: str
    path: str
    key: tuple[int, int]
    seconds: float
    segments: list[Segment] | None
    too_long: bool


async def check_items(
    runtime: Runtime,
    requests: list[ItemRequest],
    roots: Sequence[Path],
    *,
    problems: dict[int, str],
    total: int,
) -> list[Prepared]:
    """Check and measure every item; nothing is uploaded or started.

    Args:
        requests: The items that passed their own checks.
        problems: Those that did not (by index); this adds what it finds.
        total: How many items the call gave.

    Raises:
        InputError: naming each refused item, or the group is over MAX_JOBS jobs.
    """
    names = await _style_names(runtime, requests, problems)
    measured: dict[tuple[str, bool], _Measured | InputError] = {}
    prepared: list[Prepared] = []
    for item in requests:
        style = (
            names.get(item.restyle_id)
            if item.restyle_id is not None
            else prompt_label(item.restyle_prompt or "")
        )
        ready = Prepared(item, _source_name(item), style, None)
        if item.source_kind == "media" and item.source_id is not None:
            known = runtime.uploads.get(item.source_id)
            ready.seconds = known.seconds if known else None
            ready.source_name = known.name if known else ready.source_name
        elif item.source_kind == "video" and item.source_id is not None:
            earlier = await runtime.journal.get_job(item.source_id)
            ready.seconds = earlier.source_seconds if earlier else None
        elif item.path is not None:
            key = (item.path, item.split)
            if key not in measured:
                try:
                    measured[key] = await anyio.to_thread.run_sync(_measure, item.path, roots, item.split)
                except InputError as exc:
                    measured[key] = exc
            found = measured[key]
            if isinstance(found, InputError):
                problems[item.index] = found.message
                continue
            if found.too_long and not item.split:
                problems[item.index] = (
                    f"the clip {found.name} is {found.seconds:.1f} s; restyle takes at most "
                    f'{MAX_RESTYLE_SECONDS:g} s. Add "split": true to restyle it in '
                    f"{part_count(found.seconds)} parts of up to {FIT_MAX_SECONDS:g} s joined into one "
                    "video, or upload_video it with fit=true and start_seconds to choose a part"
                )
                continue
            ready.source_name, ready.seconds = found.name, found.seconds
            ready.file_key, ready.segments, ready.local_path = found.key, found.segments, found.path
        prepared.append(ready)
    if problems:
        raise refusal(problems, total)
    jobs = sum(len(p.spans()) for p in prepared)
    if jobs > MAX_JOBS:
        raise InputError(
            f"these items make {jobs} jobs (each split clip makes one per {FIT_MAX_SECONDS:g} s); "
            f"restyle_many starts at most {MAX_JOBS} per call. Use fewer items or shorter clips. "
            "Nothing was started.",
            argument="items",
        )
    return prepared


async def _style_names(
    runtime: Runtime, requests: list[ItemRequest], problems: dict[int, str]
) -> dict[int | None, str]:
    """Style names by restyle_id; an id the catalog does not list is a problem of its item."""
    wanted = {item.restyle_id for item in requests if item.restyle_id is not None}
    if not wanted:
        return {}
    styles = []
    try:
        # A slow catalog must not hold the call: if it does not come quickly, PixVerse judges the ids.
        with anyio.move_on_after(CATALOG_CHECK_SECONDS):
            styles = await runtime.styles.styles()
    except PixVerseError:
        styles = []
    names: dict[int | None, str] = {s.restyle_id: s.name for s in styles}
    for item in requests:
        if styles and item.restyle_id is not None and item.restyle_id not in names:
            problems[item.index] = (
                f"restyle_id {item.restyle_id} is not in the restyle catalog (list_restyles has the ids; "
                "or describe the look with restyle_prompt)"
            )
    for restyle_id in wanted - names.keys():
        names[restyle_id] = runtime.styles.cached_name(restyle_id) or f"style {restyle_id}"
    return names


def _source_name(item: ItemRequest) -> str:
    if item.source_kind == "media":
        return f"media {item.source_id}"
    if item.source_kind == "video":
        return f"video {item.source_id}"
    if item.url is not None:
        return item.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1][:80] or "url"
    return Path(item.path or "clip").name


def _measure(raw: str, roots: Sequence[Path], split: bool) -> _Measured:
    """Open and probe a local clip (blocking); plan its parts when it is split."""
    with open_local_file(raw, roots) as file:
        status = os.fstat(file.fd)
        info = probe_clip(file.reader())
        plan_fit(info)  # refuses what fitting cannot take on (too big, too long for fitting)
        too_long = info.duration_seconds > MAX_RESTYLE_SECONDS
        segments = plan_segments(file.reader(), info) if split and too_long else None
        key = (status.st_dev, status.st_ino)
        return _Measured(file.path.name, str(file.path), key, info.duration_seconds, segments, too_long)


def estimate_starts(prepared: list[Prepared]) -> list[JobStart]:
    """One JobStart per job, for the spend check: only the lengths matter before anything is sent."""
    return [
        JobStart(
            trace_id="", request_key="", source_kind="file", source=p.source_name, source_seconds=seconds
        )
        for p in prepared
        for _, _, seconds in p.spans()
    ]


async def upload_items(
    runtime: Runtime, prepared: list[Prepared], roots: Sequence[Path], report: Report
) -> list[str]:
    """Upload each distinct source once (in `Prepared.uploads`); returns notes on what was fitted."""
    done: dict[tuple[object, ...], tuple[dict[str, Any], float | None, list[str] | None]] = {}
    total = sum(len(p.spans()) for p in prepared if p.request.source_kind in ("path", "url"))
    count = 0
    notes: list[str] = []
    for ready in prepared:
        item = ready.request
        if item.source_kind == "media":
            ready.uploads = [({"video_media_id": item.source_id}, ready.seconds)]
            continue
        if item.source_kind == "video":
            ready.uploads = [({"source_video_id": item.source_id}, ready.seconds)]
            continue
        for start, end, _ in ready.spans():
            key = (ready.file_key or item.url, start, end)
            if key not in done:
                count += 1
                done[key] = await _upload_one(
                    runtime, ready, start, end, roots, report, f"{count} of {total}"
                )
                if done[key][2]:
                    notes.append(f"{ready.source_name} was fitted: {'; '.join(done[key][2] or [])}.")
            fields, seconds, fitted = done[key]
            ready.uploads.append((fields, seconds))
            ready.fitted = fitted
    return notes


async def _upload_one(
    runtime: Runtime,
    ready: Prepared,
    start: float | None,
    end: float | None,
    roots: Sequence[Path],
    report: Report,
    which: str,
) -> tuple[dict[str, Any], float | None, list[str] | None]:
    item = ready.request
    if item.url is not None:
        await report(f"upload {which}: PixVerse fetches {ready.source_name}")
        uploaded = await runtime.api.upload_url(item.url)
        remember_upload(runtime, uploaded.media_id, UploadedSource("url", item.url, None, None))
        return {"video_media_id": uploaded.media_id}, None, None

    async def progress(percent: float, message: str) -> None:
        await report(f"upload {which} ({ready.source_name}): {message}")

    result = await upload_local(
        runtime,
        item.path or "",
        roots,
        fit=True,
        start_seconds=start,
        end_seconds=end,
        progress=progress,
    )
    fitted = result.changes if result.fitted and start is None else None
    media_id = arguments.id_argument(result.media_id, "media_id")
    return {"video_media_id": media_id}, result.duration_seconds, fitted


def build_plan(group_id: str, prepared: list[Prepared]) -> GroupPlan:
    """The group's generate requests, one per job, each with its own trace id."""
    items = []
    label_list = labels(
        [p.style_name or "restyle" for p in prepared],
        [p.source_name for p in prepared],
        [p.request.seed for p in prepared],
    )
    for ready, label in zip(prepared, label_list, strict=True):
        item = ready.request
        seed = item.seed
        if seed is None and ready.segments:
            # One seed for every part: the parts of one clip should look alike.
            seed = secrets.randbelow(arguments.MAX_SEED)
        style: dict[str, Any] = (
            {"restyle_id": item.restyle_id}
            if item.restyle_id is not None
            else {"restyle_prompt": item.restyle_prompt}
        )
        parts = []
        cuts: list[str | None] = [s.cut for s in ready.segments] if ready.segments else [None]
        for (fields, sent), (start, end, seconds), cut in zip(
            ready.uploads, ready.spans(), cuts, strict=True
        ):
            body = {**fields, **style, **({"seed": seed} if seed is not None else {})}
            parts.append(
                PartPlan(
                    body=body,
                    trace_id=new_trace_id(),
                    seconds=sent or seconds,
                    start_seconds=start,
                    end_seconds=end,
                    cut=cut,
                )
            )
        items.append(
            ItemPlan(
                label=label,
                source=ready.source_name,
                style=ready.style_name if item.restyle_id is not None else None,
                restyle_id=str(item.restyle_id) if item.restyle_id is not None else None,
                restyle_prompt=item.restyle_prompt,
                seed=seed,
                seconds=ready.seconds,
                split_path=ready.local_path if ready.segments else None,
                fitted=ready.fitted,
                parts=parts,
            )
        )
    return GroupPlan(group_id=group_id, items=items)
