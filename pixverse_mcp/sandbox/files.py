"""The sandbox's static routes: the files it serves (uploads, renders) and the style covers.

They stand in for PixVerse's CDN, so they take no API key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from . import render
from .catalog import get_style

if TYPE_CHECKING:
    from .state import SandboxState

# The names SandboxState.new_file() gives: 16 hex digits and a short suffix. Nothing else is served.
FILE_NAME: Final = re.compile(r"^[0-9a-f]{16}\.[a-z0-9]{2,4}$")
MEDIA_TYPES: Final = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".m4a": "audio/mp4",
}


def root_url(request: Request) -> str:
    """``scheme://host:port`` as the client reached the sandbox (static routes live under it)."""
    return str(request.base_url).rstrip("/")


def file_url(request: Request, path: Path) -> str:
    return f"{root_url(request)}/files/{path.name}"


def cover_url(request: Request, restyle_id: int) -> str:
    return f"{root_url(request)}/covers/{restyle_id}.jpg"


def served_file(state: SandboxState, name: str) -> Path | None:
    """The file ``/files/<name>`` serves, or None."""
    if not FILE_NAME.match(name):
        return None
    path = state.data_dir / name
    return path if path.is_file() else None


class StaticRoutes:
    """``/files/<name>`` and ``/covers/<restyle_id>.jpg``, bound to one state."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def files(self, request: Request) -> Response:
        path = served_file(self.state, request.path_params["name"])
        if path is None:
            return Response("not found", 404, media_type="text/plain")
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"))

    async def cover(self, request: Request) -> Response:
        style = get_style(request.path_params["restyle_id"])
        if style is None:
            return Response("not found", 404, media_type="text/plain")
        data = self.state.covers.get(style.restyle_id)
        if data is None:
            data = await anyio.to_thread.run_sync(render.render_cover, style.steps(1))
            self.state.covers[style.restyle_id] = data
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})
