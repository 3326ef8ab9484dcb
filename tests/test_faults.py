"""The fault matrix: every sandbox fault on every endpoint, and what the assistant sees.

For each case: the call ends in a success or a specific error, no restyle_video call makes more
than one job, a job that was made is never lost (its id is in the answer, or the error says how to
recover it without paying again), and the server answers afterwards.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import call_ok, result_text
from mcp import Client

from pixverse_mcp.config import Settings, Timeouts
from pixverse_mcp.errors import BadResponseError, BusyError, ConnectError, InvalidRequestError
from pixverse_mcp.retrying import should_retry as _should_retry
from pixverse_mcp.sandbox import SandboxServer
from pixverse_mcp.server import create_server

pytestmark = pytest.mark.anyio

TRACE = re.compile(r"trace id ([0-9a-f-]{36})")
HANG = 1.5  # longer than the 1 s timeouts of these tests


@dataclass(frozen=True)
class Case:
    endpoint: str
    kind: str
    count: int = 1
    when: str = "before"
    needle: str | None = None  # None: the call succeeds; else the error contains it

    @property
    def id(self) -> str:
        return f"{self.endpoint}-{self.kind}-{self.when}-x{self.count}"


READS = ("list", "result", "balance")
SUCCEEDS_AFTER_ONE_FAULT = [
    Case(endpoint, kind)
    for endpoint in (*READS, "generate")
    for kind in ("hang", "html", "drop", "malformed", "empty")
] + [Case(endpoint, "err_code") for endpoint in READS]
CASES = [
    *SUCCEEDS_AFTER_ONE_FAULT,
    *[Case(endpoint, "lowercase") for endpoint in (*READS, "generate", "upload")],
    *[Case(endpoint, "lowercase", count=99) for endpoint in (*READS, "generate", "upload")],
    # Faults that outlast every retry: a specific error.
    Case("balance", "hang", 99, needle="did not answer in time"),
    Case("result", "html", 99, needle="HTML page"),
    Case("list", "drop", 99, needle="connection to PixVerse broke"),
    Case("balance", "malformed", 99, needle="not valid JSON"),
    Case("balance", "empty", 99, needle="without the fields"),
    Case("result", "empty", 99, needle="without the fields"),
    Case("generate", "empty", 99, needle="trace_id"),
    Case("upload", "empty", 1, needle="without the fields"),
    Case("result", "err_code", 99, needle="500069"),
    Case("generate", "err_code", 1, needle="500069"),
    Case("generate", "html", 99, needle="HTML page"),
    Case("generate", "drop", 99, needle="connection to PixVerse broke"),
    # Uploads are re-sent only when no connection was made: other failures are reported.
    Case("upload", "html", 1, needle="HTML page"),
    Case("upload", "drop", 1, needle="connection to PixVerse broke"),
    Case("upload", "malformed", 1, needle="not valid JSON"),
    Case("upload", "err_code", 1, needle="500069"),
    Case("upload", "hang", 1, needle="did not answer in time"),
    # PixVerse made the job, then the reply was lost: the same trace id brings it back.
    *[Case("generate", kind, when="after") for kind in ("hang", "html", "drop", "malformed", "empty")],
    *[
        Case("generate", kind, 99, when="after", needle="trace_id")
        for kind in ("hang", "html", "drop", "malformed", "empty")
    ],
]


@pytest.fixture
async def fault_client(settings: Settings, sandbox: SandboxServer) -> AsyncIterator[Client]:
    quick = Timeouts(connect=1.0, read=1.0, upload=1.0, download=5.0)
    server = create_server(settings.with_changes(timeouts=quick, catalog_ttl_seconds=0))
    async with Client(server) as client:
        yield client


async def _prepare(client: Client, clip: Path) -> dict[str, str]:
    media = await call_ok(client, "upload_video", {"path": str(clip)})
    done = await call_ok(
        client, "restyle_video", {"video_media_id": media["media_id"], "restyle_prompt": "noir"}
    )
    return {"media_id": media["media_id"], "video_id": done["video_id"]}


def _call_for(endpoint: str, ids: dict[str, str], clip: Path) -> tuple[str, dict[str, Any]]:
    if endpoint == "result":
        return "get_status", {"video_id": ids["video_id"], "wait_seconds": 0}
    if endpoint == "generate":
        return "restyle_video", {
            "video_media_id": ids["media_id"],
            "restyle_prompt": "sepia",
            "wait_seconds": 0,
        }
    if endpoint == "upload":
        return "upload_video", {"path": str(clip)}
    return {"list": "list_restyles", "balance": "get_balance"}[endpoint], {}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_fault(fault_client: Client, sandbox: SandboxServer, clip: Path, case: Case) -> None:
    needs_job = case.endpoint in ("result", "generate")
    ids = await _prepare(fault_client, clip) if needs_job else {}
    jobs_before = sandbox.state.stats()["jobs_created"]
    sandbox.state.add_fault(
        endpoint=case.endpoint,
        kind=case.kind,
        count=case.count,
        when=case.when,
        seconds=HANG,
        http_status=502 if case.kind == "html" else None,
    )
    tool, args = _call_for(case.endpoint, ids, clip)
    result = await fault_client.call_tool(tool, args)
    text = result_text(result)
    sandbox.state.clear_faults()

    stats = sandbox.state.stats()
    made = stats["jobs_created"] - jobs_before
    assert all(n <= 1 for n in stats["jobs_per_trace_id"].values())
    assert made <= 1
    if case.needle is None:
        assert not result.is_error, text
        if tool == "restyle_video":
            assert made == 1
            assert int(result.structured_content["video_id"]) == max(sandbox.state.jobs)
    else:
        assert result.is_error and case.needle in text, text
        assert TRACE.search(text), text
        if case.when == "before":
            assert made == 0  # PixVerse never processed the request: no job, nothing charged
        if made:
            # The reply was lost after the job was made: recover it with the trace id, for free.
            trace = re.search(r"trace_id '([0-9a-f-]{36})'", text)
            assert trace, text
            recovered = await call_ok(fault_client, tool, {**args, "trace_id": trace.group(1)})
            assert int(recovered["video_id"]) == max(sandbox.state.jobs)
            assert sandbox.state.stats()["jobs_created"] - jobs_before == 1
    # The server keeps serving.
    assert (await call_ok(fault_client, "get_balance"))["total"] >= 0


async def test_a_generate_retry_reuses_its_trace_id(
    fault_client: Client, sandbox: SandboxServer, clip: Path
) -> None:
    ids = await _prepare(fault_client, clip)
    sandbox.state.add_fault(endpoint="generate", kind="drop", when="after")
    done = await call_ok(
        fault_client,
        "restyle_video",
        {"video_media_id": ids["media_id"], "restyle_prompt": "neon", "wait_seconds": 0},
    )
    generate_traces = sandbox.state.stats()["trace_ids"]["generate"]
    # First restyle, then the new one twice: sent, reply dropped, re-sent with the same trace id.
    assert generate_traces[-2:] == [done["trace_id"], done["trace_id"]]


async def test_read_retries_use_fresh_trace_ids(fault_client: Client, sandbox: SandboxServer) -> None:
    sandbox.state.add_fault(endpoint="balance", kind="html", count=2)
    await call_ok(fault_client, "get_balance")
    traces = sandbox.state.stats()["trace_ids"]["balance"]
    assert len(traces) == 3 and len(set(traces)) == 3


def test_retry_policy_per_kind() -> None:
    html = BadResponseError("gateway", http_status=502)
    busy = BusyError("load", code=500069, api_message="busy", retry_after=2.5)
    refused = InvalidRequestError("bad", code=400017, api_message="bad")
    unreachable = ConnectError("no route")
    read, generate, upload = _should_retry("read"), _should_retry("generate"), _should_retry("upload")
    assert read(html) is True and read(busy) == 2.5 and read(refused) is False
    assert generate(html) is True and generate(busy) is False and generate(refused) is False
    assert upload(unreachable) is True and upload(html) is False and upload(busy) is False
    assert read(BusyError("x", code=500069, api_message="", retry_after=999)) == 30.0
