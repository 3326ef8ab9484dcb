"""Where a finished video may be fetched from, and the redirect loop that keeps to it.

A PixVerse reply names the video's URL. A hostile or compromised reply (or a CDN redirect) must
not make this server read its own files or reach services inside its network, so every fetch of
a video (the download and the preview) goes through these rules:

- only http(s) URLs are fetched, never ``file:``, bare paths or any other scheme;
- each hop's host is resolved first (bounded in time) and refused if ANY of its addresses is
  internal: loopback, private, shared, link-local, reserved, multicast or unspecified. Loopback
  is allowed only when the API base URL is itself on loopback (the sandbox); private ranges
  never, except the API's own origin (the host this server already sends its key to);
- the connection goes to the address that was checked (the host name stays in the Host header
  and in TLS SNI and certificate checks), so a second DNS answer cannot swap in another address;
- at most ``MAX_REDIRECTS`` redirects are followed, each checked the same way.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2

from pixverse_mcp import __version__
from pixverse_mcp.errors import BadResponseError, ConnectError, TimeoutError_, TransportError

MAX_REDIRECTS = 3
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
RESOLVE_SECONDS = 5.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SHOWN_URL_CHARS = 120

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchRefused(BadResponseError):
    """A video URL (or a redirect) points somewhere this server does not fetch from."""


class DownloadTooLargeError(TransportError):
    """A download went past this server's size limit (counted as decoded bytes)."""


def shown(url: str) -> str:
    """A URL shortened for messages (a hostile reply may send a very long one)."""
    return url if len(url) <= _SHOWN_URL_CHARS else url[: _SHOWN_URL_CHARS - 3] + "..."


def _is_loopback_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


@dataclass(frozen=True)
class FetchRules:
    """Which addresses a video may be fetched from."""

    allow_loopback: bool = False
    api_origin: tuple[str, str, int] | None = None
    max_redirects: int = MAX_REDIRECTS
    resolve_seconds: float = RESOLVE_SECONDS

    @classmethod
    def for_base_url(cls, base_url: str) -> FetchRules:
        """Loopback is allowed only when the API itself is on loopback (the sandbox's result URLs).

        The API's own origin (scheme, host and port) is trusted wherever it is: this server
        already talks to it, so a sandbox shared on a private address still serves its files.
        """
        return cls(
            allow_loopback=_is_loopback_host(urlsplit(base_url).hostname or ""), api_origin=_origin(base_url)
        )


def unfetchable_reason(url: str | None) -> str | None:
    """Why a video URL from PixVerse will not be fetched at all, or None for an http(s) URL."""
    text = (url or "").strip()
    try:
        parsed = urlsplit(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.scheme.lower() not in ("http", "https") or not parsed.hostname:
        return (
            f"PixVerse gave a video URL that is not an http(s) link ({shown(text)!r}); this server "
            "fetches only http(s) URLs, so nothing was downloaded or previewed."
        )
    return None


def is_internal(address: IPAddress, *, allow_loopback: bool = False) -> bool:
    """True for an address inside a host or a private network (what a video host never is)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            address = embedded
    if address.is_loopback:
        return not allow_loopback
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_link_local
    )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _pick(host: str, addresses: list[str], rules: FetchRules, *, trusted: bool = False) -> str:
    """The address to connect to; refused if any address of the host is internal (unless `trusted`)."""
    if not addresses:
        raise ConnectError(f"The video host {host!r} has no address. Call get_status again later.")
    for text in [] if trusted else addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if is_internal(address, allow_loopback=rules.allow_loopback):
            named = host if host.strip("[]") == str(address) else f"{host} is {address}"
            raise FetchRefused(
                f"The video URL points to an internal address ({named}); this server "
                "does not fetch from loopback, private or reserved addresses. Nothing was fetched."
            )
    return addresses[0]


def _addresses(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _unresolvable(host: str, reason: str) -> ConnectError:
    return ConnectError(f"The video host {host!r} could not be looked up ({reason}). Try again later.")


async def resolve(host: str, port: int, rules: FetchRules, *, trusted: bool = False) -> str:
    """Check a host (a literal address, or every address its name resolves to); the one to use."""
    literal = _literal(host)
    if literal is not None:
        return _pick(host, [str(literal)], rules, trusted=trusted)
    try:
        with anyio.fail_after(rules.resolve_seconds):
            found = await anyio.to_thread.run_sync(_addresses, host, port, abandon_on_cancel=True)
    except TimeoutError:
        raise _unresolvable(host, f"no answer in {rules.resolve_seconds:g} s") from None
    except (OSError, UnicodeError) as exc:
        raise _unresolvable(host, type(exc).__name__) from None
    return _pick(host, found, rules, trusted=trusted)


def resolve_blocking(
    host: str, port: int, rules: FetchRules, seconds: float, *, trusted: bool = False
) -> str:
    """`resolve` for worker threads: the lookup runs in a helper thread so it can be given up on."""
    literal = _literal(host)
    if literal is not None:
        return _pick(host, [str(literal)], rules, trusted=trusted)
    outcome: list[list[str] | BaseException] = []

    def lookup() -> None:
        try:
            outcome.append(_addresses(host, port))
        except BaseException as exc:  # handed to the waiting thread
            outcome.append(exc)

    helper = threading.Thread(target=lookup, name="pixverse-resolve", daemon=True)
    helper.start()
    helper.join(max(0.0, min(seconds, rules.resolve_seconds)))
    if not outcome:
        raise _unresolvable(host, "no answer in time")
    found = outcome[0]
    if isinstance(found, BaseException):
        raise _unresolvable(host, type(found).__name__)
    return _pick(host, found, rules, trusted=trusted)


@dataclass(frozen=True)
class _Hop:
    """One request of the redirect loop, aimed at the address that was checked."""

    url: httpx2.URL
    host: str
    port: int

    def is_api(self, rules: FetchRules) -> bool:
        return rules.api_origin == (self.url.scheme, self.host.lower(), self.port)


def _hop(url: str) -> _Hop:
    reason = unfetchable_reason(url)
    if reason is not None:
        raise FetchRefused(reason.replace("PixVerse gave", "The video link led to", 1))
    try:
        parsed = httpx2.URL(url)
    except (httpx2.InvalidURL, ValueError):
        raise FetchRefused(f"The video URL {shown(url)!r} is malformed; nothing was fetched.") from None
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return _Hop(parsed, parsed.raw_host.decode("ascii"), port)


def _pinned(hop: _Hop, address: str, headers: dict[str, str] | None) -> dict[str, Any]:
    """Request arguments that connect to `address` while speaking to the host by name."""
    extensions: dict[str, Any] = {}
    if hop.url.scheme == "https" and _literal(hop.host) is None:
        extensions["sni_hostname"] = hop.host
    return {
        "url": hop.url.copy_with(host=address),
        "headers": {**(headers or {}), "Host": hop.url.netloc.decode("ascii")},
        "extensions": extensions,
    }


def _next_url(current: str, response: httpx2.Response) -> str | None:
    """Where a redirect leads (joined to the URL asked for), or None if this is the answer."""
    location = response.headers.get("location")
    if response.status_code not in REDIRECT_STATUSES or not location:
        return None
    try:
        return str(httpx2.URL(current).join(location))
    except (httpx2.InvalidURL, ValueError):
        raise FetchRefused(f"The video URL redirected to a malformed link ({shown(location)!r}).") from None


def _too_many(rules: FetchRules) -> FetchRefused:
    return FetchRefused(
        f"The video URL redirected more than {rules.max_redirects} times; nothing was fetched. "
        "Call get_status again for a fresh URL."
    )


@asynccontextmanager
async def open_stream(
    http: httpx2.AsyncClient, url: str, rules: FetchRules, *, headers: dict[str, str] | None = None
) -> AsyncIterator[tuple[httpx2.Response, str]]:
    """GET a video under the rules; yields the streamed final response and the URL it came from."""
    current = url
    for _ in range(rules.max_redirects + 1):
        hop = _hop(current)
        address = await resolve(hop.host, hop.port, rules, trusted=hop.is_api(rules))
        request = http.build_request("GET", **_pinned(hop, address, headers))
        response = await http.send(request, stream=True)
        try:
            following = _next_url(current, response)
            if following is None:
                yield response, current
                return
        finally:
            await response.aclose()
        current = following
    raise _too_many(rules)


@contextmanager
def open_stream_blocking(
    http: httpx2.Client,
    url: str,
    rules: FetchRules,
    *,
    seconds: float,
    headers: dict[str, str] | None = None,
) -> Iterator[tuple[httpx2.Response, str]]:
    """`open_stream` for worker threads; each look-up and request gets at most `seconds`."""
    current = url
    timeout = httpx2.Timeout(max(0.05, seconds))
    for _ in range(rules.max_redirects + 1):
        hop = _hop(current)
        address = resolve_blocking(hop.host, hop.port, rules, seconds, trusted=hop.is_api(rules))
        request = http.build_request("GET", timeout=timeout, **_pinned(hop, address, headers))
        response = http.send(request, stream=True)
        try:
            following = _next_url(current, response)
            if following is None:
                yield response, current
                return
        finally:
            response.close()
        current = following
    raise _too_many(rules)


async def download_to(
    url: str,
    dest: Path,
    *,
    rules: FetchRules,
    http_timeout: httpx2.Timeout,
    max_bytes: int,
    seconds: float,
    on_progress: Callable[[int, int], Awaitable[None]] | None = None,
) -> int:
    """Stream a video to `dest` under the rules; returns the byte count.

    At most `max_bytes` decoded bytes (a gzip body counts as what it decodes to) and `seconds` for
    the whole download, however slowly the bytes come; `http_timeout` bounds each connect and read. On
    any failure `dest` may hold a part: the caller removes it.
    """
    written = 0
    too_big = (
        f"the video is bigger than this server's download limit of {max_bytes / 1024 / 1024:.3g} MB "
        "(PIXVERSE_MAX_DOWNLOAD_MB), so no file was saved. The url still works."
    )
    try:
        with anyio.fail_after(seconds):
            # A client of its own: nothing shared with the API calls, and every connection it
            # opened (a stalled one too) is closed when the download ends.
            async with (
                httpx2.AsyncClient(
                    timeout=http_timeout,
                    headers={"User-Agent": f"pixverse-restyle-mcp/{__version__}"},
                    follow_redirects=False,
                ) as http,
                open_stream(http, url, rules) as (response, _),
            ):
                if response.status_code != 200:
                    raise TransportError(
                        f"downloading the video failed with HTTP {response.status_code}. The link may "
                        "have expired: call get_status again for a fresh URL.",
                        http_status=response.status_code,
                    )
                declared = response.headers.get("content-length", "")
                total = int(declared) if declared.isdigit() else 0
                if total > max_bytes:
                    raise DownloadTooLargeError(too_big)
                async with await anyio.open_file(dest, "wb") as file:
                    async for chunk in response.aiter_bytes(DOWNLOAD_CHUNK_BYTES):
                        written += len(chunk)
                        if written > max_bytes:
                            raise DownloadTooLargeError(too_big)
                        await file.write(chunk)
                        if on_progress is not None:
                            await on_progress(written, total or written)
    except TimeoutError:
        raise TimeoutError_(
            f"downloading the video took longer than {seconds:g} s, so no file was saved. The url "
            "still works; try download=true again later, or fetch the url directly."
        ) from None
    except httpx2.TimeoutException:
        raise TimeoutError_("downloading the video timed out. Try again with download=true.") from None
    except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
        raise TransportError(
            f"downloading the video failed ({type(exc).__name__}). Try again with download=true."
        ) from None
    return written
