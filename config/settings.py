"""Typed settings from the environment and an optional `.env` file.

Every setting has a safe default for the embedded mode (SQLite under data/, the local sandbox
instead of Telegram). A wrong value must give one clear line, never a traceback: the CLI catches
`SettingsError` and prints `str(error)`.
"""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
TELEGRAM_API_URL = "https://api.telegram.org"
# Complete languages: everything the bot says, for everyone.
SUPPORTED_LOCALES = ("nl", "en")
# Home languages of many parents: everything a parent sees; the rest falls back to English.
PARENT_LOCALES = ("tr", "ar", "pl", "uk")
ALL_LOCALES = SUPPORTED_LOCALES + PARENT_LOCALES

_TOKEN_PATTERN = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{20,}$")


class SettingsError(Exception):
    """A setting is missing or has a value the bot cannot use."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: str | None = Field(default=None, description="Telegram bot token from BotFather")
    database_url: str = Field(default=f"sqlite+aiosqlite:///{DEFAULT_DATA_DIR / 'portfolio.db'}")
    telegram_api_url: str = TELEGRAM_API_URL
    media_dir: Path = DEFAULT_DATA_DIR / "media"
    redis_url: str | None = None
    default_locale: str = "nl"
    timezone: str = "Europe/Amsterdam"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_host: str = "0.0.0.0"
    webhook_port: int = Field(default=8080, ge=1, le=65535)
    sandbox_port: int = Field(default=8081, ge=0, le=65535)
    invite_valid_days: int = Field(default=14, ge=1, le=365)
    send_rate_per_second: float = Field(default=30.0, gt=0)
    send_rate_per_chat: float = Field(default=1.0, gt=0)
    # Months after a pupil left the school before their data is erased, for schools that set
    # no retention_months of their own (two years: the usual term for a pupil file).
    retention_months: int = Field(default=24, ge=1, le=240)
    log_level: str = "INFO"
    # Operations (docs/operations.md): "text" for a terminal, "json" for a log collector.
    log_format: str = "text"
    # Polling mode: a small server for /healthz, /readyz and /metrics (webhook mode serves them
    # on the webhook port). Unset: none. Loopback by default: metrics are not for the world.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    # The longest video (also a round video message) a pupil may keep as evidence, in seconds.
    max_video_seconds: int = Field(default=120, ge=1, le=3600)
    # How long a reminder claimed by a worker that went silent stays claimed before another
    # replica may take it over.
    reminder_lease_seconds: float = Field(default=120.0, gt=0)

    @field_validator(
        "bot_token", "redis_url", "webhook_url", "webhook_secret", "metrics_port", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: str | None) -> str | None:
        if value is not None and not _TOKEN_PATTERN.match(value.strip()):
            raise ValueError("does not look like a token from BotFather (digits:letters)")
        return value.strip() if value else value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if value.startswith(("postgres://", "postgresql://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db")
        return value

    @field_validator("telegram_api_url", "webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value.lower() not in ("text", "json"):
            raise ValueError("choose text or json")
        return value.lower()

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in SUPPORTED_LOCALES:
            raise ValueError(f"choose one of {', '.join(SUPPORTED_LOCALES)}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError("is not a known time zone such as Europe/Amsterdam") from error
        return value

    @property
    def uses_sandbox(self) -> bool:
        """Without a token the bot talks to the local Telegram stand-in."""
        return self.bot_token is None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning pydantic's report into one readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"]).upper() or "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"Setting {name} is not valid: {message}.") from None
