"""What PixVerse sends back, parsed tolerantly: the envelope, ids, styles, jobs, the balance.

The documentation leaves shapes open (the style list), mixes key cases (`ErrCode` / `err_code`)
and sends ids that overflow a double, so every parser here accepts the variants seen or documented.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

from pixverse_mcp.errors import BadResponseError, api_error

MAX_ID = 2**64 - 1


def parse_id(value: object) -> int:
    """An id as PixVerse or a client sends it: a JSON integer or a string of digits."""
    if isinstance(value, bool):
        raise ValueError("an id is a positive integer, not a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        # A double cannot hold every uint64; accept it only where it is exact.
        if abs(value) > 2**53:
            raise ValueError("an id this large must be sent as a string of digits, not a number")
        number = int(value)
    else:
        raise ValueError(f"an id is a positive integer or a string of digits, got {value!r}")
    if not 0 < number <= MAX_ID:
        raise ValueError(f"an id is between 1 and {MAX_ID}, got {number}")
    return number


def _int_or_none(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value.strip()))
        except ValueError:
            return None
    return None


def _str_or_none(value: object) -> str | None:
    if value is None:
        return None
    return str(value)


WireId = Annotated[int, BeforeValidator(parse_id)]
LooseInt = Annotated[int | None, BeforeValidator(_int_or_none)]
LooseStr = Annotated[str | None, BeforeValidator(_str_or_none)]


def parse_envelope(
    body: bytes,
    *,
    http_status: int,
    trace_id: str,
    retry_after: float | None = None,
) -> Any:
    """Return `Resp` of a PixVerse reply, or raise the error it carries.

    Raises:
        BadResponseError: the body is not the JSON envelope (a gateway page, broken JSON).
        ApiError: the envelope carries a non-zero ErrCode (in either key case).
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        looks_html = body.lstrip()[:15].lower().startswith((b"<!doctype", b"<html"))
        what = "an HTML page" if looks_html else "a body that is not valid JSON"
        raise BadResponseError(
            f"PixVerse (or a gateway in front of it) answered HTTP {http_status} with {what} instead of "
            "its JSON reply. This is usually temporary: try again in a minute.",
            trace_id=trace_id,
            http_status=http_status,
            retry_after=retry_after,
        ) from None
    if not isinstance(data, dict):
        raise BadResponseError(
            f"PixVerse answered HTTP {http_status} with JSON that is not its envelope. Try again later.",
            trace_id=trace_id,
            http_status=http_status,
        )
    folded = {str(k).lower().replace("_", ""): v for k, v in data.items()}
    code = _int_or_none(folded.get("errcode"))
    if code is None:
        raise BadResponseError(
            f"PixVerse answered HTTP {http_status} without an error code. Try again later.",
            trace_id=trace_id,
            http_status=http_status,
            retry_after=retry_after,
        )
    if code != 0:
        raise api_error(
            code,
            str(folded.get("errmsg") or ""),
            trace_id=trace_id,
            http_status=http_status,
            retry_after=retry_after,
        )
    return folded.get("resp")


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class UploadedMedia(WireModel):
    """Resp of the media upload."""

    media_id: WireId
    media_type: str = "video"
    url: LooseStr = None


class StartedJob(WireModel):
    """Resp of a generate call. The restyle page says `credits`; another feature's page says `credit`."""

    video_id: WireId
    credits: LooseInt = Field(None, validation_alias=AliasChoices("credits", "credit"))


class JobState(StrEnum):
    """What a job's status code means, in the names the tools answer with."""

    SUCCEEDED = "succeeded"
    GENERATING = "generating"
    DELETED = "deleted"
    MODERATION_FAILED = "moderation_failed"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @classmethod
    def from_code(cls, code: int | None) -> JobState:
        return _STATE_BY_CODE.get(code, cls.UNKNOWN) if code is not None else cls.UNKNOWN

    @property
    def ended(self) -> bool:
        """The job will not change any more (unknown codes are not taken as an end)."""
        return self not in (JobState.GENERATING, JobState.UNKNOWN)


# 1 and 5..8 are documented; other clients of the live API see 2 (queued) and 3 (in progress).
_STATE_BY_CODE = {
    1: JobState.SUCCEEDED,
    2: JobState.GENERATING,
    3: JobState.GENERATING,
    5: JobState.GENERATING,
    6: JobState.DELETED,
    7: JobState.MODERATION_FAILED,
    8: JobState.FAILED,
}


class VideoResult(WireModel):
    """Resp of the video result call: the state of one job.

    `id` may be missing or 0 in live replies; the client fills in the id it asked for.
    """

    id: WireId
    status: LooseInt = None
    url: LooseStr = None
    prompt: LooseStr = None
    seed: LooseInt = None
    size: LooseInt = None
    style: LooseStr = None
    output_width: LooseInt = Field(None, alias="outputWidth")
    output_height: LooseInt = Field(None, alias="outputHeight")
    resolution_ratio: LooseInt = None
    create_time: LooseStr = None
    modify_time: LooseStr = None

    @property
    def state(self) -> JobState:
        return JobState.from_code(self.status)


class Balance(WireModel):
    """Resp of the account balance call."""

    account_id: LooseInt = None
    credit_monthly: LooseInt = 0
    credit_package: LooseInt = 0


class Restyle(BaseModel):
    """One style of the restyle catalog, in this package's own names."""

    restyle_id: int
    name: str
    prompt: str = ""
    cover_url: str | None = None
    description: str = ""
    marker: str = ""
    """A label PixVerse puts on some styles, such as "new"."""


_LIST_KEYS = ("list", "restyle_list", "items", "data", "records", "rows", "result")
_TOTAL_KEYS = ("total", "total_count", "count")


def _first(item: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = item.get(key)
        if value not in (None, ""):
            return value
    return None


def parse_restyle_page(resp: Any) -> tuple[list[Restyle], int | None]:
    """Styles and the total count (when given) from one page of the style list, whatever its shape."""
    total: int | None = None
    raw: Any = resp
    if isinstance(resp, Mapping):
        total = next((t for k in _TOTAL_KEYS if (t := _int_or_none(resp.get(k))) is not None), None)
        raw = next((resp[k] for k in _LIST_KEYS if isinstance(resp.get(k), list)), None)
        if raw is None:
            raw = next((v for v in resp.values() if isinstance(v, list)), [])
    if not isinstance(raw, list):
        return [], total
    styles: list[Restyle] = []
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        try:
            restyle_id = parse_id(_first(item, "restyle_id", "id"))
        except ValueError:
            continue
        prompt = _text(_first(item, "restyle_prompt", "prompt"))
        name = _text(_first(item, "name", "display_name", "restyle_name", "title")) or f"Style {restyle_id}"
        cover = _first(item, "thumbnail", "thumbnail_url", "cover_url", "cover", "image_url", "preview_url")
        description = _text(_first(item, "description", "desc")) or _summary(prompt)
        styles.append(
            Restyle(
                restyle_id=restyle_id,
                name=name,
                prompt=prompt,
                cover_url=str(cover) if isinstance(cover, str) else None,
                description=description,
                marker=_text(_first(item, "marker", "tag"))[:40],
            )
        )
    return styles, total


def _text(value: object) -> str:
    """A text field of a reply; anything that is not text (a number, a list) counts as absent."""
    return " ".join(value.split()) if isinstance(value, str) else ""


def _summary(prompt: str, limit: int = 140) -> str:
    text = " ".join(prompt.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
