"""The style catalog: the list_restyles tool and the pixverse://restyles resource (both free)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult
from pydantic import Field, WithJsonSchema

from pixverse_mcp import arguments
from pixverse_mcp.catalog import search
from pixverse_mcp.delivery import structured
from pixverse_mcp.errors import PixVerseError
from pixverse_mcp.results import Style, StyleCatalog
from pixverse_mcp.runtime import Runtime
from pixverse_mcp.tooling import READ_ONLY, PixVerseServer, register
from pixverse_mcp.wire import Restyle

MAX_QUERY_CHARS = 200


def install(server: PixVerseServer, runtime: Runtime) -> None:
    """Register list_restyles and the pixverse://restyles resource."""

    @register(server, title="List restyle styles", annotations=READ_ONLY)
    async def list_restyles(
        query: Annotated[
            Any,
            WithJsonSchema({"type": "string", "maxLength": MAX_QUERY_CHARS}),
            Field(description="Words to look for in style names (empty lists all)."),
        ] = "",
    ) -> Annotated[CallToolResult, StyleCatalog]:
        """List PixVerse's restyle styles, optionally those matching words. Free.

        Pass a style's restyle_id to restyle_video, or describe your own look with restyle_prompt.
        """
        query = arguments.text_argument(query, "query", max_len=MAX_QUERY_CHARS)
        return structured(_catalog_answer(await runtime.styles.styles(), query))

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
