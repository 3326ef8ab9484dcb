"""Tool argument rules, checked before any request so a bad call costs nothing.

Each error names the argument and the rule, for the model to fix its call. The argument types below
publish the bounds in the input schema, but take the raw JSON value: the checks here, not a lax
conversion (`true` -> 1, `1e16` -> an int), decide what an argument means.
"""

from __future__ import annotations

import math
import uuid

from pydantic import WithJsonSchema

from pixverse_mcp.errors import InputError
from pixverse_mcp.wire import MAX_ID, parse_id

MAX_PROMPT_CHARS = 2048
MAX_SEED = 2_147_483_647
# A double holds every integer only below 2^53; a larger JSON number may already have lost digits.
_EXACT_FLOAT_LIMIT = 2**53

# `pattern` applies to strings only and `minimum` to numbers only, so one object says both forms.
ID_SCHEMA = WithJsonSchema({"type": ["integer", "string"], "minimum": 1, "pattern": "^[0-9]{1,20}$"})
"""An id argument's schema: an integer or a string of digits (ids pass 2^53, which JSON numbers
do not hold exactly). The value itself reaches `id_argument` as sent."""
OPTIONAL_ID_SCHEMA = WithJsonSchema(
    {"type": ["integer", "string", "null"], "minimum": 1, "pattern": "^[0-9]{1,20}$"}
)
SEED_SCHEMA = WithJsonSchema({"type": ["integer", "null"], "minimum": 0, "maximum": MAX_SEED})
PROMPT_SCHEMA = WithJsonSchema({"type": ["string", "null"], "minLength": 1, "maxLength": MAX_PROMPT_CHARS})
SECONDS_SCHEMA = WithJsonSchema({"type": ["number", "null"], "minimum": 0})
WAIT_SCHEMA = WithJsonSchema({"type": ["number", "null"], "minimum": 0})


def id_argument(value: object, name: str) -> int:
    """A PixVerse id given as an integer or a string of digits; never a boolean or an inexact number."""
    if isinstance(value, bool):
        raise InputError(
            f"{name} must be an id (an integer or a string of digits), not {str(value).lower()}.",
            argument=name,
        )
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise InputError(f"{name} must be a whole number id, got {value!r}.", argument=name)
        if abs(value) >= _EXACT_FLOAT_LIMIT:
            raise InputError(
                f"{name} {value!r} is a number too large to be exact (JSON numbers lose digits past 2^53): "
                f'pass the id as a string of digits, e.g. "{int(value)}", exactly as it was given to you.',
                argument=name,
            )
        value = int(value)
    try:
        return parse_id(value)
    except ValueError as exc:
        raise InputError(
            f"{name} must be a positive integer id (up to {MAX_ID}) or a string of its digits: {exc}.",
            argument=name,
        ) from None


def given(value: object) -> bool:
    """Whether an optional argument counts as given (an empty string does not)."""
    return value is not None and not (isinstance(value, str) and value.strip() == "")


def exactly_one(**named: object) -> str:
    """The name of the one argument given, or an error naming the pair."""
    present = [name for name, value in named.items() if given(value)]
    names = " or ".join(named)
    if len(present) == 1:
        return present[0]
    if not present:
        blank = next((name for name, value in named.items() if isinstance(value, str)), None)
        if blank is not None:
            raise InputError(f"{blank} is blank; give a value for {names}.", argument=blank)
        raise InputError(f"Give exactly one of {names}; none was given.", argument=next(iter(named)))
    raise InputError(
        f"Give exactly one of {names}, not both: PixVerse refuses a request that carries both.",
        argument=present[1],
    )


def prompt_argument(value: object, name: str = "restyle_prompt") -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be text.", argument=name)
    if not value.strip():
        raise InputError(f"{name} is blank; describe the look you want in words.", argument=name)
    if len(value) > MAX_PROMPT_CHARS:
        raise InputError(
            f"{name} is {len(value)} characters; PixVerse takes at most {MAX_PROMPT_CHARS}. Shorten it.",
            argument=name,
        )
    return value


def seed_argument(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and 0 <= value <= MAX_SEED:
        value = int(value)  # 42.0 is 42; a double holds every seed exactly
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"seed must be a whole number from 0 to {MAX_SEED}, got {value!r}.", argument="seed")
    if not 0 <= value <= MAX_SEED:
        raise InputError(f"seed must be from 0 to {MAX_SEED}, got {value}.", argument="seed")
    return value


def wait_argument(value: object, *, default: float, maximum: float) -> float:
    """Seconds a call may wait: the default when not given, capped at the server's maximum."""
    if value is None:
        return min(default, maximum)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(
            f"wait_seconds must be a number of seconds (0 to {maximum:g}).", argument="wait_seconds"
        )
    if value < 0:
        raise InputError("wait_seconds must be 0 (answer at once) or more.", argument="wait_seconds")
    return min(float(value), maximum)


def seconds_argument(value: object, name: str) -> float | None:
    """A point in a clip, in seconds from its start (None when not given)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(
            f"{name} must be a number of seconds from the start of the clip, got {value!r}.", argument=name
        )
    if value < 0:
        raise InputError(
            f"{name} must be 0 or more (seconds from the start of the clip), got {value}.", argument=name
        )
    return float(value)


def trace_id_argument(value: object) -> str:
    """A trace id from an earlier call: the uuid this server sent as Ai-trace-id."""
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        raise InputError(
            "trace_id must be the trace id of an earlier restyle_video call (a uuid such as "
            "'2f1c...-...'); leave it out to start a new job.",
            argument="trace_id",
        ) from None


def text_argument(value: object, name: str, *, max_len: int) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be text.", argument=name)
    if len(value) > max_len:
        raise InputError(f"{name} is {len(value)} characters; at most {max_len}.", argument=name)
    return value


# --------------------------------------------------------------------------- video URLs

MAX_URL_LENGTH = 2048


def _url_error(problem: str) -> InputError:
    return InputError(
        f"{problem} PixVerse downloads the video from this URL itself, so it must be a plain, publicly "
        "reachable http(s) link to the video file (no login, no local or intranet address).",
        argument="url",
    )


def validate_video_url(url: str) -> str:
    """Check a video URL that PixVerse will fetch, and return it stripped.

    Args:
        url: The URL from the model.

    Returns:
        The URL without surrounding whitespace.

    Raises:
        InputError: (argument "url") empty, too long, not http(s), no host, whitespace or control
            characters inside, credentials in it, or a bad port.
    """
    from urllib.parse import urlsplit

    text = url.strip()
    if not text:
        raise _url_error("the URL is empty.")
    if len(text) > MAX_URL_LENGTH:
        raise _url_error(f"the URL is {len(text)} characters long; at most {MAX_URL_LENGTH} are allowed.")
    for index, ch in enumerate(text):
        if ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F:
            kind = "a space" if ch.isspace() else "a control character"
            raise _url_error(
                f"the URL contains {kind} ({ch!r}) at character {index + 1}; percent-encode it "
                "(a space is %20)."
            )
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"uses the {scheme!r} scheme" if scheme else "has no scheme"
        raise _url_error(f"the URL {shown}; only http:// and https:// URLs are accepted.")
    if "@" in parts.netloc:
        raise _url_error("the URL carries a user name or password (user:pass@host); remove them.")
    if not parts.hostname:
        raise _url_error("the URL has no host name (expected https://host/path/video.mp4).")
    try:
        port = parts.port
    except ValueError:
        raise _url_error(f"the URL has an invalid port in {parts.netloc!r}.") from None
    if port == 0:
        raise _url_error("the URL has port 0, which is not a valid port.")
    return text
