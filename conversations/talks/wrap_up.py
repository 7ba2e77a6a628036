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
from conversations.talks.common import (
    RECORD_FROM,
    RecordingTalk,
    TalkGoalLine,
    TalkGoalPick,
    TalkGoalsDone,
    TalkGoalSet,
    TalkGoalSets,
    TalkRecord,
    now_of,
    school_zone,
)
from conversations.talks.planning import teacher_card
from language.i18n import _
from services.clock import Clock
from storage.accounts import Viewer
from storage.goals import goal_sets_of, goals_of_line, lines_of, pupil_context
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
    viewer: Viewer,
    clock: Clock | None = None,
) -> None:
    assert viewer.person is not None and query.message is not None
    talk = await teacher_talk(session, teacher_id=viewer.person.id, talk_id=callback_data.talk_id)
    if talk is None or talk.status is not TalkStatus.PLANNED:
        await query.answer(_("Dat gesprek ken ik niet."), show_alert=True)
        return
    if talk.scheduled_at - RECORD_FROM > now_of(clock):
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
    viewer: Viewer,
    clock: Clock | None = None,
) -> None:
    assert message.text is not None
    if len(message.text) > MAX_AGREEMENTS:
        await message.answer(
            _("Dat is wat lang. Kun je het korter zeggen? (hooguit {limit} tekens)").format(
                limit=MAX_AGREEMENTS
            )
        )
        return
    await state.update_data(agreements=message.text.strip())
    data = await state.get_data()
    context = await pupil_context(
        session, pupil_id=data["pupil_id"], today=await _today(session, viewer, clock)
    )
    if context.period_id is None:
        # No period to put goals in: the agreements are saved on their own.
        await message.answer(_("Er is nu geen periode, dus nieuwe doelen kunnen er niet bij."))
        await _finish_record(message, state, session, viewer, clock)
        return
    await state.set_state(RecordingTalk.goals)
    text, keyboard = await _goal_sets_screen(session, viewer, data)
    await message.answer(text, reply_markup=keyboard)


async def _today(session: AsyncSession, viewer: Viewer, clock: Clock | None) -> date:
    """Today at the viewer's school (its timezone, not the server's)."""
    assert viewer.person is not None
    calendar = await calendar_of(session, school_id=viewer.person.school_id)
    assert calendar is not None
    return calendar.local_date(now_of(clock))


def _picked_goals_text(data: dict[str, Any]) -> str:
    lines = [fill(_("Nieuwe doelen voor {name}?"), name=data["pupil_name"])]
    if data.get("goals"):
        lines += [fill("✅ {goal}", goal=goal["text"]) for goal in data["goals"]]
    else:
        lines.append(_("Kies een doelenset, of tik op Geen nieuwe doelen."))
    return "\n".join(lines)


def _done_row(data: dict[str, Any]) -> list[Any]:
    label = _("💾 Opslaan") if data.get("goals") else _("Geen nieuwe doelen")
    return [button(label, TalkGoalsDone())]


async def _goal_sets_screen(
    session: AsyncSession, viewer: Viewer, data: dict[str, Any]
) -> tuple[str, InlineKeyboardMarkup]:
    assert viewer.person is not None
    sets = await goal_sets_of(session, school_id=viewer.person.school_id)
    rows = [[button(shorten(goal_set.name), TalkGoalSet(set_id=goal_set.id))] for goal_set in sets]
    rows.append(_done_row(data))
    return _picked_goals_text(data), InlineKeyboardMarkup(inline_keyboard=rows)


async def goal_sets(
    query: CallbackQuery, state: FSMContext, session: AsyncSession, viewer: Viewer
) -> None:
    await query.answer()
    text, keyboard = await _goal_sets_screen(session, viewer, await state.get_data())
    await edit_card(query, text, keyboard)


async def goal_set(
    query: CallbackQuery,
    callback_data: TalkGoalSet,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
) -> None:
    assert viewer.person is not None
    lines = await lines_of(
        session, school_id=viewer.person.school_id, goal_set_id=callback_data.set_id
    )
    if not lines:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    rows = [[button(shorten(line.name), TalkGoalLine(line_id=line.id))] for line in lines]
    rows.append([button(_("⬅️ Terug"), TalkGoalSets())])
    data = await state.get_data()
    await edit_card(
        query,
        _picked_goals_text(data) + "\n\n" + _("Kies een leerlijn:"),
        InlineKeyboardMarkup(inline_keyboard=rows),
    )


async def _line_screen(
    session: AsyncSession, state: FSMContext, viewer: Viewer, clock: Clock | None, line_id: int
) -> tuple[str, InlineKeyboardMarkup] | None:
    data = await state.get_data()
    context = await pupil_context(
        session, pupil_id=data["pupil_id"], today=await _today(session, viewer, clock)
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
    rows.append([button(_("⬅️ Terug"), TalkGoalSet(set_id=choices[0].goal.goal_set_id))])
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
    viewer: Viewer,
    clock: Clock | None = None,
) -> None:
    screen = await _line_screen(session, state, viewer, clock, callback_data.line_id)
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
    viewer: Viewer,
    clock: Clock | None = None,
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
            session, pupil_id=data["pupil_id"], today=await _today(session, viewer, clock)
        )
        choices = await goals_of_line(session, context=context, line_id=data["line_id"])
        text = next((c.goal.text for c in choices if c.goal.id == callback_data.goal_id), "")
        goals = [*goals, {"id": callback_data.goal_id, "text": text}]
    await query.answer()
    await state.update_data(goals=goals)
    screen = await _line_screen(session, state, viewer, clock, data["line_id"])
    if screen is not None:
        await edit_card(query, *screen)


async def goals_done(
    query: CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None = None,
) -> None:
    await query.answer()
    assert isinstance(query.message, Message)
    await edit_card(query, _picked_goals_text(await state.get_data()))
    await _finish_record(query.message, state, session, viewer, clock)


async def _finish_record(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None,
) -> None:
    assert viewer.person is not None
    data = await state.get_data()
    await state.clear()
    try:
        recorded = await record_agreements(
            session,
            teacher_id=viewer.person.id,
            talk_id=data["talk_id"],
            agreements=data["agreements"],
            goal_ids=[goal["id"] for goal in data.get("goals", [])],
            today=await _today(session, viewer, clock),
            now=now_of(clock),
        )
    except TalkRefusedError:
        await message.answer(_("Dit gesprek kun je niet meer afronden."))
        return
    talk = recorded.talk
    zone = await school_zone(session, talk.school_id)
    text, keyboard = teacher_card(talk, zone, now_of(clock), list(recorded.new_goals))
    extra = _("Opgeslagen in het portfolio van {name}.")
    if talk.kind is TalkKind.TRIPARTITE:
        extra += " " + _("De ouders krijgen de afspraken.")
    await message.answer(text + "\n\n" + fill(extra, name=talk.pupil_name), reply_markup=keyboard)
