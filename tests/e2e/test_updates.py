"""Update handling: each update once, and a failing handler changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram.types import Chat, Message, Update, User
from sqlalchemy import func, select

from storage.models import ProcessedUpdate


def start_update(update_id: int, user_id: int) -> Update:
    user = User(id=user_id, is_bot=False, first_name="Daan", language_code="nl")
    return Update(
        update_id=update_id,
        message=Message(
            message_id=1,
            date=datetime.now(UTC),
            chat=Chat(id=user_id, type="private"),
            from_user=user,
            text="/start",
        ),
    )


async def test_a_redelivered_update_is_handled_once(running_bot, telegram, session_factory):
    user = await telegram.create_user("Daan")
    app = running_bot.app
    update = start_update(987654, user.id)
    await app.dispatcher.feed_update(app.bot, update)
    await app.dispatcher.feed_update(app.bot, update)
    await user.wait_for_reply(count=1)
    async with session_factory() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(ProcessedUpdate)
            .where(ProcessedUpdate.update_id == 987654)
        )
    assert count == 1
    bot_messages = [m for m in await user.messages() if m.get("from", {}).get("is_bot")]
    assert len(bot_messages) == 1
