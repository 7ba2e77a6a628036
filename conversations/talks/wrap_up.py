"""After the talk: the teacher records the agreements and any new goals."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
)
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import button, edit_card, shorten
from chat_ui.texts import bold, fill
from conversations.card import typed_within
from conversations.goal_picker import GoalPicker
from conversations.talks.common import (
    RECORD_FROM,
    RecordingTalk,
    TalkGoalLine,
    TalkGoalPick,
    TalkGoalsDone,
    TalkGoalSet,
    TalkGoalSets,
    TalkRecord,
    school_zone,
)
from conversations.talks.talk_card import teacher_card
from language.i18n import _
from services.clock import Clock
from storage.accounts import PersonRef
from storage.goals import goals_of_line, pupil_context
from storage.models import TalkKind, TalkStatus
from storage.schooltime import calendar_of
from storage.talks import (
    MAX_AGREEMENTS,
    MAX_NEW_GOALS,
    TalkRefusedError,
    record_agreements,
    teacher_talk,
)

# --- after the talk: agreements and new goals -----------------------------------------------


async def record_start(
    query: CallbackQuery,
    callback_data: TalkRecord,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    assert query.message is not None
    talk = await teacher_talk(session, teacher_id=person.id, talk_id=callback_data.talk_id)
    if talk is None or talk.status is not TalkStatus.PLANNED:
        await query.answer(_("Dat gesprek ken ik niet."), show_alert=True)
        return
    if talk.scheduled_at - RECORD_FROM > clock.now():
        await query.answer(_("Dat kan na het gesprek."), show_alert=True)
        return
    await query.answer()
    await state.set_state(RecordingTalk.agreements)
    await state.set_data(
        {"talk_id": talk.id, "pupil_id": talk.pupil_id, "pupil_name": talk.pupil_name, "goals": []}
    )
    await query.message.answer(
        fill(
            _("Welke afspraken hebben jullie gemaakt? Typ ze samen met {name}."),
            name=talk.pupil_name,
        )
    )


async def agreements_typed(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    agreements = await typed_within(message, MAX_AGREEMENTS)
    if agreements is None:
        return
    await state.update_data(agreements=agreements)
    data = await state.get_data()
    context = await pupil_context(
        session, pupil_id=data["pupil_id"], today=await _today(session, person, clock)
    )
    if context.period_id is None:
        # No period to put goals in: the agreements are saved on their own.
        await message.answer(_("Er is nu geen periode, dus nieuwe doelen kunnen er niet bij."))
        await _finish_record(message, state, session, person, clock)
        return
    await state.set_state(RecordingTalk.goals)
    text, keyboard = await _goal_sets_screen(session, person, data)
    await message.answer(text, reply_markup=keyboard)


async def _today(session: AsyncSession, person: PersonRef, clock: Clock) -> date:
    """Today at the person's school (its timezone, not the server's)."""
    calendar = await calendar_of(session, school_id=person.school_id)
    assert calendar is not None
    return calendar.local_date(clock.now())


def _picked_goals_text(data: dict[str, Any]) -> str:
    lines = [fill(_("Nieuwe doelen voor {name}?"), name=data["pupil_name"])]
    if data.get("goals"):
        lines += [fill("✅ {goal}", goal=goal["text"]) for goal in data["goals"]]
    else:
        lines.append(_("Kies een doelenset, of tik op Geen nieuwe doelen."))
    return "\n".join(lines)


# The pupil's new goals are found the way a pupil finds one in /doelen.
NEW_GOALS = GoalPicker(
    open_set=lambda set_id: TalkGoalSet(set_id=set_id),
    open_line=lambda line_id: TalkGoalLine(line_id=line_id),
    all_sets=TalkGoalSets(),
    above=_picked_goals_text,
)


def _done_row(data: dict[str, Any]) -> list[Any]:
    label = _("💾 Opslaan") if data.get("goals") else _("Geen nieuwe doelen")
    return [button(label, TalkGoalsDone())]


async def _goal_sets_screen(
    session: AsyncSession, person: PersonRef, data: dict[str, Any]
) -> tuple[str, InlineKeyboardMarkup]:
    rows = await NEW_GOALS.sets(session, school_id=person.school_id)
    rows.append(_done_row(data))
    return _picked_goals_text(data), InlineKeyboardMarkup(inline_keyboard=rows)


async def goal_sets(
    query: CallbackQuery, state: FSMContext, session: AsyncSession, person: PersonRef
) -> None:
    await query.answer()
    text, keyboard = await _goal_sets_screen(session, person, await state.get_data())
    await edit_card(query, text, keyboard)


async def _line_screen(
    session: AsyncSession, state: FSMContext, person: PersonRef, clock: Clock, line_id: int
) -> tuple[str, InlineKeyboardMarkup] | None:
    data = await state.get_data()
    context = await pupil_context(
        session, pupil_id=data["pupil_id"], today=await _today(session, person, clock)
    )
    choices = await goals_of_line(session, context=context, line_id=line_id)
    if not choices:
        return None
    await state.update_data(line_id=line_id, line_goals=[c.goal.id for c in choices])
    picked = {goal["id"] for goal in data.get("goals", [])}
    rows = []
    for choice in choices:
        mark = "✅ " if choice.goal.id in picked else ("☑️ " if choice.chosen else "")
        rows.append(
            [
                button(
                    mark + shorten(f"{choice.goal.code} {choice.goal.text}", 50),
                    TalkGoalPick(goal_id=choice.goal.id),
                )
            ]
        )
    rows.append(NEW_GOALS.back_to_set(choices))
    rows.append(_done_row(data))
    text = (
        _picked_goals_text(data)
        + "\n\n"
        + bold(choices[0].goal.line_name)
        + "\n"
        + _("Tik op een doel om het te kiezen. ☑️ = heeft de leerling al.")
    )
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def goal_line(
    query: CallbackQuery,
    callback_data: TalkGoalLine,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    screen = await _line_screen(session, state, person, clock, callback_data.line_id)
    if screen is None:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    await edit_card(query, *screen)


async def goal_picked(
    query: CallbackQuery,
    callback_data: TalkGoalPick,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    """A tap ticks or unticks a goal of the line shown; storage checks the school again."""
    data = await state.get_data()
    if callback_data.goal_id not in data.get("line_goals", []):
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    goals: list[dict[str, Any]] = data.get("goals", [])
    if any(goal["id"] == callback_data.goal_id for goal in goals):
        goals = [goal for goal in goals if goal["id"] != callback_data.goal_id]
    elif len(goals) >= MAX_NEW_GOALS:
        await query.answer(
            _("Hooguit {count} nieuwe doelen per gesprek.").format(count=MAX_NEW_GOALS),
            show_alert=True,
        )
        return
    else:
        context = await pupil_context(
            session, pupil_id=data["pupil_id"], today=await _today(session, person, clock)
        )
        choices = await goals_of_line(session, context=context, line_id=data["line_id"])
        text = next((c.goal.text for c in choices if c.goal.id == callback_data.goal_id), "")
        goals = [*goals, {"id": callback_data.goal_id, "text": text}]
    await query.answer()
    await state.update_data(goals=goals)
    screen = await _line_screen(session, state, person, clock, data["line_id"])
    if screen is not None:
        await edit_card(query, *screen)


async def goals_done(
    query: CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    await query.answer()
    assert isinstance(query.message, Message)
    await edit_card(query, _picked_goals_text(await state.get_data()))
    await _finish_record(query.message, state, session, person, clock)


async def _finish_record(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    data = await state.get_data()
    await state.clear()
    try:
        recorded = await record_agreements(
            session,
            teacher_id=person.id,
            talk_id=data["talk_id"],
            agreements=data["agreements"],
            goal_ids=[goal["id"] for goal in data.get("goals", [])],
            today=await _today(session, person, clock),
            now=clock.now(),
        )
    except TalkRefusedError:
        await message.answer(_("Dit gesprek kun je niet meer afronden."))
        return
    talk = recorded.talk
    zone = await school_zone(session, talk.school_id)
    text, keyboard = teacher_card(talk, zone, clock.now(), list(recorded.new_goals))
    extra = _("Opgeslagen in het portfolio van {name}.")
    if talk.kind is TalkKind.TRIPARTITE:
        extra += " " + _("De ouders krijgen de afspraken.")
    await message.answer(text + "\n\n" + fill(extra, name=talk.pupil_name), reply_markup=keyboard)
