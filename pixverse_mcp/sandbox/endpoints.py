"""The PixVerse endpoints the sandbox serves, written once.

``create_app`` builds the routes from this table, and a fault rule's ``endpoint`` must be one of
its names (the names are also the keys of the request counters in ``/_sandbox/stats``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request

from .handlers import Handlers
from .replies import Reply

Handler = Callable[[Handlers, Request, str], Awaitable[Reply]]


@dataclass(frozen=True)
class Endpoint:
    """One API endpoint: its short name, method, path under ``<prefix>/openapi/v2`` and handler."""

    name: str
    method: str
    path: str
    handler: Handler


ENDPOINTS: Final = (
    Endpoint("upload", "POST", "/media/upload", Handlers.upload),
    Endpoint("generate", "POST", "/video/restyle/generate", Handlers.generate),
    Endpoint("list", "GET", "/video/restyle/list", Handlers.list_styles),
    Endpoint("result", "GET", "/video/result/{video_id}", Handlers.result),
    Endpoint("balance", "GET", "/account/balance", Handlers.balance),
)
ENDPOINT_NAMES: Final = tuple(endpoint.name for endpoint in ENDPOINTS)
