"""The client's retry policy, case by case, against `httpx2.MockTransport`.

The fault matrix (test_faults.py) shows what the assistant sees through the protocol; these pin
down the narrow cases the sandbox cannot stage: a connection refused on one attempt and not the
next, and the `Retry-After` a reply carries.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from conftest import FAST_POLICIES, SECRET_KEY
from pydantic import SecretStr

from pixverse_mcp.client import PixVerseClient
from pixverse_mcp.config import Settings
from pixverse_mcp.errors import BusyError, ConnectError, TransportError, UncertainOutcomeError
from pixverse_mcp.retrying import MAX_RETRY_AFTER, RetryPolicy
from pixverse_mcp.retrying import should_retry as _should_retry

pytestmark = pytest.mark.anyio

Step = Callable[[httpx2.Request], httpx2.Response]


def refused(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ConnectError("connection refused", request=request)


def dropped(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ReadError("connection reset by peer", request=request)


def envelope(code: int, resp: Any = None, headers: dict[str, str] | None = None) -> Step:
    def reply(request: httpx2.Request) -> httpx2.Response:
        body = {"ErrCode": code, "ErrMsg": "success" if code == 0 else "Error", "Resp": resp or {}}
        return httpx2.Response(200, content=json.dumps(body).encode(), headers=headers)

    return reply


class Scripted:
    """A PixVerse that answers each request with the next step of a script, and keeps the requests."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self.steps.pop(0)(request)

    @property
    def trace_ids(self) -> list[str]:
        return [request.headers["ai-trace-id"] for request in self.requests]


def pixverse(script: Scripted, **policies: RetryPolicy) -> PixVerseClient:
    settings = Settings(api_key=SecretStr(SECRET_KEY), base_url="https://pixverse.invalid")
    client = PixVerseClient(settings, policies={**FAST_POLICIES, **policies})  # type: ignore[arg-type]
    # The one seam: the client's HTTP connection pool, replaced by the script.
    client._client = httpx2.AsyncClient(transport=httpx2.MockTransport(script))
    return client


BODY = {"video_media_id": 7, "restyle_prompt": "noir"}
JOB = {"video_id": 42, "credits": 30}


async def test_a_generate_refused_a_connection_then_answered_made_no_job() -> None:
    # Never connected, then a clear refusal: nothing can exist, so it is not "uncertain".
    script = Scripted(refused, envelope(500069))
    async with pixverse(script) as client:
        with pytest.raises(BusyError) as caught:
            await client.restyle(BODY)
    assert not isinstance(caught.value, UncertainOutcomeError) and caught.value.code == 500069
    assert len(script.requests) == 2 and len(set(script.trace_ids)) == 1


async def test_a_generate_lost_in_transit_then_refused_may_have_made_the_job() -> None:
    script = Scripted(dropped, envelope(500069))
    async with pixverse(script) as client:
        with pytest.raises(UncertainOutcomeError, match="may have started the job anyway"):
            await client.restyle(BODY)
    assert len(script.requests) == 2 and len(set(script.trace_ids)) == 1


async def test_a_generate_lost_in_transit_then_unreachable_may_have_made_the_job() -> None:
    script = Scripted(dropped, refused, refused)
    async with pixverse(script) as client:
        with pytest.raises(UncertainOutcomeError, match="may have started the job anyway"):
            await client.restyle(BODY)
    assert len(script.requests) == 3


async def test_a_generate_that_never_connected_is_a_connect_error() -> None:
    script = Scripted(refused, refused, refused)
    async with pixverse(script) as client:
        with pytest.raises(ConnectError) as caught:
            await client.restyle(BODY)
    assert not isinstance(caught.value, UncertainOutcomeError)
    assert len(script.requests) == FAST_POLICIES["generate"].attempts


async def test_a_generate_is_re_sent_with_its_trace_id_after_a_lost_reply() -> None:
    script = Scripted(dropped, envelope(0, JOB))
    async with pixverse(script) as client:
        job, trace = await client.restyle(BODY)
    assert job.video_id == 42 and script.trace_ids == [trace, trace]


async def test_an_upload_is_re_sent_only_when_no_connection_was_made() -> None:
    media = {"media_id": 9, "media_type": "video", "url": "https://cdn.invalid/a.mp4"}
    script = Scripted(refused, envelope(0, media))
    async with pixverse(script) as client:
        uploaded = await client.upload_url("https://example.com/a.mp4")
    assert uploaded.media_id == 9 and len(set(script.trace_ids)) == 1 and len(script.requests) == 2

    script = Scripted(dropped, envelope(0, media))
    async with pixverse(script) as client:
        with pytest.raises(TransportError, match="connection to PixVerse broke"):
            await client.upload_url("https://example.com/a.mp4")
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    ("header", "carried", "decision"),
    [
        ("7", 7.0, 7.0),
        ("0.5", 0.5, 0.5),
        ("999", 999.0, MAX_RETRY_AFTER),
        ("soon", None, True),
        (None, None, True),
    ],
)
async def test_retry_after_is_read_from_the_reply_and_capped(
    header: str | None, carried: float | None, decision: float | bool
) -> None:
    script = Scripted(envelope(500069, headers={"Retry-After": header} if header else None))
    single = RetryPolicy(attempts=1, timeout=5)
    async with pixverse(script, read=single) as client:
        with pytest.raises(BusyError) as caught:
            await client.balance()
    assert caught.value.retry_after == carried
    assert _should_retry("read")(caught.value) == decision
    assert MAX_RETRY_AFTER == 30.0  # what the README promises
