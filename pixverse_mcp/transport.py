"""Running the server on a transport: stdio for desktop clients, HTTP for hosted use.

HTTP is safe by default: it binds loopback unless told otherwise, checks Host and Origin headers
against DNS rebinding, and refuses a non-loopback bind without authentication unless the operator
says `--allow-unauthenticated`. `build_http_app` is the one place the HTTP app is assembled, so
`run`, the tests and the benchmarks serve the same thing.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import anyio.abc
from mcp.server import MCPServer
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixverse_mcp import __version__
from pixverse_mcp.config import Settings
from pixverse_mcp.http_auth import RequireBearer, StaticTokenVerifier
from pixverse_mcp.server import create_server

log = logging.getLogger(__name__)

Transport = Literal["stdio", "streamable-http", "sse"]
SHUTDOWN_GRACE_SECONDS = 0.5
HttpTransport = Literal["streamable-http", "sse"]

MCP_PATH = "/mcp"
SSE_PATH = "/sse"
HEALTH_PATH = "/healthz"
ALLOWED_HOSTS_ENV = "PIXVERSE_MCP_ALLOWED_HOSTS"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
EXIT_REFUSED = 2


def is_loopback(host: str) -> bool:
    """True for "localhost" and loopback IP literals (127.0.0.0/8, ::1); False for anything else."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # any other name may resolve anywhere: treat it as public


def bind_refusal(host: str, *, authenticated: bool, allow_unauthenticated: bool) -> str | None:
    """Why binding `host` is refused, or None when it is allowed.

    Loopback is always allowed; any other address needs authentication, or the operator's
    explicit `--allow-unauthenticated` (for a trusted network or an authenticating proxy).
    """
    if is_loopback(host) or authenticated or allow_unauthenticated:
        return None
    return (
        f"refusing to serve on {host!r} without authentication: anyone who can reach it could spend "
        "your PixVerse credits. Set PIXVERSE_MCP_TOKEN to a long random secret (clients send "
        "'Authorization: Bearer <token>'), or pass --allow-unauthenticated if a proxy in front "
        "authenticates, or bind 127.0.0.1."
    )


def transport_security(host: str, allowed_hosts: Sequence[str] = ()) -> TransportSecuritySettings:
    """DNS-rebinding protection: accept Host (and Origin) only for loopback, the bound host and
    `allowed_hosts` (PIXVERSE_MCP_ALLOWED_HOSTS, comma-separated; "*" turns the check off)."""
    extra = list(allowed_hosts)
    if "*" in extra:
        log.warning("%s contains '*': Host and Origin headers are not checked", ALLOWED_HOSTS_ENV)
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = list(LOOPBACK_HOSTS)
    bound = f"[{host}]" if ":" in host and not host.startswith("[") else host
    # A wildcard address is never what a client puts in Host, so it allows nothing by itself.
    if host not in ("0.0.0.0", "::", "") and bound not in names:
        names.append(bound)
    names += extra
    hosts: list[str] = []
    origins: list[str] = []
    for name in names:
        # An entry with a port allows just that port; a bare name allows any port or none (port 80/443).
        has_port = "]:" in name if name.startswith("[") else name.count(":") == 1
        hosts += [name] if has_port else [name, f"{name}:*"]
        for scheme in ("http", "https"):
            origins += [f"{scheme}://{name}"] if has_port else [f"{scheme}://{name}", f"{scheme}://{name}:*"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def _verifier_for(settings: Settings, token_verifier: TokenVerifier | None) -> TokenVerifier | None:
    if token_verifier is not None:
        if settings.mcp_token is not None:
            log.info("a token verifier was given: PIXVERSE_MCP_TOKEN is not used")
        return token_verifier
    return StaticTokenVerifier(settings.mcp_token) if settings.mcp_token is not None else None


def build_http_app(
    settings: Settings,
    *,
    transport: HttpTransport = "streamable-http",
    stateless: bool = False,
    host: str = "127.0.0.1",
    token_verifier: TokenVerifier | None = None,
    auth: AuthSettings | None = None,
) -> Starlette:
    """The ASGI app for an HTTP transport: MCP at /mcp (or /sse + /messages/), plus GET /healthz.

    Args:
        settings: the server's settings; `settings.mcp_token` enables the shared bearer token.
        transport: "streamable-http" (streaming responses, so progress notifications arrive) or "sse".
        stateless: streamable HTTP without sessions, so replicas need no sticky routing.
        host: the address that will be bound; it is allowed in the Host header.
        token_verifier: an OAuth-style verifier; replaces the shared token when given.
        auth: optional OAuth resource-server settings (required scopes, resource URL for
            RFC 9728 discovery metadata); only used with a token verifier.
    """
    if stateless and transport != "streamable-http":
        raise ValueError("stateless mode exists only for the streamable-http transport")
    server = create_server(settings, client_roots=False)
    backend = "sandbox" if settings.sandbox else "pixverse"

    async def healthz(_: Request) -> Response:
        # No auth and nothing secret; outside the MCP transport, so no Host check either:
        # load balancers probe it by IP address.
        return JSONResponse({"status": "ok", "version": __version__, "backend": backend})

    verifier = _verifier_for(settings, token_verifier)
    security = transport_security(host, settings.mcp_allowed_hosts)
    if transport == "streamable-http":
        # json_response=False: replies stream as SSE, which is what carries progress notifications.
        app = server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            json_response=False,
            stateless_http=stateless,
            transport_security=security,
            host=host,
        )
    else:
        app = server.sse_app(sse_path=SSE_PATH, transport_security=security, host=host)
        # The SSE app enters the server's lifespan per connection; holding it open for the app's
        # life keeps one PixVerse client (and sandbox) for all connections.
        app.router.lifespan_context = _hold_server_lifespan(server)
    app.router.routes.append(Route(HEALTH_PATH, healthz, methods=["GET"]))
    resource_url = auth.resource_server_url if auth is not None else None
    if verifier is not None and auth is not None and resource_url is not None:
        # RFC 9728 metadata: how an OAuth client finds its authorization server (read before it
        # has a token, so RequireBearer leaves /.well-known/ open).
        app.router.routes.extend(
            create_protected_resource_routes(
                resource_url=resource_url,
                authorization_servers=[auth.issuer_url],
                scopes_supported=auth.required_scopes,
            )
        )
    if verifier is not None:
        app.add_middleware(
            RequireBearer,
            verifier=verifier,
            exempt_paths=(HEALTH_PATH,),
            required_scopes=(auth.required_scopes or []) if auth is not None else (),
            resource_metadata_url=build_resource_metadata_url(resource_url) if resource_url else None,
            resource_server_url=resource_url if auth is not None and auth.validate_token_resource else None,
        )
    return app


def _hold_server_lifespan(server: MCPServer[Any]) -> Any:
    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if server.settings.lifespan is None:
            yield
            return
        async with server.settings.lifespan(server):
            yield

    return lifespan


def run(
    settings: Settings,
    *,
    transport: Transport = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    stateless: bool = False,
    allow_unauthenticated: bool = False,
    token_verifier: TokenVerifier | None = None,
) -> int:
    """Serve until the client goes away (stdio) or the process is stopped (HTTP; SIGTERM is graceful).

    Returns the process exit code: 0, or 2 when the configuration is refused before binding.
    """
    if transport == "stdio":
        if stateless:
            return _refuse("--stateless applies to --transport streamable-http only")
        _warn_without_key(settings)
        anyio.run(_serve_stdio, create_server(settings))
        return 0
    if stateless and transport != "streamable-http":
        return _refuse("--stateless applies to --transport streamable-http only")
    authenticated = token_verifier is not None or settings.mcp_token is not None
    if refusal := bind_refusal(
        host, authenticated=authenticated, allow_unauthenticated=allow_unauthenticated
    ):
        return _refuse(refusal)
    _warn_without_key(settings)
    if not authenticated and not is_loopback(host):
        log.warning("serving on %s WITHOUT authentication (--allow-unauthenticated)", host)
    if stateless and settings.sandbox:
        log.warning(
            "--sandbox with --stateless: this process has its own sandbox, so replicas will not see each "
            "other's jobs; run `pixverse-mcp sandbox` once and point PIXVERSE_BASE_URL at it instead"
        )
    if host in ("0.0.0.0", "::") and not settings.mcp_allowed_hosts:
        log.warning(
            "bound to %s: requests are accepted only with a loopback Host header; set %s to the "
            "host name clients use (e.g. mcp.example.com)",
            host,
            ALLOWED_HOSTS_ENV,
        )
    app = build_http_app(
        settings, transport=transport, stateless=stateless, host=host, token_verifier=token_verifier
    )
    import uvicorn  # only HTTP needs it; stdio starts without it

    path = MCP_PATH if transport == "streamable-http" else SSE_PATH
    shown = f"[{host}]" if ":" in host else host
    log.info(
        "MCP over %s%s at http://%s:%d%s (health: %s)",
        transport,
        " (stateless)" if stateless else "",
        shown,
        port,
        path,
        HEALTH_PATH,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # keep the CLI's logging setup (stderr, one format)
        log_level=settings.log_level.lower(),
        # On SIGTERM, a tool call that is waiting for a job may finish; then open streams are cut.
        timeout_graceful_shutdown=int(settings.max_wait_seconds) + 5,
    )
    uvicorn.Server(config).run()
    return 0


async def _serve_stdio(server: MCPServer[Any]) -> None:
    """Serve stdio until stdin closes, or until SIGTERM/SIGINT, closing the PixVerse client either way."""
    async with anyio.create_task_group() as tasks:

        async def stop_on_signal(
            *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
        ) -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                task_status.started()
                async for signum in signals:
                    log.info("received %s: shutting down", signal.Signals(signum).name)
                    # The SDK reads stdin in a worker thread that only a new line or EOF wakes up;
                    # after a moment for the client to close, leave without waiting for it.
                    timer = threading.Timer(SHUTDOWN_GRACE_SECONDS, _exit_now)
                    timer.daemon = True
                    timer.start()
                    tasks.cancel_scope.cancel()
                    return

        # Started before serving, so a SIGTERM right after the ready line is already handled.
        await tasks.start(stop_on_signal)
        await server.run_stdio_async()
        tasks.cancel_scope.cancel()


def _exit_now() -> None:
    logging.shutdown()
    os._exit(0)


def _warn_without_key(settings: Settings) -> None:
    if settings.api_key is None and not settings.sandbox:
        log.warning(
            "PIXVERSE_API_KEY is not set: tools will answer with how to set it. Use --sandbox to try offline."
        )


def _refuse(message: str) -> int:
    print(f"pixverse-mcp: {message}", file=sys.stderr)
    return EXIT_REFUSED
