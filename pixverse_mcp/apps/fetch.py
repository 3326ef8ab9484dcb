"""Small media files for the viewer, read into memory with hard bounds.

The view runs in the host's sandboxed frame, which may load media only from the domains the
resource declares (PixVerse's media hosts). Anything else (the sandbox's loopback URLs, another
CDN) reaches the view as data through the app-only `viewer_media` tool, read here: only http(s),
only pictures and videos, at most `max_bytes`, a few redirects, bounded in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import httpx2

from pixverse_mcp import __version__
from pixverse_mcp.errors import InputError, TimeoutError_, TransportError
from pixverse_mcp.fetching import FetchRules, open_stream

MEDIA_HOSTS = ("https://media.pixverse.ai", "https://media.pixverseai.cn")
"""Origins PixVerse serves uploads, results and style covers from; the view may load them directly."""

MAX_MEDIA_BYTES = 8 * 1024 * 1024
MAX_URL_CHARS = 4096
CONNECT_SECONDS = 10.0
TOTAL_SECONDS = 45.0
CHUNK_BYTES = 256 * 1024

# What a data: URL in the view may carry. QuickTime files are MP4's close kin and play as MP4 in
# browsers that refuse the quicktime type, so they are handed over as video/mp4.
PLAYABLE_TYPES = {
    "video/mp4": "video/mp4",
    "video/quicktime": "video/mp4",
    "video/webm": "video/webm",
    "image/jpeg": "image/jpeg",
    "image/png": "image/png",
    "image/webp": "image/webp",
    "image/gif": "image/gif",
}
TYPES_BY_SUFFIX = {
    ".mp4": "video/mp4",
    ".mov": "video/mp4",
    ".webm": "video/webm",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
}


@dataclass(frozen=True)
class Media:
    """A media file read into memory, with the type the view should give it."""

    data: bytes
    mime_type: str
    url: str


def checked_url(url: str) -> str:
    """An http(s) URL with a host and no credentials, of sane length; anything else is refused."""
    if len(url) > MAX_URL_CHARS:
        raise InputError(f"The media URL is {len(url)} characters long; at most {MAX_URL_CHARS} are read.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("Only http(s) media URLs are read for the viewer.")
    if parts.username is not None or parts.password is not None:
        raise InputError("Media URLs with credentials in them are not read for the viewer.")
    return url


def is_direct(url: str, hosts: tuple[str, ...] = MEDIA_HOSTS) -> bool:
    """Whether the view may load `url` itself: its origin is one the resource declares."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    origin = f"{parts.scheme}://{parts.netloc.lower()}"
    return origin in hosts


def _media_type(content_type: str, url: str) -> str | None:
    declared = content_type.split(";", 1)[0].strip().lower()
    if declared in PLAYABLE_TYPES:
        return PLAYABLE_TYPES[declared]
    if declared in ("", "application/octet-stream", "binary/octet-stream"):
        # Some object stores label everything as bytes; then the file's suffix decides.
        path = urlsplit(url).path.lower()
        return next((kind for suffix, kind in TYPES_BY_SUFFIX.items() if path.endswith(suffix)), None)
    return None


async def read_media(
    url: str, *, rules: FetchRules, max_bytes: int = MAX_MEDIA_BYTES, read_seconds: float = 30.0
) -> Media:
    """Read a picture or video of at most `max_bytes` from `url` into memory.

    Args:
        url: where PixVerse (or the sandbox) said the file is.
        rules: the same address rules as every fetch of a finished video (`fetching.FetchRules`):
            host names resolved and internal addresses refused (loopback only when the API itself is
            on loopback), the checked address pinned, redirects followed by hand and checked alike.
        max_bytes: the hard cap; a larger file is refused as soon as that is known.
        read_seconds: the longest wait for any one read.
    """
    current = checked_url(url)
    timeout = httpx2.Timeout(read_seconds, connect=CONNECT_SECONDS)
    headers = {"User-Agent": f"pixverse-restyle-mcp/{__version__}"}
    try:
        with anyio.fail_after(TOTAL_SECONDS):
            async with (
                httpx2.AsyncClient(
                    timeout=timeout, headers=headers, follow_redirects=False, trust_env=False
                ) as http,
                open_stream(http, current, rules) as (response, final),
            ):
                return await _read_body(response, final, max_bytes)
    except TimeoutError:
        raise TimeoutError_(f"Reading the media took over {TOTAL_SECONDS:g} s; try again.") from None
    except httpx2.TimeoutException:
        raise TimeoutError_("The media host did not answer in time; try again.") from None
    except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
        raise TransportError(f"Reading the media failed ({type(exc).__name__}); try again.") from None


async def _read_body(response: httpx2.Response, url: str, max_bytes: int) -> Media:
    if response.status_code != 200:
        raise TransportError(
            f"The media host answered HTTP {response.status_code}; the link may have expired. "
            "Ask for the job's status again for a fresh URL.",
            http_status=response.status_code,
        )
    kind = _media_type(response.headers.get("content-type", ""), url)
    if kind is None:
        raise TransportError(
            f"The media host sent {response.headers.get('content-type', 'no type')!r}, not a picture or "
            "video; not read."
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise InputError(
            f"The file is {int(declared) / 1e6:.1f} MB; the viewer reads at most {max_bytes / 1e6:.0f} MB. "
            "Open the video's URL instead."
        )
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes(CHUNK_BYTES):
        total += len(chunk)
        if total > max_bytes:
            raise InputError(
                f"The file is over {max_bytes / 1e6:.0f} MB, the most the viewer reads. "
                "Open the video's URL instead."
            )
        chunks.append(chunk)
    return Media(data=b"".join(chunks), mime_type=kind, url=url)
