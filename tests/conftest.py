"""Shared fixtures: one sandbox on loopback for the session, a fresh server and client per test."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from mcp import Client
from mcp.types import CallToolResult
from pg import PostgresCluster, postgres_bin
from pydantic import SecretStr

from pixverse_mcp.config import RetryWaits, Settings
from pixverse_mcp.retrying import RetryPolicy
from pixverse_mcp.samples import make_clip
from pixverse_mcp.sandbox import SandboxConfig, SandboxServer
from pixverse_mcp.server import create_server

# On CI every hypothesis test runs the same examples on every run, so a failure there is one that
# the next run repeats; locally they stay random, to keep finding new cases. (Recent hypothesis
# versions do this by themselves; the dependency floor, 6.100, does not.)
hypothesis_settings.register_profile(
    "repeatable", derandomize=True, database=None, deadline=None, print_blob=True
)
if "CI" in os.environ:
    hypothesis_settings.load_profile("repeatable")

# Recognisable on purpose: no result, resource, log line or error text may ever contain it.
SECRET_KEY = "sk-pixverse-SECRET-9f8e7d6c5b4a"
SANDBOX_CONFIG = SandboxConfig(api_key=SECRET_KEY, job_seconds=0.3, max_concurrent_jobs=3)

# The production policy, minus the waiting between attempts.
# The production retry waits, minus the waiting: set on every test server's Settings.
FAST_WAITS = RetryWaits(initial=0.01, max=0.05, jitter=0.01)
# For the narrow client tests that build a PixVerseClient with explicit policies.
FAST_POLICIES = {
    "read": RetryPolicy(attempts=4, timeout=10, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01),
    "generate": RetryPolicy(attempts=3, timeout=10, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01),
    "upload": RetryPolicy(attempts=3, timeout=10, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(SANDBOX_CONFIG) as server:
        yield server


def needs_system_package(available: bool, what: str) -> None:
    """A test that needs a system package: on CI (which installs it) its absence fails the test;
    on a developer's machine the test is skipped with the line that installs it."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing; .ci/run installs it")
    pytest.skip(f"{what} is not installed here (CI installs it; to run this test too: {what})")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster, started on first use and removed at the end of the session."""
    try:
        postgres_bin()
    except RuntimeError:
        needs_system_package(False, "apt-get install -y postgresql")
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxServer]:
    sandbox_server.state.config = SANDBOX_CONFIG
    sandbox_server.state.reset()
    yield sandbox_server
    sandbox_server.state.clear_faults()


@pytest.fixture(autouse=True)
def own_state_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test (and each server it spawns) keeps its job journal in its own folder, not the user's."""
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return state


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    assert SECRET_KEY not in caplog.text


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    folder = tmp_path / "videos"
    folder.mkdir()
    return folder


@pytest.fixture
def clip(videos: Path) -> Path:
    return make_clip(videos / "clip.mp4", seconds=2.0, width=320, height=240)


@pytest.fixture
def settings(sandbox: SandboxServer, tmp_path: Path, videos: Path) -> Settings:
    return Settings(
        api_key=SecretStr(SECRET_KEY),
        base_url=sandbox.base_url,
        output_dir=tmp_path / "out",
        allowed_dirs=(videos,),
        default_wait_seconds=10,
        max_wait_seconds=15,
        retry_waits=FAST_WAITS,
    )


@pytest.fixture(params=["auto", "legacy"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both protocol generations: the stateless 2026-07-28 one and the initialize handshake."""
    return str(request.param)


@pytest.fixture
async def client(settings: Settings, mode: str) -> AsyncIterator[Client]:
    async with Client(create_server(settings), mode=mode) as connected:
        yield connected


async def upload(client: Client, clip: Path) -> str:
    """Upload a clip through the tool; returns its media_id."""
    return str((await call_ok(client, "upload_video", {"path": str(clip)}))["media_id"])


def result_text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


async def call_ok(client: Client, tool: str, args: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """Call a tool that must succeed; returns its structured result."""
    result = await client.call_tool(tool, args or {}, **kw)
    assert not result.is_error, result_text(result)
    assert result.structured_content is not None
    assert SECRET_KEY not in json.dumps(result.model_dump(mode="json"))
    return result.structured_content


async def call_error(client: Client, tool: str, args: dict[str, Any] | None = None, **kw: Any) -> str:
    """Call a tool that must fail with an error this server wrote for the model; returns its text."""
    result = await client.call_tool(tool, args or {}, **kw)
    text = result_text(result)
    assert result.is_error, f"expected an error, got {result.structured_content}"
    assert SECRET_KEY not in text
    assert_own_error(tool, text)
    return text


def assert_own_error(tool: str, text: str) -> None:
    """The text is a message this server wrote for the model, not a crash or the SDK's own words.

    The SDK puts `Error executing tool <name>: ` before a deliberate error's text; a crash is that
    prefix alone (or this server's "failed unexpectedly"); a schema failure is pydantic's report.
    """
    prefix = f"Error executing tool {tool}: "
    assert text.startswith(prefix), f"not a deliberate error of {tool}: {text!r}"
    detail = text.removeprefix(prefix)
    assert "failed unexpectedly" not in detail, f"{tool} crashed: {detail}"
    assert "validation error" not in detail and "Error executing tool" not in detail, detail
    # Every message here says what happened and what to do: more than a word or a code.
    assert len(detail.split()) >= 6, f"not a full message: {detail!r}"


class ProgressLog:
    """A progress callback for `call_tool` that keeps every message it was given."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.values: list[tuple[float, float | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.messages.append(message or "")
        self.values.append((progress, total))
