"""The teacher's talks: the list, a talk's card with what can be done with it, and cancelling
a talk (after a "zeker weten?")."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
)
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import button, edit_card
from chat_ui.texts import bold, fill
from conversations.talks.common import (
    RECORD_FROM,
    TalkCancel,
    TalkList,
    TalkMove,
    TalkNew,
    TalkOpen,
    TalkRecord,
    school_zone,
    short_label,
    talk_lines,
)
from language.i18n import _
from services.clock import Clock
from storage.accounts import PersonRef
from storage.models import TalkStatus
from storage.talks import (
    TalkView,
    cancel_talk,
    new_goals_of,
    talks_of_teacher,
    teacher_talk,
)


async def teacher_list(
    session: AsyncSession, person: PersonRef, clock: Clock
) -> tuple[str, InlineKeyboardMarkup]:
    """ "Je gesprekken": planned talks first, then recent ones; a button each and "Nieuw"."""
    talks = await talks_of_teacher(session, teacher_id=person.id, now=clock.now())
    zone = await school_zone(session, person.school_id)
    rows = [
        [button(short_label(talk, zone, talk.pupil_name), TalkOpen(talk_id=talk.id))]
        for talk in talks
    ]
    rows.append([button(_("➕ Nieuw gesprek"), TalkNew())])
    if talks:
        text = _("Je gesprekken. Tik op een gesprek om het te openen.")
    else:
        text = _("Je hebt nog geen gesprekken gepland.")
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


def teacher_card(
    talk: TalkView, zone: ZoneInfo, now: datetime, new_goals: list[str]
) -> tuple[str, InlineKeyboardMarkup]:
    lines = talk_lines(talk, zone, for_teacher=True)
    rows = []
    if talk.status is TalkStatus.PLANNED:
        lines.append(
            fill(_("✅ {name} heeft zich voorbereid."), name=talk.pupil_name)
            if talk.prepared
            else fill(_("⏳ {name} heeft zich nog niet voorbereid."), name=talk.pupil_name)
        )
        if talk.scheduled_at - RECORD_FROM <= now:
            rows.append([button(_("📝 Afspraken vastleggen"), TalkRecord(talk_id=talk.id))])
        rows.append(
            [
                button(_("🕒 Verzetten"), TalkMove(talk_id=talk.id)),
                button(_("✖️ Afzeggen"), TalkCancel(talk_id=talk.id, sure=False)),
            ]
        )
    if talk.status is TalkStatus.HELD:
        lines += ["", bold(_("Afspraken")), fill("{text}", text=talk.agreements or "")]
        if new_goals:
            lines += [bold(_("Nieuwe doelen"))] + [fill("• {goal}", goal=g) for g in new_goals]
    rows.append([button(_("⬅️ Alle gesprekken"), TalkList())])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def show_list(
    query: CallbackQuery, session: AsyncSession, person: PersonRef, clock: Clock
) -> None:
    await query.answer()
    text, keyboard = await teacher_list(session, person, clock)
    await edit_card(query, text, keyboard)


async def open_talk(
    query: CallbackQuery,
    callback_data: TalkOpen,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    """One of the teacher's own talks; anyone else's id is refused."""
    talk = await teacher_talk(session, teacher_id=person.id, talk_id=callback_data.talk_id)
    if talk is None:
        await query.answer(_("Dat gesprek ken ik niet."), show_alert=True)
        return
    await query.answer()
    zone = await school_zone(session, talk.school_id)
    goals = await new_goals_of(session, talk_id=talk.id)
    text, keyboard = teacher_card(talk, zone, clock.now(), goals)
    if isinstance(query.message, Message):
        await query.message.answer(text, reply_markup=keyboard)


async def cancel_tapped(
    query: CallbackQuery,
    callback_data: TalkCancel,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    """First tap asks "zeker weten?"; the second cancels and tells the invitees."""
    talk = await teacher_talk(session, teacher_id=person.id, talk_id=callback_data.talk_id)
    if talk is None or talk.status is not TalkStatus.PLANNED:
        await query.answer(_("Dat gesprek ken ik niet."), show_alert=True)
        return
    zone = await school_zone(session, talk.school_id)
    if not callback_data.sure:
        await query.answer()
        await edit_card(
            query,
            "\n".join(
                [*talk_lines(talk, zone, for_teacher=True), "", _("Wil je dit gesprek afzeggen?")]
            ),
            InlineKeyboardMarkup(
                inline_keyboard=[
                    [
                        button(_("Ja, afzeggen"), TalkCancel(talk_id=talk.id, sure=True)),
                        button(_("Nee"), TalkOpen(talk_id=talk.id)),
                    ]
                ]
            ),
        )
        return
    talk = await cancel_talk(session, teacher_id=person.id, talk_id=talk.id, now=clock.now())
    await query.answer()
    await edit_card(
        query,
        "\n".join([*talk_lines(talk, zone, for_teacher=True), "", _("Iedereen krijgt bericht.")]),
    )
