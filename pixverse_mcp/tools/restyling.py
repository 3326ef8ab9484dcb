"""The job tools: restyle_video (paid) starts a job and follows it, get_status follows one."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from pixverse_mcp import arguments
from pixverse_mcp.bookkeeping import job_start
from pixverse_mcp.budget import CATALOG_CHECK_SECONDS, CallBudget, CallProgress
from pixverse_mcp.catalog import CatalogCache
from pixverse_mcp.client import new_trace_id
from pixverse_mcp.delivery import structured
from pixverse_mcp.errors import InputError, PixVerseError
from pixverse_mcp.journal import request_key
from pixverse_mcp.restyle import follow, start_restyle
from pixverse_mcp.results import JobStatus, RestyleResult, VideoStatus
from pixverse_mcp.runtime import Runtime
from pixverse_mcp.spendguard import SpendCheck, balance_total, check_spend
from pixverse_mcp.tooling import PAID, READ_ONLY, PixVerseServer, note_call, register, tool_parameters
from pixverse_mcp.tools.upload import client_roots

log = logging.getLogger(__name__)

WaitArg = Annotated[
    Any, arguments.WAIT_SCHEMA, Field(description="Seconds to wait for the job to end (0 answers at once).")
]
DownloadArg = Annotated[bool | None, Field(description="Save the finished video in the output folder.")]


def install(server: PixVerseServer, runtime: Runtime) -> None:
    """Register restyle_video and get_status."""
    settings = runtime.settings

    def budget_for(wait_seconds: object) -> CallBudget:
        wait = arguments.wait_argument(
            wait_seconds, default=settings.default_wait_seconds, maximum=settings.max_wait_seconds
        )
        return CallBudget.start(wait, settings.max_wait_seconds)

    @register(
        server,
        title="Restyle a video (costs credits)",
        annotations=PAID,
    )
    async def restyle_video(
        ctx: Context,
        video_media_id: Annotated[
            Any,
            arguments.OPTIONAL_ID_SCHEMA,
            Field(description="media_id from upload_video (or source_video_id)."),
        ] = None,
        source_video_id: Annotated[
            Any,
            arguments.OPTIONAL_ID_SCHEMA,
            Field(description="video_id of a finished video of at most 16 s."),
        ] = None,
        restyle_id: Annotated[
            Any,
            arguments.OPTIONAL_ID_SCHEMA,
            Field(description="restyle_id from list_restyles (or restyle_prompt)."),
        ] = None,
        restyle_prompt: Annotated[
            Any, arguments.PROMPT_SCHEMA, Field(description="Your own description of the look.")
        ] = None,
        seed: Annotated[
            Any, arguments.SEED_SCHEMA, Field(description="Optional seed, to repeat a result.")
        ] = None,
        wait_seconds: WaitArg = None,
        download: DownloadArg = None,
        dry_run: Annotated[
            bool, Field(description="Start nothing: answer the estimated cost, the caps and the balance.")
        ] = False,
        trace_id: Annotated[
            str | None,
            Field(
                description=(
                    "Only to recover a call that failed after sending: its trace_id, same arguments; "
                    "PixVerse answers with the job it made for it."
                )
            ),
        ] = None,
    ) -> Annotated[CallToolResult, RestyleResult]:
        """Start a PixVerse restyle of a video. COSTS CREDITS for every job it starts.

        Give one source (video_media_id or source_video_id) and one style (restyle_id or
        restyle_prompt). Waits up to wait_seconds; if the answer says generating, call get_status with
        its video_id, not restyle_video again (that would pay for a second job).
        """
        body = restyle_body(video_media_id, source_video_id, restyle_id, restyle_prompt, seed)
        budget = budget_for(wait_seconds)
        if trace_id is not None:
            trace_id = arguments.trace_id_argument(trace_id)
        runtime.api.require_key()
        progress = CallProgress(ctx, budget)
        if "restyle_id" in body:
            await _check_restyle_id(runtime.styles, body["restyle_id"], budget)
        notes: list[str] = []
        if trace_id is None and (reused := await runtime.journal.find_recent_uncertain(request_key(body))):
            trace_id = reused
            notes.append(
                f"An earlier restyle with the same arguments ended with its outcome unknown; its trace id "
                f"{reused} was sent again, so PixVerse answered with the job it made for it, if any."
            )
        start = await job_start(runtime, body, trace_id or new_trace_id(), client_name=client_name(ctx))
        check = await check_spend(runtime, ctx, [start], dry_run=dry_run)
        if check.note:
            notes.append(check.note)
        style = {
            "restyle_id": str(body["restyle_id"]) if "restyle_id" in body else None,
            "restyle_prompt": body.get("restyle_prompt"),
        }
        if dry_run:
            return await dry_run_answer(runtime, check, style, notes)
        started = await start_restyle(runtime, body, budget, progress, start)
        note_call(trace_id=started.trace_id, video_id=started.job.video_id)
        extra = {
            "credits": started.job.credits,
            "estimated_credits": check.estimate.credits,
            "balance_after": await balance_total(runtime),
            "trace_id": started.trace_id,
            "note": " ".join(notes) or None,
            **style,
        }
        return await follow(
            runtime,
            started.job.video_id,
            budget,
            progress,
            download,
            result_type=RestyleResult,
            extra=extra,
            started_here=True,
        )

    @register(server, title="Get a restyle's status", annotations=READ_ONLY)
    async def get_status(
        ctx: Context,
        video_id: Annotated[
            Any, arguments.OPTIONAL_ID_SCHEMA, Field(description="The video_id restyle_video answered.")
        ] = None,
        group_id: Annotated[str | None, Field(description="Or the group_id of restyle_many.")] = None,
        wait_seconds: WaitArg = None,
        download: DownloadArg = None,
    ) -> Annotated[CallToolResult, JobStatus]:
        """Check a restyle job (or a restyle_many group), waiting up to wait_seconds for it to end. Free.

        Status: succeeded (with the url), generating (call again), deleted, moderation_failed (change the
        input; credits are refunded), failed or unknown.
        """
        arguments.exactly_one(video_id=video_id, group_id=group_id)
        budget = budget_for(wait_seconds)
        runtime.api.require_key()
        if group_id is not None:
            offered = await client_roots(ctx) if runtime.client_roots else ()
            from pixverse_mcp.groups import follow_group  # on first use: see tools/groups.py

            return await follow_group(
                runtime,
                ctx,
                group_id,
                budget=budget,
                download=download,
                roots=(*settings.allowed_dirs, *offered),
            )
        checked_id = arguments.id_argument(video_id, "video_id")
        return await follow(
            runtime,
            checked_id,
            budget,
            CallProgress(ctx, budget),
            download,
            result_type=VideoStatus,
            extra={},
            started_here=False,
        )

    for name in ("restyle_video", "get_status"):
        publish_wait_bounds(server, runtime, name, what="the job to end")


def publish_wait_bounds(server: PixVerseServer, runtime: Runtime, name: str, *, what: str) -> None:
    """Put this server's default and longest wait into a tool's wait_seconds schema, from the settings."""
    settings = runtime.settings
    wait = tool_parameters(server, name)["properties"]["wait_seconds"]
    wait["maximum"] = settings.max_wait_seconds
    wait["description"] = (
        f"Seconds to wait for {what} (default {settings.default_wait_seconds:g}, "
        f"at most {settings.max_wait_seconds:g}; 0 answers at once)."
    )


async def _check_restyle_id(catalog: CatalogCache, restyle_id: int, budget: CallBudget) -> None:
    """Refuse a restyle_id the catalog does not list; if the catalog cannot be read, let PixVerse judge."""
    styles = []
    try:
        # A slow catalog must not eat the call's time: if it does not come quickly, PixVerse judges.
        with anyio.move_on_after(budget.step(CATALOG_CHECK_SECONDS, at_least=CATALOG_CHECK_SECONDS)):
            styles = await catalog.styles()
    except PixVerseError as exc:
        log.info("could not read the catalog to check restyle_id: %s", type(exc).__name__)
        return
    if styles and all(style.restyle_id != restyle_id for style in styles):
        raise InputError(
            f"restyle_id {restyle_id} is not in the PixVerse restyle catalog. "
            "Call list_restyles for the valid ids, or describe the look with restyle_prompt.",
            argument="restyle_id",
        )


def restyle_body(
    video_media_id: object, source_video_id: object, restyle_id: object, restyle_prompt: object, seed: object
) -> dict[str, Any]:
    """The generate request's body from the tool arguments, every rule checked (nothing is sent yet)."""
    source_name = arguments.exactly_one(video_media_id=video_media_id, source_video_id=source_video_id)
    style_name = arguments.exactly_one(restyle_id=restyle_id, restyle_prompt=restyle_prompt)
    body: dict[str, Any] = {
        source_name: arguments.id_argument(
            video_media_id if source_name == "video_media_id" else source_video_id, source_name
        )
    }
    if style_name == "restyle_id":
        body["restyle_id"] = arguments.id_argument(restyle_id, "restyle_id")
    else:
        body["restyle_prompt"] = arguments.prompt_argument(restyle_prompt)
    if (checked_seed := arguments.seed_argument(seed)) is not None:
        body["seed"] = checked_seed
    return body


def client_name(ctx: Context) -> str | None:
    """The MCP client's name (clientInfo), for the journal; None when it did not say."""
    try:
        info = ctx.session.client_params.client_info if ctx.session.client_params else None
    except Exception:
        return None
    return info.name[:100] if info is not None else None


async def dry_run_answer(
    runtime: Runtime, check: SpendCheck, style: dict[str, Any], notes: list[str]
) -> CallToolResult:
    balance = await balance_total(runtime)
    cost = check.estimate.credits
    left = balance - cost if balance is not None and cost is not None else None
    have = f" You have {balance:,} credits." if balance is not None else ""
    return structured(
        RestyleResult(
            status="dry_run",
            status_code=None,
            message=f"Nothing was started. This restyle would cost {check.estimate.describe()}.{have} "
            "Call restyle_video again without dry_run to start it.",
            estimated_credits=cost,
            balance_after=left,
            note=" ".join(notes) or None,
            **style,
        )
    )
