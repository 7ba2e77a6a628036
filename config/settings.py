"""Typed settings from the environment and an optional `.env` file.

Every setting has a safe default for the embedded mode (SQLite under data/, the local sandbox
instead of Telegram). A wrong value must give one clear line, never a traceback: the CLI catches
`SettingsError` and prints `str(error)`.

The one exception is INVITE_SECRET, the key of the invite codes' hashes (storage.invites): a
bot with a real token refuses to start without it (`with_invite_secret`). Without a token (the
demo, the embedded default) the bot makes one itself and keeps it in `invite.secret` next to
the SQLite database, readable by its owner only.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
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
INVITE_SECRET_FILE = "invite.secret"
INVITE_SECRET_MIN_LENGTH = 32
MAKE_INVITE_SECRET = "python3 -c 'import secrets; print(secrets.token_hex(32))'"


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
    # The key of the invite codes' hashes; kept out of the database (and of its backups), so
    # that a copy of the database does not give the codes back.
    invite_secret: SecretStr | None = None
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
    # An account that sends more than `flood_updates` messages or taps within
    # `flood_window_seconds` gets one warning and is then ignored for `flood_silence_seconds`
    # (bot.middlewares.FloodGuard): far more than a person types or taps, so only a script or a
    # stuck key meets it. An album counts once.
    flood_updates: int = Field(default=20, ge=2)
    flood_window_seconds: float = Field(default=10.0, gt=0)
    flood_silence_seconds: float = Field(default=60.0, ge=0)

    # The validators have public names: a private method of ours on pydantic's class could
    # clash with one of pydantic's own.
    @field_validator(
        "bot_token",
        "redis_url",
        "webhook_url",
        "webhook_secret",
        "invite_secret",
        "metrics_port",
        mode="before",
    )
    @classmethod
    def empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("invite_secret")
    @classmethod
    def check_secret_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < INVITE_SECRET_MIN_LENGTH:
            raise ValueError(
                f"is shorter than {INVITE_SECRET_MIN_LENGTH} characters; "
                f"make one with {MAKE_INVITE_SECRET}"
            )
        return SecretStr(value.get_secret_value().strip()) if value is not None else value

    @field_validator("bot_token")
    @classmethod
    def check_token_shape(cls, value: str | None) -> str | None:
        if value is not None and not _TOKEN_PATTERN.match(value.strip()):
            raise ValueError("does not look like a token from BotFather (digits:letters)")
        return value.strip() if value else value

    @field_validator("database_url")
    @classmethod
    def use_async_driver(cls, value: str) -> str:
        if value.startswith(("postgres://", "postgresql://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db")
        return value

    @field_validator("telegram_api_url", "webhook_url")
    @classmethod
    def check_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("redis_url")
    @classmethod
    def check_redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("log_format")
    @classmethod
    def check_log_format(cls, value: str) -> str:
        if value.lower() not in ("text", "json"):
            raise ValueError("choose text or json")
        return value.lower()

    @field_validator("default_locale")
    @classmethod
    def check_known_locale(cls, value: str) -> str:
        if value not in SUPPORTED_LOCALES:
            raise ValueError(f"choose one of {', '.join(SUPPORTED_LOCALES)}")
        return value

    @field_validator("timezone")
    @classmethod
    def check_known_timezone(cls, value: str) -> str:
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


def data_dir_of(settings: Settings) -> Path:
    """Where the embedded mode keeps its files: next to the SQLite database, else data/."""
    url = settings.database_url
    if url.startswith("sqlite") and ":///" in url:
        raw = url.split(":///", 1)[1]
        if raw and raw != ":memory:":
            return Path(raw).parent
    return DEFAULT_DATA_DIR


def with_invite_secret(settings: Settings) -> Settings:
    """The settings with their invite secret: INVITE_SECRET, or, without a bot token, the one
    kept in `invite.secret` in the data folder (made on first use). With a token and without
    INVITE_SECRET, a SettingsError says how to make one. Reads a small file: call it at
    start-up, not while serving."""
    if settings.invite_secret is not None:
        return settings
    if settings.bot_token is not None:
        raise SettingsError(
            "Setting INVITE_SECRET is missing: with a BOT_TOKEN the bot needs it to keep invite "
            f"codes safe. Make one with {MAKE_INVITE_SECRET} and set it where BOT_TOKEN is set."
        )
    kept = _kept_secret(data_dir_of(settings) / INVITE_SECRET_FILE)
    return settings.model_copy(update={"invite_secret": SecretStr(kept)})


def invite_secret_of(settings: Settings) -> bytes:
    """The invite secret as storage.invites takes it, of settings from `with_invite_secret`."""
    if settings.invite_secret is None:
        raise SettingsError(
            f"Setting INVITE_SECRET is missing; make one with {MAKE_INVITE_SECRET}."
        )
    return settings.invite_secret.get_secret_value().encode()


def _kept_secret(path: Path) -> str:
    """The secret in `path`, made there (0600) if it is not there yet."""
    try:
        kept = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        kept = None
    except OSError as error:
        raise SettingsError(f"Cannot read {path}: {error.strerror}.") from None
    if kept is not None:
        if len(kept) < INVITE_SECRET_MIN_LENGTH:
            raise SettingsError(
                f"{path} holds no usable invite secret; put one there ({MAKE_INVITE_SECRET}) "
                "or set INVITE_SECRET."
            )
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return kept
    path.parent.mkdir(parents=True, exist_ok=True)
    made = secrets.token_hex(32)
    # Written complete under a temporary name, then linked into place: a second process
    # starting at the same moment finds either no file or the whole secret, and link (unlike
    # rename) never replaces a secret that is already there.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".invite-secret-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(made + "\n")
        os.chmod(temporary, 0o600)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _kept_secret(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return made


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning pydantic's report into one readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"]).upper() or "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"Setting {name} is not valid: {message}.") from None
