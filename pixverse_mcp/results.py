"""What the tools answer: small pydantic models, published to clients as output schemas.

Ids are strings of digits: PixVerse ids reach 2^64, and JavaScript clients read JSON numbers as
doubles, exact only up to 2^53.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from pixverse_mcp.jobs import VideoStatus


class Style(BaseModel):
    """One restyle style."""

    restyle_id: str = Field(description="Pass it to restyle_video as restyle_id.")
    name: str
    description: str = ""
    prompt: str = Field("", description="The look this style asks for.")
    cover_url: str | None = Field(None, description="A preview picture of the style.")


class StyleCatalog(BaseModel):
    """The restyle catalog, optionally filtered."""

    styles: list[Style]
    count: int
    total: int = Field(description="Styles in the whole catalog, before the query filter.")
    query: str = ""
    message: str


class UploadResult(BaseModel):
    """A video uploaded to PixVerse, ready for restyle_video."""

    media_id: str = Field(description="Pass it to restyle_video as video_media_id.")
    media_type: str
    url: str | None = None
    source: str = Field(description="'file' or 'url'")
    file_name: str | None = None
    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None
    size_bytes: int | None = None
    message: str


class RestyleResult(VideoStatus):
    """A restyle job that was started, and how far it got while the call waited."""

    credits: int | None = Field(None, description="Credits this job cost, when PixVerse says.")
    trace_id: str = Field(description="The request's trace id, for PixVerse support.")
    restyle_id: str | None = None
    restyle_prompt: str | None = None


class BalanceResult(BaseModel):
    """The PixVerse account's credits."""

    account_id: str | None = None
    credit_monthly: int
    credit_package: int
    total: int
    message: str
