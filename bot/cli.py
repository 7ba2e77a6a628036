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
from typing import Any

from bot import admin_cli
from bot.errors import UserError
from bot.settings import Settings, SettingsError, load_settings
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

    admin_cli.register(commands)
    return parser


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runner import run_bot

    # Without a token run_bot runs the demo, whose own database is migrated there; the
    # configured database is left alone.
    if not args.no_migrate and not settings.uses_sandbox:
        await migrate.upgrade(settings.database_url)
    await run_bot(settings, webhook=args.webhook)
    return 0


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    port = settings.sandbox_port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port} is not a port number (0-65535)")
    await run_demo(settings, keep=args.keep, port=port)
    return 0


async def _db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    await migrate.upgrade(settings.database_url)
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
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
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
