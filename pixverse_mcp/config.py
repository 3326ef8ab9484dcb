"""One Settings object, built once from the environment and command-line flags, then passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

DEFAULT_BASE_URL = "https://app-api.pixverse.ai"
DEFAULT_MAX_DOWNLOAD_MB = 200.0


def _default_output_dir() -> Path:
    downloads = Path.home() / "Downloads"
    return (downloads if downloads.is_dir() else Path.home()) / "pixverse"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _switch(name: str, value: str) -> bool:
    """An on/off setting; anything else is an error that names the variable."""
    word = value.strip().lower()
    if word in {"1", "true", "yes", "on"}:
        return True
    if word in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be on or off, got {value.strip()[:40]!r}")


def _credits(name: str, value: str) -> int:
    try:
        number = int(value.strip().replace("_", ""))
    except ValueError:
        raise ValueError(f"{name} must be a whole number of credits, got {value.strip()[:40]!r}") from None
    if number < 1:
        raise ValueError(f"{name} must be at least 1 (unset it for no limit), got {number}")
    return number


def sqlite_journal_path(url: str) -> Path:
    """The file of a sqlite:///absolute/path URL (as in file:// URLs, the path follows the third slash)."""
    path = Path(unquote(url.removeprefix("sqlite://"))).expanduser()
    if not url.startswith("sqlite:///") or not path.is_absolute() or path == Path("/"):
        raise ValueError(
            "a SQLite PIXVERSE_JOURNAL_URL must look like sqlite:///absolute/path/journal.sqlite3"
        )
    return path


class Timeouts(BaseModel):
    """Seconds to wait, per kind of call."""

    model_config = ConfigDict(frozen=True)

    connect: float = Field(10.0, gt=0)
    read: float = Field(30.0, gt=0, description="quick calls: status, list, balance, generate")
    upload: float = Field(300.0, gt=0, description="a whole upload of up to 50 MB")
    download: float = Field(
        300.0, gt=0, description="the longest any fetch of a finished video takes (download and preview)"
    )


class RetryWaits(BaseModel):
    """The pauses between attempts of a retried call: exponential from `initial` to `max`, plus jitter."""

    model_config = ConfigDict(frozen=True)

    initial: float = Field(0.3, ge=0)
    max: float = Field(4.0, ge=0)
    jitter: float = Field(0.5, ge=0)


class Settings(BaseModel):
    """Everything the server needs to know, read once at startup."""

    model_config = ConfigDict(frozen=True)

    api_key: SecretStr | None = None
    mcp_token: SecretStr | None = Field(None, description="bearer token HTTP clients must send")
    mcp_allowed_hosts: tuple[str, ...] = Field(
        (), description='extra Host names HTTP transports accept ("*" turns the Host check off)'
    )
    base_url: str = DEFAULT_BASE_URL
    sandbox: bool = False
    output_dir: Path = Field(default_factory=_default_output_dir)
    allowed_dirs: tuple[Path, ...] = Field(default_factory=lambda: (Path.home(),))
    auto_download: bool = False
    default_wait_seconds: float = Field(40.0, ge=0)
    max_wait_seconds: float = Field(50.0, ge=0)
    max_concurrent_jobs: int | None = Field(None, ge=1)
    max_download_mb: float = Field(
        DEFAULT_MAX_DOWNLOAD_MB, gt=0, description="the largest video saved or read for a preview (decoded)"
    )
    fit_cache_dir: Path | None = Field(
        None, description="where fitted copies are kept (default: the user's cache folder)"
    )
    catalog_ttl_seconds: float = Field(300.0, ge=0)
    poll_max_interval: float = Field(1.5, gt=0, description="longest pause between two status checks")
    timeouts: Timeouts = Field(default_factory=Timeouts)
    retry_waits: RetryWaits = Field(default_factory=RetryWaits)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    journal_enabled: bool = Field(True, description="PIXVERSE_JOURNAL=off turns the job journal off")
    journal_url: SecretStr | None = Field(
        None, description="postgresql://... for a shared journal, sqlite:///path for another file"
    )
    max_credits_per_job: int | None = Field(None, ge=1)
    max_credits_per_day: int | None = Field(None, ge=1, description="counted from 00:00 UTC in the journal")
    confirm_spend: Literal["off", "ask"] = "off"
    confirm_timeout_seconds: float = Field(
        120.0, gt=0, description="how long the spending question waits for the user (then nothing starts)"
    )

    @field_validator("api_key")
    @classmethod
    def _plain_key(cls, value: SecretStr | None) -> SecretStr | None:
        """A key must be sendable as an HTTP header as it is; the error never shows the key."""
        if value is None:
            return None
        for index, ch in enumerate(value.get_secret_value(), 1):
            if not ("!" <= ch <= "~"):
                kind = "a space, tab or line break" if ch.isspace() else "a character that is not plain ASCII"
                raise ValueError(
                    f"PIXVERSE_API_KEY contains {kind} (at character {index}). Copy the key again from the "
                    "PixVerse platform, without quotes or line breaks."
                )
        return value

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"PIXVERSE_BASE_URL must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    @field_validator("journal_url")
    @classmethod
    def _journal_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        # The URL may hold a password: the error names the forms, never the value.
        if value is None:
            return value
        url = value.get_secret_value()
        if url.startswith("sqlite:"):
            sqlite_journal_path(url)
        elif not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("PIXVERSE_JOURNAL_URL must start with postgresql:// or sqlite:///")
        return value

    @field_validator("allowed_dirs")
    @classmethod
    def _resolve_roots(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        return tuple(Path(p).expanduser().resolve() for p in value)

    @field_validator("output_dir")
    @classmethod
    def _resolve_output(cls, value: Path) -> Path:
        return Path(value).expanduser().resolve()

    @property
    def max_download_bytes(self) -> int:
        return int(self.max_download_mb * 1024 * 1024)

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with some fields replaced and validated again."""
        return Settings(**{**dict(self), **changes})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read the PIXVERSE_* variables; keyword overrides (from flags) win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if key := env.get("PIXVERSE_API_KEY", "").strip():
            values["api_key"] = SecretStr(key)
        if url := env.get("PIXVERSE_BASE_URL", "").strip():
            values["base_url"] = url
        if out := env.get("PIXVERSE_OUTPUT_DIR", "").strip():
            values["output_dir"] = Path(out)
        if cache := env.get("PIXVERSE_FIT_CACHE_DIR", "").strip():
            values["fit_cache_dir"] = Path(cache)
        if roots := env.get("PIXVERSE_ALLOWED_DIRS", "").strip():
            values["allowed_dirs"] = tuple(Path(p) for p in roots.split(os.pathsep) if p.strip())
        values["sandbox"] = _truthy(env.get("PIXVERSE_SANDBOX"))
        values["auto_download"] = _truthy(env.get("PIXVERSE_AUTO_DOWNLOAD"))
        if wait := env.get("PIXVERSE_MAX_WAIT_SECONDS", "").strip():
            values["max_wait_seconds"] = float(wait)
        if jobs := env.get("PIXVERSE_MAX_CONCURRENT_JOBS", "").strip():
            values["max_concurrent_jobs"] = int(jobs)
        if cap := env.get("PIXVERSE_MAX_DOWNLOAD_MB", "").strip():
            values["max_download_mb"] = float(cap)
        if level := env.get("PIXVERSE_LOG_LEVEL", "").strip():
            values["log_level"] = level.upper()
        if token := env.get("PIXVERSE_MCP_TOKEN", "").strip():
            values["mcp_token"] = SecretStr(token)
        if hosts := env.get("PIXVERSE_MCP_ALLOWED_HOSTS", "").strip():
            values["mcp_allowed_hosts"] = tuple(h.strip() for h in hosts.split(",") if h.strip())
        if journal := env.get("PIXVERSE_JOURNAL", "").strip():
            values["journal_enabled"] = _switch("PIXVERSE_JOURNAL", journal)
        if journal_url := env.get("PIXVERSE_JOURNAL_URL", "").strip():
            values["journal_url"] = SecretStr(journal_url)
        for name, field in (("JOB", "max_credits_per_job"), ("DAY", "max_credits_per_day")):
            if cap := env.get(f"PIXVERSE_MAX_CREDITS_PER_{name}", "").strip():
                values[field] = _credits(f"PIXVERSE_MAX_CREDITS_PER_{name}", cap)
        if confirm := env.get("PIXVERSE_CONFIRM_SPEND", "").strip():
            if confirm.lower() not in {"off", "ask"}:
                raise ValueError(f"PIXVERSE_CONFIRM_SPEND must be off or ask, got {confirm[:40]!r}")
            values["confirm_spend"] = confirm.lower()
        if confirm_wait := env.get("PIXVERSE_CONFIRM_TIMEOUT_SECONDS", "").strip():
            values["confirm_timeout_seconds"] = float(confirm_wait)
        timeouts = {
            name: float(raw)
            for name in ("connect", "read", "upload", "download")
            if (raw := env.get(f"PIXVERSE_TIMEOUT_{name.upper()}", "").strip())
        }
        if timeouts:
            values["timeouts"] = Timeouts(**timeouts)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
