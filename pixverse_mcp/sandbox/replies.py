"""The PixVerse reply envelope: ``{"ErrCode": int, "ErrMsg": str, "Resp": ...}``.

Handlers raise :class:`ApiError` for every ErrCode reply, so the envelope is built in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from starlette.responses import Response

MESSAGES: Final = {
    0: "Success",
    400011: "Empty parameter",
    400012: "Invalid account",
    400013: "Invalid binding request: incorrect parameter type or value",
    400017: "Invalid parameter",
    400018: "Prompt length exceeds the 2048-character limit",
    500008: "Requested data not found",
    500044: "Reached the limit for concurrent generations",
    500052: "Uploaded media refused by moderation",
    500069: "System is under high load, please try again later",
    500090: "Insufficient balance: please top up credits",
    500100: "Internal database error",
    99999: "Unknown error",
}


@dataclass
class Reply:
    """A finished HTTP reply, kept so a reused trace id can get exactly the same bytes back."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """An ErrCode reply; ``http_status`` is what the wire shows (often not an error status)."""

    def __init__(self, code: int, message: str | None = None, http_status: int = 400) -> None:
        text = message or MESSAGES.get(code, "Error")
        super().__init__(text)
        self.code, self.message, self.http_status = code, text, http_status


def envelope(
    code: int, message: str, resp: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Reply:
    body = json.dumps({"ErrCode": code, "ErrMsg": message, "Resp": resp}).encode()
    return Reply(status, body, headers or {})


def ok(resp: Any) -> Reply:
    return envelope(0, MESSAGES[0], resp)


def error_reply(err: ApiError) -> Reply:
    return envelope(err.code, err.message, {}, err.http_status)


def to_response(reply: Reply) -> Response:
    return Response(reply.body, reply.status, headers=reply.headers, media_type="application/json")


def lowercase(reply: Reply) -> Reply:
    """The same reply with the lower-case keys some PixVerse error replies use."""
    data = json.loads(reply.body)
    renamed = {"err_code": data["ErrCode"], "err_msg": data["ErrMsg"], "resp": data["Resp"]}
    return Reply(reply.status, json.dumps(renamed).encode(), reply.headers)
