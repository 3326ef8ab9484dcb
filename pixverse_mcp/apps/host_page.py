"""A page that plays a chat host's part for the viewer, so it can be seen and tested in any browser.

`host_page()` is the page (host_page.html) with an optional configuration written in: the view's
HTML and CSP as `resources/read` gave them, the tool's name, input and result, and recorded answers
to the view's `tools/call` requests. `pixverse-mcp demo --viewer` writes one with the demo's result;
the browser tests and the benchmark load it empty and start it themselves.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from mcp import Client
from mcp.client import advertise
from mcp.client.extension import ClientExtension
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.types import CallToolResult, ReadResourceResult

CONFIG_PLACEHOLDER = "__HOST_CONFIG__"


def apps_client_extension() -> ClientExtension:
    """What a client that renders MCP App views advertises (as Claude, VS Code, ... do)."""
    return advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})


def wire(result: CallToolResult) -> dict[str, Any]:
    """A tool result as it travels in JSON-RPC (camelCase keys), as a host hands it to the view."""
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


def view_config(resource: ReadResourceResult) -> dict[str, Any]:
    """The view's HTML and declared CSP, from the `resources/read` answer for the view."""
    item = resource.contents[0]
    html = getattr(item, "text", None)
    if not isinstance(html, str):
        raise ValueError("the view resource carries no HTML text")
    ui = (item.meta or {}).get("ui")
    csp = ui.get("csp") if isinstance(ui, dict) else None
    return {"viewHtml": html, "csp": dict(csp) if isinstance(csp, dict) else {}}


def recorded(name: str, match: dict[str, Any], result: CallToolResult) -> dict[str, Any]:
    """A recorded answer to the view's `tools/call` of `name` with arguments that include `match`."""
    return {"name": name, "match": match, "result": wire(result)}


def host_page(config: dict[str, Any] | None = None) -> str:
    """The host page; with `config` it starts at once (keys: viewHtml, csp, toolName, toolInput,
    toolResult, answers, theme, width)."""
    html = resources.files(__package__).joinpath("host_page.html").read_text(encoding="utf-8")
    if config is None:
        return html.replace(CONFIG_PLACEHOLDER, "null")
    # Written inside a <script> element: no "<", ">" or "&" may appear raw.
    blob = json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return html.replace(CONFIG_PLACEHOLDER, blob)


async def recorded_page(client: Client, tool: str, tool_input: dict[str, Any], answer: dict[str, Any]) -> str:
    """A host page that shows the view for one finished restyle with no server behind it.

    The view's own requests for the result and its source are made now, through `client`, with the
    files attached as data, and written into the page.
    """
    from pixverse_mcp.apps.viewer import VIEW_URI

    wanted = [("result", answer["video_id"])]
    if tool_input.get("video_media_id"):
        wanted.append(("upload", tool_input["video_media_id"]))
    elif tool_input.get("source_video_id"):
        wanted.append(("result", tool_input["source_video_id"]))
    answers = []
    for kind, ref in wanted:
        match = {"kind": kind, "id": str(ref)}
        media = await client.call_tool("viewer_media", {**match, "force_data": True})
        if media.is_error:
            raise RuntimeError(f"viewer_media {kind} {ref} failed: {media.content}")
        answers.append(recorded("viewer_media", match, media))
    result = {
        "content": [{"type": "text", "text": json.dumps(answer, indent=2)}],
        "structuredContent": answer,
    }
    return host_page(
        {
            **view_config(await client.read_resource(VIEW_URI)),
            "toolName": tool,
            "toolInput": tool_input,
            "toolResult": result,
            "answers": answers,
            "theme": "light",
        }
    )
