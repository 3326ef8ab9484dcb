"""The sandbox's HTTP surface: the PixVerse API routes, static files and the control routes.

Every API request goes through :func:`_api_endpoint`: count it, apply a "before" fault, check
the headers, run the handler, apply an "after" fault. Handlers raise :class:`ApiError` for
every ErrCode reply, so the envelope is built in one place.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import random
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import render
from .catalog import STYLES, Style, get_style, style_for_prompt
from .faults import EMPTY_BODY, HTML_TEMPLATE, MALFORMED_BODY, Fault
from .state import Job, Reply, SandboxConfig, SandboxState

MESSAGES: Final = {
    0: "Success",
    400011: "Empty parameter",
    400012: "Invalid account",
    400013: "Invalid binding request: incorrect parameter type or value",
    400017: "Invalid parameter",
    400018: "Prompt length exceeds the 2048-character limit",
    500008: "Requested data not found",
    500044: "Reached the limit for concurrent generations",
    500069: "System is under high load, please try again later",
    500090: "Insufficient balance: please top up credits",
    500100: "Internal database error",
    99999: "Unknown error",
}

MAX_PROMPT = 2048
MAX_SEED = 2_147_483_647
MAX_UPLOAD_SECONDS = 30.0
MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # a guard for the sandbox's disk; restyle allows 50 MiB
RESTYLE_MAX_SECONDS = 16.0
RESTYLE_MAX_SIDE = 1920
RESTYLE_MAX_BYTES = 50 * 1024 * 1024
UPLOAD_SUFFIXES = {".mp4", ".mov", ".webm", ".m4a", ".mkv"}
FILE_NAME = re.compile(r"^[0-9a-f]{16}\.[a-z0-9]{2,4}$")
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".m4a": "audio/mp4",
}
RAW_SEND = "pixverse_sandbox.raw_send"  # scope key: the server's own send(), see _DroppedReply


class ApiError(Exception):
    """An ErrCode reply; ``http_status`` is what the wire shows (often not an error status)."""

    def __init__(self, code: int, message: str | None = None, http_status: int = 400) -> None:
        super().__init__(message or MESSAGES.get(code, "Error"))
        self.code, self.message, self.http_status = code, message or MESSAGES.get(code, "Error"), http_status


def envelope(
    code: int, message: str, resp: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Reply:
    body = json.dumps({"ErrCode": code, "ErrMsg": message, "Resp": resp}).encode()
    return Reply(status, body, headers or {})


def ok(resp: Any) -> Reply:
    return envelope(0, MESSAGES[0], resp)


def _to_response(reply: Reply) -> Response:
    return Response(reply.body, reply.status, headers=reply.headers, media_type="application/json")


def _lowercase(reply: Reply) -> Reply:
    """The same reply with the lower-case keys some PixVerse error replies use."""
    data = json.loads(reply.body)
    renamed = {"err_code": data["ErrCode"], "err_msg": data["ErrMsg"], "resp": data["Resp"]}
    return Reply(reply.status, json.dumps(renamed).encode(), reply.headers)


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
        return _to_response(envelope(code, MESSAGES.get(code, "Error"), {}, fault.status_for(200), headers))
    if fault.kind == "malformed":
        return Response(MALFORMED_BODY, 200, media_type="application/json")
    if fault.kind == "empty":
        return Response(EMPTY_BODY, 200, media_type="application/json")
    if fault.kind == "drop":
        return _DroppedReply()
    # "hang" and "lowercase" change how the normal reply is delivered, handled by the caller.
    raise AssertionError(f"unexpected fault kind {fault.kind}")


class Api:
    """The PixVerse endpoints, bound to one state."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.config: SandboxConfig = state.config

    # -- the pipeline every API request goes through --------------------------------------

    def endpoint(
        self, name: str, handler: Callable[[Request, str], Awaitable[Reply]]
    ) -> Callable[[Request], Awaitable[Response]]:
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
            reply = await self._process(request, handler, api_key, trace_id)
            after = self.state.take_fault(name, "after")
            if after is not None:
                if after.kind == "hang":
                    if not await self._hang(request, after.seconds):
                        return _DroppedReply()
                elif after.kind == "lowercase":
                    lower = True
                else:
                    return _fault_response(after)
            return _to_response(_lowercase(reply) if lower else reply)

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
        self,
        request: Request,
        handler: Callable[[Request, str], Awaitable[Reply]],
        api_key: str | None,
        trace_id: str | None,
    ) -> Reply:
        try:
            if api_key is None or not hmac.compare_digest(api_key.encode(), self.config.api_key.encode()):
                raise ApiError(400012, "Invalid account: check the API-KEY header", 401)
            if not trace_id or not trace_id.strip():
                raise ApiError(400011, "Empty parameter: Ai-trace-id header is required")
            return await handler(request, trace_id)
        except ApiError as err:
            return envelope(err.code, err.message, {}, err.http_status)

    # -- handlers ------------------------------------------------------------------------------

    async def upload(self, request: Request, trace_id: str) -> Reply:
        if (cached := self.state.replay("upload", trace_id)) is not None:
            async for _ in request.stream():  # read the body we are not going to use
                pass
            return cached
        try:
            form = await request.form(max_files=4, max_fields=20)
        except HTTPException as exc:  # Starlette's wrapper for a malformed multipart body
            raise ApiError(400013, "Invalid binding request: send multipart/form-data") from exc
        try:
            has_file, has_url = "file" in form, "file_url" in form
            if has_file and has_url:
                raise ApiError(400017, "Invalid parameter: send either file or file_url, not both")
            if not has_file and not has_url:
                raise ApiError(400011, "Empty parameter: file or file_url is required")
            if has_file:
                part = form["file"]
                if not isinstance(part, UploadFile):
                    raise ApiError(400013, "Invalid binding request: file must be a binary file part")
                suffix = Path(part.filename or "").suffix.lower()
                path = self.state.new_file(".upload")
                size = await anyio.to_thread.run_sync(_copy_limited, part.file, path)
            else:
                url = form["file_url"]
                if not isinstance(url, str):
                    raise ApiError(400013, "Invalid binding request: file_url must be a string")
                if not url.strip():
                    raise ApiError(400011, "Empty parameter: file_url is empty")
                suffix = Path(urlsplit(url).path).suffix.lower()
                path = self.state.new_file(".upload")
                size = await _fetch_loopback(url.strip(), path)
        finally:
            await form.close()  # removes the spooled temporary files
        return await self._store_upload(request, trace_id, path, size, suffix)

    async def _store_upload(
        self, request: Request, trace_id: str, path: Path, size: int, suffix: str
    ) -> Reply:
        try:
            if size > MAX_UPLOAD_BYTES:
                raise ApiError(400017, f"Invalid parameter: file larger than {MAX_UPLOAD_BYTES >> 20} MB")
            try:
                info = await anyio.to_thread.run_sync(render.probe, path)
            except render.ProbeError as exc:
                raise ApiError(400017, "not a video resource") from exc
            if info.duration > MAX_UPLOAD_SECONDS:
                raise ApiError(400017, f"Invalid parameter: video longer than {MAX_UPLOAD_SECONDS:g} s")
        except ApiError:
            await anyio.Path(path).unlink(missing_ok=True)
            raise
        if suffix not in UPLOAD_SUFFIXES:
            suffix = ".mp4" if info.is_mp4_or_mov else ".webm"
        final = self.state.new_file(suffix)
        await anyio.Path(path).rename(final)
        media = self.state.add_media(final, info)
        reply = ok(
            {"media_id": media.media_id, "media_type": info.media_type, "url": _file_url(request, final)}
        )
        return self.state.remember("upload", trace_id, reply)

    async def generate(self, request: Request, trace_id: str) -> Reply:
        if (cached := self.state.replay("generate", trace_id)) is not None:
            return cached
        try:
            body = await request.json()
        except ValueError as exc:
            raise ApiError(400013, "Invalid binding request: body must be JSON") from exc
        if not isinstance(body, dict):
            raise ApiError(400013, "Invalid binding request: body must be a JSON object")
        source = self._source(body)
        style, prompt = self._style(body)
        seed = _seed(body)
        with self.state.lock:  # check-and-create must be atomic: two requests may race
            if (cached := self.state.replay("generate", trace_id)) is not None:
                return cached
            if (code := self.state.admission_error()) is not None:
                raise ApiError(code, http_status=200)
            job = self.state.create_job(trace_id, source, style, prompt, seed)
            return self.state.remember(
                "generate", trace_id, ok({"video_id": job.video_id, "credits": job.credits})
            )

    def _source(self, body: dict[str, Any]) -> Path:
        """The file to restyle, from exactly one of source_video_id / video_media_id."""
        given = [key for key in ("source_video_id", "video_media_id") if key in body]
        if len(given) != 1:
            raise ApiError(
                400017, "Invalid parameter: provide exactly one of source_video_id or video_media_id"
            )
        key = given[0]
        value = _parse_id(body[key], key)
        if key == "video_media_id":
            media = self.state.media.get(value)
            if media is None:
                raise ApiError(400017, "no matching video_media_id, please re-upload")
            _check_restyle_limits(media.info, media.size)
            return media.path
        job = self.state.jobs.get(value)
        if job is None or self.state.status(job) != 1 or job.output is None:
            raise ApiError(400017, "no matching source_video_id (it must be a finished video)")
        return job.output

    def _style(self, body: dict[str, Any]) -> tuple[Style, str]:
        given = [key for key in ("restyle_id", "restyle_prompt") if key in body]
        if len(given) != 1:
            raise ApiError(400017, "either restyle_id or restyle_prompt must be provided")
        if given[0] == "restyle_id":
            style = get_style(_parse_id(body["restyle_id"], "restyle_id"))
            if style is None:
                raise ApiError(400017, "Invalid parameter: no matching restyle_id")
            return style, style.prompt
        prompt = body["restyle_prompt"]
        if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
            raise ApiError(400011, "Empty parameter: restyle_prompt is blank")
        if not isinstance(prompt, str):
            raise ApiError(400013, "Invalid binding request: restyle_prompt must be a string")
        if len(prompt) > MAX_PROMPT:
            raise ApiError(400018, f"restyle_prompt is longer than {MAX_PROMPT} characters")
        return style_for_prompt(prompt), prompt

    async def list_styles(self, request: Request, trace_id: str) -> Reply:
        page_num = _page_param(request, "page_num", 1)
        page_size = min(_page_param(request, "page_size", 20), self.config.list_max_page_size)
        start = (page_num - 1) * page_size
        items = [_style_item(request, style) for style in STYLES[start : start + page_size]]
        return ok({"total": len(STYLES), "page_num": page_num, "page_size": page_size, "list": items})

    async def result(self, request: Request, trace_id: str) -> Reply:
        raw = request.path_params["video_id"]
        if not (raw.isascii() and raw.isdigit()):
            raise ApiError(400013, "Invalid binding request: video_id must be an integer")
        job = self.state.jobs.get(int(raw))
        if job is None:
            raise ApiError(500008, http_status=200)
        return ok(self._job_resp(request, job))

    def _job_resp(self, request: Request, job: Job) -> dict[str, Any]:
        status = self.state.status(job)
        done = status == 1 and job.output is not None
        return {
            "id": job.video_id,
            "status": status,
            "url": _file_url(request, job.output) if done and job.output else "",
            "prompt": job.prompt,
            "negative_prompt": "",
            "seed": job.seed,
            "size": job.output_size if done else 0,
            "style": job.style.name,
            "outputWidth": job.width if done else 0,
            "outputHeight": job.height if done else 0,
            "resolution_ratio": min(job.width, job.height) if done else 0,
            "create_time": job.create_time,
            "modify_time": job.modify_time,
        }

    async def balance(self, request: Request, trace_id: str) -> Reply:
        self.state.running_jobs()  # settles finished jobs, so moderation refunds show up
        with self.state.lock:
            return ok(
                {
                    "account_id": self.config.account_id,
                    "credit_monthly": self.state.credit_monthly,
                    "credit_package": self.state.credit_package,
                }
            )

    async def not_found(self, request: Request) -> Response:
        return _to_response(envelope(500008, "no such endpoint", {}, 404))

    # -- static files --------------------------------------------------------------------------

    async def files(self, request: Request) -> Response:
        name = request.path_params["name"]
        path = self.state.data_dir / name
        if not FILE_NAME.match(name) or not path.is_file():
            return Response("not found", 404, media_type="text/plain")
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"))

    async def cover(self, request: Request) -> Response:
        style = get_style(request.path_params["restyle_id"])
        if style is None:
            return Response("not found", 404, media_type="text/plain")
        data = self.state.covers.get(style.restyle_id)
        if data is None:
            data = await anyio.to_thread.run_sync(render.render_cover, style.steps(1))
            self.state.covers[style.restyle_id] = data
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    # -- control routes (no API key: they are for tests and demos on loopback) -------------

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
        base = str(request.base_url).rstrip("/") + self.config.path_prefix
        return JSONResponse({"name": "pixverse-sandbox", "base_url": base, "styles": len(STYLES)})


def _parse_id(value: Any, key: str) -> int:
    """An id as a JSON integer or a string of digits (ids exceed 2**53, so clients send both)."""
    if value is None:
        raise ApiError(400011, f"Empty parameter: {key}")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    raise ApiError(400013, f"Invalid binding request: {key} must be an integer id")


def _seed(body: dict[str, Any]) -> int:
    seed = body.get("seed")
    if seed is None:  # not set: PixVerse picks one
        return random.randint(0, MAX_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ApiError(400013, f"Invalid binding request: seed must be an integer in 0..{MAX_SEED}")
    return seed


def _check_restyle_limits(info: render.ProbeInfo, size: int) -> None:
    """Restyle accepts less than upload: mp4/mov, 16 s, 1920 px, 50 MB."""
    if info.media_type != "video":
        raise ApiError(400017, "not a video resource")
    if not info.is_mp4_or_mov:
        raise ApiError(400017, "Invalid parameter: restyle needs an mp4 or mov video")
    if info.duration > RESTYLE_MAX_SECONDS:
        raise ApiError(400017, f"Invalid parameter: video longer than {RESTYLE_MAX_SECONDS:g} s")
    if max(info.width, info.height) > RESTYLE_MAX_SIDE:
        raise ApiError(
            400017, f"Invalid parameter: resolution above {RESTYLE_MAX_SIDE} px on the longer side"
        )
    if size > RESTYLE_MAX_BYTES:
        raise ApiError(400017, "Invalid parameter: video larger than 50 MB")


def _page_param(request: Request, key: str, default: int) -> int:
    raw = request.query_params.get(key)
    if raw is None:
        return default
    if not (raw.strip().isascii() and raw.strip().isdigit()) or int(raw) < 1:
        raise ApiError(400013, f"Invalid binding request: {key} must be a positive integer")
    return int(raw)


def _style_item(request: Request, style: Style) -> dict[str, Any]:
    return {
        "restyle_id": style.restyle_id,
        "restyle_name": style.name,
        "restyle_prompt": style.prompt,
        "cover_url": f"{_root(request)}/covers/{style.restyle_id}.jpg",
    }


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _file_url(request: Request, path: Path) -> str:
    return f"{_root(request)}/files/{path.name}"


def _copy_limited(src: IO[bytes], dst: Path) -> int:
    """Copy an upload to disk in chunks, stopping just past the size guard."""
    src.seek(0)
    written = 0
    with dst.open("wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
            written += len(chunk)
            if written > MAX_UPLOAD_BYTES:
                break
    return written


def _is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


async def _fetch_loopback(url: str, dst: Path) -> int:
    """Download ``url`` to ``dst``. Only loopback hosts: the sandbox never sends traffic off the machine."""
    import httpx2

    if not _is_loopback(url):
        raise ApiError(400017, "file_url could not be fetched (the sandbox only fetches loopback URLs)")
    written = 0
    try:
        # No redirects and no proxies from the environment: either could lead off the machine.
        async with (
            httpx2.AsyncClient(follow_redirects=False, trust_env=False, timeout=10.0) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise ApiError(400017, f"file_url could not be fetched (HTTP {response.status_code})")
            async with await anyio.open_file(dst, "wb") as out:
                async for chunk in response.aiter_bytes():
                    await out.write(chunk)
                    written += len(chunk)
                    if written > MAX_UPLOAD_BYTES:
                        break
    except ApiError:
        await anyio.Path(dst).unlink(missing_ok=True)
        raise
    except httpx2.HTTPError as exc:
        await anyio.Path(dst).unlink(missing_ok=True)
        raise ApiError(400017, "file_url could not be fetched") from exc
    return written


def create_app(config: SandboxConfig | None = None, state: SandboxState | None = None) -> Starlette:
    """Build the sandbox app. ``state`` lets a caller keep a handle on the live state."""
    state = state or SandboxState(config or SandboxConfig())
    api = Api(state)
    api_base = f"{state.config.path_prefix}/openapi/v2"
    api_routes = [
        Route(f"{api_base}/media/upload", api.endpoint("upload", api.upload), methods=["POST"]),
        Route(f"{api_base}/video/restyle/generate", api.endpoint("generate", api.generate), methods=["POST"]),
        Route(f"{api_base}/video/restyle/list", api.endpoint("list", api.list_styles), methods=["GET"]),
        Route(f"{api_base}/video/result/{{video_id}}", api.endpoint("result", api.result), methods=["GET"]),
        Route(f"{api_base}/account/balance", api.endpoint("balance", api.balance), methods=["GET"]),
        Route(f"{api_base}/{{rest:path}}", api.not_found, methods=["GET", "POST"]),
    ]
    static_routes = [
        Route("/files/{name}", api.files, methods=["GET", "HEAD"]),
        Route("/covers/{restyle_id:int}.jpg", api.cover, methods=["GET", "HEAD"]),
        Route("/_sandbox/faults", api.faults, methods=["POST", "DELETE"]),
        Route("/_sandbox/reset", api.reset, methods=["POST"]),
        Route("/_sandbox/stats", api.stats, methods=["GET"]),
        Route("/", api.index, methods=["GET"]),
    ]
    app = _SandboxApp(routes=[*api_routes, *static_routes])
    app.state.sandbox = state
    return app
