"""The restyle catalog, fetched from PixVerse and kept for a few minutes."""

from __future__ import annotations

import difflib

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

    def cached_name(self, restyle_id: int) -> str | None:
        """A style's name if the catalog was fetched already (no request is made for it)."""
        return next((s.name for s in self._styles or () if s.restyle_id == restyle_id), None)


def _words(text: str) -> list[str]:
    return "".join(ch if ch.isalnum() else " " for ch in text.casefold()).split()


def _hits(style: Restyle, query_words: list[str]) -> int:
    """How many query words a style matches: as the start of a word of its name, marker, description
    or prompt ("sketch", "sket"), or as a near spelling of one ("skech" finds "Sketch")."""
    words = _words(f"{style.name} {style.marker} {style.description} {style.prompt}")
    return sum(
        1
        for word in query_words
        if any(w.startswith(word) for w in words)
        or (len(word) >= 4 and difflib.get_close_matches(word, words, n=1, cutoff=0.8))
    )


def search(styles: list[Restyle], query: str) -> list[Restyle]:
    """The styles that match `query` best, in catalog order; every style for an empty query.

    The documented catalog carries only names, so a style need not match every word ("anime style"
    finds "Anime Cel"): the styles matching the most words are given, as long as they match at
    least half of them.
    """
    query_words = _words(query)
    if not query_words:
        return list(styles)
    scored = [(_hits(style, query_words), style) for style in styles]
    best = max((hits for hits, _ in scored), default=0)
    if best == 0 or best * 2 < len(query_words):
        return []
    return [style for hits, style in scored if hits == best]
