"""What the tools answer: small pydantic models, published to clients as output schemas.

Ids are strings of digits: PixVerse ids reach 2^64, and JavaScript clients read JSON numbers as
doubles, exact only up to 2^53.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class VideoStatus(BaseModel):
    """The state of a restyle job, as the tools answer it."""

    video_id: str = Field(description="The job's id (digits).")
    status: str = Field(
        description="succeeded, generating, deleted, moderation_failed, failed, unknown (or dry_run)",
    )
    status_code: int | None = Field(description="PixVerse's raw status code.")
    message: str = Field(description="What the status means and what to do next.")
    url: str | None = Field(None, description="The finished video.")
    width: int | None = None
    height: int | None = None
    size_bytes: int | None = None
    style: str | None = None
    seed: int | None = None
    waited_seconds: float = 0.0
    check_again_in_seconds: int | None = Field(
        None, description="While generating: when to call get_status again."
    )
    local_path: str | None = Field(None, description="The saved copy, when downloaded.")
    preview_path: str | None = Field(None, description="The saved preview picture.")
    preview_note: str | None = Field(None, description="Why there is no preview picture.")


class Style(BaseModel):
    """One restyle style."""

    restyle_id: str = Field(description="Pass it to restyle_video as restyle_id.")
    name: str
    thumbnail: str | None = Field(None, description="A picture of the look.")
    marker: str | None = Field(None, description='A label such as "new".')
    description: str | None = None
    prompt: str | None = None


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
    fitted: bool | None = Field(None, description="A fitted copy was uploaded instead of the file.")
    changes: list[str] | None = Field(None, description="What fitting changed, before -> after.")
    copy_path: str | None = Field(None, description="The fitted copy.")
    message: str


class RestyleResult(VideoStatus):
    """A restyle job that was started, and how far it got (or, for a dry run, what it would cost)."""

    video_id: str | None = Field(None, description="The job's id (digits); absent for a dry run.")  # type: ignore[assignment]
    credits: int | None = Field(None, description="Credits the job cost.")
    estimated_credits: int | None = Field(None, description="What the job was expected to cost.")
    balance_after: int | None = Field(None, description="Credits left after it started.")
    trace_id: str | None = Field(None, description="For PixVerse support, and for recovery.")
    restyle_id: str | None = None
    restyle_prompt: str | None = None
    note: str | None = Field(None, description="Spending checks and recovery, when they apply.")


class BalanceResult(BaseModel):
    """The PixVerse account's credits."""

    account_id: str | None = None
    credit_monthly: int
    credit_package: int
    total: int
    message: str


class JobEntry(BaseModel):
    """One job of the journal."""

    video_id: str | None = Field(None, description="Absent while its outcome is unknown (see trace_id).")
    status: str
    style: str | None = None
    prompt: str | None = None
    source: str | None = None
    credits: int | None = None
    url: str | None = None
    local_path: str | None = None
    trace_id: str | None = None
    group_id: str | None = Field(None, description="The restyle_many group it belongs to.")
    started_at: str
    finished_at: str | None = None


class JobList(BaseModel):
    """Jobs this server started or read, newest first."""

    jobs: list[JobEntry]
    count: int
    journal: str = Field(description="Where the journal lives.")
    message: str


class JobStatus(VideoStatus):
    """A job's state (get_status with video_id); with group_id, a group's answer (see GroupResult)."""

    video_id: str | None = Field(None, description="The job's id (digits); absent for a group.")  # type: ignore[assignment]
    status_code: int | None = None


class GroupPart(BaseModel):
    """One job of a split item: the part of the source it restyles."""

    start_seconds: float
    end_seconds: float
    cut: str | None = Field(None, description="How its start was chosen: scene change, keyframe or time.")
    status: str
    video_id: str | None = None
    url: str | None = None
    credits: int | None = None


class GroupItem(BaseModel):
    """One item of a group: its result, or where it stands."""

    label: str
    status: str = Field(
        description="succeeded, generating, queued, refused, uncertain, failed, moderation_failed, deleted, "
        "unknown (or dry_run)"
    )
    message: str
    video_id: str | None = None
    url: str | None = None
    local_path: str | None = Field(None, description="The saved copy; for a split item, the joined video.")
    credits: int | None = None
    estimated_credits: int | None = None
    style: str | None = None
    restyle_id: str | None = None
    restyle_prompt: str | None = None
    source: str | None = None
    seed: int | None = None
    trace_id: str | None = Field(None, description="Of an uncertain generate, for recovery.")
    parts: list[GroupPart] | None = Field(None, description="A split item's parts.")


class GroupResult(BaseModel):
    """A group of restyles (restyle_many, or get_status with its group_id)."""

    group_id: str | None = Field(None, description="Pass it to get_status; absent for a dry run.")
    status: str = Field(description="done (every item ended), generating, queued, or dry_run")
    message: str
    title: str = "Compare"
    done: int = Field(description="Items that ended.")
    total: int
    items: list[GroupItem]
    credits: int | None = Field(None, description="Credits of the jobs started, when known.")
    estimated_credits: int | None = None
    balance_after: int | None = None
    contact_sheet_path: str | None = Field(None, description="The picture comparing the items.")
    contact_sheet_note: str | None = None
    waited_seconds: float = 0.0
    check_again_in_seconds: int | None = None
    note: str | None = Field(None, description="Spending checks, fitting, uploads.")
