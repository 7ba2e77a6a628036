"""Settings: sensible defaults, and one clear line for a wrong value."""

from __future__ import annotations

import os
import stat

import pytest

from bot.cli import main
from config.settings import SettingsError, invite_secret_of, load_settings, with_invite_secret


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


def test_a_real_bot_does_not_start_without_an_invite_secret(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("INVITE_SECRET")
    monkeypatch.chdir(tmp_path)  # no .env file
    monkeypatch.setenv("BOT_TOKEN", "123456:not-a-real-token-but-shaped-like-one")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")

    assert main(["run"]) == 1

    err = capsys.readouterr().err
    assert "INVITE_SECRET" in err and "secrets.token_hex(32)" in err and err.count("\n") == 1
    # Refused before anything was migrated or made.
    assert list(tmp_path.iterdir()) == []


def test_an_invite_secret_shorter_than_32_characters_is_refused(monkeypatch):
    monkeypatch.setenv("INVITE_SECRET", "geheim")
    with pytest.raises(SettingsError, match="INVITE_SECRET") as raised:
        load_settings()
    assert "\n" not in str(raised.value) and "geheim" not in str(raised.value)


def test_without_a_token_the_bot_keeps_its_own_invite_secret_for_its_owner(monkeypatch, tmp_path):
    monkeypatch.delenv("INVITE_SECRET")
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'data' / 'portfolio.db'}")
    previous = os.umask(0o022)
    try:
        first = invite_secret_of(with_invite_secret(load_settings()))
        again = invite_secret_of(with_invite_secret(load_settings()))
    finally:
        os.umask(previous)

    kept = tmp_path / "data" / "invite.secret"
    assert first == again and len(first) >= 32
    assert kept.read_text().strip().encode() == first
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert [path.name for path in kept.parent.iterdir()] == ["invite.secret"]
    # A configured secret wins; the kept one is only for running without a token.
    monkeypatch.setenv("INVITE_SECRET", "x" * 40)
    assert invite_secret_of(with_invite_secret(load_settings())) == b"x" * 40
