"""Which period to prepare: the current or the next one, or a new one (its start day and
length)."""

from __future__ import annotations

from datetime import date

from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import button, edit_card, in_rows, main_menu
from chat_ui.texts import bold, fill
from config.settings import Settings
from conversations.card import refuse
from conversations.period_goals.common import (
    NewPeriod,
    NewPeriodLength,
    NewPeriodStart,
    PickPeriod,
    day_label,
    stop_typing,
)
from conversations.period_goals.lines import (
    lines_card,
)
from language.i18n import _, use_locale
from services.clock import Clock, school_today
from storage.accounts import PersonRef, Viewer
from storage.overview import active_group
from storage.period_goals import (
    PERIOD_WEEKS,
    PeriodChoice,
    create_period,
    period_choice,
    period_end,
    school_calendar_of_group,
    start_options,
    workspace,
)
from storage.schooltime import SchoolCalendar


async def start(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """/voorbereiden and "🎯 Doelen klaarzetten": the active group's period to prepare."""
    await stop_typing(state)
    group = await active_group(session, teacher_id=person.id)
    if group is None:
        await message.answer(
            _("Je hebt nog geen groep. De beheerder van de school zet je in een groep."),
            reply_markup=main_menu(viewer),
        )
        return
    today = school_today(settings, clock)
    choice = await period_choice(session, teacher_id=person.id, group_id=group.id, today=today)
    assert choice is not None  # the active group is one of the teacher's own
    # One period to prepare (no choice, nothing new to make yet): straight to its lines.
    only = None
    if choice.current is None:
        only = choice.next
    elif choice.next is None and not choice.nearly_over(today):
        only = choice.current
    if only is not None:
        place = await workspace(
            session, teacher_id=person.id, group_id=group.id, period_id=only.id, today=today
        )
        assert place is not None
        text, keyboard = await lines_card(session, place, 0)
        await message.answer(text, reply_markup=keyboard)
        return
    if choice.current is None:
        question, days = await _start_card(session, person, group.id, group.name, today)
        await message.answer(question, reply_markup=days)
        return
    await message.answer(_choice_text(choice, today), reply_markup=_choice_keyboard(choice))


def _choice_text(choice: PeriodChoice, today: date) -> str:
    question = (
        _("De periode is bijna om. Welke periode wil je voorbereiden?")
        if choice.nearly_over(today)
        else _("Welke periode wil je voorbereiden?")
    )
    return "🎯 " + bold(choice.group.name) + "\n" + question


def _choice_keyboard(choice: PeriodChoice) -> InlineKeyboardMarkup:
    assert choice.current is not None
    group_id = choice.group.id
    rows = [
        [
            button(
                # A button is plain text, not HTML: no escaping here.
                "📅 "
                + _("{name} (nu, tot {end})").format(
                    name=choice.current.name, end=day_label(choice.current.ends_on)
                ),
                PickPeriod(group_id=group_id, period_id=choice.current.id),
            )
        ]
    ]
    if choice.next is not None:
        rows.append(
            [
                button(
                    "📅 "
                    + _("{name} (vanaf {start})").format(
                        name=choice.next.name, start=day_label(choice.next.starts_on)
                    ),
                    PickPeriod(group_id=group_id, period_id=choice.next.id),
                )
            ]
        )
    else:
        rows.append([button(_("➕ Nieuwe periode daarna"), NewPeriod(group_id=group_id))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def _start_card(
    session: AsyncSession, person: PersonRef, group_id: int, group_name: str, today: date
) -> tuple[str, InlineKeyboardMarkup | None]:
    days = await start_options(session, teacher_id=person.id, group_id=group_id, today=today)
    if not days:
        return _("Ik vind geen schooldag om een periode mee te beginnen."), None
    text = "🎯 " + bold(group_name) + "\n" + _("Er is nog geen nieuwe periode. Wanneer begint hij?")
    buttons = [
        button(day_label(day), NewPeriodStart(group_id=group_id, day=day.toordinal()))
        for day in days
    ]
    return text, InlineKeyboardMarkup(inline_keyboard=in_rows(buttons, 2))


async def new_period(
    query: CallbackQuery,
    callback_data: NewPeriod,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """ "➕ Nieuwe periode daarna": the start days after the current period."""
    today = school_today(settings, clock)
    choice = await period_choice(
        session, teacher_id=person.id, group_id=callback_data.group_id, today=today
    )
    if choice is None:
        await refuse(query)
        return
    await query.answer()
    question, days = await _start_card(session, person, choice.group.id, choice.group.name, today)
    await edit_card(query, question, days)


async def _start_and_calendar(
    session: AsyncSession, person: PersonRef, data: NewPeriodStart | NewPeriodLength
) -> tuple[date, SchoolCalendar] | None:
    """The start day a button names, and the school calendar of its group while the teacher
    teaches that group."""
    try:
        day = date.fromordinal(data.day)
    except (ValueError, OverflowError):
        return None
    calendar = await school_calendar_of_group(session, teacher_id=person.id, group_id=data.group_id)
    return (day, calendar) if calendar is not None else None


async def start_picked(
    query: CallbackQuery,
    callback_data: NewPeriodStart,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """A start day: now the length, each with the school day it would end on."""
    offered = await start_options(
        session,
        teacher_id=person.id,
        group_id=callback_data.group_id,
        today=school_today(settings, clock),
    )
    chosen = await _start_and_calendar(session, person, callback_data)
    if chosen is None or chosen[0] not in offered:
        await refuse(query)
        return
    day, calendar = chosen
    await query.answer()
    rows = []
    for weeks in PERIOD_WEEKS:
        end = period_end(calendar, day, weeks)
        if end is None:
            continue
        label = _("{weeks} weken, t/m {end}").format(weeks=weeks, end=day_label(end))
        rows.append(
            [
                button(
                    label,
                    NewPeriodLength(
                        group_id=callback_data.group_id, day=day.toordinal(), weeks=weeks
                    ),
                )
            ]
        )
    await edit_card(
        query,
        fill(_("De periode begint op {start}. Hoe lang duurt hij?"), start=day_label(day)),
        InlineKeyboardMarkup(inline_keyboard=rows),
    )


async def length_picked(
    query: CallbackQuery,
    callback_data: NewPeriodLength,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """The period is made; its learning lines come next."""
    chosen = await _start_and_calendar(session, person, callback_data)
    end = period_end(chosen[1], chosen[0], callback_data.weeks) if chosen is not None else None
    if chosen is None or end is None:
        await refuse(query)
        return
    day, calendar = chosen
    # The name is what pupils see in /doelen: in the school's language.
    with use_locale(calendar.locale):
        name = _("Periode {start} – {end}").format(
            start=format_date(day, format="d MMM", locale=calendar.locale),
            end=format_date(end, format="d MMM", locale=calendar.locale),
        )
    place = await create_period(
        session,
        teacher_id=person.id,
        group_id=callback_data.group_id,
        start=day,
        weeks=callback_data.weeks,
        name=name,
        today=school_today(settings, clock),
    )
    if place is None:
        await refuse(query)
        return
    await query.answer(_("Periode gemaakt. 👍"))
    text, keyboard = await lines_card(session, place, 0)
    await edit_card(query, text, keyboard)
