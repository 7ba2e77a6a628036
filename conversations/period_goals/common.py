"""What the steps of preparing a period share: the state, the buttons and the workspace
the buttons name (checked again on every tap)."""

from __future__ import annotations

from datetime import date

from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import Settings
from conversations.card import refuse
from language.i18n import current_locale
from services.clock import Clock, school_today
from storage.accounts import PersonRef
from storage.period_goals import (
    Workspace,
    workspace,
)


class PreparingPeriod(StatesGroup):
    activity_name = State()


class PickPeriod(CallbackData, prefix="vbp"):
    group_id: int
    period_id: int


class NewPeriod(CallbackData, prefix="vbn"):
    group_id: int


class NewPeriodStart(CallbackData, prefix="vbs"):
    group_id: int
    day: int  # date.toordinal()


class NewPeriodLength(CallbackData, prefix="vbw"):
    group_id: int
    day: int
    weeks: int


class PrepLines(CallbackData, prefix="vbl"):
    group_id: int
    period_id: int
    page: int


class PrepLine(CallbackData, prefix="vbr"):
    group_id: int
    period_id: int
    line_id: int


class PickTierGoal(CallbackData, prefix="vbt"):
    group_id: int
    period_id: int
    line_id: int
    tier: int
    page: int


class SetTier(CallbackData, prefix="vbg"):
    group_id: int
    period_id: int
    tier: int
    goal_id: int


class ClearTier(CallbackData, prefix="vbc"):
    group_id: int
    period_id: int
    line_id: int
    tier: int


class PrepActivities(CallbackData, prefix="vba"):
    group_id: int
    period_id: int
    goal_id: int


class AddActivity(CallbackData, prefix="vbi"):
    group_id: int
    period_id: int
    goal_id: int


class RemoveActivity(CallbackData, prefix="vbx"):
    group_id: int
    period_id: int
    activity_id: int


class PrepDone(CallbackData, prefix="vbk"):
    pass


def day_label(day: date) -> str:
    return format_date(day, format="EEE d MMM", locale=current_locale())


async def stop_typing(state: FSMContext) -> None:
    """Leaving the activities card ends the typing step: later words are no activity."""
    if await state.get_state() == PreparingPeriod.activity_name.state:
        await state.clear()


async def place_of(
    query: CallbackQuery,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
    data: PickPeriod
    | PrepLines
    | PrepLine
    | PickTierGoal
    | SetTier
    | ClearTier
    | PrepActivities
    | AddActivity
    | RemoveActivity,
) -> Workspace | None:
    """The group and period a button names, while the teacher still teaches the group and
    the period is still to prepare; None (the teacher kindly told) when not."""
    place = await workspace(
        session,
        teacher_id=person.id,
        group_id=data.group_id,
        period_id=data.period_id,
        today=school_today(settings, clock),
    )
    if place is None:
        await refuse(query)
    return place
