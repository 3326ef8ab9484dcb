"""Paced uploads: the sandbox reads upload bodies at ``upload_bytes_per_second`` (a slower link)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.types import Message

from pixverse_mcp.samples import make_clip
from pixverse_mcp.sandbox import SandboxConfig, SandboxServer
from pixverse_mcp.sandbox.pacing import PacedReceive, slice_bytes

KEY = "sk-pacing"
RATE = 51_200.0  # 1 KiB slices: a small clip makes a handful of pauses in well under a second


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("pacing") / "clip.mp4", seconds=0.4, width=64, height=48, fps=5)


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(api_key=KEY)) as sandbox:
        yield sandbox


def upload(server: SandboxServer, clip: Path, trace_id: str | None = None) -> httpx2.Response:
    return httpx2.post(
        f"{server.base_url}/openapi/v2/media/upload",
        headers={"API-KEY": KEY, "Ai-trace-id": trace_id or str(uuid.uuid4())},
        files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")},
        timeout=10,
    )


def test_slice_sizes() -> None:
    assert slice_bytes(RATE) == 1024
    assert slice_bytes(12.5e6) == 250_000  # 100 Mbit/s: 50 pauses a second
    assert slice_bytes(10.0) == 1024 and slice_bytes(1e12) == 1 << 20


def test_upload_body_is_read_at_the_configured_rate(server: SandboxServer, clip: Path) -> None:
    server.state.config = server.state.config.model_copy(update={"upload_bytes_per_second": RATE})
    server.state.reset()
    trace_id = str(uuid.uuid4())
    reply = upload(server, clip, trace_id)
    assert reply.json()["ErrCode"] == 0
    sent = int(reply.request.headers["content-length"])
    assert sent > 2 * 1024
    stats = server.state.stats()
    assert stats["upload_bytes_paced"] == sent
    assert stats["upload_pauses"] == math.ceil(sent / 1024)
    # A replayed upload (same trace id) reads its body at the same pace.
    assert upload(server, clip, trace_id).content == reply.content
    assert server.state.stats()["upload_pauses"] == 2 * math.ceil(sent / 1024)


def test_uploads_are_unthrottled_by_default(server: SandboxServer, clip: Path) -> None:
    server.state.config = server.state.config.model_copy(update={"upload_bytes_per_second": None})
    server.state.reset()
    assert upload(server, clip).json()["ErrCode"] == 0
    assert server.state.stats()["upload_pauses"] == 0


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        SandboxConfig(upload_bytes_per_second=0)


@pytest.mark.anyio
async def test_pauses_fall_on_slice_boundaries_whatever_the_chunks() -> None:
    body = bytes(range(256)) * 1700  # 435,200 bytes
    chunks = [body[i : i + 65_537] for i in range(0, len(body), 65_537)]
    incoming: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    incoming.append({"type": "http.disconnect"})

    async def receive() -> Message:
        return incoming.pop(0)

    paused: list[int] = []
    rate = 5e6  # 100,000-byte slices
    paced = PacedReceive(receive, rate, paused.append)
    handed: list[Any] = []
    while (message := await paced())["type"] == "http.request":
        handed.append(message)
        assert len(message["body"]) <= paced.slice
    assert b"".join(message["body"] for message in handed) == body
    assert not handed[-1]["more_body"] and all(message["more_body"] for message in handed[:-1])
    assert paused == [100_000] * 4 + [35_200]
    assert message == {"type": "http.disconnect"}
