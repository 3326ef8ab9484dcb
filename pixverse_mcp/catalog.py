"""The restyle catalog, fetched from PixVerse and kept for a few minutes."""

from __future__ import annotations

import anyio

from pixverse_mcp.client import PixVerseClient
from pixverse_mcp.wire import Restyle


class CatalogCache:
    """All styles, fetched at most once per `ttl_seconds` however many calls ask at once."""

    def __init__(self, client: PixVerseClient, ttl_seconds: float) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._styles: list[Restyle] | None = None
        self._fetched_at = 0.0
        self._lock = anyio.Lock()

    async def styles(self) -> list[Restyle]:
        async with self._lock:
            fresh = self._styles is not None and anyio.current_time() - self._fetched_at < self._ttl
            if not fresh:
                self._styles = await self._client.list_restyles()
                self._fetched_at = anyio.current_time()
            assert self._styles is not None
            return self._styles


def matches(style: Restyle, query: str) -> bool:
    """Case-insensitive match of every word of `query` against name, description and prompt."""
    haystack = f"{style.name} {style.description} {style.prompt}".casefold()
    return all(word in haystack for word in query.casefold().split())
