"""Fault rules: the misbehaviour a real PixVerse (or the network in between) can show.

A rule matches the next ``count`` requests to ``endpoint`` (``"*"``: any API endpoint) and is
used up after that. ``when="before"`` replaces the processing (nothing is created);
``when="after"`` lets the request be processed (a job IS created, credits ARE taken) and then
replaces or delays the reply: "PixVerse created the job but the reply was lost".
``job_outcome`` is not about replies: the next ``count`` jobs created end with status ``code``.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .endpoints import ENDPOINT_NAMES

FaultKind = Literal["hang", "html", "err_code", "lowercase", "drop", "malformed", "empty", "job_outcome"]

# A truncated JSON body: what a proxy cutting the reply short produces.
MALFORMED_BODY = b'{"ErrCode": 0, "Resp": {'
# Valid JSON, success code, but no reply data: a client must not take it for a result.
EMPTY_BODY = b'{"ErrCode": 0, "ErrMsg": "success", "Resp": null}'

HTML_TEMPLATE = (
    "<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>{status} Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


class Fault(BaseModel):
    """One fault rule, as ``POST /_sandbox/faults`` takes it."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = "*"  # an endpoint name from endpoints.ENDPOINTS, or "*"
    kind: FaultKind
    count: int = Field(default=1, ge=1)
    when: Literal["before", "after"] = "before"
    seconds: float = Field(default=5.0, ge=0, le=600)
    code: int | None = None
    http_status: int | None = Field(default=None, ge=100, le=599)
    retry_after: float | None = Field(default=None, ge=0)

    @field_validator("endpoint")
    @classmethod
    def _known_endpoint(cls, value: str) -> str:
        if value != "*" and value not in ENDPOINT_NAMES:
            raise ValueError(f"endpoint must be one of {', '.join(ENDPOINT_NAMES)} or *")
        return value

    @model_validator(mode="after")
    def _check_code(self) -> Self:
        if self.kind == "job_outcome" and self.code not in (None, 6, 7, 8):
            raise ValueError("job_outcome code must be 6, 7 or 8")
        return self

    def matches(self, endpoint: str) -> bool:
        return self.kind != "job_outcome" and self.endpoint in ("*", endpoint)

    @property
    def error_code(self) -> int:
        """The ErrCode for ``err_code`` (default: 500069, "system under high load")."""
        return self.code if self.code is not None else 500069

    @property
    def job_status(self) -> int:
        """The final status for ``job_outcome`` (default 8, generation failed)."""
        return self.code if self.code is not None else 8

    def status_for(self, default: int) -> int:
        return self.http_status if self.http_status is not None else default
