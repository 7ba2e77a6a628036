"""The activities of a prepared goal: what pupils pick from in their week plan."""

from __future__ import annotations

from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import button, edit_card, main_menu, shorten
from chat_ui.texts import fill
from config.settings import Settings
from conversations.card import checked, refuse, too_long
from conversations.goals import TIER_STARS
from conversations.period_goals.common import (
    AddActivity,
    PrepActivities,
    PreparingPeriod,
    PrepLine,
    RemoveActivity,
    place_of,
    stop_typing,
)
from language.i18n import _, ngettext
from services.clock import Clock, school_today
from storage.accounts import PersonRef, Viewer
from storage.period_goals import (
    MAX_ACTIVITIES_PER_GOAL,
    MAX_ACTIVITY_TEXT,
    ActivityItem,
    ActivityOutcome,
    PreparedTier,
    Workspace,
    activities_of,
    add_activity,
    prepared_goal,
    remove_activity,
    workspace,
)


def _activities_card(
    place: Workspace,
    prepared: PreparedTier,
    activities: list[ActivityItem],
    *,
    typing: bool,
    note: str = "",
) -> tuple[str, InlineKeyboardMarkup]:
    group_id, period_id = place.group.id, place.period.id
    text = [
        "📝 "
        + fill(
            _("Activiteiten bij {stars} {goal}"),
            stars=TIER_STARS[prepared.tier],
            goal=prepared.goal.text,
        ),
        "",
    ]
    for number, activity in enumerate(activities, start=1):
        line = fill("{number}. {text}", number=number, text=activity.text)
        if activity.in_plans:
            line += " " + ngettext(
                "(in {count} weekplan)", "(in {count} weekplannen)", activity.in_plans
            ).format(count=activity.in_plans)
        text.append(line)
    if not activities:
        text.append(_("Nog geen activiteiten."))
    text += ["", _("Leerlingen kiezen hieruit in hun weekplan.")]
    if note:
        text += ["", note]
    if typing:
        text += [
            "",
            fill(
                _("Typ de naam van een activiteit (hooguit {limit} tekens), of tik op Klaar."),
                limit=MAX_ACTIVITY_TEXT,
            ),
        ]
    rows = [
        [
            button(
                "🗑 " + shorten(activity.text, 40),
                RemoveActivity(group_id=group_id, period_id=period_id, activity_id=activity.id),
            )
        ]
        for activity in activities
    ]
    if typing:
        rows.append(
            [
                button(
                    _("✅ Klaar"),
                    PrepActivities(
                        group_id=group_id, period_id=period_id, goal_id=prepared.goal.id
                    ),
                )
            ]
        )
    else:
        rows.append(
            [
                button(
                    _("➕ Activiteit toevoegen"),
                    AddActivity(group_id=group_id, period_id=period_id, goal_id=prepared.goal.id),
                )
            ]
        )
    rows.append(
        [
            button(
                _("⬅️ Terug"),
                PrepLine(group_id=group_id, period_id=period_id, line_id=prepared.goal.line_id),
            )
        ]
    )
    return "\n".join(text), InlineKeyboardMarkup(inline_keyboard=rows)


async def _activities(
    session: AsyncSession, place: Workspace, goal_id: int
) -> tuple[PreparedTier, list[ActivityItem]] | None:
    prepared = await prepared_goal(session, place=place, goal_id=goal_id)
    activities = await activities_of(session, place=place, goal_id=goal_id)
    if prepared is None or activities is None:
        return None
    return prepared, activities


async def activities_shown(
    query: CallbackQuery,
    callback_data: PrepActivities | AddActivity,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """The activities of a prepared goal ("✅ Klaar" after typing comes here too); after
    "➕ Activiteit toevoegen" the names are typed next, one message each."""
    place = await place_of(query, session, person, settings, clock, callback_data)
    if place is None:
        return
    found = await checked(query, await _activities(session, place, callback_data.goal_id))
    if found is None:
        return
    typing = isinstance(callback_data, AddActivity)
    if typing:
        await state.set_state(PreparingPeriod.activity_name)
        await state.set_data(
            {
                "group_id": place.group.id,
                "period_id": place.period.id,
                "goal_id": callback_data.goal_id,
            }
        )
    else:
        await stop_typing(state)
    text, keyboard = _activities_card(place, *found, typing=typing)
    await edit_card(query, text, keyboard)


async def activity_typed(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """A typed activity name: added (or kindly refused); the next one may follow."""
    assert message.text is not None
    data = await state.get_data()
    place = await workspace(
        session,
        teacher_id=person.id,
        group_id=int(data.get("group_id") or 0),
        period_id=int(data.get("period_id") or 0),
        today=school_today(settings, clock),
    )
    goal_id = int(data.get("goal_id") or 0)
    result = (
        await add_activity(
            session, place=place, teacher_id=person.id, goal_id=goal_id, text=message.text
        )
        if place is not None
        else None
    )
    if place is None or result is None:
        # The goal left the offer meanwhile (a co-teacher), or the teacher left the group.
        await state.clear()
        await message.answer(
            _("Dit doel staat niet meer klaar voor deze periode. Begin opnieuw met /voorbereiden."),
            reply_markup=main_menu(viewer),
        )
        return
    outcome, item = result
    if outcome is ActivityOutcome.TOO_LONG:
        await too_long(message, MAX_ACTIVITY_TEXT)
        return
    if outcome is ActivityOutcome.EMPTY:
        await re_ask(message)
        return
    typing = True
    if outcome is ActivityOutcome.ADDED:
        assert item is not None
        note = "➕ " + fill(_("Toegevoegd: {text}"), text=item.text)
    elif outcome is ActivityOutcome.DUPLICATE:
        assert item is not None
        note = fill(_("„{text}” staat er al bij dit doel. 🙂"), text=item.text)
    else:
        note = _("Dit doel heeft al {limit} activiteiten. Haal er eerst een weg.").format(
            limit=MAX_ACTIVITIES_PER_GOAL
        )
        typing = False
        await state.clear()
    found = await _activities(session, place, goal_id)
    assert found is not None
    text, keyboard = _activities_card(place, *found, typing=typing, note=note)
    await message.answer(text, reply_markup=keyboard)


async def remove_tapped(
    query: CallbackQuery,
    callback_data: RemoveActivity,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """🗑 an activity: off the list; a pupil who planned it keeps it in their week plan."""
    place = await place_of(query, session, person, settings, clock, callback_data)
    if place is None:
        return
    removed = await remove_activity(session, place=place, activity_id=callback_data.activity_id)
    if removed is None:
        await refuse(query)
        return
    await query.answer()
    note = "🗑 " + fill(_("Weggehaald: {text}"), text=removed.text)
    if removed.in_plans:
        note += "\n" + ngettext(
            "Het staat in {count} weekplan; daar blijft het staan.",
            "Het staat in {count} weekplannen; daar blijft het staan.",
            removed.in_plans,
        ).format(count=removed.in_plans)
    found = await _activities(session, place, removed.goal_id)
    assert found is not None
    typing = await state.get_state() == PreparingPeriod.activity_name.state
    text, keyboard = _activities_card(place, *found, typing=typing, note=note)
    await edit_card(query, text, keyboard)


async def re_ask(message: Message) -> None:
    """Anything but a name while a name is asked for."""
    await message.answer(
        _("Typ de naam van de activiteit, of tik op Klaar. Stoppen kan met /annuleer.")
    )
