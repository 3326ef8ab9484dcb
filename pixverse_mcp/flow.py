"""The steps of a tool call that talk back to the MCP client: progress, slots, answers with pictures.

`Runtime` is what the server's lifespan opens once; `tool_call` wraps every tool so its failures
reach the model as readable errors and its outcome is logged in one line.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent
from pydantic import SecretStr

from pixverse_mcp import jobs
from pixverse_mcp.catalog import CatalogCache
from pixverse_mcp.client import CallKind, PixVerseClient, RetryPolicy, last_trace_id, new_trace_id
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import BusyError, NotFoundError, PixVerseError, TimeoutError_, TransportError
from pixverse_mcp.fetching import FetchRules, unfetchable_reason
from pixverse_mcp.results import VideoStatus
from pixverse_mcp.wire import StartedJob, VideoResult

log = logging.getLogger("pixverse_mcp.tools")

SLOT_WAIT_FIRST = 2.0
SLOT_WAIT_MIN = 1.0
SLOT_WAIT_MAX = 8.0
SUBMIT_SECONDS_MIN = 25.0
REQUEST_SECONDS_MIN = 10.0
SLOT_CHECK_SECONDS_MIN = 5.0
PREVIEW_SECONDS = 10.0
SAVE_PREVIEW_SECONDS = 5.0
FIRST_CHECK_SECONDS = 10.0


@dataclass
class Runtime:
    """What the lifespan opens once and every tool shares."""

    settings: Settings
    policies: dict[CallKind, RetryPolicy] | None = None
    client_roots: bool = True
    client: PixVerseClient | None = None
    catalog: CatalogCache | None = None
    slots: JobSlots | None = None
    active: int = 0
    stack: AsyncExitStack | None = field(default=None, repr=False)
    lock: anyio.Lock = field(default_factory=anyio.Lock, repr=False)

    def ready(self) -> tuple[PixVerseClient, CatalogCache]:
        if self.client is None or self.catalog is None:
            raise ToolError("The server is still starting or already stopping; try again in a moment.")
        return self.client, self.catalog

    async def open(self) -> None:
        """Open the client (and the embedded sandbox in sandbox mode), once for all sessions."""
        async with self.lock:
            if self.active == 0:
                self.stack = await self._open()
            self.active += 1

    async def _open(self) -> AsyncExitStack:
        async with AsyncExitStack() as stack:
            settings = self.settings
            if settings.sandbox:
                # Imported here: a normal start should not pay for the sandbox's imports.
                from pixverse_mcp.sandbox import SandboxConfig, SandboxServer

                config = SandboxConfig()
                sandbox = SandboxServer(config)
                stack.push_async_callback(anyio.to_thread.run_sync, sandbox.stop)
                await anyio.to_thread.run_sync(sandbox.start)
                settings = settings.with_changes(base_url=sandbox.base_url, api_key=SecretStr(config.api_key))
                log.info("sandbox mode: the PixVerse sandbox is serving at %s", sandbox.base_url)
            client = PixVerseClient(settings, policies=self.policies)
            stack.push_async_callback(client.aclose)
            self.client = client
            self.catalog = CatalogCache(client, settings.catalog_ttl_seconds)
            self.slots = JobSlots(settings.max_concurrent_jobs)
            log.info("ready: PixVerse API at %s", settings.base_url)
            # Everything opened: keep it open past this block, for close().
            return stack.pop_all()

    async def close(self) -> None:
        # Shielded: closing runs while the server is being cancelled (SIGTERM), and must finish.
        with anyio.CancelScope(shield=True):
            async with self.lock:
                self.active -= 1
                if self.active > 0 or self.stack is None:
                    return
                stack, self.stack = self.stack, None
                self.client = self.catalog = self.slots = None
                await stack.aclose()
                log.info("stopped: PixVerse client closed")


@dataclass
class CallRecord:
    """What one tool call wants in its log line beyond the defaults."""

    trace_id: str | None = None


@contextmanager
def tool_call(tool: str) -> Iterator[CallRecord]:
    """Run one tool: log its outcome in one line, and turn every failure into a ToolError for the model."""
    started = time.monotonic()
    record = CallRecord()
    outcome = "ok"
    try:
        yield record
    except ToolError as exc:
        outcome = f"error: {exc}"
        raise
    except PixVerseError as exc:
        outcome = f"error: {type(exc).__name__}"
        raise ToolError(str(exc)) from None
    except Exception as exc:
        outcome = f"crash: {type(exc).__name__}"
        log.exception("%s failed unexpectedly", tool)
        raise ToolError(
            f"{tool} failed unexpectedly ({type(exc).__name__}). Nothing more is known to this server; "
            "try again, and if it keeps failing, check the server's log."
        ) from None
    except BaseException:
        outcome = "cancelled"
        raise
    finally:
        log.info(
            "tool=%s outcome=%s duration=%.3fs trace_id=%s",
            tool,
            outcome[:200],
            time.monotonic() - started,
            record.trace_id or last_trace_id.get(),
        )


class JobSlots:
    """An optional cap on this server's own jobs generating at once (PIXVERSE_MAX_CONCURRENT_JOBS).

    It queues restyles on this side before PixVerse has to refuse them with 500044. Without a
    limit it tracks nothing and never makes one restyle wait for another.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.running: set[int] = set()
        self.reserved = 0
        self.lock = anyio.Lock()

    async def reserve(self, client: PixVerseClient, *, deadline: float) -> bool:
        """Take a slot if one is free, checking first (until `deadline`) on the jobs that hold them."""
        if self.limit is None:
            return True
        async with self.lock:
            if self._taken() < self.limit:
                self.reserved += 1
                return True
            holders = list(self.running)
        # Checked outside the lock, so one slow status reply holds up no other restyle; a few
        # seconds even with no wait budget, so that a finished job can free its slot at once.
        with anyio.move_on_after(max(SLOT_CHECK_SECONDS_MIN, deadline - anyio.current_time())):
            for video_id in holders:
                try:
                    status = (await client.video_result(video_id)).status
                except NotFoundError:
                    status = 6  # gone: it holds no slot at PixVerse either
                except PixVerseError:
                    continue
                if status in jobs.TERMINAL_CODES:
                    self.running.discard(video_id)
        async with self.lock:
            if self._taken() >= self.limit:
                return False
            self.reserved += 1
            return True

    def settle(self, video_id: int | None) -> None:
        """Turn a reservation into the job that holds it, or give it back (None)."""
        if self.limit is None:
            return
        self.reserved -= 1
        if video_id is not None:
            self.running.add(video_id)

    def finished(self, video_id: int) -> None:
        self.running.discard(video_id)

    def _taken(self) -> int:
        return len(self.running) + self.reserved


def _recovery(reason: str, trace_id: str) -> ToolError:
    return ToolError(
        f"{reason} PixVerse may have started the job anyway. Do not start a new one: call restyle_video "
        f"again with the same arguments and trace_id {trace_id!r}; PixVerse then answers with the job it "
        "made for that trace id (or makes it once), so nothing is paid twice."
    )


async def start_restyle(
    runtime: Runtime,
    body: dict[str, Any],
    ctx: Context,
    *,
    deadline: float,
    trace_id: str | None = None,
) -> tuple[StartedJob, str]:
    """Start the job, waiting until `deadline` for a free slot on this side and at PixVerse (500044).

    Starting may take SUBMIT_SECONDS_MIN in all even when `deadline` is nearer (a generate's retries
    need the time), and every request gets at least REQUEST_SECONDS_MIN of it.

    One trace id serves every attempt unless PixVerse refused cleanly (500044): then no job exists
    and the next attempt needs a fresh trace id, or PixVerse would replay the refusal.
    """
    client, _ = runtime.ready()
    slots = runtime.slots
    assert slots is not None
    pause = SLOT_WAIT_FIRST
    began = anyio.current_time()
    hard_end = max(deadline, began + SUBMIT_SECONDS_MIN)
    trace = trace_id or new_trace_id()
    while True:
        refusal: str | None = None
        retry_after: float | None = None
        if await slots.reserve(client, deadline=deadline):
            job: StartedJob | None = None
            try:
                # The request itself may take a little longer than the wait budget: its retries are
                # what keeps a lost reply from costing a second job.
                allowed = max(hard_end - anyio.current_time(), REQUEST_SECONDS_MIN)
                with anyio.move_on_after(allowed) as scope:
                    job, _ = await client.restyle(body, trace_id=trace)
                if scope.cancelled_caught:
                    raise _recovery("PixVerse did not confirm the job in time.", trace)
                assert job is not None
                return job, trace
            except TransportError as exc:
                raise _recovery(str(exc), trace) from None
            except BusyError as exc:
                if exc.code != 500044:
                    raise
                refusal, retry_after = str(exc), exc.retry_after
                trace = new_trace_id()
            finally:
                slots.settle(job.video_id if job is not None else None)
        else:
            refusal = f"This server already runs {slots.limit} jobs, its PIXVERSE_MAX_CONCURRENT_JOBS."
        now = anyio.current_time()
        if retry_after is not None:
            pause = retry_after
        pause = min(max(pause, SLOT_WAIT_MIN), SLOT_WAIT_MAX)
        # Wait for a slot only within the wait budget, and only if the next request still fits.
        if now + pause > deadline or now + pause + REQUEST_SECONDS_MIN > hard_end:
            raise ToolError(
                f"{refusal} Waited {now - began:.0f} s for a free generation slot; none came free. "
                "No job was started and no credits were spent. Try again later, or check running jobs "
                "with get_status."
            )
        await ctx.report_progress(
            now - began, None, f"waiting for a free generation slot ({now - began:.0f} s)"
        )
        await anyio.sleep(pause)
        pause *= 1.5


async def follow(
    runtime: Runtime,
    ctx: Context,
    video_id: int,
    budget: float,
    download: bool | None,
    *,
    result_type: type[VideoStatus],
    extra: dict[str, Any],
) -> CallToolResult:
    """Wait for a job, then answer with its status, a saved copy and a preview where they apply.

    A job that was started is never lost: if checking on it fails, the answer still carries its id.
    """
    client, _ = runtime.ready()
    settings = runtime.settings

    async def waiting(elapsed: float, total: float, message: str) -> None:
        await ctx.report_progress(elapsed, total, message)

    began = time.monotonic()
    started_job = bool(extra)
    try:
        # For a job this call just started, even the first check must leave time to answer.
        with anyio.move_on_after(max(budget, FIRST_CHECK_SECONDS) if started_job else math.inf) as scope:
            result, waited = await jobs.wait_for_job(
                client,
                video_id,
                wait_seconds=budget,
                max_interval=settings.poll_max_interval,
                on_progress=waiting,
            )
        if scope.cancelled_caught:
            return _unknown(
                result_type, video_id, "PixVerse did not answer the status check in time.", began, extra
            )
        if runtime.slots is not None and result.status in jobs.TERMINAL_CODES:
            runtime.slots.finished(video_id)
        status = result_type.model_validate({**jobs.to_status(result, waited=waited).model_dump(), **extra})
        if result.status != 1:
            return answer(status)
        want_download = settings.auto_download if download is None else download
        return await finish(runtime, ctx, result, status, want_download, wait_left=budget - waited)
    except NotFoundError:
        if runtime.slots is not None:
            runtime.slots.finished(video_id)
        raise
    except Exception as exc:
        if not started_job:
            raise
        # The job exists; losing its id would make the user pay again to find out how it went.
        if not isinstance(exc, PixVerseError):
            log.exception("following job %s failed", video_id)
        return _unknown(result_type, video_id, f"Checking on it failed: {exc}", began, extra)


def _unknown(
    result_type: type[VideoStatus], video_id: int, reason: str, began: float, extra: dict[str, Any]
) -> CallToolResult:
    return answer(
        result_type(
            video_id=str(video_id),
            status="unknown",
            status_code=None,
            message=f"The job started. {reason} Call get_status with video_id {video_id} in a minute.",
            waited_seconds=round(time.monotonic() - began, 1),
            **extra,
        )
    )


async def finish(
    runtime: Runtime,
    ctx: Context,
    result: VideoResult,
    status: VideoStatus,
    want_download: bool,
    *,
    wait_left: float = 0.0,
) -> CallToolResult:
    """A succeeded job: save it when asked, and add the preview picture.

    Only an http(s) URL is fetched, under the fetch rules; the download gets the call's wait budget
    left plus a fixed allowance, the preview a few seconds; whatever fails, the answer keeps the
    status and the URL and says why there is no file or picture.
    """
    client, _ = runtime.ready()
    settings = runtime.settings
    if not result.url:
        status.message = (
            "PixVerse reports the video as done but gave no URL yet. Call get_status again in a moment."
        )
        return answer(status)
    if (refusal := unfetchable_reason(result.url)) is not None:
        status.message += f" {refusal}"
        status.preview_note = f"no preview picture: {refusal}"[:300]
        return answer(status)
    rules = FetchRules.for_base_url(client.base_url)
    local: Path | None = None
    if want_download:

        async def fetched(done: int, total: int) -> None:
            await ctx.report_progress(done, total, f"downloaded {done / 1e6:.1f} MB")

        try:
            local = await jobs.save_video(
                client,
                result,
                settings.output_dir,
                max_bytes=settings.max_download_bytes,
                seconds=jobs.download_seconds(wait_left, settings.timeouts.download),
                on_progress=fetched,
            )
            status.local_path = str(local)
        except TimeoutError_ as exc:
            # A host too slow for the download is too slow for a preview: answer now.
            status.message += f" Saving a local copy failed: {exc}"
            status.preview_note = "no preview picture: the video's host is too slow (see message)"
            return answer(status)
        except Exception as exc:  # the copy is optional; the url is the answer
            status.message += f" Saving a local copy failed: {exc}"
    preview: bytes | None = None
    # A preview is a nicety; the video is the answer, so it gets a few seconds at most. A local
    # preview reads only the file just saved; without one, the URL is read under the same rules.
    seconds = min(PREVIEW_SECONDS, settings.timeouts.download)
    try:
        preview = await jobs.make_preview(
            local if local is not None else result.url,
            rules=rules,
            max_bytes=settings.max_download_bytes,
            seconds=seconds,
        )
        if local is not None:
            with anyio.fail_after(SAVE_PREVIEW_SECONDS):
                saved = await jobs.save_beside(local, ".preview.jpg", preview)
            status.preview_path = str(saved)
    except TimeoutError:
        status.preview_note = "the preview picture is here, but saving it next to the video timed out"
    except Exception as exc:
        status.preview_note = f"no preview picture: {type(exc).__name__}: {exc}"[:300]
    return answer(status, preview, local)


def answer(status: VideoStatus, preview: bytes | None = None, local: Path | None = None) -> CallToolResult:
    """The tool result: the status as structured content and JSON text, plus picture and file link."""
    content: list[Any] = [TextContent(type="text", text=status.model_dump_json(indent=2, exclude_none=True))]
    if preview is not None:
        content.append(
            ImageContent(type="image", data=base64.b64encode(preview).decode(), mime_type="image/jpeg")
        )
    if local is not None:
        content.append(
            ResourceLink(
                type="resource_link",
                uri=local.resolve().as_uri(),
                name=local.name,
                mime_type="video/mp4",
                size=local.stat().st_size,
            )
        )
    return CallToolResult(content=content, structured_content=json.loads(status.model_dump_json()))
