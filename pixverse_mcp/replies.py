"""Reading what came back from PixVerse: a reply's fields, and the error for a request that failed."""

from __future__ import annotations

from typing import Any, TypeVar

import httpx2
from pydantic import BaseModel, ValidationError

from pixverse_mcp.errors import BadResponseError, ConnectError, TimeoutError_, TransportError

_M = TypeVar("_M", bound=BaseModel)


def read_as(model: type[_M], resp: Any, trace_id: str) -> _M:
    """Validate `Resp` as a wire model; a reply without the fields it must have is a bad response."""
    try:
        return model.model_validate(resp)
    except ValidationError:
        raise BadResponseError(
            "PixVerse answered without the fields its reply must have (for example an id). "
            "This is usually temporary: try again in a minute.",
            trace_id=trace_id,
        ) from None


def transport_error(
    exc: httpx2.HTTPError | httpx2.InvalidURL, base_url: str, trace_id: str
) -> TransportError:
    """The error the model reads for an HTTP failure: what happened and what to do, no internals."""
    if isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout):
        return ConnectError(
            f"Could not connect to PixVerse at {base_url}. Check the network (and PIXVERSE_BASE_URL), "
            "then try again.",
            trace_id=trace_id,
        )
    if isinstance(exc, httpx2.TimeoutException):
        return TimeoutError_("PixVerse did not answer in time. Try again in a minute.", trace_id=trace_id)
    # Broken connections, and replies that cannot be decoded (a bad gzip body, redirect loops).
    return TransportError(
        f"The connection to PixVerse broke before its reply arrived ({type(exc).__name__}). "
        "Try again in a minute.",
        trace_id=trace_id,
    )


def causes(exc: BaseException, depth: int = 4) -> str:
    """An exception and what caused it ("ConnectError: ... <- OSError: [Errno 111] ..."), for the log."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < depth:
        parts.append(f"{type(seen).__name__}: {seen}"[:300])
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(parts)
