"""The group tool: restyle_many (paid) starts several restyles at once and follows them as one group."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from pixverse_mcp import arguments
from pixverse_mcp.groupplan import ITEMS_SCHEMA
from pixverse_mcp.results import GroupResult
from pixverse_mcp.runtime import Runtime
from pixverse_mcp.tooling import PAID, PixVerseServer, register
from pixverse_mcp.tools.restyling import DownloadArg, WaitArg, client_name, publish_wait_bounds
from pixverse_mcp.tools.upload import client_roots


def install(server: PixVerseServer, runtime: Runtime) -> None:
    """Register restyle_many."""
    settings = runtime.settings

    @register(
        server,
        title="Restyle several clips or looks (costs credits)",
        annotations=PAID,
    )
    async def restyle_many(
        ctx: Context,
        items: Annotated[
            Any,
            ITEMS_SCHEMA,
            Field(
                description="Each: one source (video_media_id, source_video_id, path or url) and one style "
                "(restyle_id or restyle_prompt); seed; split=true cuts a local clip over 16 s into parts."
            ),
        ] = None,
        group_id: Annotated[
            str | None, Field(description="Instead of items: start a group's jobs still queued.")
        ] = None,
        wait_seconds: WaitArg = None,
        download: DownloadArg = None,
        dry_run: Annotated[
            bool, Field(description="Start nothing: answer the plan and the estimate.")
        ] = False,
    ) -> Annotated[CallToolResult, GroupResult]:
        """Restyle one clip in several looks to compare them, or several clips in one look, in one call.
        COSTS CREDITS for every job (the estimate and caps cover the whole group).

        Up to 12 items. Answers every item (url, credits) and, when all ended, a contact sheet picture
        comparing them. If the answer is not done, call get_status with its group_id.
        """
        arguments.exactly_one(items=items, group_id=group_id)
        wait = arguments.wait_argument(
            wait_seconds, default=settings.default_wait_seconds, maximum=settings.max_wait_seconds
        )
        offered = await client_roots(ctx) if runtime.client_roots else ()
        roots = (*settings.allowed_dirs, *offered)
        who = client_name(ctx)
        # Imported on first use: the group machinery (cuts, joins, the contact sheet) is not needed
        # to start the server and answer tools/list.
        from pixverse_mcp import groups

        if group_id is not None:
            return await groups.restyle_continue(
                runtime,
                ctx,
                group_id,
                wait=wait,
                download=download,
                dry_run=dry_run,
                roots=roots,
                client_name=who,
            )
        return await groups.restyle_new(
            runtime, ctx, items, wait=wait, download=download, dry_run=dry_run, roots=roots, client_name=who
        )

    publish_wait_bounds(server, runtime, "restyle_many", what="the jobs")
