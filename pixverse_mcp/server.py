"""The MCP server: tools, resources and a prompt over the modules that do the work.

`create_server(settings)` builds a ready `MCPServer`; the lifespan opens the PixVerse client (and,
in sandbox mode, the embedded sandbox) once, and every tool reads them from `Runtime`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import (
    CallToolResult,
    Completion,
    CompletionArgument,
    CompletionContext,
    ImageContent,
    PromptReference,
    ResourceLink,
    ResourceTemplateReference,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel, Field, SecretStr

from pixverse_mcp import __version__, arguments, jobs, media
from pixverse_mcp.catalog import CatalogCache, matches
from pixverse_mcp.client import CallKind, PixVerseClient, RetryPolicy
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import BusyError, InputError, PixVerseError
from pixverse_mcp.jobs import VideoStatus
from pixverse_mcp.results import BalanceResult, RestyleResult, Style, StyleCatalog, UploadResult
from pixverse_mcp.wire import VideoResult

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
Restyle videos with PixVerse. The usual flow: list_restyles to pick a style (or write a
restyle_prompt), upload_video with a local path or a public URL, restyle_video with the media_id,
then get_status until the job is done. Waiting calls return after at most about 40 s; if the job
is still generating, call get_status again with the same video_id. restyle_video costs credits;
every other tool is free. Ids are strings of digits; pass them back as they came."""

SLOT_WAIT_FIRST = 2.0
SLOT_WAIT_MAX = 8.0
MAX_URL_CHARS = media.MAX_URL_LENGTH

IdArg = Annotated[int | str, Field(description="A PixVerse id: an integer or a string of its digits.")]


@dataclass
class Runtime:
    """What the lifespan opens once and every tool shares."""

    settings: Settings
    policies: dict[CallKind, RetryPolicy] | None = None
    client: PixVerseClient | None = None
    catalog: CatalogCache | None = None
    active: int = 0
    _stack: Any = field(default=None, repr=False)

    def ready(self) -> tuple[PixVerseClient, CatalogCache]:
        if self.client is None or self.catalog is None:
            raise ToolError("The server is still starting or already stopping; try again in a moment.")
        return self.client, self.catalog


@contextmanager
def tool_errors(tool: str) -> Iterator[None]:
    """Turn every failure into a ToolError the model can read; never leak internals or secrets."""
    try:
        yield
    except ToolError:
        raise
    except PixVerseError as exc:
        raise ToolError(str(exc)) from None
    except Exception as exc:
        log.exception("%s failed unexpectedly", tool)
        raise ToolError(
            f"{tool} failed unexpectedly ({type(exc).__name__}). Nothing more is known to this server; "
            "try again, and if it keeps failing, check the server's log."
        ) from None


def _json_content(model: BaseModel) -> TextContent:
    return TextContent(type="text", text=model.model_dump_json(indent=2, exclude_none=True))


def create_server(
    settings: Settings,
    *,
    policies: dict[CallKind, RetryPolicy] | None = None,
) -> MCPServer[Runtime]:
    """Build the MCP server for these settings."""
    runtime = Runtime(settings=settings, policies=policies)

    @asynccontextmanager
    async def lifespan(_: MCPServer[Runtime]) -> AsyncIterator[Runtime]:
        # In-process clients may enter the lifespan more than once; share one client between them.
        if runtime.active == 0:
            runtime._stack = await _open_runtime(runtime)
        runtime.active += 1
        try:
            yield runtime
        finally:
            runtime.active -= 1
            if runtime.active == 0:
                await runtime._stack.aclose()
                runtime.client = runtime.catalog = None

    server: MCPServer[Runtime] = MCPServer(
        "pixverse-restyle",
        title="PixVerse Restyle",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan,
        log_level=settings.log_level if settings.log_level in _LEVELS else "INFO",  # type: ignore[arg-type]
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
        with tool_errors("list_restyles"):
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
        with tool_errors("upload_video"):
            chosen = arguments.exactly_one(path=path, url=url)
            client, _ = runtime.ready()
            if chosen == "url":
                checked_url = media.validate_video_url(
                    arguments.text_argument(url, "url", max_len=MAX_URL_CHARS)
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
            roots = settings.allowed_dirs
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
        wait_seconds: Annotated[
            float | None,
            Field(description="Seconds to wait for the result (default about 40; 0 answers at once)."),
        ] = None,
        download: Annotated[
            bool | None, Field(description="Save the finished video to the server's output folder.")
        ] = None,
    ) -> Annotated[CallToolResult, RestyleResult]:
        """Start a restyle of a video with PixVerse. This COSTS CREDITS for every call that starts a job.

        Give exactly one source (video_media_id or source_video_id) and exactly one style
        (restyle_id or restyle_prompt). Waits up to wait_seconds for the result and answers with
        the video_id and status; if it is still generating, call get_status with that video_id
        instead of calling restyle_video again (that would start and pay for a second job).
        """
        with tool_errors("restyle_video"):
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
            budget = arguments.wait_argument(
                wait_seconds, default=settings.default_wait_seconds, maximum=settings.max_wait_seconds
            )
            client, catalog = runtime.ready()
            client.require_key()
            if "restyle_id" in body and await catalog.find(body["restyle_id"]) is None:
                raise InputError(
                    f"restyle_id {body['restyle_id']} is not in the PixVerse restyle catalog. "
                    "Call list_restyles for the valid ids, or describe the look with restyle_prompt.",
                    argument="restyle_id",
                )
            started_at = anyio.current_time()
            job, trace_id = await _start_restyle(client, body, ctx, deadline=started_at + budget)
            extra = {
                "credits": job.credits,
                "trace_id": trace_id,
                "restyle_id": str(body["restyle_id"]) if "restyle_id" in body else None,
                "restyle_prompt": body.get("restyle_prompt"),
            }
            remaining = max(0.0, budget - (anyio.current_time() - started_at))
            return await _follow(
                runtime, ctx, job.video_id, remaining, download, result_type=RestyleResult, extra=extra
            )

    @server.tool(
        title="Get a restyle's status",
        annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=True),
    )
    async def get_status(
        ctx: Context,
        video_id: IdArg,
        wait_seconds: Annotated[
            float | None,
            Field(description="Seconds to wait for the job to finish (default about 40; 0 answers at once)."),
        ] = None,
        download: Annotated[
            bool | None, Field(description="Save the finished video to the server's output folder.")
        ] = None,
    ) -> Annotated[CallToolResult, VideoStatus]:
        """Check a restyle job, waiting up to wait_seconds for it to finish. Free.

        Answers with status succeeded (with the video url), generating (call again), deleted,
        moderation_failed (change the input; credits are refunded), failed or unknown.
        """
        with tool_errors("get_status"):
            checked_id = arguments.id_argument(video_id, "video_id")
            budget = arguments.wait_argument(
                wait_seconds, default=settings.default_wait_seconds, maximum=settings.max_wait_seconds
            )
            client, _ = runtime.ready()
            client.require_key()
            return await _follow(
                runtime, ctx, checked_id, budget, download, result_type=VideoStatus, extra={}
            )

    @server.tool(
        title="Get the credit balance",
        annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=True),
    )
    async def get_balance() -> BalanceResult:
        """Show the PixVerse account's credits (monthly, package and total). Free."""
        with tool_errors("get_balance"):
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


async def _open_runtime(runtime: Runtime) -> Any:
    """Open the client (and the embedded sandbox in sandbox mode); returns what closes them."""
    from contextlib import AsyncExitStack

    stack = AsyncExitStack()
    settings = runtime.settings
    if settings.sandbox:
        # Imported here: a normal start should not pay for the sandbox's imports.
        from pixverse_mcp.sandbox import SandboxConfig, SandboxServer

        config = SandboxConfig()
        sandbox = SandboxServer(config)
        await anyio.to_thread.run_sync(sandbox.start)
        stack.callback(sandbox.stop)
        settings = settings.with_changes(base_url=sandbox.base_url, api_key=SecretStr(config.api_key))
        log.info("sandbox mode: the PixVerse sandbox is serving at %s", sandbox.base_url)
    client = PixVerseClient(settings, policies=runtime.policies)
    stack.push_async_callback(client.aclose)
    runtime.client = client
    runtime.catalog = CatalogCache(client, settings.catalog_ttl_seconds)
    return stack


def _catalog_answer(styles: list[Any], query: str) -> StyleCatalog:
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


async def _start_restyle(
    client: PixVerseClient, body: dict[str, Any], ctx: Context, *, deadline: float
) -> tuple[Any, str]:
    """Start the job; when the plan's concurrency is used up (500044), wait for a slot until `deadline`."""
    pause = SLOT_WAIT_FIRST
    waited_from = anyio.current_time()
    while True:
        try:
            return await client.restyle(body)
        except BusyError as exc:
            if exc.code != 500044:
                raise
            now = anyio.current_time()
            pause = exc.retry_after if exc.retry_after is not None else pause
            if now + pause > deadline:
                raise ToolError(
                    f"{exc} Waited {now - waited_from:.0f} s for a free generation slot; none came free. "
                    "No job was started and no credits were spent."
                ) from None
            await ctx.report_progress(
                now - waited_from, None, f"waiting for a free generation slot ({now - waited_from:.0f} s)"
            )
            await anyio.sleep(pause)
            pause = min(pause * 1.5, SLOT_WAIT_MAX)


async def _follow(
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
    try:
        result, waited = await jobs.wait_for_job(
            client,
            video_id,
            wait_seconds=budget,
            max_interval=settings.poll_max_interval,
            on_progress=waiting,
        )
    except PixVerseError as exc:
        if not extra:
            raise
        # The job exists; losing its id would make the user pay again to find out.
        return _answer(
            result_type(
                video_id=str(video_id),
                status="unknown",
                status_code=None,
                message=(
                    f"The job started, but checking its status failed: {exc} "
                    f"Call get_status with video_id {video_id} in a minute."
                ),
                waited_seconds=round(time.monotonic() - began, 1),
                **extra,
            ),
            None,
            None,
        )
    status = result_type.model_validate({**jobs.to_status(result, waited=waited).model_dump(), **extra})
    if result.status != 1:
        return _answer(status, None, None)
    want_download = settings.auto_download if download is None else download
    return await _finish(runtime, ctx, result, status, want_download)


async def _finish(
    runtime: Runtime, ctx: Context, result: VideoResult, status: VideoStatus, want_download: bool
) -> CallToolResult:
    client, _ = runtime.ready()
    local: Path | None = None
    if want_download:
        try:

            async def fetched(done: int, total: int) -> None:
                await ctx.report_progress(done, total, f"downloaded {done / 1e6:.1f} MB")

            local = await jobs.save_video(client, result, runtime.settings.output_dir, on_progress=fetched)
            status.local_path = str(local)
        except (PixVerseError, OSError) as exc:
            status.message += f" Saving a local copy failed ({exc}); the url still works."
    preview: bytes | None = None
    try:
        preview = await jobs.make_preview(local if local is not None else (result.url or ""))
        if local is not None:
            preview_path = local.with_suffix(".preview.jpg")
            await anyio.Path(preview_path).write_bytes(preview)
            status.preview_path = str(preview_path)
    except Exception as exc:  # a preview is a nicety; the video is the answer
        status.preview_note = f"no preview picture: {type(exc).__name__}: {exc}"[:300]
    return _answer(status, preview, local)


def _answer(status: VideoStatus, preview: bytes | None, local: Path | None) -> CallToolResult:
    import base64

    content: list[Any] = [_json_content(status)]
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
