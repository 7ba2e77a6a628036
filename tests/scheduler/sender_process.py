"""A reminder worker in an OS process of its own, for the crash and two-replica tests.

    python -m tests.scheduler.sender_process --database-url URL --api-url URL --token TOKEN

It runs the real `ReminderDispatcher` and `RateLimitedSender` against the given database and
Bot API (the sandbox of the test that started it), with one composer that writes the
reminder's idempotency key as the message text, so the sandbox can count deliveries per
reminder. It dispatches until no reminder is pending or claimed (a claim of a killed worker
comes back after `--lease` seconds), then prints one JSON line with what it did and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import SendMessage, TelegramMethod
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import Settings
from language.i18n import load_i18n
from media.store import MediaStore
from scheduler.composers import ComposerContext, ComposerRegistry
from scheduler.dispatcher import DispatchReport, ReminderDispatcher
from scheduler.sender import RateLimitedSender
from services.clock import Clock
from storage.accounts import Recipient
from storage.db import create_engine, create_sessionmaker
from storage.models import ReminderStatus
from storage.reminders import DueReminder, ReminderKind, count_by_status

# Any real kind: this worker registers its own composer for it.
KIND = ReminderKind.REFLECTION_PROMPT


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


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    engine = create_engine(arguments.database_url)
    sessions = create_sessionmaker(engine)
    bot = Bot(
        arguments.token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(arguments.api_url)),
    )
    sender = RateLimitedSender(bot, per_second=arguments.rate)
    dispatcher = ReminderDispatcher(
        session_factory=sessions,
        sender=sender,
        composers=composers(arguments.database_url),
        i18n=load_i18n(),
        clock=Clock(),
        worker_id=arguments.worker_id,
        batch_size=arguments.batch_size,
        lease=timedelta(seconds=arguments.lease),
        # One writer at a time on SQLite, as the bot's own process does it.
        db_lock=asyncio.Lock() if arguments.database_url.startswith("sqlite") else None,
    )
    total = DispatchReport()
    try:
        while True:
            total.add(await dispatcher.run_once())
            async with sessions() as session:
                counts = await count_by_status(session)
            if not counts.get(ReminderStatus.PENDING) and not counts.get(ReminderStatus.CLAIMED):
                break
            # Rows another worker holds (or a dead one held, until its lease ends).
            await asyncio.sleep(0.1)
    finally:
        await bot.session.close()
        await engine.dispose()
    return {
        "worker": arguments.worker_id,
        "sent": total.sent,
        "released": total.released,
        "uncertain": total.uncertain,
        "failed": total.failed,
        "sender": sender.stats.as_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.scheduler.sender_process")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--worker-id", default=f"test-worker-{os.getpid()}")
    parser.add_argument("--lease", type=float, default=2.0, help="seconds")
    parser.add_argument("--rate", type=float, default=30.0, help="messages a second")
    parser.add_argument("--batch-size", type=int, default=60)
    arguments = parser.parse_args()
    print(json.dumps(asyncio.run(run(arguments))), flush=True)


if __name__ == "__main__":
    main()
