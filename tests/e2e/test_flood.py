"""One account sending very many messages costs the others nothing.

A stranger, or a pupil, sends 300 messages as fast as the sandbox takes them while a teacher
asks for /help. The flooder gets the usual answers for a while, then one friendly warning and
silence (bot.middlewares.FloodGuard); the teacher is answered meanwhile, long before the bot
is through the flood. How long the teacher waits is measured by `python -m bench flood`; here
it is printed, and the order and the outcome are asserted.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram.types import Chat, Message, Update, User
from sqlalchemy import func, select

from config.settings import Settings
from sandbox import SandboxClient, SandboxUser
from storage.models import ProcessedUpdate
from tests.e2e.conftest import RunningBot
from tests.factories import DemoSchool

FLOOD = 300
# In the flooder's language: the pupil's is the school's (Dutch), the stranger's phone is
# set to English.
WARNING = {"pupil": "Rustig aan!", "stranger": "Slow down!"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The flood guard as configured by default (the other tests' scripted users run with a
    looser one: they type faster than any person)."""
    defaults = {
        name: Settings.model_fields[name].default
        for name in ("flood_updates", "flood_window_seconds", "flood_silence_seconds")
    }
    return settings.model_copy(update=defaults)


class FinishedUpdates:
    """When the bot finished each update, by the Telegram user who sent it."""

    def __init__(self, running_bot: RunningBot) -> None:
        assert running_bot.app is not None
        self.finished: list[tuple[int | None, float]] = []
        dispatcher = running_bot.app.dispatcher
        handle = dispatcher.feed_update

        async def recorded(bot: Any, update: Any, **kwargs: Any) -> Any:
            try:
                return await handle(bot, update, **kwargs)
            finally:
                sender = getattr(update.event, "from_user", None)
                self.finished.append(
                    (sender.id if sender else None, asyncio.get_running_loop().time())
                )

        dispatcher.feed_update = recorded  # type: ignore[method-assign]

    def of(self, user: SandboxUser) -> list[float]:
        return [at for sender, at in self.finished if sender == user.id]


async def joined(telegram: SandboxClient, school: DemoSchool, key: str, name: str) -> SandboxUser:
    user = await telegram.create_user(name)
    await user.send_text(f"/start {school.codes[key]}")
    await user.wait_for_reply()
    return user


async def bot_texts(user: SandboxUser) -> list[str]:
    return [
        message.get("text", "")
        for message in await user.messages()
        if message.get("from", {}).get("is_bot")
    ]


async def processed_updates(session_factory) -> int:
    async with session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(ProcessedUpdate)) or 0)


@pytest.mark.parametrize("flooder_is", ["stranger", "pupil"])
async def test_a_flood_gets_one_warning_and_the_teacher_is_answered_meanwhile(
    running_bot: RunningBot,
    telegram: SandboxClient,
    school: DemoSchool,
    session_factory,
    flooder_is: str,
):
    teacher = await joined(telegram, school, "T1", "Anouk")
    if flooder_is == "pupil":
        flooder = await joined(telegram, school, "P1", "Sam")
    else:
        flooder = await telegram.create_user("Stranger", language_code="en")
    warning = WARNING[flooder_is]
    answers_before = len(await bot_texts(flooder))
    claimed_before = await processed_updates(session_factory)
    finished = FinishedUpdates(running_bot)
    loop = asyncio.get_running_loop()
    halfway = asyncio.Event()

    async def flood() -> None:
        for number in range(FLOOD):
            await flooder.send_text(f"bericht {number}")
            if number == FLOOD // 2:
                halfway.set()

    flooding = asyncio.create_task(flood())
    await halfway.wait()
    asked_at = loop.time()
    await teacher.send_text("/help")
    [help_text] = await teacher.wait_for_reply(timeout=20)
    answered_at = loop.time()
    print(
        f"\n{flooder_is} flooding: the teacher's /help was answered after "
        f"{(answered_at - asked_at) * 1000:.0f} ms"
    )
    assert "/klas" in help_text["text"]  # the teacher's own help
    await flooding

    for _ in range(200):  # every flood update went through the bot (most of them dropped)
        if len(finished.of(flooder)) == FLOOD:
            break
        await asyncio.sleep(0.05)
    assert len(finished.of(flooder)) == FLOOD
    await running_bot.settled()
    # The teacher did not wait for the flood: answered before its last message was done with.
    assert answered_at < finished.of(flooder)[-1]

    # One friendly warning (it may wait for Telegram's per-chat limit), then silence.
    await flooder.wait_until(
        lambda messages: any(warning in message.get("text", "") for message in messages),
        timeout=10,
    )
    await asyncio.sleep(1.5)  # room for a second warning, were there one
    texts = (await bot_texts(flooder))[answers_before:]
    assert len([text for text in texts if warning in text]) == 1
    settings = running_bot.settings
    assert len(texts) <= settings.flood_updates + 1
    # The dropped updates cost the database nothing: not even a claim of their update id.
    claimed = await processed_updates(session_factory) - claimed_before
    assert claimed <= settings.flood_updates + 1  # the flood's answered ones and the /help


def help_update(update_id: int, user: SandboxUser) -> Update:
    person = User(id=user.id, is_bot=False, first_name=user.first_name, language_code="nl")
    return Update(
        update_id=update_id,
        message=Message(
            message_id=update_id,
            date=datetime.now(UTC),
            chat=Chat(id=user.id, type="private"),
            from_user=person,
            text="/help",
        ),
    )


async def test_an_answer_waiting_for_telegrams_limit_holds_up_no_other_chat(
    running_bot: RunningBot, telegram: SandboxClient, school: DemoSchool, session_factory
):
    """The pupil's answer is refused for a few seconds (Telegram's 429); meanwhile the
    teacher's update goes through the database and is answered. On SQLite, before, the
    pupil's update waited with the one-writer lock in hand, and the teacher waited too."""
    teacher = await joined(telegram, school, "T1", "Anouk")
    pupil = await joined(telegram, school, "P1", "Sam")
    app = running_bot.app
    assert app is not None
    await telegram.inject_fault("sendMessage", status=429, retry_after=3)
    waiting = asyncio.create_task(app.dispatcher.feed_update(app.bot, help_update(900_001, pupil)))
    for _ in range(100):  # until its answer was refused
        if [call for call in await telegram.calls("sendMessage") if call["status"] == 429]:
            break
        await asyncio.sleep(0.02)
    await app.dispatcher.feed_update(app.bot, help_update(900_002, teacher))
    assert not waiting.done(), "the teacher waited for the pupil's answer"
    [answer] = await teacher.wait_for_reply()
    assert "/klas" in answer["text"]

    await waiting
    [answer] = await pupil.wait_for_reply()
    assert "/reflectie" in answer["text"]
    await asyncio.sleep(0.5)
    assert len(await bot_texts(pupil)) == 2  # the welcome and one answer: handled once
    async with session_factory() as session:
        claims = await session.scalar(
            select(func.count())
            .select_from(ProcessedUpdate)
            .where(ProcessedUpdate.update_id.in_([900_001, 900_002]))
        )
    assert claims == 2
