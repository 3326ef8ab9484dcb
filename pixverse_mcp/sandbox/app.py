"""The sandbox's HTTP surface: the PixVerse API routes, static files and the control routes.

Every API request goes through :meth:`Pipeline.endpoint`: count it, apply a "before" fault,
check the headers, run the handler, apply an "after" fault.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import anyio
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .catalog import STYLES
from .endpoints import ENDPOINTS, Endpoint
from .faults import EMPTY_BODY, HTML_TEMPLATE, MALFORMED_BODY, Fault
from .files import StaticRoutes
from .handlers import Handlers
from .replies import MESSAGES, ApiError, Reply, envelope, error_reply, lowercase, to_response
from .state import SandboxConfig, SandboxState

RAW_SEND = "pixverse_sandbox.raw_send"  # scope key: the server's own send(), see _DroppedReply


class _DroppedReply(Response):
    """Close the connection without a single byte of reply (a lost reply, not a 500 page)."""

    def __init__(self) -> None:
        super().__init__(b"")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cycle = getattr(scope.get(RAW_SEND), "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is None:
            # Not uvicorn (e.g. an in-memory ASGI transport): an exception is the nearest thing.
            raise ConnectionAbortedError("sandbox fault: connection dropped")
        transport.close()
        # Wait until the server notices, so it does not answer the closed socket with a 500.
        with anyio.move_on_after(1.0):
            while (await receive())["type"] != "http.disconnect":
                pass


def _client_gone(request: Request) -> bool:
    cycle = getattr(request.scope.get(RAW_SEND), "__self__", None)
    return bool(getattr(cycle, "disconnected", False))


class _SandboxApp(Starlette):
    """Starlette that keeps the server's raw ``send`` in the scope (needed to drop connections)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[RAW_SEND] = send
        await super().__call__(scope, receive, send)


def _fault_response(fault: Fault) -> Response:
    if fault.kind == "html":
        status = fault.status_for(502)
        return Response(HTML_TEMPLATE.format(status=status), status, media_type="text/html")
    if fault.kind == "err_code":
        code = fault.error_code
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        return to_response(envelope(code, MESSAGES.get(code, "Error"), {}, fault.status_for(200), headers))
    if fault.kind == "malformed":
        return Response(MALFORMED_BODY, 200, media_type="application/json")
    if fault.kind == "empty":
        return Response(EMPTY_BODY, 200, media_type="application/json")
    if fault.kind == "drop":
        return _DroppedReply()
    # "hang" and "lowercase" change how the normal reply is delivered, handled by the caller.
    raise AssertionError(f"unexpected fault kind {fault.kind}")


class Pipeline:
    """What every API request goes through, around its handler."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.handlers = Handlers(state)

    def endpoint(self, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        name = endpoint.name

        async def run(request: Request) -> Response:
            trace_id = request.headers.get("ai-trace-id")
            api_key = request.headers.get("api-key")
            self.state.count_request(name, trace_id, api_key)
            lower = False
            before = self.state.take_fault(name, "before")
            if before is not None:
                if before.kind == "hang":
                    if not await self._hang(request, before.seconds):
                        return _DroppedReply()  # the client gave up: nothing gets processed
                elif before.kind == "lowercase":
                    lower = True
                else:
                    return _fault_response(before)
            reply = await self._process(request, endpoint, api_key, trace_id)
            after = self.state.take_fault(name, "after")
            if after is not None:
                if after.kind == "hang":
                    if not await self._hang(request, after.seconds):
                        return _DroppedReply()
                elif after.kind == "lowercase":
                    lower = True
                else:
                    return _fault_response(after)
            return to_response(lowercase(reply) if lower else reply)

        return run

    async def _hang(self, request: Request, seconds: float) -> bool:
        """Sleep ``seconds``; False as soon as the client is gone or the sandbox is stopping."""
        deadline = anyio.current_time() + seconds
        while (left := deadline - anyio.current_time()) > 0:
            if _client_gone(request) or self.state.closing.is_set():
                return False
            await anyio.sleep(min(left, 0.05))
        return True

    async def _process(
        self, request: Request, endpoint: Endpoint, api_key: str | None, trace_id: str | None
    ) -> Reply:
        expected = self.state.config.api_key
        try:
            if api_key is None or not hmac.compare_digest(api_key.encode(), expected.encode()):
                raise ApiError(400012, "Invalid account: check the API-KEY header", 401)
            if not trace_id or not trace_id.strip():
                raise ApiError(400011, "Empty parameter: Ai-trace-id header is required")
            return await endpoint.handler(self.handlers, request, trace_id)
        except ApiError as err:
            return error_reply(err)

    async def not_found(self, request: Request) -> Response:
        return to_response(envelope(500008, "no such endpoint", {}, 404))


class ControlRoutes:
    """``/_sandbox/...``: no API key, they are for tests and demos on loopback."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.state.clear_faults()
            return JSONResponse({"ok": True})
        try:
            fault = self.state.add_fault(Fault.model_validate(await request.json()))
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, 400)
        return JSONResponse({"ok": True, "fault": fault.model_dump()})

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse({"ok": True})

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.state.stats())

    async def index(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/") + self.state.config.path_prefix
        return JSONResponse({"name": "pixverse-sandbox", "base_url": base, "styles": len(STYLES)})


def create_app(config: SandboxConfig | None = None, state: SandboxState | None = None) -> Starlette:
    """Build the sandbox app. ``state`` lets a caller keep a handle on the live state."""
    state = state or SandboxState(config or SandboxConfig())
    pipeline, static, control = Pipeline(state), StaticRoutes(state), ControlRoutes(state)
    api_base = f"{state.config.path_prefix}/openapi/v2"
    api_routes = [
        Route(f"{api_base}{endpoint.path}", pipeline.endpoint(endpoint), methods=[endpoint.method])
        for endpoint in ENDPOINTS
    ]
    other_routes = [
        Route(f"{api_base}/{{rest:path}}", pipeline.not_found, methods=["GET", "POST"]),
        Route("/files/{name}", static.files, methods=["GET", "HEAD"]),
        Route("/covers/{restyle_id:int}.jpg", static.cover, methods=["GET", "HEAD"]),
        Route("/_sandbox/faults", control.faults, methods=["POST", "DELETE"]),
        Route("/_sandbox/reset", control.reset, methods=["POST"]),
        Route("/_sandbox/stats", control.stats, methods=["GET"]),
        Route("/", control.index, methods=["GET"]),
    ]
    app = _SandboxApp(routes=[*api_routes, *other_routes])
    app.state.sandbox = state
    return app
