"""The `portfolio-bot` command: run the bot, migrate the database, and the admin tasks.

Every command turns the errors a user can cause (a wrong setting, an unreachable or
un-migrated database, a broken import file) into one clear line and exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from bot import admin_cli
from bot.observability import configure_logging
from config.settings import Settings, SettingsError, load_settings, with_invite_secret
from services.errors import UserError
from storage import migrate

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portfolio-bot", description="Leerling Portfolio Bot: a pupil portfolio in Telegram."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the bot (the local sandbox when BOT_TOKEN is unset)")
    run.add_argument("--webhook", action="store_true", help="serve a webhook instead of polling")
    run.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not upgrade the database first (when migrations run as a separate step)",
    )
    run.set_defaults(handler=_run)

    demo = commands.add_parser(
        "demo",
        help="try the bot in a browser: a demo school, the local sandbox and its chat page",
        description="Seeds a demo school in its own database (demo.db next to the configured "
        "SQLite database, data/demo.db by default), starts the local Telegram sandbox and the "
        "bot against it, and prints the address of a chat page where you can be any pupil, "
        "teacher or parent of the demo school.",
    )
    demo.add_argument(
        "--keep", action="store_true", help="continue the existing demo instead of a fresh one"
    )
    demo.add_argument(
        "--port",
        type=int,
        default=None,
        help="port of the sandbox and its page (default: the SANDBOX_PORT setting, 8081)",
    )
    demo.set_defaults(handler=_demo)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="migrate to the newest schema").set_defaults(
        handler=_db_upgrade
    )
    db_commands.add_parser("current", help="show the schema revision").set_defaults(
        handler=_db_current
    )
    down = db_commands.add_parser("downgrade", help="migrate back to REVISION")
    down.add_argument("revision")
    down.set_defaults(handler=_db_downgrade)

    i18n = commands.add_parser("i18n", help="translation catalogs (for developers)")
    i18n_commands = i18n.add_subparsers(dest="i18n_command", required=True, metavar="ACTION")
    i18n_commands.add_parser("update", help="extract strings, merge into .po").set_defaults(
        handler=_i18n_update
    )
    i18n_commands.add_parser("check", help="report missing or untranslated strings").set_defaults(
        handler=_i18n_check
    )

    backup = commands.add_parser(
        "backup",
        help="back up the database and the media into a new directory under DIR",
        description="Writes DIR/portfolio-YYYYMMDD-HHMMSS/ with the database (SQLite: an online "
        "copy; PostgreSQL: pg_dump), the media files and a manifest. Safe while the bot runs.",
    )
    backup.add_argument("directory", type=Path, metavar="DIR")
    backup.set_defaults(handler=_backup)
    restore = commands.add_parser(
        "restore",
        help="restore a backup into an empty database and an empty MEDIA_DIR",
        description="Restores BACKUP (a directory made by `portfolio-bot backup`) into "
        "DATABASE_URL and MEDIA_DIR, which must be empty, and checks every row and file.",
    )
    restore.add_argument("source", type=Path, metavar="BACKUP")
    restore.set_defaults(handler=_restore)

    admin_cli.register(commands)
    return parser


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runner import run_bot

    # Without a token run_bot runs the demo, whose own database is migrated there; the
    # configured database is left alone. With one, a missing INVITE_SECRET is said before
    # anything is migrated.
    settings = with_invite_secret(settings)
    if not args.no_migrate and not settings.uses_sandbox:
        await _upgrade(settings.database_url)
    await run_bot(settings, webhook=args.webhook)
    return 0


async def _upgrade(url: str) -> None:
    """Migrate, one replica at a time; leave a schema of a newer version alone (a rolling
    upgrade: the new version migrated first, and stays compatible with this one)."""
    from storage.health import SchemaState, migration_lock, schema_state_of

    async with migration_lock(url):
        state, revision = await schema_state_of(url)
        if state is SchemaState.AHEAD:
            logging.getLogger(__name__).warning(
                "database schema %s is newer than this version; not migrating", revision
            )
            return
        await migrate.upgrade(url)


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    port = settings.sandbox_port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port} is not a port number (0-65535)")
    await run_demo(settings, keep=args.keep, port=port)
    return 0


async def _db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    await _upgrade(settings.database_url)
    print(f"Database is at revision {await migrate.current_revision(settings.database_url)}.")
    return 0


async def _db_current(settings: Settings, _args: argparse.Namespace) -> int:
    current = await migrate.current_revision(settings.database_url)
    head = migrate.head_revision()
    state = "current" if current == head else f"behind, newest is {head}"
    print(f"Database revision: {current or 'none (empty database)'} ({state}).")
    return 0


async def _db_downgrade(settings: Settings, args: argparse.Namespace) -> int:
    await migrate.downgrade(settings.database_url, args.revision)
    print(f"Database is at revision {await migrate.current_revision(settings.database_url)}.")
    return 0


async def _backup(settings: Settings, args: argparse.Namespace) -> int:
    from services.backup import backup

    summary = await backup(settings, args.directory)
    print(
        f"Backup written to {summary.path}: {summary.rows} rows, {summary.files} media files "
        f"({summary.size / 1_000_000:.1f} MB)."
    )
    return 0


async def _restore(settings: Settings, args: argparse.Namespace) -> int:
    from services.backup import restore

    summary = await restore(settings, args.source)
    print(
        f"Restored {summary.rows} rows and {summary.files} media files from {summary.path}; "
        "all checked. Start the bot (it migrates the database if the backup is older)."
    )
    return 0


async def _i18n_update(_settings: Settings, _args: argparse.Namespace) -> int:
    from bot import catalogs

    catalogs.update()
    print("Catalogs updated; translate the empty entries, then run `portfolio-bot i18n check`.")
    return 0


async def _i18n_check(_settings: Settings, _args: argparse.Namespace) -> int:
    from bot import catalogs

    found = catalogs.problems()
    for problem in found:
        print(problem)
    return 1 if found else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings)
        handler: Command = args.handler
        return asyncio.run(handler(settings, args))
    except (SettingsError, UserError, migrate.DatabaseNotReadyError) as error:
        print(f"portfolio-bot: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        # Unreachable database server, unreadable file, port in use: the message says which.
        print(f"portfolio-bot: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
