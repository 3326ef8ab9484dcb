"""Bearer-token authentication for the HTTP transports.

One mechanism for both deployments: a `TokenVerifier` (the SDK's hook) decides whether a token is
good. `StaticTokenVerifier` checks the one shared `PIXVERSE_MCP_TOKEN`; an OAuth deployment passes
its own verifier (JWT check, token introspection) instead. `RequireBearer` wraps the whole app with
the SDK's bearer backend, so the authenticated principal lands in `scope["user"]`, where the SDK's
transports use it to bind a session to the principal that opened it.

The client's token only ever authorizes the MCP request: it is never forwarded to PixVerse, which
sees the server's own API key.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.provider import AccessToken, TokenVerifier
from pydantic import AnyHttpUrl, SecretStr
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

STATIC_CLIENT_ID = "pixverse-mcp-token"
# Stands in for the token in the AccessToken the SDK keeps per request: the real secret stays here.
_REDACTED = "[PIXVERSE_MCP_TOKEN]"


class StaticTokenVerifier(TokenVerifier):
    """Accepts exactly one shared bearer token, compared in constant time."""

    def __init__(self, token: SecretStr) -> None:
        secret = token.get_secret_value()
        if not secret:
            raise ValueError("the MCP bearer token must not be empty")
        self._expected = secret.encode()

    def __repr__(self) -> str:
        return "StaticTokenVerifier(token=**********)"

    async def verify_token(self, token: str) -> AccessToken | None:
        """The access info for the shared token, or None for any other token."""
        # compare_digest on bytes: no early exit on the first differing byte, and non-ASCII input
        # (which str comparison would refuse) is simply a mismatch.
        if not hmac.compare_digest(token.encode(), self._expected):
            return None
        return AccessToken(token=_REDACTED, client_id=STATIC_CLIENT_ID, scopes=[])


class RequireBearer:
    """ASGI middleware: every HTTP request needs a bearer token the verifier accepts.

    Paths in `exempt_paths` (health checks) and under `exempt_prefixes` (OAuth discovery
    metadata, which a client must read before it has a token) pass through unauthenticated.
    A refusal is a 401 with `WWW-Authenticate: Bearer ...` (403 for a missing scope).
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        *,
        exempt_paths: Iterable[str] = ("/healthz",),
        exempt_prefixes: Iterable[str] = ("/.well-known/",),
        required_scopes: Iterable[str] = (),
        resource_metadata_url: AnyHttpUrl | None = None,
        resource_server_url: AnyHttpUrl | None = None,
    ) -> None:
        self._open = app
        self._exempt_paths = frozenset(exempt_paths)
        self._exempt_prefixes = tuple(exempt_prefixes)
        # The SDK's own pieces, in the order its auth-enabled apps use: authenticate (never
        # refuses), publish the user in a contextvar for tools, then refuse if unauthenticated.
        required = RequireAuthMiddleware(app, list(required_scopes), resource_metadata_url)
        self._protected = AuthenticationMiddleware(
            AuthContextMiddleware(required),
            backend=BearerAuthBackend(verifier, resource_server_url=resource_server_url),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._is_exempt(scope.get("path", "")):
            await self._open(scope, receive, send)  # lifespan events, /healthz, discovery metadata
            return
        await self._protected(scope, receive, send)

    def _is_exempt(self, path: str) -> bool:
        return path in self._exempt_paths or path.startswith(self._exempt_prefixes)
