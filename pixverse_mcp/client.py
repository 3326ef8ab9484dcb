"""Async PixVerse client on httpx2: headers, trace ids, the envelope, each call under its retry policy.

The retry policy per kind of call is in `retrying.py`; the streamed upload body in `multipart.py`;
fetching finished videos (bounded, checked addresses) in `fetching.py`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar, overload

import httpx2
from pydantic import BaseModel

from pixverse_mcp import __version__
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import (
    ApiError,
    ConfigError,
    ConnectError,
    PixVerseError,
    TransportError,
    UncertainOutcomeError,
)
from pixverse_mcp.fetching import FetchRules, download_to
from pixverse_mcp.multipart import FileForm, ProgressCallback, UploadSource
from pixverse_mcp.replies import causes, read_as, transport_error
from pixverse_mcp.retrying import (
    DEFAULT_POLICIES,
    CallKind,
    RetryPolicy,
    retry_after_seconds,
    should_retry,
)
from pixverse_mcp.wire import (
    Balance,
    Restyle,
    StartedJob,
    UploadedMedia,
    VideoResult,
    parse_envelope,
    parse_restyle_page,
)

log = logging.getLogger(__name__)

last_trace_id: ContextVar[str | None] = ContextVar("last_trace_id", default=None)
"""The trace id of the latest request made in this task, for the one log line of a tool call."""


_M = TypeVar("_M", bound=BaseModel)

LIST_PAGE_SIZE = 20
LIST_MAX_PAGES = 50


def new_trace_id() -> str:
    """A fresh `Ai-trace-id`: PixVerse treats a reused one as a replay of the earlier request."""
    return str(uuid.uuid4())


class PixVerseClient:
    """One shared async client for the PixVerse Platform API (or the sandbox, which speaks the same)."""

    def __init__(
        self,
        settings: Settings,
        *,
        policies: dict[CallKind, RetryPolicy] | None = None,
    ) -> None:
        self._settings = settings
        self._api_root = f"{settings.base_url}/openapi/v2"
        waits = settings.retry_waits
        timed = {
            kind: replace(policy, wait_initial=waits.initial, wait_max=waits.max, wait_jitter=waits.jitter)
            for kind, policy in DEFAULT_POLICIES.items()
        }
        self._policies = {**timed, **(policies or {})}
        timeouts = settings.timeouts
        self._quick = httpx2.Timeout(timeouts.read, connect=timeouts.connect)
        self._slow_upload = httpx2.Timeout(timeouts.upload, connect=timeouts.connect)
        self._client: httpx2.AsyncClient | None = None

    def __repr__(self) -> str:
        key = "set" if self._settings.api_key else "missing"
        return f"PixVerseClient(base_url={self._settings.base_url!r}, api_key={key})"

    @property
    def _http(self) -> httpx2.AsyncClient:
        # Made on first use: building its TLS context takes tens of milliseconds, which a server
        # start (until tools/list) should not pay.
        if self._client is None:
            self._client = httpx2.AsyncClient(
                timeout=self._quick,
                headers={"User-Agent": f"pixverse-restyle-mcp/{__version__}"},
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> PixVerseClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    # -- the five calls ------------------------------------------------------------------------

    async def list_restyles(self) -> list[Restyle]:
        """Every style of the catalog, all pages."""
        styles: list[Restyle] = []
        seen: set[int] = set()
        for page_num in range(1, LIST_MAX_PAGES + 1):
            resp = await self._call(
                "read",
                "GET",
                "video/restyle/list",
                model=None,
                params={"page_num": page_num, "page_size": LIST_PAGE_SIZE},
            )
            page, total = parse_restyle_page(resp)
            fresh = [s for s in page if s.restyle_id not in seen]
            # A server that ignores page_num repeats page 1: stop instead of looping.
            if not fresh:
                break
            seen.update(s.restyle_id for s in fresh)
            styles.extend(fresh)
            if total is not None and len(styles) >= total:
                break
        return styles

    async def video_result(self, video_id: int) -> VideoResult:
        """The state of one job.

        Live replies may lack `id` (or carry 0), and no reply may re-point the answer at another job:
        the result is always about the id asked for.
        """
        return await self._call(
            "read", "GET", f"video/result/{video_id}", model=VideoResult, overrides={"id": video_id}
        )

    async def balance(self) -> Balance:
        """The account's credits."""
        return await self._call("read", "GET", "account/balance", model=Balance)

    async def restyle(self, body: dict[str, Any], *, trace_id: str | None = None) -> tuple[StartedJob, str]:
        """Start a restyle job; returns the job and the trace id it was started with.

        Args:
            body: the generate fields that are set (never send a key with null: PixVerse may count it).
            trace_id: reuse a trace id to learn the outcome of an earlier identical request.
        """
        trace = trace_id or new_trace_id()
        clean = {k: v for k, v in body.items() if v is not None}
        job = await self._call(
            "generate", "POST", "video/restyle/generate", model=StartedJob, json=clean, trace_id=trace
        )
        return job, trace

    async def upload_file(
        self,
        source: UploadSource,
        *,
        file_name: str,
        content_type: str,
        on_progress: ProgressCallback | None = None,
    ) -> UploadedMedia:
        """Upload an opened local video as multipart `file`, streamed from it in chunks.

        Exactly ``source.size`` bytes are sent, from offset 0, so the Content-Length always holds. If
        the file changed since it was opened (size or modification time), or ends early, the request
        is broken off before its end, so PixVerse stores nothing, and an InputError says so.
        """
        form = FileForm(source, file_name=file_name, content_type=content_type, on_progress=on_progress)
        return await self._call(
            "upload",
            "POST",
            "media/upload",
            model=UploadedMedia,
            content_factory=form.body,
            headers=form.headers,
            timeout=self._slow_upload,
        )

    async def upload_url(self, url: str) -> UploadedMedia:
        """Have PixVerse fetch a video from a URL (multipart field `file_url`)."""
        # PixVerse fetches the whole file before it answers: give it the upload timeout.
        return await self._call(
            "upload",
            "POST",
            "media/upload",
            model=UploadedMedia,
            files={"file_url": (None, url)},
            timeout=self._slow_upload,
        )

    async def download(
        self,
        url: str,
        dest: Path,
        *,
        max_bytes: int,
        seconds: float,
        on_progress: ProgressCallback | None = None,
    ) -> int:
        """Stream a finished video to `dest` (the caller picks a temporary name); returns the byte count.

        Bounded by `fetching.download_to`: http(s) only, redirects checked by hand, no internal
        address (loopback only when the base URL is on loopback), at most `max_bytes` decoded
        bytes and `seconds` in all. The API key is not sent: the video URL belongs to a file host.
        """
        return await download_to(
            url,
            dest,
            rules=FetchRules.for_base_url(self.base_url),
            http_timeout=self._quick,
            max_bytes=max_bytes,
            seconds=seconds,
            on_progress=on_progress,
        )

    # -- plumbing ------------------------------------------------------------------------------

    def require_key(self) -> str:
        if self._settings.api_key is None:
            raise ConfigError(
                "No PixVerse API key is set. Set PIXVERSE_API_KEY in the MCP server's environment "
                "(create a key in the PixVerse platform under API keys), or start the server with "
                "--sandbox to try everything offline without a key."
            )
        return self._settings.api_key.get_secret_value()

    @overload
    async def _call(
        self,
        kind: CallKind,
        method: str,
        path: str,
        *,
        model: type[_M],
        trace_id: str | None = None,
        overrides: dict[str, Any] | None = None,
        **request: Any,
    ) -> _M: ...

    @overload
    async def _call(
        self,
        kind: CallKind,
        method: str,
        path: str,
        *,
        model: None,
        trace_id: str | None = None,
        **request: Any,
    ) -> Any: ...

    async def _call(
        self,
        kind: CallKind,
        method: str,
        path: str,
        *,
        model: type[_M] | None,
        trace_id: str | None = None,
        overrides: dict[str, Any] | None = None,
        **request: Any,
    ) -> Any:
        """Send one API request under the retry policy of its kind; return `Resp`, read as `model`.

        Reads get a fresh trace id on every attempt; generate and upload keep theirs, so a retry
        is a replay that PixVerse answers without doing the work twice.
        """
        import stamina  # here, not at the top: the stdio server starts faster without it

        key = self.require_key()
        policy = self._policies[kind]
        sticky = trace_id or (new_trace_id() if kind != "read" else None)
        lost_in_transit = False
        started = time.monotonic()
        try:
            async for attempt in stamina.retry_context(
                on=should_retry(kind),
                attempts=policy.attempts,
                timeout=policy.timeout,
                wait_initial=policy.wait_initial,
                wait_max=policy.wait_max,
                wait_jitter=policy.wait_jitter,
            ):
                with attempt:
                    trace = sticky or new_trace_id()
                    try:
                        resp = await self._send_once(key, method, path, trace, **request)
                        if model is None:
                            return resp
                        if overrides and isinstance(resp, dict):
                            resp = {**resp, **overrides}
                        return read_as(model, resp, trace)
                    except PixVerseError as exc:
                        # A request that never connected cannot have made a job.
                        lost_in_transit = lost_in_transit or (
                            isinstance(exc, TransportError) and not isinstance(exc, ConnectError)
                        )
                        log.info(
                            "PixVerse %s %s attempt %d failed after %.1fs: %s",
                            method,
                            path,
                            attempt.num,
                            time.monotonic() - started,
                            type(exc).__name__,
                        )
                        raise
        except (ApiError, ConnectError) as exc:
            # An answer that does not say "no job" (an ErrCode), or a last attempt that never
            # connected, after an earlier attempt was lost in transit: that earlier one may have made
            # the job, so the caller must not start another under a new trace id.
            if kind == "generate" and lost_in_transit:
                raise UncertainOutcomeError(
                    f"{exc.message} An earlier attempt of this request failed in transit, so PixVerse "
                    "may have started the job anyway.",
                    trace_id=exc.trace_id,
                ) from None
            raise
        raise AssertionError("unreachable: the retry loop returns or raises")  # pragma: no cover

    async def _send_once(
        self,
        key: str,
        method: str,
        path: str,
        trace_id: str,
        *,
        content_factory: Callable[[], AsyncIterator[bytes]] | None = None,
        headers: dict[str, str] | None = None,
        **request: Any,
    ) -> Any:
        last_trace_id.set(trace_id)
        all_headers = {"API-KEY": key, "Ai-trace-id": trace_id, **(headers or {})}
        if content_factory is not None:
            request["content"] = content_factory()
        url = f"{self._api_root}/{path}"
        try:
            response = await self._http.request(method, url, headers=all_headers, **request)
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            # The model gets a clean sentence; the log keeps the cause (TLS, DNS, refused, reset...).
            # Only the exception's own text: the request's headers (the key) are never printed.
            log.warning("PixVerse %s %s failed: %s", method, path, causes(exc))
            raise transport_error(exc, self._settings.base_url, trace_id) from exc
        return parse_envelope(
            response.content,
            http_status=response.status_code,
            trace_id=trace_id,
            retry_after=retry_after_seconds(response),
        )
