"""Hosted use over HTTP: streamable HTTP and SSE, bearer auth, DNS-rebinding checks, /healthz,
the bind-safety rule, and stateless replicas behind a round-robin "load balancer".

Servers run for real on free loopback ports: in-process under uvicorn in a thread, or as
`python -m pixverse_mcp serve` subprocesses; clients are the SDK's HTTP clients.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from conftest import SECRET_KEY, ProgressLog, call_error, call_ok
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.shared.exceptions import MCPError
from pydantic import SecretStr
from starlette.applications import Starlette

from pixverse_mcp import __version__, cli
from pixverse_mcp.config import Settings
from pixverse_mcp.http_auth import StaticTokenVerifier
from pixverse_mcp.sandbox import SandboxServer
from pixverse_mcp.transport import bind_refusal, build_http_app, is_loopback, transport_security

pytestmark = pytest.mark.anyio

TOKEN = "mcp-token-TEST-0a1b2c3d4e5f6a7b"
ROOT = Path(__file__).resolve().parents[1]
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}
SERVE = [sys.executable, "-m", "pixverse_mcp", "serve", "--transport", "streamable-http"]
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


# -- helpers -------------------------------------------------------------------------------------


def _listening_socket() -> socket.socket:
    """A socket already listening on a free loopback port: clients can connect before uvicorn runs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(app: Starlette, sock: socket.socket | None = None) -> Iterator[str]:
    """Serve `app` under uvicorn in a thread; yields `http://127.0.0.1:PORT`."""
    sock = sock or _listening_socket()
    root = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        app, log_config=None, log_level="warning", loop="asyncio", ws="none", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        # The socket listens already, so this waits (bounded) for uvicorn's startup, not for a race.
        assert httpx2.get(f"{root}/healthz", timeout=15).status_code == 200
        yield root
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _http_app(settings: Settings, **kw: Any) -> Starlette:
    return build_http_app(settings, **kw)


@asynccontextmanager
async def mcp_client(
    url: str,
    token: str | None = TOKEN,
    mode: str = "auto",
    transport: httpx2.AsyncBaseTransport | None = None,
    statuses: list[int] | None = None,
) -> AsyncIterator[Client]:
    """The SDK's streamable-HTTP client, sending `Authorization: Bearer <token>`.

    `statuses`, when given, collects the HTTP status of every reply the client gets.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = httpx2.Timeout(30, read=120)

    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    async with (
        httpx2.AsyncClient(
            headers=headers, timeout=timeout, transport=transport, event_hooks={"response": [record]}
        ) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


async def _refused_with_401(url: str, token: str) -> None:
    """Connecting with this token fails, and every reply the client got was a 401."""
    statuses: list[int] = []
    with pytest.RaisesGroup(pytest.RaisesExc(MCPError, match="error response"), flatten_subgroups=True):
        async with mcp_client(url, token=token, statuses=statuses) as client:
            await client.list_tools()
    assert statuses and set(statuses) == {401}, statuses


@pytest.fixture
def token_settings(settings: Settings) -> Settings:
    return settings.with_changes(mcp_token=SecretStr(TOKEN))


@pytest.fixture
def http_root(token_settings: Settings) -> Iterator[str]:
    """A stateful streamable-HTTP server with the shared token."""
    with serving(_http_app(token_settings)) as root:
        yield root


def _slow_jobs(sandbox: SandboxServer, seconds: float) -> None:
    sandbox.state.config = sandbox.state.config.model_copy(update={"job_seconds": seconds})


async def _flow(client: Client, clip: Path, follow: Client | None = None) -> dict[str, Any]:
    """list -> upload -> restyle (answer at once) -> get_status on `follow` (default: the same client)."""
    catalog = await call_ok(client, "list_restyles")
    uploaded = await call_ok(client, "upload_video", {"path": str(clip)})
    started = await call_ok(
        client,
        "restyle_video",
        {
            "video_media_id": uploaded["media_id"],
            "restyle_id": catalog["styles"][0]["restyle_id"],
            "wait_seconds": 0,
        },
    )
    assert started["status"] == "generating", started
    done = await call_ok(
        follow or client, "get_status", {"video_id": started["video_id"], "wait_seconds": 14}
    )
    assert done["status"] == "succeeded" and done["video_id"] == started["video_id"], done
    return done


# -- streamable HTTP end to end ------------------------------------------------------------------


async def test_restyle_flow_over_streamable_http_with_progress(
    http_root: str, clip: Path, sandbox: SandboxServer, mode: str
) -> None:
    _slow_jobs(sandbox, 1.0)  # long enough that the wait reports "generating" at least once
    progress = ProgressLog()
    messages = progress.messages

    async with mcp_client(f"{http_root}/mcp", mode=mode) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"list_restyles", "upload_video", "restyle_video", "get_status", "get_balance"} <= tools
        result = await client.call_tool("upload_video", {"path": str(clip)}, progress_callback=progress)
        assert not result.is_error and result.structured_content is not None
        media_id = result.structured_content["media_id"]
        result = await client.call_tool(
            "restyle_video",
            {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 14},
            progress_callback=progress,
        )
        assert not result.is_error and result.structured_content is not None
        assert result.structured_content["status"] == "succeeded"
        assert SECRET_KEY not in json.dumps(result.model_dump(mode="json"))
    # Progress notifications travel on the streamed responses: the SSE-framed replies of /mcp.
    assert any(m.startswith("uploaded") for m in messages), messages
    assert any(m.startswith("generating,") for m in messages), messages
    # PixVerse only ever saw the server's own key, never the client's bearer token.
    assert sandbox.state.stats()["api_keys_seen"] == 1


@pytest.fixture
def outside(clip: Path, tmp_path: Path) -> Path:
    """A valid clip outside the allowed roots."""
    path = tmp_path / "elsewhere" / "clip.mp4"
    path.parent.mkdir()
    path.write_bytes(clip.read_bytes())
    return path


async def test_upload_paths_stay_confined_over_http(http_root: str, clip: Path, outside: Path) -> None:
    async with mcp_client(f"{http_root}/mcp") as client:
        for path in (str(outside), "/etc/passwd", f"{clip.parent}/../elsewhere/clip.mp4"):
            text = await call_error(client, "upload_video", {"path": path})
            assert "allowed" in text.lower(), text
        assert (await call_ok(client, "upload_video", {"path": str(clip)}))["media_type"] == "video"


# -- authentication ------------------------------------------------------------------------------


async def test_requests_without_or_with_a_wrong_token_get_401(http_root: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        for auth in (None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"):
            headers = {**MCP_HEADERS, **({"Authorization": auth} if auth else {})}
            reply = await http.post(f"{http_root}/mcp", json=INITIALIZE, headers=headers)
            assert reply.status_code == 401, (auth, reply.status_code)
            assert reply.headers["www-authenticate"].startswith("Bearer "), reply.headers
            assert TOKEN not in reply.text and SECRET_KEY not in reply.text
        ok = await http.post(
            f"{http_root}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"bearer {TOKEN}"}
        )
        assert ok.status_code == 200, ok.text
    # Through the SDK client the refusal surfaces while connecting, as the 401 it is.
    await _refused_with_401(f"{http_root}/mcp", "wrong-token")


async def test_static_verifier_compares_exactly_and_keeps_the_secret() -> None:
    verifier = StaticTokenVerifier(SecretStr(TOKEN))
    accepted = await verifier.verify_token(TOKEN)
    assert accepted is not None and TOKEN not in accepted.model_dump_json()
    for wrong in ("", TOKEN[:-1], TOKEN + " ", TOKEN.upper(), "ü" + TOKEN):
        assert await verifier.verify_token(wrong) is None
    assert TOKEN not in repr(verifier)
    with pytest.raises(ValueError):
        StaticTokenVerifier(SecretStr(""))


class ScopedVerifier:
    """Stands in for an OAuth verifier (JWT or introspection): two users, one with the scope."""

    async def verify_token(self, token: str) -> AccessToken | None:
        scopes = {"oauth-alice": ["restyle"], "oauth-bob": []}.get(token)
        if scopes is None:
            return None
        return AccessToken(token=token, client_id=token.removeprefix("oauth-"), scopes=scopes)


async def test_a_token_verifier_plugs_in_for_oauth(settings: Settings) -> None:
    sock = _listening_socket()
    root = f"http://127.0.0.1:{sock.getsockname()[1]}"
    auth = AuthSettings(
        issuer_url="https://auth.example.com",  # type: ignore[arg-type]
        resource_server_url=f"{root}/mcp",  # type: ignore[arg-type]
        required_scopes=["restyle"],
        validate_token_resource=False,
    )
    app = _http_app(settings, token_verifier=ScopedVerifier(), auth=auth)
    with serving(app, sock):
        async with mcp_client(f"{root}/mcp", token="oauth-alice") as client:
            assert len((await client.list_tools()).tools) >= 5
        async with httpx2.AsyncClient(timeout=10) as http:
            bob = await http.post(
                f"{root}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": "Bearer oauth-bob"}
            )
            assert bob.status_code == 403 and "insufficient_scope" in bob.headers["www-authenticate"]
            nobody = await http.post(f"{root}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            assert nobody.status_code == 401
            assert "/.well-known/oauth-protected-resource/mcp" in nobody.headers["www-authenticate"]
            # Discovery metadata is readable before the client has a token.
            metadata = await http.get(f"{root}/.well-known/oauth-protected-resource/mcp")
            assert metadata.status_code == 200
            assert metadata.json()["authorization_servers"] == ["https://auth.example.com"]


# -- DNS rebinding and health --------------------------------------------------------------------


async def test_foreign_host_or_origin_is_rejected(token_settings: Settings) -> None:
    app = _http_app(token_settings.with_changes(mcp_allowed_hosts=("mcp.example.com",)))
    with serving(app) as root:
        good = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}
        async with httpx2.AsyncClient(timeout=10) as http:

            async def post(**extra: str) -> int:
                reply = await http.post(f"{root}/mcp", json=INITIALIZE, headers={**good, **extra})
                return reply.status_code

            assert await post(Host="evil.example.com") == 421
            assert await post(Host="evil.example.com:8000") == 421
            assert await post(Origin="http://evil.example.com") == 403
            assert await post(Host="mcp.example.com") == 200  # the operator's public name
            assert await post(Host="mcp.example.com:443", Origin="https://mcp.example.com") == 200
            assert await post(Host="localhost:1234", Origin="http://localhost:3000") == 200


def test_allowed_hosts_are_loopback_the_bound_host_and_the_operators_names() -> None:
    local = transport_security("127.0.0.1")
    assert local.enable_dns_rebinding_protection
    assert "127.0.0.1:*" in local.allowed_hosts and "[::1]:*" in local.allowed_hosts
    assert not any("example" in h for h in local.allowed_hosts)
    from_env = Settings.from_env({"PIXVERSE_MCP_ALLOWED_HOSTS": "a.example.com, b.example.com:8443"})
    wide = transport_security("0.0.0.0", from_env.mcp_allowed_hosts)
    assert "0.0.0.0" not in wide.allowed_hosts
    assert {"a.example.com", "a.example.com:*", "b.example.com:8443"} <= set(wide.allowed_hosts)
    assert "b.example.com:*" not in wide.allowed_hosts
    assert "https://a.example.com" in wide.allowed_origins
    assert "10.0.0.5:*" in transport_security("10.0.0.5").allowed_hosts
    assert "[fd00::5]:*" in transport_security("fd00::5").allowed_hosts
    off = transport_security("0.0.0.0", ("*",))
    assert not off.enable_dns_rebinding_protection


async def test_healthz_needs_no_auth_and_tells_no_secrets(http_root: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        # Load balancers probe by IP address, so /healthz ignores the Host check too.
        reply = await http.get(f"{http_root}/healthz", headers={"Host": "10.0.0.7:8000"})
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "version": __version__, "backend": "pixverse"}
    assert TOKEN not in reply.text and SECRET_KEY not in reply.text


# -- SSE -----------------------------------------------------------------------------------------


async def test_sse_transport_lists_tools_and_requires_the_token(token_settings: Settings) -> None:
    with serving(_http_app(token_settings, transport="sse")) as root:
        async with httpx2.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{root}/sse")).status_code == 401
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with Client(sse_client(f"{root}/sse", headers=headers), mode="legacy") as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert {"list_restyles", "restyle_video", "get_status"} <= tools
            balance = await call_ok(client, "get_balance")
            assert balance["total"] > 0


# -- binding safety ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("", False),
    ],
)
def test_only_loopback_binds_without_authentication(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    refused = bind_refusal(host, authenticated=False, allow_unauthenticated=False)
    assert (refused is None) is loopback
    assert bind_refusal(host, authenticated=True, allow_unauthenticated=False) is None
    assert bind_refusal(host, authenticated=False, allow_unauthenticated=True) is None


def test_cli_refuses_a_public_bind_without_a_token() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXVERSE_")}
    done = subprocess.run(
        [*SERVE, "--host", "0.0.0.0", "--port", str(_free_port())],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "without authentication" in done.stderr
    assert "PIXVERSE_MCP_TOKEN" in done.stderr and "--allow-unauthenticated" in done.stderr


def test_cli_refuses_stateless_sse(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["serve", "--transport", "sse", "--stateless", "--port", str(_free_port())])
    assert code == 2
    assert "--stateless applies to --transport streamable-http only" in capsys.readouterr().err
    with pytest.raises(ValueError, match="stateless"):
        build_http_app(Settings(), transport="sse", stateless=True)


# -- stateless replicas --------------------------------------------------------------------------


class RoundRobin(httpx2.AsyncBaseTransport):
    """An ordinary load balancer: each HTTP request goes to the next replica, no stickiness."""

    def __init__(self, ports: list[int]) -> None:
        self._ports = itertools.cycle(ports)
        self._inner = httpx2.AsyncHTTPTransport()
        self.hits: Counter[int] = Counter()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = next(self._ports)
        self.hits[port] += 1
        request.url = request.url.copy_with(port=port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@contextmanager
def replicas(
    count: int,
    sandbox: SandboxServer,
    videos: Path,
    tmp_path: Path,
    *,
    extra_env: dict[str, str] | None = None,
) -> Iterator[list[int]]:
    """`count` stateless servers as real processes, as a team would run them behind a balancer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXVERSE_")}
    env |= {
        "PIXVERSE_BASE_URL": sandbox.base_url,
        "PIXVERSE_API_KEY": SECRET_KEY,
        "PIXVERSE_MCP_TOKEN": TOKEN,
        "PIXVERSE_ALLOWED_DIRS": str(videos),
        "PIXVERSE_OUTPUT_DIR": str(tmp_path / "out"),
        "PIXVERSE_LOG_LEVEL": "DEBUG",  # the most talkative setting must still leak nothing
        **(extra_env or {}),
    }
    ports = [_free_port() for _ in range(count)]
    logs = [tmp_path / f"replica-{port}.log" for port in ports]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port, log in zip(ports, logs, strict=True):
            with log.open("wb") as sink:
                procs.append(
                    subprocess.Popen(
                        [*SERVE, "--stateless", "--port", str(port)],
                        env=env,
                        cwd=ROOT,
                        stdout=subprocess.DEVNULL,
                        stderr=sink,
                    )
                )
        for port, proc, log in zip(ports, procs, logs, strict=True):
            _wait_healthy(port, proc, log)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for log in logs:
        text = log.read_text(errors="replace")
        assert SECRET_KEY not in text and TOKEN not in text, f"a secret reached {log.name}"


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    """Poll /healthz until it answers; fail early (with the log) if the process dies."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"replica on {port} exited:\n{log.read_text(errors='replace')}"
        try:
            reply = httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            if reply.status_code == 200:
                assert reply.json()["status"] == "ok"
                return
        except httpx2.TransportError:
            pass  # not listening yet
        assert time.monotonic() < deadline, f"replica on {port} never became healthy:\n{log.read_text()}"
        time.sleep(0.05)  # the poll interval of a bounded wait, not a guess at a duration


async def test_stateless_replicas_share_nothing_but_pixverse(
    sandbox: SandboxServer, videos: Path, clip: Path, tmp_path: Path
) -> None:
    with replicas(2, sandbox, videos, tmp_path) as (first, second):
        async with httpx2.AsyncClient(timeout=10) as http:
            reply = await http.post(
                f"http://127.0.0.1:{first}/mcp",
                json=INITIALIZE,
                headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"},
            )
        assert reply.status_code == 200 and "mcp-session-id" not in reply.headers  # no session to stick to
        # A job started on one replica and followed on the other.
        async with (
            mcp_client(f"http://127.0.0.1:{first}/mcp") as on_first,
            mcp_client(f"http://127.0.0.1:{second}/mcp") as on_second,
        ):
            await _flow(on_first, clip, follow=on_second)
        # One client behind a round-robin balancer: every request may land on either replica,
        # the handshake era included.
        for mode in ("auto", "legacy"):
            balancer = RoundRobin([first, second])
            async with mcp_client(f"http://127.0.0.1:{first}/mcp", mode=mode, transport=balancer) as client:
                await _flow(client, clip)
            assert balancer.hits[first] >= 2 and balancer.hits[second] >= 2, balancer.hits
        # Each replica checks PIXVERSE_MCP_TOKEN itself.
        await _refused_with_401(f"http://127.0.0.1:{second}/mcp", "wrong")
    assert sandbox.state.stats()["jobs_created"] == 3
    assert sandbox.state.stats()["api_keys_seen"] == 1
