"""Durable reminders end to end: N due reminders through the real dispatcher and sender.

Creates N pupils with Telegram accounts (in the sandbox too) and one reminder due now for
each, then runs `ReminderDispatcher.run_once` with the `RateLimitedSender` against the sandbox
with Telegram's default limits enforced (30 messages/s in total, 1/s per chat; bursts of 30
and 20). The sandbox runs in a process of its own, so the peak RSS is that of the bot's side.
Prints messages/s achieved against the limit (goal: at least 95%), 429s received and obeyed,
unhandled 429s, lost reminders (rows not sent or messages that never arrived), duplicates,
the lag from due to sent (p50/p95/p99; all are due at once, so it is mostly queueing) and
the peak RSS. Asserts nothing.

`--database-url` takes a PostgreSQL server URL: the bench creates a database of its own
there and drops it afterwards. Without it, a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import resource
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from datetime import time as wall_time
from pathlib import Path
from typing import Any

import asyncpg
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import SendMessage, TelegramMethod
from sqlalchemy import insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import Settings
from language.i18n import load_i18n
from media.store import MediaStore
from sandbox import SandboxClient, TelegramSandbox
from scheduler.composers import ComposerContext, ComposerRegistry
from scheduler.dispatcher import ReminderDispatcher
from scheduler.sender import RateLimitedSender
from services.clock import Clock
from storage import migrate
from storage.accounts import Recipient
from storage.db import create_engine, create_sessionmaker
from storage.models import Account, AccountPerson, Person, Reminder, ReminderStatus, Role, School
from storage.reminders import DueReminder, ReminderKind, count_by_status, reminders_of

TOKEN = "7777:bench-reminders-token-not-a-secret"
# Any real kind: the bench registers its own composer for it.
KIND = ReminderKind.REFLECTION_PROMPT
TELEGRAM_LIMIT = 30.0


# ------------------------------------------------------------------------ the sandbox


async def serve_sandbox() -> None:
    """Run the sandbox until stdin closes; its address is the first line on stdout."""
    async with TelegramSandbox() as sandbox:
        print(sandbox.base_url, flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


@asynccontextmanager
async def sandbox_process() -> AsyncIterator[str]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench",
        "reminders",
        "--serve-sandbox",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        # Importing aiogram's types takes seconds, more on a busy machine.
        line = await asyncio.wait_for(child.stdout.readline(), 180)
        yield line.decode().strip()
    finally:
        child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), 10)
        except TimeoutError:
            child.kill()
            await child.wait()


# ------------------------------------------------------------------------ the database


@asynccontextmanager
async def database(url: str | None) -> AsyncIterator[str]:
    """A fresh, migrated database: a temporary SQLite file, or a new PostgreSQL database."""
    if url is None or url.startswith("sqlite"):
        with tempfile.TemporaryDirectory(prefix="bench-reminders-") as directory:
            own = url or f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
            await migrate.upgrade(own)
            yield own
        return
    server = make_url(url)
    name = f"bench_reminders_{uuid.uuid4().hex[:10]}"
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    own = server.set(database=name).render_as_string(hide_password=False)
    try:
        await migrate.upgrade(own)
        yield own
    finally:
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


async def populate(sessions: Any, user_ids: Sequence[int], due: datetime) -> None:
    """One pupil per Telegram user, each with one reminder due at `due` (bulk inserts: the
    bench measures sending, not planning)."""
    async with sessions() as session, session.begin():
        # Quiet hours from 00:00 to 00:00: none, whatever time the bench runs.
        school = School(name="Bench", quiet_hours_start=wall_time(0), quiet_hours_end=wall_time(0))
        session.add(school)
        await session.flush()
        for start in range(0, len(user_ids), 2000):
            chunk = user_ids[start : start + 2000]
            person_ids = (
                await session.scalars(
                    insert(Person).returning(Person.id, sort_by_parameter_order=True),
                    [
                        {
                            "school_id": school.id,
                            "external_id": f"B{start + n}",
                            "display_name": f"Leerling {start + n}",
                            "role": Role.PUPIL,
                            "preferences": {},
                        }
                        for n in range(len(chunk))
                    ],
                )
            ).all()
            account_ids = (
                await session.scalars(
                    insert(Account).returning(Account.id, sort_by_parameter_order=True),
                    [
                        {"telegram_user_id": user_id, "active_person_id": person_id}
                        for user_id, person_id in zip(chunk, person_ids, strict=True)
                    ],
                )
            ).all()
            await session.execute(
                insert(AccountPerson),
                [
                    {"account_id": account_id, "person_id": person_id}
                    for account_id, person_id in zip(account_ids, person_ids, strict=True)
                ],
            )
            await session.execute(
                insert(Reminder),
                [
                    {
                        "kind": KIND,
                        "person_id": person_id,
                        "due_at": due,
                        "payload": {},
                        "status": ReminderStatus.PENDING,
                        "attempts": 0,
                        "idempotency_key": f"{KIND}:{start + n}",
                    }
                    for n, person_id in enumerate(person_ids)
                ],
            )


async def create_users(control: SandboxClient, count: int) -> list[int]:
    ids: list[int] = []
    for start in range(0, count, 200):
        users = await asyncio.gather(
            *(control.create_user(f"L{n}") for n in range(start, min(count, start + 200)))
        )
        ids += [user.id for user in users]
    return ids


# ------------------------------------------------------------------------------ the run


async def compose(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> Sequence[TelegramMethod[Any]]:
    return [SendMessage(chat_id=to.telegram_user_id, text=reminder.idempotency_key)]


def composers(database_url: str) -> ComposerRegistry:
    settings = Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]
    registry = ComposerRegistry(
        settings=settings, media=MediaStore(settings.media_dir), clock=Clock()
    )
    registry.register(KIND, compose)
    return registry


def default_batch_size() -> Any:
    return inspect.signature(ReminderDispatcher).parameters["batch_size"].default


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def run(arguments: argparse.Namespace) -> None:
    count = arguments.count
    async with sandbox_process() as api_url, database(arguments.database_url) as url:
        engine = create_engine(url)
        sessions = create_sessionmaker(engine)
        control = SandboxClient(api_url, TOKEN)
        bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api_url)))
        try:
            limits = await control.get_limits()
            started = time.perf_counter()
            user_ids = await create_users(control, count)
            due = datetime.now(UTC)
            await populate(sessions, user_ids, due)
            print(
                f"set up    {count} pupils with accounts and due reminders "
                f"({engine.dialect.name}) in {time.perf_counter() - started:.1f} s"
            )
            print(
                f"limits    sandbox {limits['global_rate']:g}/s in total "
                f"(burst {limits['global_burst']}), {limits['per_chat_rate']:g}/s per chat "
                f"(burst {limits['per_chat_burst']}); sender {arguments.rate:g}/s, "
                f"{arguments.per_chat:g}/s per chat; dispatcher batches of "
                f"{arguments.batch_size or default_batch_size()}"
            )
            sender = RateLimitedSender(
                bot, per_second=arguments.rate, per_chat_per_second=arguments.per_chat
            )
            options: dict[str, Any] = {}
            if arguments.batch_size is not None:
                options["batch_size"] = arguments.batch_size
            dispatcher = ReminderDispatcher(
                session_factory=sessions,
                sender=sender,
                composers=composers(url),
                i18n=load_i18n(),
                clock=Clock(),
                worker_id="bench",
                # One writer at a time on SQLite, as the bot's own process does it.
                db_lock=asyncio.Lock() if url.startswith("sqlite") else None,
                **options,
            )
            await control.clear_calls()
            started = time.perf_counter()
            report = await dispatcher.run_once()
            seconds = time.perf_counter() - started

            calls = await control.calls("sendMessage")
            async with sessions() as session:
                statuses = await count_by_status(session)
                rows = await reminders_of(session, kinds=[KIND])
        finally:
            await bot.session.close()
            await control.aclose()
            await engine.dispose()

    delivered = [call for call in calls if call["status"] == 200]
    refused = sum(1 for call in calls if call["status"] == 429)
    counted = Counter(call["params"].get("text") for call in delivered)
    keys = {row.idempotency_key for row in rows}
    missing = sum(1 for key in keys if counted[key] == 0)
    duplicates = sum(times - 1 for times in counted.values() if times > 1)
    not_sent = sum(n for status, n in statuses.items() if status is not ReminderStatus.SENT)
    lags = [(row.sent_at - row.due_at).total_seconds() for row in rows if row.sent_at]
    span = delivered[-1]["time"] - delivered[0]["time"] if len(delivered) > 1 else 0.0
    rate = len(delivered) / seconds
    steady = (len(delivered) - 1) / span if span else 0.0

    print(f"dispatch  {len(delivered)} messages in {seconds:.1f} s: {rate:.2f} messages/s")
    print(
        f"          = {100 * rate / TELEGRAM_LIMIT:.1f}% of Telegram's {TELEGRAM_LIMIT:g}/s "
        f"(goal >= 95%); first to last message {steady:.2f}/s "
        f"({100 * steady / TELEGRAM_LIMIT:.1f}%)"
    )
    print(
        f"429s      {refused} answered by the sandbox, {sender.stats.flood_waits} obeyed "
        f"({sender.stats.flood_wait_seconds:g} s of flood waits), "
        f"unhandled {refused - sender.stats.flood_waits}"
    )
    print(
        f"lost      {not_sent} rows not sent "
        f"({json.dumps({str(k): v for k, v in statuses.items()})}), "
        f"{missing} messages missing at the sandbox"
    )
    print(f"dupes     {duplicates} reminders delivered more than once")
    if lags:
        print(
            f"lag       due -> sent p50 {percentile(lags, 0.5):.1f} s   "
            f"p95 {percentile(lags, 0.95):.1f} s   p99 {percentile(lags, 0.99):.1f} s   "
            f"max {max(lags):.1f} s"
        )
    print(
        f"sender    {json.dumps(sender.stats.as_dict())}; per-chat buckets kept "
        f"{sender.chats_tracked}; dispatcher: sent {report.sent}, failed {report.failed}, "
        f"deferred {report.deferred}"
    )
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"peak RSS  {peak_kib / 1024:.0f} MiB (dispatcher, sender, database; not the sandbox)")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench reminders", description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--rate", type=float, default=TELEGRAM_LIMIT, help="sender, per second")
    parser.add_argument("--per-chat", type=float, default=1.0, help="sender, per chat a second")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="dispatcher claim size (its default)"
    )
    parser.add_argument("--serve-sandbox", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_sandbox:
        asyncio.run(serve_sandbox())
        return
    asyncio.run(run(arguments))
