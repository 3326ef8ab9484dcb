"""Running the server on a transport: stdio for desktop clients, HTTP for hosted use."""

from __future__ import annotations

import logging
from typing import Literal

import anyio

from pixverse_mcp.config import Settings
from pixverse_mcp.server import create_server

log = logging.getLogger(__name__)

Transport = Literal["stdio", "streamable-http", "sse"]


def run(
    settings: Settings,
    *,
    transport: Transport = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    stateless: bool = False,
    allow_unauthenticated: bool = False,
) -> int:
    """Serve until the client goes away (stdio) or the process is stopped (HTTP)."""
    if settings.api_key is None and not settings.sandbox:
        log.warning(
            "PIXVERSE_API_KEY is not set: tools will answer with how to set it. Use --sandbox to try offline."
        )
    server = create_server(settings)
    if transport == "stdio":
        anyio.run(server.run_stdio_async)
    elif transport == "streamable-http":
        anyio.run(lambda: server.run_streamable_http_async(host=host, port=port, stateless_http=stateless))
    else:
        anyio.run(lambda: server.run_sse_async(host=host, port=port))
    return 0
