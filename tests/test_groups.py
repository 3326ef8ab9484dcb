"""restyle_many through the protocol: compare looks, batches, long clips by segments, the contact sheet."""

from __future__ import annotations

import base64
import io
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import av
import pytest
from conftest import ProgressLog, call_error, call_ok, result_text, upload
from mcp import Client
from mcp.types import ImageContent

from pixverse_mcp.config import Settings
from pixverse_mcp.contactsheet import LABEL_HEIGHT, PAD, row_top
from pixverse_mcp.samples import make_clip
from pixverse_mcp.sandbox import SandboxServer
from pixverse_mcp.server import create_server

pytestmark = pytest.mark.anyio

NOIR, SKETCH, PIXEL, NEON = "1001", "1003", "1004", "1006"


@pytest.fixture
async def one_client(settings: Settings) -> AsyncIterator[Client]:
    """One protocol generation is enough here: the group tools add nothing generation-specific."""
    async with Client(create_server(settings)) as connected:
        yield connected


def _stats(sandbox: SandboxServer) -> dict[str, Any]:
    return sandbox.state.stats()


def _configure(sandbox: SandboxServer, **changes: Any) -> None:
    sandbox.state.config = sandbox.state.config.model_copy(update=changes)


def _sheet_rows(result: Any, rows: int) -> list[bytes]:
    """The contact sheet's picture, cut into its rows' frame strips (RGB bytes), from the image content."""
    [image] = [block for block in result.content if isinstance(block, ImageContent)]
    with av.open(io.BytesIO(base64.b64decode(image.data))) as container:
        frame = next(container.decode(video=0)).reformat(format="rgb24")
    tile = (frame.height - PAD) // rows - LABEL_HEIGHT - PAD
    plane = frame.planes[0]
    data = bytes(plane)
    strips = []
    for index in range(rows):
        top = row_top(index, tile) + LABEL_HEIGHT
        width = (frame.width // 2) * 3  # the left half: frames in every row
        strips.append(
            b"".join(
                data[(top + y) * plane.line_size : (top + y) * plane.line_size + width] for y in range(tile)
            )
        )
    return strips


def _labels(result: Any, rows: int) -> list[bytes]:
    """Each row's label band (grey levels)."""
    [image] = [block for block in result.content if isinstance(block, ImageContent)]
    with av.open(io.BytesIO(base64.b64decode(image.data))) as container:
        frame = next(container.decode(video=0)).reformat(format="gray")
    tile = (frame.height - PAD) // rows - LABEL_HEIGHT - PAD
    plane = frame.planes[0]
    data = bytes(plane)
    return [
        b"".join(
            data[
                (row_top(i, tile) + y) * plane.line_size : (row_top(i, tile) + y) * plane.line_size
                + frame.width
            ]
            for y in range(LABEL_HEIGHT)
        )
        for i in range(rows)
    ]


def _difference(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a[::7], b[::7], strict=True)) / len(a[::7])


async def test_one_clip_in_four_styles_is_one_call_with_a_contact_sheet(
    one_client: Client, clip: Path, sandbox: SandboxServer, tmp_path: Path
) -> None:
    items = [{"path": str(clip), "restyle_id": style} for style in (NOIR, SKETCH, PIXEL, NEON)]
    progress = ProgressLog()
    result = await one_client.call_tool(
        "restyle_many", {"items": items, "wait_seconds": 14}, progress_callback=progress
    )
    assert not result.is_error, result_text(result)
    answer = result.structured_content
    assert answer is not None and answer["status"] == "done" and answer["done"] == answer["total"] == 4
    assert [item["label"] for item in answer["items"]] == [
        "Film Noir",
        "Pencil Sketch",
        "Pixel Art",
        "Neon Night",
    ]
    assert all(
        item["status"] == "succeeded" and item["url"] and item["credits"] == 30 for item in answer["items"]
    )
    assert answer["credits"] == 120 and answer["title"] == "Compare"
    stats = _stats(sandbox)
    # One upload for the four items; four jobs, each from one trace id; the plan's limit of three
    # jobs at once made the fourth wait here (a refused attempt, then a fresh trace id).
    assert stats["requests"]["upload"] == 1 and stats["jobs_created"] == 4
    assert set(stats["jobs_per_trace_id"].values()) == {1}
    assert stats["requests"]["generate"] >= 5
    assert any(m.endswith("done") or " of 4 done" in m for m in progress.messages)
    # The sheet: four labelled rows, each row's frames really differ by style.
    strips = _sheet_rows(result, 4)
    for first in range(4):
        for second in range(first + 1, 4):
            assert _difference(strips[first], strips[second]) > 12, (first, second)
    bands = _labels(result, 4)
    assert all(max(band) > 200 for band in bands)  # text drawn in each label band
    assert len(set(bands)) == 4
    sheet = Path(answer["contact_sheet_path"])
    assert sheet.is_file() and sheet.parent == tmp_path / "out" and answer["contact_sheet_note"] is None

    # The group is on record: get_status answers it again, with no new job and the same sheet.
    again = await call_ok(one_client, "get_status", {"group_id": answer["group_id"], "wait_seconds": 0})
    assert again["status"] == "done" and [i["url"] for i in again["items"]] == [
        i["url"] for i in answer["items"]
    ]
    assert again["contact_sheet_path"] == answer["contact_sheet_path"]
    assert _stats(sandbox)["jobs_created"] == 4


async def test_three_clips_in_one_style(one_client: Client, videos: Path, sandbox: SandboxServer) -> None:
    clips = [make_clip(videos / f"clip{n}.mp4", seconds=1.0, width=160, height=120) for n in (1, 2, 3)]
    items = [{"path": str(path), "restyle_prompt": "a pencil sketch"} for path in clips]
    answer = await call_ok(one_client, "restyle_many", {"items": items, "download": True, "wait_seconds": 14})
    assert answer["status"] == "done" and answer["title"] == "Batch"
    assert [i["label"] for i in answer["items"]] == [f"clip{n}.mp4: a pencil sketch" for n in (1, 2, 3)]
    saved = [Path(item["local_path"]) for item in answer["items"]]
    assert all(path.is_file() and path.stat().st_size > 0 for path in saved) and len(set(saved)) == 3
    # The sheet's rows come from the saved copies, each read.
    assert answer["contact_sheet_path"] and answer.get("contact_sheet_note") is None
    assert _stats(sandbox)["requests"]["upload"] == 3 and _stats(sandbox)["jobs_created"] == 3


async def test_a_40_second_clip_is_split_restyled_and_joined(
    one_client: Client, videos: Path, sandbox: SandboxServer
) -> None:
    long_clip = make_clip(videos / "long.mp4", seconds=40.0, width=96, height=64, fps=6, audio=True)
    items = [{"path": str(long_clip), "restyle_id": PIXEL, "split": True}]
    answer = await call_ok(one_client, "restyle_many", {"items": items, "wait_seconds": 14})
    [item] = answer["items"]
    assert item["status"] == "succeeded", item["message"]
    parts = item["parts"]
    assert len(parts) == 3 and parts[0]["start_seconds"] == 0 and parts[-1]["end_seconds"] == 40.0
    assert all(a["end_seconds"] == b["start_seconds"] for a, b in itertools.pairwise(parts))
    assert all(p["end_seconds"] - p["start_seconds"] <= 15.9 for p in parts)
    assert item["seed"] is not None  # one seed for every part
    seeds = {job.seed for job in sandbox.state.jobs.values()}
    assert (
        len(seeds) == 1
        and _stats(sandbox)["jobs_created"] == 3
        and _stats(sandbox)["requests"]["upload"] == 3
    )
    assert answer["contact_sheet_path"] and answer.get("contact_sheet_note") is None
    joined = Path(item["local_path"])
    with av.open(str(joined)) as container:
        duration = container.duration / 1_000_000
        assert abs(duration - 40.0) <= 0.2
        assert container.streams.audio and container.streams.video
        times = [frame.time for frame in container.decode(video=0)]
    assert all(0 < later - earlier < 0.5 for earlier, later in itertools.pairwise(times))


async def test_500044_during_a_group_starts_each_job_once(
    one_client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    media_id = await upload(one_client, clip)
    sandbox.state.add_fault(endpoint="generate", kind="err_code", code=500044, count=1)
    items = [{"video_media_id": media_id, "restyle_id": style} for style in (NOIR, SKETCH)]
    answer = await call_ok(one_client, "restyle_many", {"items": items, "wait_seconds": 14})
    assert [item["status"] for item in answer["items"]] == ["succeeded", "succeeded"]
    stats = _stats(sandbox)
    assert stats["jobs_created"] == 2 and stats["requests"]["generate"] == 3
    # The refused attempt made no job, so its retry went out under a fresh trace id.
    assert len(set(stats["trace_ids"]["generate"])) == 3


async def test_a_group_over_the_day_cap_is_refused_before_any_job(
    settings: Settings, clip: Path, sandbox: SandboxServer
) -> None:
    server = create_server(settings.with_changes(max_credits_per_day=100))
    async with Client(server) as client:
        media_id = await upload(client, clip)
        # One job teaches the estimate (30 credits for the 2 s clip) and counts for the day.
        await call_ok(
            client, "restyle_video", {"video_media_id": media_id, "restyle_id": NOIR, "wait_seconds": 14}
        )
        before = _stats(sandbox)
        items = [{"path": str(clip), "restyle_id": style} for style in (SKETCH, PIXEL, NEON)]
        text = await call_error(client, "restyle_many", {"items": items})
    assert (
        "about 90 credits" in text and "daily limit of 100" in text and "PIXVERSE_MAX_CREDITS_PER_DAY" in text
    )
    after = _stats(sandbox)
    assert after["requests"]["upload"] == before["requests"]["upload"]
    assert after["requests"]["generate"] == before["requests"]["generate"] and after["jobs_created"] == 1


async def test_bad_items_refuse_the_whole_call_naming_each(
    one_client: Client, clip: Path, videos: Path, sandbox: SandboxServer, tmp_path: Path
) -> None:
    assert "items is empty" in await call_error(one_client, "restyle_many", {"items": []})
    many = [{"path": str(clip), "restyle_id": NOIR, "seed": n} for n in range(13)]
    assert "at most 12" in await call_error(one_client, "restyle_many", {"items": many})
    long_clip = make_clip(videos / "long.mp4", seconds=17.0, width=64, height=48, fps=4)
    outside = tmp_path / "elsewhere.mp4"
    mixed = [
        {"path": str(clip), "restyle_id": NOIR},
        {"path": str(clip)},
        {"path": str(outside), "restyle_id": NOIR},
        {"video_media_id": "123", "url": "https://example.com/a.mp4", "restyle_id": NOIR},
        {"path": str(clip), "restyle_id": "999"},
        {"path": str(long_clip), "restyle_prompt": "noir"},
        {"path": str(clip), "restyle_id": NOIR},
        {"url": "https://example.com/b.mp4", "restyle_prompt": "noir", "split": True},
    ]
    text = await call_error(one_client, "restyle_many", {"items": mixed})
    assert "7 of 8 items are refused" in text and "items[0]:" not in text
    for index, said in (
        (1, "restyle_id or restyle_prompt"),
        (2, "outside the folders"),
        (3, "not both"),
        (4, "restyle_id 999"),
        (5, '"split": true'),
        (6, "repeats items[0]"),
        (7, "local path only"),
    ):
        assert said in text.split(f"items[{index}]: ", 1)[1].split(f"items[{index + 1}]: ")[0], (index, text)
    assert "started nothing, uploaded nothing and spent nothing" in text
    stats = _stats(sandbox)
    assert stats["requests"]["upload"] == 0 and stats["requests"]["generate"] == 0

    dry = await call_ok(one_client, "restyle_many", {"items": mixed[:1], "dry_run": True})
    assert dry["status"] == "dry_run" and dry["total"] == 1 and "Nothing was started" in dry["message"]
    assert _stats(sandbox)["requests"]["upload"] == 0 and _stats(sandbox)["jobs_created"] == 0


async def test_a_cancelled_group_leaves_every_started_job_on_record(
    one_client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    _configure(sandbox, job_seconds=30)
    media_id = await upload(one_client, clip)
    started = anyio.Event()

    async def progress(value: float, total: float | None, message: str | None) -> None:
        if sandbox.state.stats()["jobs_created"] == 3:
            started.set()

    items = [{"video_media_id": media_id, "restyle_id": style} for style in (NOIR, SKETCH, PIXEL)]
    async with anyio.create_task_group() as tasks:

        async def restyle() -> None:
            await one_client.call_tool(
                "restyle_many", {"items": items, "wait_seconds": 14}, progress_callback=progress
            )
            pytest.fail("the call should have been cancelled while it waited")

        tasks.start_soon(restyle)
        with anyio.fail_after(10):
            await started.wait()
        tasks.cancel_scope.cancel()

    listed = await call_ok(one_client, "list_jobs", {})
    jobs = listed["jobs"]
    assert len(jobs) == 3 and {job["video_id"] for job in jobs} == {str(v) for v in sandbox.state.jobs}
    [group_id] = {job["group_id"] for job in jobs}
    assert group_id and len((await call_ok(one_client, "list_jobs", {"query": group_id}))["jobs"]) == 3
    followed = await call_ok(one_client, "get_status", {"group_id": group_id, "wait_seconds": 0})
    assert followed["status"] == "generating" and followed["done"] == 0
    assert [item["status"] for item in followed["items"]] == ["generating"] * 3
    assert _stats(sandbox)["jobs_created"] == 3


async def test_items_queued_for_a_slot_start_when_the_group_is_continued(
    one_client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    _configure(sandbox, job_seconds=1.5, max_concurrent_jobs=1)
    media_id = await upload(one_client, clip)
    items = [{"video_media_id": media_id, "restyle_id": style} for style in (NOIR, SKETCH)]
    first = await call_ok(one_client, "restyle_many", {"items": items, "wait_seconds": 0})
    assert [item["status"] for item in first["items"]] == ["generating", "queued"]
    assert first["status"] == "generating" and "restyle_many with group_id" in first["message"]
    assert _stats(sandbox)["jobs_created"] == 1
    # Following is free and starts nothing.
    followed = await call_ok(one_client, "get_status", {"group_id": first["group_id"], "wait_seconds": 0})
    assert followed["items"][1]["status"] == "queued" and _stats(sandbox)["jobs_created"] == 1
    done = await call_ok(one_client, "restyle_many", {"group_id": first["group_id"], "wait_seconds": 14})
    assert done["status"] == "done" and [item["status"] for item in done["items"]] == ["succeeded"] * 2
    assert _stats(sandbox)["jobs_created"] == 2


async def test_a_url_shared_by_two_items_is_fetched_once_and_no_journal_still_answers(
    settings: Settings, clip: Path, sandbox: SandboxServer
) -> None:
    server = create_server(settings.with_changes(journal_enabled=False))
    async with Client(server) as client:
        media_id = await upload(client, clip)
        first = await call_ok(client, "restyle_video", {"video_media_id": media_id, "restyle_id": NOIR})
        url = first["url"]  # a file the sandbox serves, which its upload endpoint may fetch
        items = [{"url": url, "restyle_id": style} for style in (SKETCH, PIXEL)]
        before = _stats(sandbox)["requests"]["upload"]
        answer = await call_ok(client, "restyle_many", {"items": items, "wait_seconds": 14})
        assert [item["status"] for item in answer["items"]] == ["succeeded", "succeeded"]
        assert _stats(sandbox)["requests"]["upload"] == before + 1
        # Without a journal the group lives in this answer only; get_status says how to follow it.
        text = await call_error(client, "get_status", {"group_id": answer["group_id"]})
    assert "PIXVERSE_JOURNAL=off" in text and "video_id" in text
