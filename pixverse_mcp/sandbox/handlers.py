"""The PixVerse endpoints: upload, generate, style list, job result and balance.

Each handler gets a request whose key and trace id are already checked (see ``app.py``) and
returns a :class:`Reply` or raises :class:`ApiError`.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from . import render
from .catalog import STYLES, Style, get_style, style_for_prompt
from .fetch import REFUSED, own_file_name
from .files import cover_url, file_url, root_url, served_file
from .pacing import PacedReceive
from .replies import ApiError, Reply, ok

if TYPE_CHECKING:
    from .state import Job, SandboxConfig, SandboxState

MAX_PROMPT = 2048
MAX_SEED = 2_147_483_647
MAX_UPLOAD_SECONDS = 30.0
MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # a guard for the sandbox's disk; restyle allows 50 MiB
RESTYLE_MAX_SECONDS = 16.0
RESTYLE_MAX_SIDE = 1920
RESTYLE_MAX_BYTES = 50 * 1024 * 1024
UPLOAD_SUFFIXES = {".mp4", ".mov", ".webm", ".m4a", ".mkv"}


class Handlers:
    """The PixVerse endpoints, bound to one state."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    @property
    def config(self) -> SandboxConfig:
        # Read on every use: tests swap ``state.config`` on a running sandbox.
        return self.state.config

    # -- upload --------------------------------------------------------------------------------

    async def upload(self, request: Request, trace_id: str) -> Reply:
        if (rate := self.config.upload_bytes_per_second) is not None:
            request = Request(
                request.scope, PacedReceive(request.receive, rate, self.state.count_upload_pause)
            )
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
                source = self._own_file(request, url.strip())
                suffix = source.suffix
                path = self.state.new_file(".upload")
                size = await anyio.to_thread.run_sync(_copy_file_limited, source, path)
        finally:
            await form.close()  # removes the spooled temporary files
        return await self._store_upload(request, trace_id, path, size, suffix)

    def _own_file(self, request: Request, url: str) -> Path:
        """The sandbox's own file a ``file_url`` names; anything else is refused alike (see fetch.py)."""
        name = own_file_name(url, root_url(request))
        path = served_file(self.state, name) if name is not None else None
        if path is None:
            raise ApiError(400017, REFUSED)
        return path

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
            {"media_id": media.media_id, "media_type": info.media_type, "url": file_url(request, final)}
        )
        return self.state.remember("upload", trace_id, reply)

    # -- generate ------------------------------------------------------------------------------

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
        style, prompt = _style(body)
        seed = _seed(body)
        with self.state.lock:  # check-and-create must be atomic: two requests may race
            if (cached := self.state.replay("generate", trace_id)) is not None:
                return cached
            if (code := self.state.admission_error()) is not None:
                raise ApiError(code, http_status=200)
            job = self.state.create_job(trace_id, source, style, prompt, seed)
            reply = ok({"video_id": job.video_id, self.config.generate_credit_key: job.credits})
            return self.state.remember("generate", trace_id, reply)

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

    # -- style list, result, balance ---------------------------------------------------------

    async def list_styles(self, request: Request, trace_id: str) -> Reply:
        page_num = _page_param(request, "page_num", 1)
        page_size = min(_page_param(request, "page_size", 20), self.config.list_max_page_size)
        start = (page_num - 1) * page_size
        page = STYLES[start : start + page_size]
        if self.config.list_shape == "web":
            items = [_web_style_item(request, style) for style in page]
        else:
            items = [_documented_style_item(request, style) for style in page]
        return ok({"total": len(STYLES), "data": items})

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
        resp: dict[str, Any] = {
            "id": job.video_id,
            "status": status,
            "url": file_url(request, job.output) if done and job.output else "",
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
        if self.config.result_id == "absent":
            del resp["id"]
        elif self.config.result_id == "zero":
            resp["id"] = 0
        return resp

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


# -- request parsing -------------------------------------------------------------------------------


def _parse_id(value: Any, key: str) -> int:
    """An id as a JSON integer or a string of digits (ids exceed 2**53, so clients send both)."""
    if value is None:
        raise ApiError(400011, f"Empty parameter: {key}")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    raise ApiError(400013, f"Invalid binding request: {key} must be an integer id")


def _style(body: dict[str, Any]) -> tuple[Style, str]:
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


# -- reply shapes ----------------------------------------------------------------------------------


def _documented_style_item(request: Request, style: Style) -> dict[str, Any]:
    """The published example's item: id, name and thumbnail, no prompt."""
    return {
        "restyle_id": style.restyle_id,
        "name": style.name,
        "thumbnail": cover_url(request, style.restyle_id),
    }


def _web_style_item(request: Request, style: Style) -> dict[str, Any]:
    """The names PixVerse's web API uses for the same catalog."""
    return {
        "restyle_id": style.restyle_id,
        "display_name": style.name,
        "thumbnail_url": cover_url(request, style.restyle_id),
        "restyle_prompt": style.prompt,
        "marker": style.marker,
    }


# -- files -------------------------------------------------------------------------------------------


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


def _copy_file_limited(src: Path, dst: Path) -> int:
    with src.open("rb") as inp:
        return _copy_limited(inp, dst)
