"""The MCP server: tools, resources and a prompt over the modules that do the work.

`create_server(settings)` builds a ready server; the lifespan opens the PixVerse client (and, in
sandbox mode, the embedded sandbox) once, and every tool reads it from the `Runtime`. Each tool is
declared with `tooling.register`: named after its function, logged, errors mapped, schema tight.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlparse

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    CallToolResult,
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
    ToolAnnotations,
)
from pydantic import Field

from pixverse_mcp import __version__, arguments, jobs, logs, rules
from pixverse_mcp.budget import CATALOG_CHECK_SECONDS, CallBudget, CallProgress
from pixverse_mcp.catalog import CatalogCache, search
from pixverse_mcp.client import CallKind, RetryPolicy
from pixverse_mcp.config import Settings
from pixverse_mcp.delivery import structured
from pixverse_mcp.errors import InputError, NotFoundError, PixVerseError
from pixverse_mcp.restyle import follow, start_restyle
from pixverse_mcp.results import BalanceResult, RestyleResult, Style, StyleCatalog, UploadResult, VideoStatus
from pixverse_mcp.runtime import Runtime
from pixverse_mcp.tooling import PixVerseServer, clean_doc, register, tool_parameters
from pixverse_mcp.wire import Restyle

log = logging.getLogger(__name__)

ROOTS_TIMEOUT_SECONDS = 3.0
READ_ONLY = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=True)
WaitArg = Annotated[
    Any, arguments.WAIT_SCHEMA, Field(description="Seconds to wait for the job to end (0 answers at once).")
]
DownloadArg = Annotated[bool | None, Field(description="Save the finished video in the output folder.")]


def _instructions(settings: Settings) -> str:
    return (
        "Restyle videos with PixVerse: list_restyles to pick a style (or write a restyle_prompt), "
        "upload_video with a local path or a public URL, restyle_video with the media_id, then "
        "get_status until the job is done. Waiting calls return within about "
        f"{settings.default_wait_seconds:g} s by default; if the job is still generating, call "
        "get_status again with the same video_id. "
        "restyle_video costs credits; every other tool is free. Ids are strings of digits; pass them back "
        "as they came."
    )


def create_server(
    settings: Settings,
    *,
    policies: dict[CallKind, RetryPolicy] | None = None,
    client_roots: bool = True,
) -> PixVerseServer:
    """Build the MCP server for these settings.

    Args:
        settings: the configuration.
        policies: retry policies per kind of call, replacing the defaults (tests make them quick).
        client_roots: honour the folders an MCP client offers as roots. Only for a client on the
            same machine (stdio): over HTTP a client's roots would open the server's own disk.
    """
    logs.quiet_libraries()
    runtime = Runtime(settings=settings, policies=policies, client_roots=client_roots)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[Runtime]:
        # In-process clients may enter the lifespan more than once; they share one PixVerse client.
        await runtime.open()
        try:
            yield runtime
        finally:
            await runtime.close()

    server = PixVerseServer(
        "pixverse-restyle",
        title="PixVerse Restyle",
        instructions=_instructions(settings),
        version=__version__,
        lifespan=lifespan,
        log_level=settings.log_level,  # type: ignore[arg-type]
    )

    def budget_for(wait_seconds: object) -> CallBudget:
        wait = arguments.wait_argument(
            wait_seconds, default=settings.default_wait_seconds, maximum=settings.max_wait_seconds
        )
        return CallBudget.start(wait, settings.max_wait_seconds)

    @register(server, title="List restyle styles", annotations=READ_ONLY)
    async def list_restyles(
        query: Annotated[
            str, Field(description="Words to look for in style names (empty lists all).", max_length=200)
        ] = "",
    ) -> Annotated[CallToolResult, StyleCatalog]:
        """List PixVerse's restyle styles, optionally those matching words. Free.

        Pass a style's restyle_id to restyle_video, or describe your own look with restyle_prompt.
        """
        query = arguments.text_argument(query, "query", max_len=200)
        return structured(_catalog_answer(await runtime.styles.styles(), query))

    @register(
        server,
        title="Upload a video",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=True),
    )
    async def upload_video(
        ctx: Context,
        path: Annotated[
            str | None,
            Field(description="A local mp4/mov: absolute, ~/..., or relative to the first allowed folder."),
        ] = None,
        url: Annotated[
            str | None, Field(description="A public http(s) URL of an mp4/mov; PixVerse fetches it.")
        ] = None,
    ) -> Annotated[CallToolResult, UploadResult]:
        """Upload a video to PixVerse for restyling; give exactly one of path or url. Free.

        Free. A local file is checked first (a regular mp4 or mov inside the allowed folders, at most
        16 s, 50 MB and 1920 px on the longer side) and refused with the fix if PixVerse would refuse
        it; it must not change while it uploads. Returns the media_id for restyle_video.
        """
        chosen = arguments.exactly_one(path=path, url=url)
        client = runtime.api
        if chosen == "url":
            checked_url = arguments.validate_video_url(
                arguments.text_argument(url, "url", max_len=arguments.MAX_URL_LENGTH)
            )
            client.require_key()
            uploaded = await client.upload_url(checked_url)
            return structured(
                UploadResult(
                    media_id=str(uploaded.media_id),
                    media_type=uploaded.media_type,
                    url=uploaded.url,
                    source="url",
                    message=_upload_message(uploaded.media_type, uploaded.media_id),
                )
            )
        raw_path = arguments.text_argument(path, "path", max_len=4096)
        offered = await _client_roots(ctx) if runtime.client_roots else ()
        roots = (*settings.allowed_dirs, *offered)
        # Opened once: the probe and the upload read the same descriptor, never the name again.
        with await anyio.to_thread.run_sync(rules.check_local_video, raw_path, roots) as checked:
            probe = checked.probe
            client.require_key()

            async def sent(done: int, total: int) -> None:
                await ctx.report_progress(done, total, f"uploaded {done / 1e6:.1f} of {total / 1e6:.1f} MB")

            uploaded = await client.upload_file(
                checked.file, file_name=probe.path.name, content_type=probe.mime_type, on_progress=sent
            )
        return structured(
            UploadResult(
                media_id=str(uploaded.media_id),
                media_type=uploaded.media_type,
                url=uploaded.url,
                source="file",
                file_name=probe.path.name,
                duration_seconds=round(probe.duration_seconds, 2),
                width=probe.width,
                height=probe.height,
                size_bytes=probe.size_bytes,
                message=_upload_message(uploaded.media_type, uploaded.media_id),
            )
        )

    @register(
        server,
        title="Restyle a video (costs credits)",
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=True
        ),
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
        """Start a PixVerse restyle of a video. COSTS CREDITS for every call that starts a job.

        Give exactly one source (video_media_id or source_video_id) and one style (restyle_id or
        restyle_prompt). Waits up to wait_seconds and answers with the video_id and status; if it is
        still generating, call get_status with that video_id, not restyle_video again (that would start
        and pay for a second job).
        """
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
        budget = budget_for(wait_seconds)
        if trace_id is not None:
            trace_id = arguments.trace_id_argument(trace_id)
        runtime.api.require_key()
        progress = CallProgress(ctx, budget)
        if "restyle_id" in body:
            await _check_restyle_id(runtime.styles, body["restyle_id"], budget)
        started = await start_restyle(runtime, body, budget, progress, trace_id=trace_id)
        extra = {
            "credits": started.job.credits,
            "trace_id": started.trace_id,
            "restyle_id": str(body["restyle_id"]) if "restyle_id" in body else None,
            "restyle_prompt": body.get("restyle_prompt"),
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
            Any, arguments.ID_SCHEMA, Field(description="The video_id restyle_video answered.")
        ],
        wait_seconds: WaitArg = None,
        download: DownloadArg = None,
    ) -> Annotated[CallToolResult, VideoStatus]:
        """Check a restyle job, waiting up to wait_seconds for it to end. Free.

        Status: succeeded (with the url), generating (call again), deleted, moderation_failed (change the
        input; credits are refunded), failed or unknown.
        """
        checked_id = arguments.id_argument(video_id, "video_id")
        budget = budget_for(wait_seconds)
        runtime.api.require_key()
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

    @register(server, title="Get the credit balance", annotations=READ_ONLY)
    async def get_balance() -> Annotated[CallToolResult, BalanceResult]:
        """Show the PixVerse account's credits (monthly, package and total). Free."""
        balance = await runtime.api.balance()
        monthly, package = balance.credit_monthly or 0, balance.credit_package or 0
        return structured(
            BalanceResult(
                account_id=str(balance.account_id) if balance.account_id is not None else None,
                credit_monthly=monthly,
                credit_package=package,
                total=monthly + package,
                message=f"{monthly + package} credits left ({monthly} monthly, {package} from packages).",
            )
        )

    @server.resource(
        "pixverse://restyles",
        name="restyle-catalog",
        title="PixVerse restyle catalog",
        description="Every restyle style with its id, name and thumbnail, as JSON.",
        mime_type="application/json",
    )
    async def restyle_catalog() -> str:
        try:
            return _catalog_answer(await runtime.styles.styles(), "").model_dump_json(exclude_none=True)
        except (PixVerseError, ToolError) as exc:
            raise ResourceError(str(exc)) from None

    @server.resource(
        "pixverse://videos/{video_id}",
        name="restyle-video",
        title="A restyle job's status",
        description="The current status of a restyle job as JSON (no waiting).",
        mime_type="application/json",
    )
    async def video_resource(video_id: str) -> str:
        try:
            checked = arguments.id_argument(video_id, "video_id")
        except InputError as exc:
            # A malformed id is the caller's mistake: invalid params, not a server failure.
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        try:
            result = await runtime.api.video_result(checked)
            return jobs.to_status(result, wait_seconds=settings.default_wait_seconds).model_dump_json(
                exclude_none=True
            )
        except NotFoundError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        except (PixVerseError, ToolError) as exc:
            raise ResourceError(str(exc)) from None

    def restyle(
        video: Annotated[str, Field(description="The video: a local path or a public http(s) URL.")],
        style: Annotated[
            str, Field(description="A style name or id from the catalog, or words describing the look.")
        ] = "",
    ) -> str:
        """Restyle a video step by step: pick a style, upload, restyle, wait, hand over the result."""
        wanted = style.strip() or "one that suits the video (ask me if unsure)"
        return (
            f"Please restyle this video with PixVerse: {video}\n"
            f"Style: {wanted}\n\n"
            "Steps:\n"
            "1. Call list_restyles (with a query if I named a style) and pick the matching restyle_id; "
            "if none matches, use my words as restyle_prompt instead.\n"
            "2. Call upload_video with the path (or url) above and keep the media_id.\n"
            "3. Call restyle_video once with video_media_id and the style. It costs credits: never call "
            "it twice for the same request.\n"
            "4. If the answer says generating, call get_status with the video_id until it says succeeded, "
            "moderation_failed or failed.\n"
            "5. Give me the video url (and local_path if it was saved), and what the status message says."
        )

    server.prompt(title="Restyle a video", description=clean_doc(restyle))(restyle)

    _publish_wait_bounds(server, settings)

    @server.completion()  # type: ignore[no-untyped-call, untyped-decorator]
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion | None:
        if not (isinstance(ref, PromptReference) and ref.name == "restyle" and argument.name == "style"):
            return None
        try:
            styles = await runtime.styles.styles()
        except (PixVerseError, ToolError):
            return Completion(values=[], total=0, has_more=False)
        typed = argument.value.casefold()
        names = [s.name for s in styles if typed in s.name.casefold() or typed in str(s.restyle_id)]
        return Completion(values=names[:100], total=len(names), has_more=len(names) > 100)

    return server


def _publish_wait_bounds(server: PixVerseServer, settings: Settings) -> None:
    """Put this server's default and longest wait into the wait_seconds schemas, from the settings."""
    for name in ("restyle_video", "get_status"):
        wait = tool_parameters(server, name)["properties"]["wait_seconds"]
        wait["maximum"] = settings.max_wait_seconds
        wait["description"] = (
            f"Seconds to wait for the job to end (default {settings.default_wait_seconds:g}, "
            f"at most {settings.max_wait_seconds:g}; 0 answers at once)."
        )


def _catalog_answer(styles: list[Restyle], query: str) -> StyleCatalog:
    chosen = search(styles, query)
    if chosen:
        message = "Pass a style's restyle_id to restyle_video, or describe your own look with restyle_prompt."
    else:
        message = f"No style matches {query!r}; list all styles with an empty query, or use restyle_prompt."
    return StyleCatalog(
        styles=[
            Style(
                restyle_id=str(s.restyle_id),
                name=s.name,
                description=s.description or None,
                prompt=s.prompt or None,
                thumbnail=s.cover_url,
                marker=s.marker or None,
            )
            for s in chosen
        ],
        count=len(chosen),
        total=len(styles),
        query=query,
        message=message,
    )


def _upload_message(media_type: str, media_id: int) -> str:
    if media_type != "video":
        return f"PixVerse stored this as {media_type}, not video: restyle needs a video file."
    return f"Uploaded. Call restyle_video with video_media_id {media_id!s} and a style."


async def _client_roots(ctx: Context) -> tuple[Path, ...]:
    """The folders the MCP client offers as roots, where it supports them (handshake-era sessions)."""
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.roots is None:
        return ()
    try:
        with warnings.catch_warnings(), anyio.fail_after(ROOTS_TIMEOUT_SECONDS):
            # Deprecated in the 2026-07-28 protocol, still what desktop clients of the handshake era use.
            warnings.simplefilter("ignore")
            listed = await ctx.session.list_roots()
    except Exception as exc:  # a client that cannot answer simply offers no roots
        log.info("could not list the client's roots: %s", type(exc).__name__)
        return ()
    folders = []
    for root in listed.roots:
        uri = urlparse(str(root.uri))
        if uri.scheme == "file":
            # Resolved later, with the other roots, in the worker thread that checks the file.
            folders.append(Path(unquote(uri.path)))
    return tuple(folders)


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
