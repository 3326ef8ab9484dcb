"""The rules for a video URL that PixVerse fetches itself."""

from __future__ import annotations

import pytest

from pixverse_mcp.arguments import MAX_URL_LENGTH, validate_video_url
from pixverse_mcp.errors import InputError


@pytest.mark.parametrize(
    "url",
    ["https://cdn.example.com/v/clip.mp4", "  http://example.com:8080/a.mov?sig=abc  ", "HTTPS://x.io/a"],
)
def test_good_urls_pass_stripped(url: str) -> None:
    assert validate_video_url(url) == url.strip()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("", "empty"),
        ("ftp://example.com/a.mp4", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("example.com/a.mp4", "has no scheme"),
        ("https:///a.mp4", "no host"),
        ("https://user:secret@example.com/a.mp4", "user name or password"),
        ("https://example.com/my clip.mp4", "a space (' ') at character 23"),
        ("https://example.com/a\x00.mp4", "a control character"),
        ("https://example.com:99999/a.mp4", "invalid port"),
        ("https://example.com/" + "a" * MAX_URL_LENGTH, f"{MAX_URL_LENGTH + 20} characters long"),
    ],
)
def test_bad_urls_are_refused(url: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        validate_video_url(url)
    assert info.value.argument == "url"
    assert fragment in str(info.value)
    assert "publicly reachable" in str(info.value)
