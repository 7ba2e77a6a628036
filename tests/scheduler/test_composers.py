"""One composer per reminder kind: the real app has one for every kind, and a row whose kind
has none fails at once, with its reason, and sends nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.methods import SendMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import build_app
from config.settings import Settings
from language.i18n import load_i18n
from media.store import MediaStore
from sandbox import TelegramSandbox
from scheduler.composers import ComposerContext, ComposerRegistry, Methods
from scheduler.dispatcher import ReminderDispatcher
from scheduler.sender import RateLimitedSender
from services.clock import Clock
from storage.accounts import Recipient
from storage.models import Person, Role, School
from storage.reminders import DueReminder, ReminderKind, reminders_of, schedule_reminder
from tests.conftest import TOKEN


def plain_settings(db_url: str, media_dir: Path) -> Settings:
    return Settings(
        bot_token=None,
        database_url=db_url,
        media_dir=media_dir,
        _env_file=None,  # type: ignore[call-arg]
    )


async def says_hello(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> Methods | None:
    return [SendMessage(chat_id=to.telegram_user_id, text="hallo")]


def registry(settings: Settings) -> ComposerRegistry:
    return ComposerRegistry(settings=settings, media=MediaStore(settings.media_dir), clock=Clock())


async def test_the_app_has_a_composer_for_every_reminder_kind(db_url: str, tmp_path: Path):
    settings = plain_settings(db_url, tmp_path / "media")
    app = build_app(settings, token=TOKEN)
    try:
        composers = app.reminders.composers
        assert composers.kinds == frozenset(ReminderKind)
        assert all(composers.composer_for(kind) is not None for kind in ReminderKind)
        # The planners plan every kind they know of: none is left out for want of a composer.
        assert app.reminders.planner.kinds == frozenset(ReminderKind)
        # What the composers are given is this app's, not the environment's.
        context = composers.context(datetime(2027, 3, 22, 12, tzinfo=UTC))
        assert context.settings is settings and context.clock is app.clock
        assert context.media.root == settings.media_dir
    finally:
        await app.close()


def test_the_stored_kinds_keep_their_names():
    """The values are in the reminder rows (and their idempotency keys) of running schools."""
    assert sorted(ReminderKind) == sorted(
        [
            "reflection_prompt",
            "week_plan_prompt",
            "teacher_nudge",
            "goal_review",
            "goal_review_teacher",
            "evidence_digest",
            "parent_summary",
            "feedback_notice",
            "plan_feedback_request",
            "goal_proposal",
            "goal_decision",
            "invite_seen_in_group",
            "talk_invitation",
            "talk_reminder",
            "talk_preparation",
            "talk_brief",
            "talk_cancelled",
            "talk_agreements",
        ]
    )


def test_a_kind_has_one_composer_and_unknown_kinds_have_none(tmp_path: Path):
    composers = registry(plain_settings("sqlite+aiosqlite:///:memory:", tmp_path))
    composers.register(ReminderKind.REFLECTION_PROMPT, says_hello)
    with pytest.raises(ValueError, match="reflection_prompt"):
        composers.register(ReminderKind.REFLECTION_PROMPT, says_hello)
    assert composers.composer_for("reflection_prompt") is says_hello
    assert composers.composer_for(ReminderKind.TALK_BRIEF) is None
    assert composers.composer_for("no_such_kind") is None


async def test_a_reminder_without_a_composer_fails_with_its_reason_and_sends_nothing(
    db_url: str,
    session_factory: async_sessionmaker[AsyncSession],
    sandbox: TelegramSandbox,
    bot: Bot,
    tmp_path: Path,
):
    async with session_factory() as session, session.begin():
        school = School(name="De Regenboog")
        session.add(school)
        await session.flush()
        pupil = Person(school_id=school.id, external_id="L1", display_name="Sam", role=Role.PUPIL)
        session.add(pupil)
        await session.flush()
        due = datetime.now(UTC) - timedelta(minutes=1)
        # A kind this version does not know (a newer release wrote it), and a known kind
        # nobody registered a composer for.
        for kind, key in (("no_such_kind", "unknown:1"), (ReminderKind.TALK_BRIEF, "brief:1")):
            await schedule_reminder(
                session, kind=kind, person_id=pupil.id, due_at=due, idempotency_key=key
            )
    composers = registry(plain_settings(db_url, tmp_path))
    composers.register(ReminderKind.REFLECTION_PROMPT, says_hello)
    dispatcher = ReminderDispatcher(
        session_factory=session_factory,
        sender=RateLimitedSender(bot),
        composers=composers,
        i18n=load_i18n(),
        clock=Clock(),
        worker_id="test",
    )
    report = await dispatcher.run_once()
    assert (report.failed, report.sent) == (2, 0)
    async with session_factory() as session:
        rows = await reminders_of(session)
    assert {row.idempotency_key: row.last_error for row in rows} == {
        "unknown:1": "unknown kind no_such_kind",
        "brief:1": "no composer for kind talk_brief",
    }
    assert {row.status.value for row in rows} == {"failed"}
    assert list(sandbox.state(TOKEN).calls) == []
