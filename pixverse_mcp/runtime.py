"""What the server opens once and every tool shares: the PixVerse client, the catalog, the job slots.

The lifespan opens a `Runtime` (and, in sandbox mode, the embedded sandbox) once for all sessions
and closes it when the last one ends.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Literal

import anyio
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import SecretStr

from pixverse_mcp.catalog import CatalogCache
from pixverse_mcp.client import PixVerseClient
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import NotFoundError, PixVerseError
from pixverse_mcp.journal import Journal, create_journal, default_journal_path, journal_for
from pixverse_mcp.wire import JobState

log = logging.getLogger(__name__)


def _not_ready() -> ToolError:
    return ToolError("The server is still starting or already stopping; try again in a moment.")


@dataclass
class Runtime:
    """What the lifespan opens once and every tool shares."""

    settings: Settings
    client_roots: bool = True
    client: PixVerseClient | None = None
    catalog: CatalogCache | None = None
    slots: JobSlots | None = None
    ledger: Journal | None = None
    uploads: UploadRegistry = field(default_factory=lambda: UploadRegistry())
    active: int = 0
    stack: AsyncExitStack | None = field(default=None, repr=False)
    lock: anyio.Lock = field(default_factory=anyio.Lock, repr=False)

    @property
    def api(self) -> PixVerseClient:
        """The PixVerse client; a tool called while the server starts or stops gets a clear error."""
        if self.client is None:
            raise _not_ready()
        return self.client

    @property
    def styles(self) -> CatalogCache:
        """The cached style catalog."""
        if self.catalog is None:
            raise _not_ready()
        return self.catalog

    @property
    def journal(self) -> Journal:
        """The job journal (a no-op one when it is off)."""
        if self.ledger is None:
            raise _not_ready()
        return self.ledger

    @property
    def job_slots(self) -> JobSlots:
        if self.slots is None:
            raise _not_ready()
        return self.slots

    async def open(self) -> None:
        """Open the client (and the embedded sandbox in sandbox mode), once for all sessions."""
        async with self.lock:
            if self.active == 0:
                self.stack = await self._open()
            self.active += 1

    async def _open(self) -> AsyncExitStack:
        async with AsyncExitStack() as stack:
            settings = self.settings
            if settings.sandbox:
                # Imported here: a normal start should not pay for the sandbox's imports.
                from pixverse_mcp.sandbox import SandboxConfig, SandboxServer

                config = SandboxConfig()
                sandbox = SandboxServer(config)
                stack.push_async_callback(anyio.to_thread.run_sync, sandbox.stop)
                await anyio.to_thread.run_sync(sandbox.start)
                settings = settings.with_changes(base_url=sandbox.base_url, api_key=SecretStr(config.api_key))
                log.info("sandbox mode: the PixVerse sandbox is serving at %s", sandbox.base_url)
            # Opened on first use, not here: a server start (until tools/list) should not pay for it.
            journal = _journal(settings)
            stack.push_async_callback(journal.close)
            log.info("job journal: %s", journal.location)
            client = PixVerseClient(settings)
            stack.push_async_callback(client.aclose)
            self.ledger = journal
            self.client = client
            self.catalog = CatalogCache(client, settings.catalog_ttl_seconds)
            self.slots = JobSlots(settings.max_concurrent_jobs)
            log.info("ready: PixVerse API at %s", settings.base_url)
            # Everything opened: keep it open past this block, for close().
            return stack.pop_all()

    async def close(self) -> None:
        # Shielded: closing runs while the server is being cancelled (SIGTERM), and must finish.
        with anyio.CancelScope(shield=True):
            async with self.lock:
                self.active -= 1
                if self.active > 0 or self.stack is None:
                    return
                stack, self.stack = self.stack, None
                self.client = self.catalog = self.slots = self.ledger = None
                await stack.aclose()
                log.info("stopped: PixVerse client closed")


def _journal(settings: Settings) -> Journal:
    """The journal of the settings; sandbox jobs go to a journal of their own unless one is named,
    so that play money never mixes with the real spending ledger."""
    if settings.sandbox and settings.journal_enabled and settings.journal_url is None:
        return create_journal(f"sqlite:///{default_journal_path().with_name('journal-sandbox.sqlite3')}")
    return journal_for(settings)


class UploadRegistry:
    """What this server knows of the media it uploaded: name, fingerprint, length, URL (bounded)."""

    LIMIT = 512

    def __init__(self) -> None:
        self._known: OrderedDict[int, UploadedSource] = OrderedDict()

    def add(self, media_id: int, source: UploadedSource) -> None:
        self._known[media_id] = source
        self._known.move_to_end(media_id)
        while len(self._known) > self.LIMIT:
            self._known.popitem(last=False)

    def get(self, media_id: int) -> UploadedSource | None:
        return self._known.get(media_id)


@dataclass(frozen=True)
class UploadedSource:
    """A video this server uploaded, as the journal records a job's source."""

    kind: Literal["file", "url"]
    name: str
    """The file's name (never its folder), or the URL PixVerse fetched."""
    fingerprint: str | None
    seconds: float | None


class JobSlots:
    """An optional cap on this server's own jobs generating at once (PIXVERSE_MAX_CONCURRENT_JOBS).

    It queues restyles on this side before PixVerse has to refuse them with 500044. Without a
    limit it tracks nothing and never makes one restyle wait for another.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.running: set[int] = set()
        self.reserved = 0
        self.lock = anyio.Lock()

    async def reserve(self, client: PixVerseClient, *, seconds: float) -> bool:
        """Take a slot if one is free, checking first (for up to `seconds`) on the jobs that hold them."""
        if self.limit is None:
            return True
        async with self.lock:
            if self._taken() < self.limit:
                self.reserved += 1
                return True
            holders = list(self.running)
        # Checked outside the lock, so one slow status reply holds up no other restyle.
        with anyio.move_on_after(seconds):
            for video_id in holders:
                try:
                    status = (await client.video_result(video_id)).status
                except NotFoundError:
                    status = None  # gone: it holds no slot at PixVerse either
                except PixVerseError:
                    continue
                if status is None or JobState.from_code(status).ended:
                    self.running.discard(video_id)
        async with self.lock:
            if self._taken() >= self.limit:
                return False
            self.reserved += 1
            return True

    def settle(self, video_id: int | None) -> None:
        """Turn a reservation into the job that holds it, or give it back (None)."""
        if self.limit is None:
            return
        self.reserved -= 1
        if video_id is not None:
            self.running.add(video_id)

    def finished(self, video_id: int) -> None:
        self.running.discard(video_id)

    def _taken(self) -> int:
        return len(self.running) + self.reserved
