"""The Restyle viewer: an MCP App (an HTML view) for restyle_video, get_status and list_restyles.

`ViewerApps` is the SDK's `Apps` extension plus what this server needs around it:
- the view `ui://pixverse/viewer.html` (the file viewer.html, read once at start-up), with the CSP
  that lets it load PixVerse's media hosts and a request for a border;
- two app-only tools the view calls (`visibility: ["app"]`, hidden from the model):
  `viewer_job_status`, a job's status without waiting, for the live card, and `viewer_media`, a
  result, upload or style cover as data, for media the host's frame cannot load itself (the
  sandbox's loopback URLs, other CDNs);
- `list_for_client`, a middleware on tools/list and resources/list that points the bound tools at
  the view (`_meta.ui.resourceUri` and the older flat `_meta["ui/resourceUri"]`) and leaves the
  app-only tools and the view out for clients that did not negotiate MCP Apps, which so see
  exactly the lists they saw before;
- an observer of tools/call that remembers, in small bounded maps, the upload URL of each
  media_id and the source of each restyle this server started: the "before" of before/after.
  The maps live in this process: a replica that did not see the upload has no before picture.
"""

from __future__ import annotations

import base64
import json
import logging
from collections import OrderedDict
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

import anyio
from mcp.server.apps import Apps, ResourceCsp, client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.types import (
    BlobResourceContents,
    CallToolRequestParams,
    CallToolResult,
    EmbeddedResource,
    TextContent,
)
from pydantic import BaseModel, Field, WithJsonSchema

from pixverse_mcp import arguments, jobs
from pixverse_mcp.apps import fetch
from pixverse_mcp.errors import InputError
from pixverse_mcp.fetching import FetchRules
from pixverse_mcp.results import VideoStatus
from pixverse_mcp.runtime import Runtime
from pixverse_mcp.tooling import READ_ONLY, tool_call
from pixverse_mcp.wire import JobState

log = logging.getLogger(__name__)

VIEW_URI = "ui://pixverse/viewer.html"
BOUND_TOOLS = ("restyle_video", "get_status", "list_restyles", "restyle_many")
REMEMBERED = 512
MEDIA_READS_AT_ONCE = 3
MEDIA_HOSTS_PLACEHOLDER = "__PIXVERSE_MEDIA_HOSTS__"

MediaKind = Literal["result", "source", "upload", "cover"]
MEDIA_KINDS: tuple[MediaKind, ...] = ("result", "source", "upload", "cover")


class ViewerMedia(BaseModel):
    """Where a picture or video for the viewer is, and whether it came along as data."""

    kind: str
    id: str
    url: str
    direct: bool = Field(description="The view may load url itself: its host is a declared media host.")
    mime_type: str | None = None
    size_bytes: int | None = Field(None, description="Bytes attached as data (an embedded resource).")
    message: str


class _Bounded(OrderedDict[int, Any]):
    """A map that forgets its oldest entries past `limit`."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def remember(self, key: int, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


@cache
def view_html() -> str:
    """The view's HTML, with the media hosts it may load directly written in."""
    html = resources.files(__package__).joinpath("viewer.html").read_text(encoding="utf-8")
    return html.replace(MEDIA_HOSTS_PLACEHOLDER, json.dumps(list(fetch.MEDIA_HOSTS)))


class ViewerApps(Apps):
    """The MCP Apps extension of this server: the viewer, its app-only tools and its bindings."""

    def __init__(self, runtime: Runtime, *, bound_tools: tuple[str, ...] = BOUND_TOOLS) -> None:
        super().__init__()
        self._runtime = runtime
        self.bound_tools = frozenset(bound_tools)
        self._uploads = _Bounded(REMEMBERED)  # media_id -> upload URL
        self._sources = _Bounded(REMEMBERED)  # video_id -> ("upload", media_id) | ("result", video_id)
        self._reads = anyio.Semaphore(MEDIA_READS_AT_ONCE)
        self.add_html_resource(
            VIEW_URI,
            view_html(),
            name="restyle-viewer",
            title="PixVerse Restyle viewer",
            description="Plays restyled videos with a before/after wipe, follows jobs, shows the styles.",
            csp=ResourceCsp(resource_domains=list(fetch.MEDIA_HOSTS)),
            prefers_border=True,
        )
        self._add_tools()

    # -- the app-only tools --------------------------------------------------------------------

    def _add_tools(self) -> None:
        runtime = self._runtime

        @self.tool(
            resource_uri=VIEW_URI,
            visibility=["app"],
            name="viewer_job_status",
            title="Viewer: a job's status",
            annotations=READ_ONLY,
        )
        async def viewer_job_status(
            video_id: Annotated[Any, arguments.ID_SCHEMA, Field(description="The job's video_id.")],
        ) -> VideoStatus:
            """A restyle job's status at once, without waiting (the viewer's live card polls it)."""
            with tool_call("viewer_job_status"):
                checked = arguments.id_argument(video_id, "video_id")
                client = runtime.api
                client.require_key()
                result = await client.video_result(checked)
                if result.state.ended:
                    runtime.job_slots.finished(checked)
                return jobs.to_status(result, wait_seconds=runtime.settings.default_wait_seconds)

        @self.tool(
            resource_uri=VIEW_URI,
            visibility=["app"],
            name="viewer_media",
            title="Viewer: a video or picture",
            annotations=READ_ONLY,
        )
        async def viewer_media(
            kind: Annotated[
                Any,
                WithJsonSchema({"enum": list(MEDIA_KINDS)}),
                Field(
                    description="result: a finished video_id's video; source: what a restyle this server "
                    "started was made from (id is its video_id); upload: a media_id uploaded through this "
                    "server; cover: a style's picture (id is its restyle_id)."
                ),
            ],
            id: Annotated[
                Any, arguments.ID_SCHEMA, Field(description="The video_id, media_id or restyle_id.")
            ],
            force_data: Annotated[
                bool, Field(description="Attach the file as data even when the view could load the URL.")
            ] = False,
        ) -> Annotated[CallToolResult, ViewerMedia]:
            """Where a video or picture for the viewer is; attached as data (at most 8 MB) when the
            host cannot load its URL. Only URLs PixVerse gave this server are ever read."""
            with tool_call("viewer_media"):
                if kind not in MEDIA_KINDS:
                    raise InputError(
                        f"kind must be one of {', '.join(MEDIA_KINDS)}, got {kind!r}.", argument="kind"
                    )
                checked = arguments.id_argument(id, "id")
                url = fetch.checked_url(await self._media_url(kind, checked))
                direct = fetch.is_direct(url)
                if direct and not force_data:
                    info = ViewerMedia(
                        kind=kind, id=str(checked), url=url, direct=True, message="Load the url directly."
                    )
                    return _answer(info)
                client = runtime.api
                async with self._reads:
                    media = await fetch.read_media(url, rules=FetchRules.for_base_url(client.base_url))
                info = ViewerMedia(
                    kind=kind,
                    id=str(checked),
                    url=url,
                    direct=direct,
                    mime_type=media.mime_type,
                    size_bytes=len(media.data),
                    message="The file is attached as data.",
                )
                blob = BlobResourceContents(
                    uri=url, mime_type=media.mime_type, blob=base64.b64encode(media.data).decode()
                )
                return _answer(info, EmbeddedResource(type="resource", resource=blob))

    async def _media_url(self, kind: MediaKind, ref: int) -> str:
        client, catalog = self._runtime.api, self._runtime.styles
        if kind == "upload":
            url = self._uploads.get(ref)
            if url is None:
                raise InputError(
                    f"This server has no URL for media_id {ref}: it knows only the uploads made through "
                    "it since it started."
                )
            return str(url)
        if kind == "source":
            source = self._sources.get(ref)
            if source is None:
                raise InputError(
                    f"This server did not start video {ref}, or no longer remembers it: "
                    "its source is unknown."
                )
            source_kind, source_ref = source
            return await self._media_url(source_kind, source_ref)
        if kind == "cover":
            styles = await catalog.styles()
            style = next((s for s in styles if s.restyle_id == ref), None)
            if style is None or not style.cover_url:
                raise InputError(f"The catalog has no picture for restyle_id {ref}.")
            return style.cover_url
        client.require_key()
        result = await client.video_result(ref)
        if result.state is not JobState.SUCCEEDED or not result.url:
            raise InputError(
                f"Video {ref} is {jobs.status_name(result.status)}, not finished: there is no video yet."
            )
        return result.url

    # -- what the server's lists and calls go through ------------------------------------------

    async def list_for_client(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """Middleware: bind the tools to the view, and show Apps-only entries only to Apps clients."""
        result = await call_next(ctx)
        if ctx.method not in ("tools/list", "resources/list"):
            return result
        if isinstance(result, BaseModel):
            result = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        if not isinstance(result, dict):
            return result
        apps_client = client_supports_apps(ctx)
        if ctx.method == "resources/list":
            listed = result.get("resources", [])
            kept = [r for r in listed if apps_client or not str(r.get("uri", "")).startswith("ui://")]
            return {**result, "resources": kept}
        tools = []
        for tool in result.get("tools", []):
            meta = dict(tool.get("_meta") or {})
            ui = dict(meta.get("ui") or {})
            if not apps_client and "model" not in ui.get("visibility", ["model"]):
                continue
            if tool.get("name") in self.bound_tools:
                meta["ui"] = {**ui, "resourceUri": VIEW_URI}
                # The flat key is what some hosts (claude.ai for a while) read.
                meta["ui/resourceUri"] = VIEW_URI
                tool = {**tool, "_meta": meta}
            tools.append(tool)
        return {**result, "tools": tools}

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        result = await call_next(ctx)
        if params.name in ("upload_video", "restyle_video") and isinstance(result, CallToolResult):
            try:
                self._observe(params.name, params.arguments or {}, result)
            except Exception:  # remembering is a nicety; the call's answer stands whatever happens here
                log.debug("could not note the %s answer for the viewer", params.name, exc_info=True)
        return result

    def _observe(self, tool: str, given: dict[str, Any], result: CallToolResult) -> None:
        answer = result.structured_content
        if result.is_error or not isinstance(answer, dict):
            return
        if tool == "upload_video":
            if answer.get("url"):
                media_id = arguments.id_argument(answer.get("media_id"), "media_id")
                self._uploads.remember(media_id, answer["url"])
            return
        video_id = arguments.id_argument(answer.get("video_id"), "video_id")
        if arguments.given(given.get("video_media_id")):
            source = ("upload", arguments.id_argument(given["video_media_id"], "video_media_id"))
        elif arguments.given(given.get("source_video_id")):
            source = ("result", arguments.id_argument(given["source_video_id"], "source_video_id"))
        else:
            return
        self._sources.remember(video_id, source)


def _answer(info: ViewerMedia, *attached: EmbeddedResource) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=info.model_dump_json(exclude_none=True)), *attached],
        structured_content=info.model_dump(mode="json"),
    )
