"""Errors of the PixVerse client and the server, and the table of PixVerse error codes.

Every error text is written for the model reading it: what happened, then what to do next.

    PixVerseError
    ├── ConfigError            the server is not set up for this call (no API key, ...)
    ├── InputError             an argument or a local file breaks a rule; nothing was sent
    ├── TransportError         PixVerse could not be reached or answered with something unreadable
    │   ├── ConnectError       no connection could be made
    │   ├── TimeoutError_      no answer in time
    │   ├── BadResponseError   a reply that is not the JSON envelope (gateway HTML, 5xx, broken JSON)
    │   └── UncertainOutcomeError  a generate whose job may or may not exist after failures in transit
    └── ApiError               PixVerse answered with a non-zero ErrCode
        ├── AuthError          400012: the API key is wrong or revoked
        ├── InvalidRequestError  parameters PixVerse refused (400011, 400013, 400017, 400018, ...)
        ├── NotFoundError      500008, 500064: the video or media does not exist
        ├── ModerationError    500052, 500054, 500063: the content was refused; credits are refunded
        ├── BusyError          500069: PixVerse is under high load; try again later
        │   └── ConcurrencyLimitError  500044: the plan's jobs-at-once limit; no job was made
        ├── CreditsError       500060, 500090: the balance or a monthly limit ran out
        └── ServerError        500100, 99999 and any code not in the table
"""

from __future__ import annotations

from dataclasses import dataclass


class PixVerseError(Exception):
    """Base of every error this package raises on purpose."""

    def __init__(self, message: str, *, trace_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.trace_id = trace_id

    def __str__(self) -> str:
        if self.trace_id:
            return f"{self.message} (trace id {self.trace_id})"
        return self.message


class ConfigError(PixVerseError):
    """The server is missing a setting that this call needs."""


class InputError(PixVerseError):
    """An argument or a local file breaks a rule; nothing was sent to PixVerse."""

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class TransportError(PixVerseError):
    """PixVerse could not be reached, or its reply could not be read."""

    def __init__(
        self,
        message: str,
        *,
        trace_id: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, trace_id=trace_id)
        self.http_status = http_status
        self.retry_after = retry_after


class ConnectError(TransportError):
    """No connection to PixVerse could be made."""


class TimeoutError_(TransportError):
    """PixVerse did not answer in time."""


class BadResponseError(TransportError):
    """PixVerse (or a gateway before it) answered with something that is not the JSON envelope."""


class UncertainOutcomeError(TransportError):
    """A generate failed after an earlier attempt was lost in transit: the job may exist."""


@dataclass(frozen=True)
class ErrCodeInfo:
    """What one PixVerse ErrCode means, what the assistant should do about it, and whether a read retries it.

    `retry_reads` marks temporary trouble on PixVerse's side: reads (status, list, balance) are tried again.
    A generate is never re-sent on an ErrCode: the reply says what happened to the job.
    """

    meaning: str
    next_step: str
    kind: type[ApiError]
    retry_reads: bool = False


class ApiError(PixVerseError):
    """PixVerse answered with a non-zero ErrCode."""

    @property
    def retry_reads(self) -> bool:
        """Whether a read that got this error is worth trying again (temporary trouble at PixVerse)."""
        info = ERR_CODES.get(self.code)
        return info is not None and info.retry_reads

    def __init__(
        self,
        message: str,
        *,
        code: int,
        api_message: str,
        trace_id: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, trace_id=trace_id)
        self.code = code
        self.api_message = api_message
        self.http_status = http_status
        self.retry_after = retry_after


class AuthError(ApiError):
    """The API key is wrong or revoked."""


class InvalidRequestError(ApiError):
    """PixVerse refused the parameters."""


class NotFoundError(ApiError):
    """The video, media or data does not exist (any more)."""


class ModerationError(ApiError):
    """The content failed moderation; credits are refunded."""


class BusyError(ApiError):
    """PixVerse is under high load, or too many jobs are running for the plan."""


class ConcurrencyLimitError(BusyError):
    """500044: the plan's limit of jobs generating at once is reached; the refused request made no job."""


class CreditsError(ApiError):
    """The credit balance or a monthly limit ran out."""


class ServerError(ApiError):
    """PixVerse failed on its side, or answered with a code this package does not know."""


_FIX_INPUT = "Check the arguments against the tool description and try again."
_MODERATED = (
    "Change the prompt, the style or the video and try again; PixVerse refunds the credits "
    "of a job that fails moderation."
)
_IMAGE = "Use a different image (jpg or png, a common size) and try again."

ERR_CODES: dict[int, ErrCodeInfo] = {
    400011: ErrCodeInfo("a required parameter is empty", _FIX_INPUT, InvalidRequestError),
    400012: ErrCodeInfo(
        "the API key is invalid or revoked",
        "Check PIXVERSE_API_KEY (create a key in the PixVerse platform under API keys), "
        "or start the server with --sandbox to try it without a key.",
        AuthError,
    ),
    400013: ErrCodeInfo("a parameter has the wrong type or value", _FIX_INPUT, InvalidRequestError),
    400017: ErrCodeInfo(
        "invalid parameter",
        "If it names the video: the media id or video id is unknown or not a video; upload the "
        "video again with upload_video and use the new media_id. Otherwise fix the named parameter.",
        InvalidRequestError,
    ),
    **dict.fromkeys(
        (400018, 400019),
        ErrCodeInfo(
            "the prompt is longer than 2048 characters",
            "Shorten restyle_prompt to at most 2048 characters.",
            InvalidRequestError,
        ),
    ),
    400032: ErrCodeInfo(
        "the image id is invalid", "Upload the image again and use the new id.", NotFoundError
    ),
    500008: ErrCodeInfo(
        "the requested data was not found",
        "Check the id; a video id comes from restyle_video, a media id from upload_video.",
        NotFoundError,
    ),
    500020: ErrCodeInfo(
        "this account has no permission for the operation",
        "Check the plan of the PixVerse account behind the API key.",
        AuthError,
    ),
    **{
        code: ErrCodeInfo(
            "the image could not be used (size, format, dimension or upload)", _IMAGE, InvalidRequestError
        )
        for code in range(500030, 500043)
    },
    500044: ErrCodeInfo(
        "the plan's limit of jobs generating at the same time is reached",
        "Wait for a running job to finish (check it with get_status), then start this one again.",
        ConcurrencyLimitError,
    ),
    500052: ErrCodeInfo(
        "the uploaded media was refused by moderation",
        "Upload a different video; this one will not be accepted.",
        ModerationError,
    ),
    500054: ErrCodeInfo(
        "the content failed moderation (the image may be inappropriate)", _MODERATED, ModerationError
    ),
    500060: ErrCodeInfo(
        "the monthly limit of effect activations is reached",
        "Wait for next month's quota or upgrade the PixVerse plan.",
        CreditsError,
    ),
    500063: ErrCodeInfo(
        "the content failed moderation (the video, image or text is not compliant)",
        _MODERATED,
        ModerationError,
    ),
    500064: ErrCodeInfo(
        "the content has been deleted",
        "Upload the video again, or restyle again to make a new one.",
        NotFoundError,
    ),
    500069: ErrCodeInfo(
        "PixVerse is under high load",
        "Try again in a minute.",
        BusyError,
        retry_reads=True,
    ),
    500070: ErrCodeInfo(
        "the template is not activated", "Pick another style or activate it.", InvalidRequestError
    ),
    500071: ErrCodeInfo(
        "the effect does not support 720p or 1080p",
        "Use a lower resolution or another style.",
        InvalidRequestError,
    ),
    500090: ErrCodeInfo(
        "the account has too few credits",
        "Top up credits in the PixVerse platform (check the balance with get_balance), then try again.",
        CreditsError,
    ),
    500100: ErrCodeInfo(
        "PixVerse had an internal database error", "Try again in a minute.", ServerError, retry_reads=True
    ),
    99999: ErrCodeInfo(
        "PixVerse reported an unknown error",
        "Try again; if it persists, contact PixVerse support with the trace id.",
        ServerError,
        retry_reads=True,
    ),
}


def api_error(
    code: int,
    api_message: str,
    *,
    trace_id: str | None = None,
    http_status: int | None = None,
    retry_after: float | None = None,
) -> ApiError:
    """Build the ApiError subclass for a PixVerse ErrCode, with a message for the assistant."""
    info = ERR_CODES.get(code)
    raw = api_message.strip() or "no message"
    if info is None:
        message = (
            f"PixVerse error {code} (a code this server does not know): {raw}. "
            "Try again; if it persists, contact PixVerse support with the trace id."
        )
        kind: type[ApiError] = ServerError
    else:
        message = f"PixVerse error {code}: {info.meaning} ({raw}). {info.next_step}"
        kind = info.kind
    return kind(
        message,
        code=code,
        api_message=api_message,
        trace_id=trace_id,
        http_status=http_status,
        retry_after=retry_after,
    )
