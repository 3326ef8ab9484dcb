"""The MCP server: the tools, resources and prompt over the modules that do the work.

`create_server(settings)` builds a ready server; the lifespan opens the PixVerse client (and, in
sandbox mode, the embedded sandbox) once, and every tool reads it from the `Runtime`. The tools live
in `tools/` by family, each declared with `tooling.register`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
)
from pydantic import Field

from pixverse_mcp import __version__, arguments, jobs, logs
from pixverse_mcp.apps import ViewerApps
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import InputError, NotFoundError, PixVerseError
from pixverse_mcp.icon import server_icons
from pixverse_mcp.identity import PROJECT_URL
from pixverse_mcp.runtime import Runtime
from pixverse_mcp.tooling import PixVerseServer, clean_doc
from pixverse_mcp.tools import account, catalog, groups, restyling, upload


def _instructions(settings: Settings) -> str:
    return (
        "Restyle videos with PixVerse: list_restyles to pick a style (or write a restyle_prompt), "
        "upload_video with a local path or a public URL, restyle_video with the media_id, then "
        "get_status until the job is done. Waiting calls return within about "
        f"{settings.default_wait_seconds:g} s by default; if the job is still generating, call "
        "get_status again with the same video_id. restyle_video costs credits; every other tool is "
        "free. Ids are strings of digits; pass them back as they came."
    )


def create_server(
    settings: Settings,
    *,
    client_roots: bool = True,
) -> PixVerseServer:
    """Build the MCP server for these settings.

    Args:
        settings: the configuration.
        client_roots: honour the folders an MCP client offers as roots. Only for a client on the
            same machine (stdio): over HTTP a client's roots would open the server's own disk.
    """
    logs.quiet_libraries()
    runtime = Runtime(settings=settings, client_roots=client_roots)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[Runtime]:
        # In-process clients may enter the lifespan more than once; they share one PixVerse client.
        await runtime.open()
        try:
            yield runtime
        finally:
            await runtime.close()

    # The Restyle viewer (MCP Apps, pixverse_mcp/apps/): its view, app-only tools and tool bindings.
    viewer = ViewerApps(runtime)
    server = PixVerseServer(
        "pixverse-restyle",
        title="PixVerse Restyle",
        description="Restyle videos with PixVerse",
        instructions=_instructions(settings),
        website_url=PROJECT_URL,
        icons=server_icons(),
        version=__version__,
        lifespan=lifespan,
        log_level=settings.log_level,
        extensions=[viewer],
        middleware=[viewer.list_for_client],
    )
    catalog.install(server, runtime)
    upload.install(server, runtime)
    restyling.install(server, runtime)
    account.install(server, runtime)
    groups.install(server, runtime)

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
