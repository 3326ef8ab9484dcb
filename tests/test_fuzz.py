"""Random argument sets through the MCP client: no crash, specific errors, nothing sent for rejected sets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import pytest
from conftest import SECRET_KEY, result_text
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mcp import Client

from pixverse_mcp.config import Settings
from pixverse_mcp.sandbox import SandboxServer
from pixverse_mcp.server import create_server

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.from_regex(r"\A[0-9]{1,25}\Z"),
    st.sampled_from(["", "   ", "1001", "noir", "../../etc/passwd", "~/x.mp4", "https://127.0.0.1:1/a.mp4"]),
    st.text(min_size=2040, max_size=2100),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)

TOOL_PARAMS = {
    "list_restyles": ["query"],
    "upload_video": ["path", "url"],
    "restyle_video": [
        "video_media_id",
        "source_video_id",
        "restyle_id",
        "restyle_prompt",
        "seed",
        "wait_seconds",
        "download",
        "trace_id",
    ],
    "get_status": ["video_id", "wait_seconds", "download"],
    "get_balance": [],
}


@st.composite
def tool_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    tool = draw(st.sampled_from(sorted(TOOL_PARAMS)))
    names = draw(st.lists(st.sampled_from([*TOOL_PARAMS[tool], "unexpected"]), unique=True, max_size=5))
    args = {name: draw(VALUES) for name in names}
    if "wait_seconds" in args:
        args["wait_seconds"] = draw(st.one_of(st.none(), st.just(0), VALUES))
    return tool, args


def _given(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def breaks_exactly_one(tool: str, args: dict[str, Any]) -> bool:
    """Whether an argument set breaks an exactly-one rule: such a call must be refused locally."""
    pairs = {
        "upload_video": [("path", "url")],
        "restyle_video": [("video_media_id", "source_video_id"), ("restyle_id", "restyle_prompt")],
    }.get(tool, [])
    return any(sum(_given(args.get(name)) for name in pair) != 1 for pair in pairs)


@pytest.fixture
def portal_client(settings: Settings, sandbox: SandboxServer) -> Iterator[tuple[Any, Client]]:
    server = create_server(settings.with_changes(max_wait_seconds=0.5))
    with (
        anyio.from_thread.start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(Client(server)) as client,
    ):
        yield portal, client


def test_random_arguments(portal_client: tuple[Any, Client], sandbox: SandboxServer, clip: Path) -> None:
    portal, client = portal_client

    # Derandomized on CI by the profile tests/conftest.py loads there; random locally.
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(call=tool_calls())
    @example(call=("upload_video", {"path": "x" * 2050}))  # a name over 255 bytes once crashed the call
    @example(call=("upload_video", {"path": "~nosuchuser/x.mp4"}))
    def check(call: tuple[str, dict[str, Any]]) -> None:
        tool, args = call
        before = sum(sandbox.state.stats()["requests"].values())
        result = portal.call(client.call_tool, tool, args)
        sent = sum(sandbox.state.stats()["requests"].values()) - before
        text = result_text(result)
        assert SECRET_KEY not in text
        if result.is_error:
            detail = text.split(":", 1)[1].strip() if text.startswith("Error executing tool") else text
            assert len(detail) > 15, f"unspecific error for {tool}{args}: {text!r}"
            assert "failed unexpectedly" not in text, f"{tool}{args} crashed: {text}"
            if "trace id" not in text:
                assert sent == 0, f"a locally refused call sent {sent} requests: {tool}{args}: {text}"
        if breaks_exactly_one(tool, args):
            assert result.is_error and sent == 0, f"{tool}{args} should be refused locally"
        # The server still answers after every call.
        alive = portal.call(client.call_tool, "list_restyles", {})
        assert not alive.is_error

    check()
