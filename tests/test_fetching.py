"""The fetch rules on their own: which URLs and addresses a video may come from, and the download bound."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from hostile import HostileApi, video_file

from pixverse_mcp.config import Settings
from pixverse_mcp.fetching import (
    FetchRefused,
    FetchRules,
    download_to,
    is_internal,
    resolve,
    resolve_blocking,
    unfetchable_reason,
)
from pixverse_mcp.samples import make_clip

LOCAL = FetchRules(allow_loopback=True)
REMOTE = FetchRules()


@pytest.fixture
def api() -> Iterator[HostileApi]:
    with HostileApi() as server:
        yield server


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("8.8.8.8", False),
        ("2606:4700::1111", False),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.0.1", True),
        ("100.64.0.1", True),  # shared (carrier-grade NAT)
        ("169.254.169.254", True),  # cloud metadata
        ("fe80::1", True),
        ("fc00::1", True),
        ("0.0.0.0", True),
        ("::", True),
        ("224.0.0.1", True),
        ("240.0.0.1", True),
        ("::ffff:10.0.0.1", True),  # IPv4-mapped
        ("2002:a00:1::", True),  # 6to4 around 10.0.0.1
    ],
)
def test_internal_addresses(address: str, internal: bool) -> None:
    assert is_internal(ipaddress.ip_address(address)) is internal


def test_loopback_only_when_the_api_is_on_loopback() -> None:
    assert is_internal(ipaddress.ip_address("127.0.0.1"), allow_loopback=True) is False
    assert is_internal(ipaddress.ip_address("::ffff:127.0.0.1"), allow_loopback=True) is False
    assert is_internal(ipaddress.ip_address("10.0.0.1"), allow_loopback=True) is True
    assert is_internal(ipaddress.ip_address("0.0.0.0"), allow_loopback=True) is True
    for base, local in [
        ("http://127.0.0.1:8787", True),
        ("http://localhost:8787/prefix", True),
        ("http://[::1]:8787", True),
        ("https://app-api.pixverse.ai", False),
        ("http://10.0.0.5:8787", False),
    ]:
        assert FetchRules.for_base_url(base).allow_loopback is local, base


@pytest.mark.parametrize(
    ("url", "fetchable"),
    [
        ("https://media.pixverse.ai/v.mp4", True),
        ("HTTP://cdn.example.com/v.mp4?sig=1", True),
        ("file:///etc/passwd", False),
        ("/etc/passwd", False),
        ("video.mp4", False),
        ("ftp://example.com/v.mp4", False),
        ("data:video/mp4;base64,AAAA", False),
        ("http:///no-host", False),
        ("", False),
        (None, False),
    ],
)
def test_only_http_urls_with_a_host_are_fetched(url: str | None, fetchable: bool) -> None:
    assert (unfetchable_reason(url) is None) is fetchable


@pytest.mark.anyio
async def test_host_names_are_resolved_and_every_address_checked() -> None:
    with pytest.raises(FetchRefused, match="internal address"):
        await resolve("localhost", 80, REMOTE)
    assert ipaddress.ip_address(await resolve("localhost", 80, LOCAL)).is_loopback
    with pytest.raises(FetchRefused, match="internal address"):
        resolve_blocking("localhost", 80, REMOTE, 5)
    with pytest.raises(FetchRefused, match="internal address"):
        await resolve("[::ffff:127.0.0.1]", 80, REMOTE)


@pytest.mark.anyio
async def test_loopback_is_refused_when_the_api_is_not_local(api: HostileApi, tmp_path: Path) -> None:
    api.routes["/v.mp4"] = video_file(make_clip(tmp_path / "v.mp4", seconds=0.5))
    dest = tmp_path / "copy.mp4"

    async def fetch(rules: FetchRules) -> int:
        timeout = httpx2.Timeout(5)
        return await download_to(
            api.url("/v.mp4"), dest, rules=rules, http_timeout=timeout, max_bytes=10**7, seconds=10
        )

    with pytest.raises(FetchRefused, match="internal address"):
        await fetch(REMOTE)
    assert api.hits == []
    assert await fetch(LOCAL) == dest.stat().st_size > 0
    # The API's own origin is trusted wherever it is; another port on the same address is not.
    assert await fetch(FetchRules.for_base_url(f"http://127.0.0.1:{api.port}")) > 0
    with pytest.raises(FetchRefused, match="internal address"):
        await fetch(FetchRules(api_origin=("http", "127.0.0.1", api.port + 1)))
    assert await fetch(FetchRules(api_origin=("http", "127.0.0.1", api.port))) > 0


def test_the_download_cap_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).max_download_mb == 200
    settings = Settings.from_env({"PIXVERSE_MAX_DOWNLOAD_MB": "1.5"})
    assert settings.max_download_bytes == 3 * 512 * 1024
