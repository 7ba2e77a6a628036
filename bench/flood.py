"""How long a teacher waits for /help while one account floods the bot.

For each database (SQLite, PostgreSQL): a fresh database with a school (a teacher and a pupil
linked), the sandbox with Telegram's limits (1 message/s per chat, short bursts), and the bot
polling it as `portfolio-bot run` does. A stranger, then the pupil, sends 300 messages as fast
as the sandbox takes them; when half are sent, the teacher sends /help. Prints, per run, how
long the teacher waited for the answer, how many of the flood the bot answered and how many
warnings it sent (bot.middlewares.FloodGuard). Asserts nothing: tests/e2e/test_flood.py
asserts the outcome.

`--database-url` takes a PostgreSQL server URL (default: BENCH_DATABASE_URL, else the local
test server): the bench makes a database of its own there and drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr

from bench._harness import database
from bot.app import App, build_app
from config.settings import Settings, invite_secret_of
from sandbox import SandboxClient, SandboxUser, TelegramSandbox
from storage.db import create_engine, create_sessionmaker
from storage.invites import issue_invite
from storage.models import Group, GroupMembership, Person, Role, School

TOKEN = "8803:bench-flood-not-a-secret"
INVITE_SECRET = "bench-flood-invite-secret-not-a-secret"
POSTGRES_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
WARNING = "Rustig aan"


async def seed(settings: Settings) -> dict[str, str]:
    """A school with a teacher and a pupil of one group; their invite codes."""
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            school = School(name="Bench")
            session.add(school)
            await session.flush()
            group = Group(school_id=school.id, name="Groep 6a", school_year="2026-2027")
            session.add(group)
            await session.flush()
            codes = {}
            for external_id, role, name in (
                ("T1", Role.TEACHER, "Juf Anouk"),
                ("P1", Role.PUPIL, "Sam de Vries"),
            ):
                person = Person(
                    school_id=school.id, external_id=external_id, role=role, display_name=name
                )
                session.add(person)
                await session.flush()
                session.add(GroupMembership(group_id=group.id, person_id=person.id))
                codes[external_id] = await issue_invite(
                    session,
                    person_id=person.id,
                    valid_for=timedelta(days=1),
                    secret=invite_secret_of(settings),
                )
            return codes
    finally:
        await engine.dispose()


async def joined(telegram: SandboxClient, code: str, name: str) -> SandboxUser:
    user = await telegram.create_user(name)
    await user.send_text(f"/start {code}")
    await user.wait_for_reply()
    return user


async def bot_texts(user: SandboxUser) -> list[str]:
    return [
        message.get("text", "")
        for message in await user.messages()
        if message.get("from", {}).get("is_bot")
    ]


async def one_flood(
    telegram: SandboxClient, teacher: SandboxUser, flooder: SandboxUser, messages: int
) -> tuple[float, int, int]:
    """(ms the teacher waited, flood messages answered, warnings)."""
    loop = asyncio.get_running_loop()
    before = len(await bot_texts(flooder))
    halfway = asyncio.Event()

    async def flood() -> None:
        for number in range(messages):
            await flooder.send_text(f"bericht {number}")
            if number == messages // 2:
                halfway.set()

    flooding = asyncio.create_task(flood())
    await halfway.wait()
    asked_at = loop.time()
    await teacher.send_text("/help")
    await teacher.wait_for_reply(timeout=600)
    waited = (loop.time() - asked_at) * 1000
    await flooding
    await asyncio.sleep(3)  # the warning may wait for Telegram's per-chat limit
    texts = (await bot_texts(flooder))[before:]
    warnings = sum(WARNING in text for text in texts)
    return waited, len(texts) - warnings, warnings


async def run_database(kind: str, postgres_url: str, runs: int, messages: int) -> None:
    for run in range(1, runs + 1):
        async with database(kind, postgres_url) as url:
            sandbox = TelegramSandbox()
            await sandbox.start()
            with tempfile.TemporaryDirectory(prefix="bench-flood-") as folder:
                settings = Settings(
                    bot_token=None,
                    database_url=url,
                    telegram_api_url=sandbox.base_url,
                    media_dir=Path(folder) / "media",
                    invite_secret=SecretStr(INVITE_SECRET),
                    _env_file=None,  # type: ignore[call-arg]
                )
                codes = await seed(settings)
                app: App = build_app(settings, token=TOKEN)
                polling = asyncio.create_task(app.poller.run(app.bot, polling_timeout=1))
                try:
                    async with SandboxClient(sandbox.base_url, TOKEN) as telegram:
                        teacher = await joined(telegram, codes["T1"], "Anouk")
                        pupil = await joined(telegram, codes["P1"], "Sam")
                        stranger = await telegram.create_user("Onbekend")
                        for label, flooder in (("stranger", stranger), ("pupil", pupil)):
                            waited, answered, warnings = await one_flood(
                                telegram, teacher, flooder, messages
                            )
                            RESULTS.setdefault((kind, label), []).append(waited)
                            print(
                                f"{kind:10} run {run}  {label:8} floods {messages}: teacher "
                                f"answered after {waited:6.0f} ms; flood answered "
                                f"{answered}, warnings {warnings}",
                                flush=True,
                            )
                finally:
                    await app.stop_polling()
                    await polling
                    await app.close()
                    await sandbox.stop()


RESULTS: dict[tuple[str, str], list[float]] = {}


async def run(args: argparse.Namespace) -> None:
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, {platform.platform()}")
    for kind in args.databases:
        await run_database(kind, args.database_url, args.runs, args.messages)
    print("\nteacher's /help during a flood, ms (median, worst):")
    for (kind, label), waits in RESULTS.items():
        print(f"  {kind:10} {label:8} {statistics.median(waits):6.0f} {max(waits):6.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench flood", description=__doc__)
    parser.add_argument("--database-url", default=POSTGRES_URL, help="a PostgreSQL server URL")
    parser.add_argument(
        "--databases", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"]
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=300)
    asyncio.run(run(parser.parse_args()))
