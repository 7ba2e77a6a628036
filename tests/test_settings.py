"""Settings: sensible defaults, and one clear line for a wrong value."""

from __future__ import annotations

import pytest

from bot.cli import main
from config.settings import SettingsError, load_settings


def test_defaults_run_embedded_on_sqlite_and_the_sandbox(monkeypatch):
    for name in ("BOT_TOKEN", "DATABASE_URL", "TELEGRAM_API_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir("/")  # no .env file
    settings = load_settings()
    assert settings.uses_sandbox and settings.is_sqlite
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert settings.default_locale == "nl" and settings.timezone == "Europe/Amsterdam"


def test_plain_driver_urls_get_the_async_driver(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1/test")
    assert load_settings().database_url.startswith("postgresql+asyncpg://")


@pytest.mark.parametrize(
    ("name", "value", "phrase"),
    [
        ("DATABASE_URL", "mysql://root@localhost/db", "DATABASE_URL"),
        ("BOT_TOKEN", "not-a-token", "BOT_TOKEN"),
        ("TIMEZONE", "Mars/Olympus", "TIMEZONE"),
        ("DEFAULT_LOCALE", "xx", "DEFAULT_LOCALE"),
        ("TELEGRAM_API_URL", "ftp://example", "TELEGRAM_API_URL"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL"),
    ],
)
def test_a_wrong_value_gives_one_clear_line(monkeypatch, name, value, phrase):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=phrase) as raised:
        load_settings()
    assert "\n" not in str(raised.value)


def test_the_cli_prints_the_line_and_exits_1_without_a_traceback(monkeypatch, capsys):
    monkeypatch.setenv("TIMEZONE", "Mars/Olympus")
    assert main(["db", "current"]) == 1
    err = capsys.readouterr().err
    assert "TIMEZONE" in err and "Traceback" not in err and err.count("\n") == 1


def test_run_refuses_an_unmigrated_database(monkeypatch, capsys, tmp_path):
    # With a token: without one, `run` is the demo, which uses a database of its own.
    monkeypatch.setenv("BOT_TOKEN", "123456:not-a-real-token-but-shaped-like-one")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    assert main(["run", "--no-migrate"]) == 1
    assert "db upgrade" in capsys.readouterr().err


def test_db_upgrade_then_current(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'new.db'}")
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "current"]) == 0
    assert "(current)" in capsys.readouterr().out
