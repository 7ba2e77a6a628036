"""What the scheduled prompts say, decided at the moment they are sent.

Each composer gets the claimed reminder and its recipient and returns the messages to send,
or None when the prompt is no longer needed (the pupil reflected already, everyone has been
seen). The dispatcher has set the recipient's language, so `_()` speaks it.
`register_composers` adds them to the app's registry (scheduler.composers).

A new prompt of a kind replaces an older one the person left unanswered: the older message is
deleted after the new one is sent, so a pupil who skipped three days finds one friendly
question in the chat, not a pile of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from aiogram.methods import DeleteMessage, SendMessage, TelegramMethod
from aiogram.types import InlineKeyboardMarkup
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import button
from chat_ui.texts import bold, fill
from conversations.goals import OpenMyGoals
from conversations.observation import unseen_message_for
from conversations.reflection import StartReflection
from conversations.week_plan import OpenWeekPlan
from language.i18n import _, current_locale, ngettext
from scheduler.composers import ComposerContext, ComposerRegistry, Methods
from storage.accounts import Recipient
from storage.audiences import period_review_for_teacher
from storage.reflections import has_reflected
from storage.reminders import DueReminder, ReminderKind, previous_notice
from storage.week_plans import plan_items


def _day(payload: dict[str, Any], key: str) -> date | None:
    try:
        return date.fromisoformat(str(payload[key]))
    except (KeyError, ValueError):
        return None


def _first_name(recipient: Recipient) -> str:
    return recipient.name.split()[0] if recipient.name.strip() else recipient.name


async def _tidy_unanswered(
    session: AsyncSession,
    reminder: DueReminder,
    to: Recipient,
    answered: Callable[[dict[str, Any]], Awaitable[bool]],
) -> list[TelegramMethod[Any]]:
    previous = await previous_notice(
        session, person_id=reminder.person_id, kind=reminder.kind, before_id=reminder.id
    )
    if previous is None or await answered(previous.payload):
        return []
    return [DeleteMessage(chat_id=to.telegram_user_id, message_id=previous.telegram_message_id)]


async def reflection_prompt(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> Methods | None:
    day = _day(reminder.payload, "date")
    if day is None or await has_reflected(session, pupil_id=reminder.person_id, on_date=day):
        return None

    async def answered(payload: dict[str, Any]) -> bool:
        earlier = _day(payload, "date")
        return earlier is None or await has_reflected(
            session, pupil_id=reminder.person_id, on_date=earlier
        )

    text = fill(
        _("Hoi {name}! 👋 Hoe ging het vandaag? Vertel het me in een paar tikken."),
        name=_first_name(to),
    )
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[button(_("✏️ Begin mijn reflectie"), StartReflection())]]
    )
    return [
        SendMessage(chat_id=to.telegram_user_id, text=text, reply_markup=keyboard),
        *await _tidy_unanswered(session, reminder, to, answered),
    ]


async def week_plan_prompt(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> Methods | None:
    week_start = _day(reminder.payload, "week_start")
    if week_start is None or await plan_items(
        session, pupil_id=reminder.person_id, week_start=week_start
    ):
        return None

    async def answered(payload: dict[str, Any]) -> bool:
        earlier = _day(payload, "week_start")
        return earlier is None or bool(
            await plan_items(session, pupil_id=reminder.person_id, week_start=earlier)
        )

    text = fill(
        _("Goedemorgen {name}! ☀️ Een nieuwe week. Wat ga je deze week doen voor je doelen?"),
        name=_first_name(to),
    )
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[button(_("🗓 Maak mijn weekplan"), OpenWeekPlan())]]
    )
    return [
        SendMessage(chat_id=to.telegram_user_id, text=text, reply_markup=keyboard),
        *await _tidy_unanswered(session, reminder, to, answered),
    ]


async def teacher_nudge(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> Methods | None:
    day = _day(reminder.payload, "date")
    if day is None:
        return None
    text, keyboard = await unseen_message_for(
        session, teacher_id=reminder.person_id, today=day, all_groups=True
    )
    if keyboard is None:
        return None

    async def answered(_payload: dict[str, Any]) -> bool:
        # Yesterday's list is out of date either way: today's replaces it.
        return False

    greeting = fill(_("Goedemorgen {name}! ☀️"), name=to.name)
    return [
        SendMessage(chat_id=to.telegram_user_id, text=f"{greeting}\n{text}", reply_markup=keyboard),
        *await _tidy_unanswered(session, reminder, to, answered),
    ]


def _end_date(reminder: DueReminder) -> str:
    ends_on = _day(reminder.payload, "ends_on")
    if ends_on is None:
        return ""
    return format_date(ends_on, format="EEEE d MMMM", locale=current_locale())


async def goal_review(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> Methods | None:
    text = fill(
        _(
            "Hoi {name}! Deze periode is bijna klaar (tot {date}). 🏁 Kijk nog eens naar je "
            "doelen: waar sta je nu? Tik op een doel en kies je niveau."
        ),
        name=_first_name(to),
        date=_end_date(reminder),
    )
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[button(_("🎯 Mijn doelen"), OpenMyGoals())]])
    return [SendMessage(chat_id=to.telegram_user_id, text=text, reply_markup=keyboard)]


async def goal_review_teacher(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> Methods | None:
    period_id = reminder.payload.get("period_id")
    if not isinstance(period_id, int):
        return None
    review = await period_review_for_teacher(
        session, teacher_id=reminder.person_id, period_id=period_id
    )
    if review is None or review.pupils == 0:
        return None
    lines = [
        bold(
            fill(_("{period} eindigt {date}"), period=review.period_name, date=_end_date(reminder))
        ),
        _("Tijd om de doelen met je groep te evalueren."),
        ngettext(
            "{count} leerling heeft doelen gekozen in deze periode.",
            "{count} leerlingen hebben samen {goals} doelen gekozen in deze periode.",
            review.pupils,
        ).format(count=review.pupils, goals=review.goals),
        fill(
            _("Bij {done} van de {goals} doelen gaven leerlingen zelf hun niveau aan."),
            done=review.self_assessed,
            goals=review.goals,
        ),
    ]
    if review.waiting_for_teacher:
        lines.append(
            ngettext(
                "{count} voorgesteld doel wacht nog op jouw akkoord.",
                "{count} voorgestelde doelen wachten nog op jouw akkoord.",
                review.waiting_for_teacher,
            ).format(count=review.waiting_for_teacher)
        )
    return [SendMessage(chat_id=to.telegram_user_id, text="\n".join(lines))]


def register_composers(registry: ComposerRegistry) -> None:
    """The prompts the planners create from the school's calendar."""
    registry.register(ReminderKind.REFLECTION_PROMPT, reflection_prompt)
    registry.register(ReminderKind.WEEK_PLAN_PROMPT, week_plan_prompt)
    registry.register(ReminderKind.TEACHER_NUDGE, teacher_nudge)
    registry.register(ReminderKind.GOAL_REVIEW, goal_review)
    registry.register(ReminderKind.GOAL_REVIEW_TEACHER, goal_review_teacher)
