"""The MCP server: tools, resources and a prompt over the modules that do the work.

`create_server(settings)` builds a ready `MCPServer`; the lifespan opens the PixVerse client (and,
in sandbox mode, the embedded sandbox) once, and every tool reads them from `Runtime`.
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
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import (
    CallToolResult,
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
    ToolAnnotations,
)
from pydantic import Field

from pixverse_mcp import __version__, arguments, flow, jobs, media
from pixverse_mcp.apps import ViewerApps
from pixverse_mcp.catalog import CatalogCache, matches
from pixverse_mcp.client import CallKind, RetryPolicy
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import InputError, PixVerseError
from pixverse_mcp.flow import Runtime, tool_call
from pixverse_mcp.results import BalanceResult, RestyleResult, Style, StyleCatalog, UploadResult, VideoStatus
from pixverse_mcp.wire import Restyle

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
Restyle videos with PixVerse. The usual flow: list_restyles to pick a style (or write a
restyle_prompt), upload_video with a local path or a public URL, restyle_video with the media_id,
then get_status until the job is done. Waiting calls return after wait_seconds at most (about
40 s by default, capped by the server); if the job is still generating, call get_status again with
the same video_id. restyle_video costs credits; every other tool is free. Ids are strings of
digits; pass them back as they came."""

ROOTS_TIMEOUT_SECONDS = 3.0
CATALOG_CHECK_SECONDS = 5.0

IdArg = Annotated[int | str, Field(description="A PixVerse id: an integer or a string of its digits.")]
WaitArg = Annotated[
    float | None,
    Field(description="Seconds to wait for the job to finish (default about 40; 0 answers at once)."),
]
DownloadArg = Annotated[
    bool | None, Field(description="Save the finished video to the server's output folder.")
]


def create_server(
    settings: Settings,
    *,
    policies: dict[CallKind, RetryPolicy] | None = None,
    client_roots: bool = True,
) -> MCPServer[Runtime]:
    """Build the MCP server for these settings.

    Args:
        settings: the configuration.
        policies: retry policies per kind of call, replacing the defaults (tests make them quick).
        client_roots: honour the folders an MCP client offers as roots. Only for a client on the
            same machine (stdio): over HTTP a client's roots would open the server's own disk.
    """
    runtime = Runtime(settings=settings, policies=policies, client_roots=client_roots)

    @asynccontextmanager
    async def lifespan(_: MCPServer[Runtime]) -> AsyncIterator[Runtime]:
        # In-process clients may enter the lifespan more than once; they share one PixVerse client.
        await runtime.open()
        try:
            yield runtime
        finally:
            await runtime.close()

    def wait_budget(wait_seconds: object) -> float:
        return arguments.wait_argument(
            wait_seconds, default=settings.default_wait_seconds, maximum=settings.max_wait_seconds
        )

    # The Restyle viewer (MCP Apps, pixverse_mcp/apps/): its view, app-only tools and tool bindings.
    viewer = ViewerApps(runtime)
    server: MCPServer[Runtime] = MCPServer(
        "pixverse-restyle",
        title="PixVerse Restyle",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan,
        log_level=settings.log_level if settings.log_level in _LEVELS else "INFO",  # type: ignore[arg-type]
        extensions=[viewer],
        middleware=[viewer.list_for_client],
    )

    @server.tool(
        title="List restyle styles",
        annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=True),
    )
    async def list_restyles(
        query: Annotated[
            str, Field(description="Words to look for in the style names and descriptions; empty lists all.")
        ] = "",
    ) -> StyleCatalog:
        """List the PixVerse restyle styles, optionally filtered by words in their name or description.

        Free. Use a style's restyle_id with restyle_video, or write your own restyle_prompt instead.
        """
        with tool_call("list_restyles"):
            query = arguments.text_argument(query, "query", max_len=200)
            _, catalog = runtime.ready()
            return _catalog_answer(await catalog.styles(), query)

    @server.tool(
        title="Upload a video",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=True),
    )
    async def upload_video(
        ctx: Context,
        path: Annotated[
            str | None,
            Field(
                description="A local mp4 or mov file: absolute, ~/..., or relative to the first allowed root."
            ),
        ] = None,
        url: Annotated[
            str | None, Field(description="A public http(s) URL of an mp4 or mov video; PixVerse fetches it.")
        ] = None,
    ) -> UploadResult:
        """Upload a video to PixVerse so it can be restyled; give exactly one of path or url.

        Free. A local file is checked first (mp4 or mov, at most 16 s, 50 MB and 1920 pixels on the
        longer side) and refused with the fix if it would not be accepted. Returns the media_id
        to pass to restyle_video as video_media_id.
        """
        with tool_call("upload_video"):
            chosen = arguments.exactly_one(path=path, url=url)
            client, _ = runtime.ready()
            if chosen == "url":
                checked_url = media.validate_video_url(
                    arguments.text_argument(url, "url", max_len=media.MAX_URL_LENGTH)
                )
                client.require_key()
                uploaded = await client.upload_url(checked_url)
                return UploadResult(
                    media_id=str(uploaded.media_id),
                    media_type=uploaded.media_type,
                    url=uploaded.url,
                    source="url",
                    message=_upload_message(uploaded.media_type, uploaded.media_id),
                )
            raw_path = arguments.text_argument(path, "path", max_len=4096)
            offered = await _client_roots(ctx) if runtime.client_roots else ()
            roots = (*settings.allowed_dirs, *offered)
            probe = await anyio.to_thread.run_sync(media.check_local_video, raw_path, roots)
            client.require_key()

            async def sent(done: int, total: int) -> None:
                await ctx.report_progress(done, total, f"uploaded {done / 1e6:.1f} of {total / 1e6:.1f} MB")

            uploaded = await client.upload_file(probe.path, on_progress=sent)
            return UploadResult(
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

    @server.tool(
        title="Restyle a video (costs credits)",
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=True
        ),
    )
    async def restyle_video(
        ctx: Context,
        video_media_id: Annotated[
            int | str | None,
            Field(description="The media_id from upload_video (give this or source_video_id)."),
        ] = None,
        source_video_id: Annotated[
            int | str | None, Field(description="A PixVerse video_id of a finished video of at most 16 s.")
        ] = None,
        restyle_id: Annotated[
            int | str | None,
            Field(description="A style's restyle_id from list_restyles (or give restyle_prompt)."),
        ] = None,
        restyle_prompt: Annotated[
            str | None, Field(description="Your own description of the look, 1 to 2048 characters.")
        ] = None,
        seed: Annotated[
            int | None, Field(description="Optional seed, 0 to 2147483647, to repeat a result.")
        ] = None,
        wait_seconds: WaitArg = None,
        download: DownloadArg = None,
        trace_id: Annotated[
            str | None,
            Field(
                description=(
                    "Only to recover from an earlier restyle_video call that failed after sending: pass its "
                    "trace id with the same arguments and PixVerse answers with the job it already made, "
                    "without charging again."
                )
            ),
        ] = None,
    ) -> Annotated[CallToolResult, RestyleResult]:
        """Start a restyle of a video with PixVerse. This COSTS CREDITS for every call that starts a job.

        Give exactly one source (video_media_id or source_video_id) and exactly one style
        (restyle_id or restyle_prompt). Waits up to wait_seconds for the result and answers with
        the video_id and status; if it is still generating, call get_status with that video_id
        instead of calling restyle_video again (that would start and pay for a second job).
        """
        with tool_call("restyle_video") as call:
            source_name = arguments.exactly_one(
                video_media_id=video_media_id, source_video_id=source_video_id
            )
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
            budget = wait_budget(wait_seconds)
            if trace_id is not None:
                trace_id = arguments.trace_id_argument(trace_id)
            client, catalog = runtime.ready()
            client.require_key()
            started_at = anyio.current_time()
            if "restyle_id" in body:
                await _check_restyle_id(catalog, body["restyle_id"])
            job, trace_id = await flow.start_restyle(
                runtime, body, ctx, deadline=started_at + budget, trace_id=trace_id
            )
            call.trace_id = trace_id
            extra = {
                "credits": job.credits,
                "trace_id": trace_id,
                "restyle_id": str(body["restyle_id"]) if "restyle_id" in body else None,
                "restyle_prompt": body.get("restyle_prompt"),
            }
            remaining = max(0.0, budget - (anyio.current_time() - started_at))
            return await flow.follow(
                runtime, ctx, job.video_id, remaining, download, result_type=RestyleResult, extra=extra
            )

    @server.tool(
        title="Get a restyle's status",
        annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=True),
    )
    async def get_status(
        ctx: Context,
        video_id: IdArg,
        wait_seconds: WaitArg = None,
        download: DownloadArg = None,
    ) -> Annotated[CallToolResult, VideoStatus]:
        """Check a restyle job, waiting up to wait_seconds for it to finish. Free.

        Answers with status succeeded (with the video url), generating (call again), deleted,
        moderation_failed (change the input; credits are refunded), failed or unknown.
        """
        with tool_call("get_status"):
            checked_id = arguments.id_argument(video_id, "video_id")
            budget = wait_budget(wait_seconds)
            client, _ = runtime.ready()
            client.require_key()
            return await flow.follow(
                runtime, ctx, checked_id, budget, download, result_type=VideoStatus, extra={}
            )

    @server.tool(
        title="Get the credit balance",
        annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=True),
    )
    async def get_balance() -> BalanceResult:
        """Show the PixVerse account's credits (monthly, package and total). Free."""
        with tool_call("get_balance"):
            client, _ = runtime.ready()
            balance = await client.balance()
            monthly, package = balance.credit_monthly or 0, balance.credit_package or 0
            return BalanceResult(
                account_id=str(balance.account_id) if balance.account_id is not None else None,
                credit_monthly=monthly,
                credit_package=package,
                total=monthly + package,
                message=f"{monthly + package} credits left ({monthly} monthly, {package} from packages).",
            )

    @server.resource(
        "pixverse://restyles",
        name="restyle-catalog",
        title="PixVerse restyle catalog",
        description="Every restyle style with its id, name, description, prompt and cover picture.",
        mime_type="application/json",
    )
    async def restyle_catalog() -> str:
        try:
            _, catalog = runtime.ready()
            return _catalog_answer(await catalog.styles(), "").model_dump_json(indent=2)
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
            client, _ = runtime.ready()
            result = await client.video_result(checked)
            return jobs.to_status(result).model_dump_json(indent=2)
        except (PixVerseError, ToolError) as exc:
            raise ResourceError(str(exc)) from None

    @server.prompt(title="Restyle a video")
    def restyle(video: str, style: str = "") -> str:
        """Walk through restyling a video: pick a style, upload, restyle, wait, hand over the result.

        Args:
            video: a local path or public URL of the video
            style: a style name or id from the catalog, or words describing the look
        """
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

    @server.completion()  # type: ignore[no-untyped-call, untyped-decorator]
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion | None:
        if not (isinstance(ref, PromptReference) and ref.name == "restyle" and argument.name == "style"):
            return None
        try:
            _, catalog = runtime.ready()
            styles = await catalog.styles()
        except (PixVerseError, ToolError):
            return Completion(values=[], total=0, has_more=False)
        typed = argument.value.casefold()
        names = [s.name for s in styles if typed in s.name.casefold() or typed in str(s.restyle_id)]
        return Completion(values=names[:100], total=len(names), has_more=len(names) > 100)

    return server


_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def _catalog_answer(styles: list[Restyle], query: str) -> StyleCatalog:
    chosen = [s for s in styles if matches(s, query)] if query.strip() else list(styles)
    if chosen:
        message = "Pass a style's restyle_id to restyle_video, or describe your own look with restyle_prompt."
    else:
        message = f"No style matches {query!r}; list all styles with an empty query, or use restyle_prompt."
    return StyleCatalog(
        styles=[
            Style(
                restyle_id=str(s.restyle_id),
                name=s.name,
                description=s.description,
                prompt=s.prompt,
                cover_url=s.cover_url,
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


async def _check_restyle_id(catalog: CatalogCache, restyle_id: int) -> None:
    """Refuse a restyle_id the catalog does not list; if the catalog cannot be read, let PixVerse judge."""
    styles = []
    try:
        # A slow catalog must not eat the call's time: if it does not come quickly, PixVerse judges.
        with anyio.move_on_after(CATALOG_CHECK_SECONDS):
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
