"""Talks (gesprekken): a teacher plans, moves, cancels and wraps up a talk; the pupil prepares.

```mermaid
stateDiagram-v2
    [*] --> pupil: /gesprek, "Nieuw gesprek"
    [*] --> kind: /gesprek Sam (one pupil fits the name)
    pupil --> pupil: ⬅️ ➡️ pages, part of a name typed
    pupil --> kind: a pupil
    kind --> day: leergesprek / coachgesprek / driehoeksgesprek
    day --> time: a school day tapped, or a day typed ("morgen", "3-12")
    day --> place: a day and a time typed ("di 3 dec 14:00")
    time --> place: a time tapped or typed
    place --> [*]: a place typed, or "Geen plek nodig": planned, everyone invited
    [*] --> day: "Verzetten" on a talk
    time --> [*]: (moving) moved, everyone told

    [*] --> agreements: "Afspraken vastleggen" (after the talk)
    agreements --> goals: the agreements typed
    goals --> goals: goal set -> line -> goals (✅ toggles)
    goals --> [*]: "Opslaan" / "Geen nieuwe doelen": held, parents told

    [*] --> proud: "Ja" under the pupil's preparation notice
    proud --> went_well --> hard --> evidence --> next
    hard --> next: no work in the portfolio yet
    next --> [*]: typed, or "Weet ik nog niet": saved for the teacher
```

Nothing is written until a dialogue's last step; the answers so far live in the FSM data (in
the database), so a restart resumes at the same step. Every id a button brings back is
checked again by storage (`storage/talks.py`). Messages to anyone other than the person in
this chat are reminder rows; the composers at the bottom turn a due row into messages, and
check first that the talk is still as announced (a moved or cancelled talk sends nothing).
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.methods import SendMediaGroup, SendMessage, SendPhoto, TelegramMethod
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
)
from babel.dates import format_skeleton, format_time
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import _, current_locale
from bot.keyboards import button, edit_card, in_rows, shorten
from bot.settings import Settings, load_settings
from bot.texts import bold, fill
from conversations.calendar import Clock
from conversations.observation import pupil_keyboard
from handlers.filters import HasRole
from storage.accounts import Recipient, Viewer
from storage.goals import goal_sets_of, goals_of_line, lines_of, pupil_context
from storage.media import relative_path_for
from storage.models import Role, TalkKind, TalkStatus
from storage.observations import PupilRef, pupils_matching, pupils_named, pupils_of_teacher
from storage.overview import active_group_id
from storage.parents import preferences_of
from storage.reminders import DueReminder
from storage.schooltime import SchoolCalendar, calendar_of
from storage.talks import (
    DAY_BEFORE,
    KIND_AGREEMENTS,
    KIND_BRIEF,
    KIND_CANCELLED,
    KIND_INVITATION,
    KIND_PREPARATION,
    KIND_REMINDER,
    MAX_AGREEMENTS,
    MAX_ANSWER,
    MAX_EVIDENCE,
    MAX_NEW_GOALS,
    MAX_PLACE,
    PeriodSummary,
    TalkRefusedError,
    TalkView,
    Trend,
    cancel_talk,
    chosen_photos,
    evidence_choices,
    move_talk,
    new_goals_of,
    participants_of,
    period_summary,
    plan_talk,
    record_agreements,
    save_preparation,
    talk_by_id,
    talk_to_prepare,
    talks_of_parent,
    talks_of_pupil,
    talks_of_teacher,
    teacher_talk,
)

log = logging.getLogger(__name__)

# Typed text that is not a command: "/annuleer" in the middle of a step is a command.
TYPED = F.text & ~F.text.startswith("/")
SCHOOL_DAY_BUTTONS = 5
TIME_BUTTONS = ("0830", "0930", "1030", "1130", "1300", "1400", "1500", "1600")
# A talk can be wrapped up from this long before its start (a teacher finishing early).
RECORD_FROM = timedelta(minutes=15)
EFFORT_ICON = "💪"
FACES = {4: "😀", 3: "🙂", 2: "😐", 1: "😟"}
MAX_LINE = 300
MAX_BRIEF = 3900


class PlanningTalk(StatesGroup):
    pupil = State()
    kind = State()
    day = State()
    time = State()
    place = State()


class RecordingTalk(StatesGroup):
    agreements = State()
    goals = State()


class PreparingTalk(StatesGroup):
    proud = State()
    went_well = State()
    hard = State()
    evidence = State()
    next = State()


class TalkNew(CallbackData, prefix="tkn"):
    pass


class TalkList(CallbackData, prefix="tkl"):
    pass


class TalkOpen(CallbackData, prefix="tko"):
    talk_id: int


class TalkPupil(CallbackData, prefix="tkp"):
    pupil_id: int


class TalkPupilPage(CallbackData, prefix="tkpg"):
    page: int


class TalkKindPick(CallbackData, prefix="tkk"):
    kind: str


class TalkDay(CallbackData, prefix="tkd"):
    day: str  # ISO date; ":" may not appear in callback data


class TalkTime(CallbackData, prefix="tkt"):
    hhmm: str  # "1400"


class TalkNoPlace(CallbackData, prefix="tknp"):
    pass


class TalkMove(CallbackData, prefix="tkm"):
    talk_id: int


class TalkCancel(CallbackData, prefix="tkc"):
    talk_id: int
    sure: bool


class TalkRecord(CallbackData, prefix="tkr"):
    talk_id: int


class TalkGoalSets(CallbackData, prefix="tkga"):
    pass


class TalkGoalSet(CallbackData, prefix="tkgs"):
    set_id: int


class TalkGoalLine(CallbackData, prefix="tkgl"):
    line_id: int


class TalkGoalPick(CallbackData, prefix="tkgp"):
    goal_id: int


class TalkGoalsDone(CallbackData, prefix="tkgd"):
    pass


class TalkPrepare(CallbackData, prefix="tkpr"):
    """The buttons under the pupil's preparation notice."""

    talk_id: int
    start: bool


class TalkEvidencePick(CallbackData, prefix="tkep"):
    evidence_id: int


class TalkEvidenceDone(CallbackData, prefix="tked"):
    pass


class TalkSkip(CallbackData, prefix="tks"):
    step: str


# --- time ----------------------------------------------------------------------------------


def now_of(clock: Clock | None) -> datetime:
    return clock.now() if clock is not None else datetime.now(UTC)


def when_text(moment: datetime, zone: ZoneInfo) -> str:
    """ "do 3 dec om 14:00" / "Thu, Dec 3 at 2:00 PM": the user's locale, the school's time."""
    locale = current_locale()
    return fill(
        # parents
        _("{day} om {time}"),
        day=format_skeleton("MMMEd", moment, tzinfo=zone, locale=locale),
        time=format_time(moment, "short", tzinfo=zone, locale=locale),
    )


def day_label(day: date) -> str:
    return format_skeleton("MMMEd", day, locale=current_locale())


def time_label(at: time) -> str:
    return format_time(at, "short", locale=current_locale())


class MomentError(ValueError):
    """Typed text that is not a day or time the parser understands."""


@dataclass(frozen=True)
class TypedMoment:
    day: date | None
    at: time | None


MONTHS = {
    "jan": 1,
    "feb": 2,
    "mrt": 3,
    "maa": 3,
    "mar": 3,
    "apr": 4,
    "mei": 5,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "okt": 10,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
WEEKDAY_WORDS = {
    "ma": 1,
    "maandag": 1,
    "mon": 1,
    "monday": 1,
    "di": 2,
    "dinsdag": 2,
    "tue": 2,
    "tues": 2,
    "tuesday": 2,
    "wo": 3,
    "woensdag": 3,
    "wed": 3,
    "wednesday": 3,
    "do": 4,
    "donderdag": 4,
    "thu": 4,
    "thur": 4,
    "thurs": 4,
    "thursday": 4,
    "vr": 5,
    "vrijdag": 5,
    "fri": 5,
    "friday": 5,
    "za": 6,
    "zaterdag": 6,
    "sat": 6,
    "saturday": 6,
    "zo": 7,
    "zondag": 7,
    "sun": 7,
    "sunday": 7,
}
RELATIVE_DAYS = {
    "vandaag": 0,
    "today": 0,
    "morgen": 1,
    "tomorrow": 1,
    "overmorgen": 2,
}
# Words that may stand around a day and a time without meaning anything else.
FILLERS = {"om", "at", "op", "on", "de", "the", "uur", "u", "h", "volgende", "next", "komende"}
_TIME = re.compile(r"\b(\d{1,2})[:.h](\d{2})\b|\b(\d{1,2})\s*(?:uur|u|h)\b")
_NUMERIC_DATE = re.compile(r"\b(\d{1,2})[-/](\d{1,2})(?:[-/](\d{2}|\d{4}))?\b")
_NAMED_DATE = re.compile(r"\b(\d{1,2})\s*([a-z]{3,})\.?(?:\s+(\d{4}))?\b")


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _month(word: str) -> int | None:
    return MONTHS.get(word[:3]) if len(word) >= 3 else None


def _dated(day: int, month: int, year: int | None, today: date) -> date:
    try:
        if year is not None:
            return date(year if year > 99 else 2000 + year, month, day)
        found = date(today.year, month, day)
    except ValueError as error:
        raise MomentError(str(error)) from None
    # "3 jan" typed in December means next year's.
    return found if found >= today else found.replace(year=today.year + 1)


def parse_moment(text: str, *, today: date) -> TypedMoment:
    """ "di 3 dec 14:00", "3-12 14:00", "morgen 10:15", "donderdag", "14.30", "9 uur"."""
    rest = " " + _plain(text).replace(",", " ") + " "
    at: time | None = None
    match = _TIME.search(rest)
    if match is not None:
        hours = int(match.group(1) or match.group(3))
        minutes = int(match.group(2) or 0)
        if not (0 <= hours <= 23 and 0 <= minutes <= 59):
            raise MomentError(text)
        at = time(hours, minutes)
        rest = rest[: match.start()] + " " + rest[match.end() :]
    day: date | None = None
    numeric = _NUMERIC_DATE.search(rest)
    named = _NAMED_DATE.search(rest)
    if numeric is not None:
        year = int(numeric.group(3)) if numeric.group(3) else None
        day = _dated(int(numeric.group(1)), int(numeric.group(2)), year, today)
        rest = rest[: numeric.start()] + " " + rest[numeric.end() :]
    elif named is not None and _month(named.group(2)) is not None:
        month = _month(named.group(2))
        assert month is not None
        year = int(named.group(3)) if named.group(3) else None
        day = _dated(int(named.group(1)), month, year, today)
        rest = rest[: named.start()] + " " + rest[named.end() :]
    weekday: int | None = None
    for word in rest.split():
        word = word.strip(".")
        if word in RELATIVE_DAYS and day is None:
            day = today + timedelta(days=RELATIVE_DAYS[word])
        elif word in WEEKDAY_WORDS:
            weekday = WEEKDAY_WORDS[word]
        elif word not in FILLERS:
            raise MomentError(text)
    if day is None and weekday is not None:
        # The next one after today ("vandaag" is today): "do" typed on a Thursday means next week.
        day = today + timedelta(days=(weekday - today.isoweekday() - 1) % 7 + 1)
    if day is None and at is None:
        raise MomentError(text)
    return TypedMoment(day, at)


# --- labels --------------------------------------------------------------------------------


def kind_label(kind: TalkKind) -> str:
    return {
        # parents
        TalkKind.LEARNING: _("leergesprek"),
        # parents
        TalkKind.COACH: _("coachgesprek"),
        # parents
        TalkKind.TRIPARTITE: _("driehoeksgesprek"),
    }[kind]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


async def _zone(session: AsyncSession, school_id: int) -> ZoneInfo:
    calendar = await calendar_of(session, school_id=school_id)
    return calendar.timezone if calendar is not None else ZoneInfo("Europe/Amsterdam")


def _talk_lines(talk: TalkView, zone: ZoneInfo, *, for_teacher: bool) -> list[str]:
    other = talk.pupil_name if for_teacher else (talk.organiser_name or "")
    lines = [
        # parents
        "🗣 " + fill(_("{kind} met {name}"), kind=_capital(kind_label(talk.kind)), name=other),
        "📅 " + when_text(talk.scheduled_at, zone),
    ]
    if talk.place:
        lines.append("📍 " + fill("{place}", place=talk.place))
    if talk.status is TalkStatus.CANCELLED:
        # parents
        lines.append(_("✖️ Afgezegd"))
    return lines


def _short_label(talk: TalkView, zone: ZoneInfo, name: str) -> str:
    mark = {TalkStatus.PLANNED: "🗓", TalkStatus.HELD: "✅", TalkStatus.CANCELLED: "✖️"}
    local = talk.scheduled_at.astimezone(zone)
    return shorten(
        f"{mark[talk.status]} {name} · {day_label(local.date())} {time_label(local.time())}", 60
    )


# --- the teacher: list and card --------------------------------------------------------------


async def teacher_list(
    session: AsyncSession, viewer: Viewer, clock: Clock | None
) -> tuple[str, InlineKeyboardMarkup]:
    """ "Je gesprekken": planned talks first, then recent ones; a button each and "Nieuw"."""
    assert viewer.person is not None
    talks = await talks_of_teacher(session, teacher_id=viewer.person.id, now=now_of(clock))
    zone = await _zone(session, viewer.person.school_id)
    rows = [
        [button(_short_label(talk, zone, talk.pupil_name), TalkOpen(talk_id=talk.id))]
        for talk in talks
    ]
    rows.append([button(_("➕ Nieuw gesprek"), TalkNew())])
    if talks:
        text = _("Je gesprekken. Tik op een gesprek om het te openen.")
    else:
        text = _("Je hebt nog geen gesprekken gepland.")
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


def _teacher_card(
    talk: TalkView, zone: ZoneInfo, now: datetime, new_goals: list[str]
) -> tuple[str, InlineKeyboardMarkup]:
    lines = _talk_lines(talk, zone, for_teacher=True)
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
    query: CallbackQuery, session: AsyncSession, viewer: Viewer, clock: Clock | None = None
) -> None:
    await query.answer()
    text, keyboard = await teacher_list(session, viewer, clock)
    await edit_card(query, text, keyboard)


async def open_talk(
    query: CallbackQuery,
    callback_data: TalkOpen,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None = None,
) -> None:
    """One of the teacher's own talks; anyone else's id is refused."""
    assert viewer.person is not None
    talk = await teacher_talk(session, teacher_id=viewer.person.id, talk_id=callback_data.talk_id)
    if talk is None:
        await query.answer(_("Dat gesprek ken ik niet."), show_alert=True)
        return
    await query.answer()
    zone = await _zone(session, talk.school_id)
    goals = await new_goals_of(session, talk_id=talk.id)
    text, keyboard = _teacher_card(talk, zone, now_of(clock), goals)
    if isinstance(query.message, Message):
        await query.message.answer(text, reply_markup=keyboard)


# --- planning --------------------------------------------------------------------------------


def _pupils_data(pupils: list[PupilRef]) -> list[dict[str, Any]]:
    return [{"id": pupil.id, "name": pupil.name} for pupil in pupils]


def _school_days(calendar: SchoolCalendar, now: datetime) -> list[date]:
    local = now.astimezone(calendar.timezone)
    first = local.date() if local.time() < time(16, 0) else local.date() + timedelta(days=1)
    return calendar.school_days_between(first, first + timedelta(days=21))[:SCHOOL_DAY_BUTTONS]


async def _ask(
    bot: Bot, chat_id: int, state: FSMContext, session: AsyncSession, step: str, now: datetime
) -> None:
    """Asks a planning step as a new message (the card of the previous step stays as it is)."""
    data = await state.get_data()
    calendar = await calendar_of(session, school_id=data["school_id"])
    assert calendar is not None
    if step == "pupil":
        await state.set_state(PlanningTalk.pupil)
        shown = data["pupils"]
        if data.get("filter_ids"):
            shown = [pupil for pupil in shown if pupil["id"] in data["filter_ids"]]
        text = _("Met wie is het gesprek? Tik op een leerling, of typ een deel van de naam.")
        keyboard = pupil_keyboard(
            shown,
            page=data.get("page", 0),
            pick=lambda pupil_id: TalkPupil(pupil_id=pupil_id),
            turn=lambda page: TalkPupilPage(page=page),
            filtered=bool(data.get("filter_ids")),
        )
    elif step == "kind":
        await state.set_state(PlanningTalk.kind)
        text = fill(_("Wat voor gesprek met {name}?"), name=data["pupil_name"])
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[
                [button(_capital(kind_label(kind)), TalkKindPick(kind=kind.value))]
                for kind in TalkKind
            ]
        )
    elif step == "day":
        await state.set_state(PlanningTalk.day)
        text = (
            _("Op welke dag? Tik een schooldag, of typ dag en tijd.")
            + "\n"
            + _("Bijvoorbeeld: di 3 dec 14:00, 3-12 14:00 of morgen 10:15")
        )
        days = _school_days(calendar, now)
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=in_rows(
                [button(day_label(day), TalkDay(day=day.isoformat())) for day in days], 2
            )
        )
    elif step == "time":
        await state.set_state(PlanningTalk.time)
        day = date.fromisoformat(data["day"])
        text = fill(
            _("Hoe laat op {day}? Tik een tijd, of typ hem (bijvoorbeeld 14:15)."),
            day=day_label(day),
        )
        times = [
            hhmm
            for hhmm in TIME_BUTTONS
            if calendar.at(day, time(int(hhmm[:2]), int(hhmm[2:]))) > now
        ]
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=in_rows(
                [button(time_label(time(int(h[:2]), int(h[2:]))), TalkTime(hhmm=h)) for h in times],
                4,
            )
        )
    else:
        await state.set_state(PlanningTalk.place)
        text = _("Waar is het gesprek? Typ de plek, bijvoorbeeld: lokaal 12.")
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[[button(_("Geen plek nodig"), TalkNoPlace())]]
        )
    await bot.send_message(chat_id, text, reply_markup=keyboard)


async def begin_planning(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None,
    name: str = "",
) -> None:
    """A new talk: the pupil first (skipped when a typed name fits exactly one pupil)."""
    assert viewer.person is not None
    everyone = await pupils_of_teacher(session, teacher_id=viewer.person.id)
    if not everyone:
        await state.clear()
        await bot.send_message(
            chat_id, _("Je hebt nog geen leerlingen. De beheerder zet je in een groep.")
        )
        return
    # The buttons offer the active group (/groep), as the note's picker does; a typed name
    # finds any of the teacher's pupils.
    group_id = await active_group_id(session, teacher_id=viewer.person.id)
    pupils = await pupils_of_teacher(session, teacher_id=viewer.person.id, group_id=group_id)
    found = (pupils_named(everyone, name) or pupils_matching(everyone, name)) if name else []
    offered = {pupil.id: pupil for pupil in [*(pupils or everyone), *found]}
    await state.set_data(
        {
            "pupils": _pupils_data(list(offered.values())),
            "page": 0,
            "school_id": viewer.person.school_id,
        }
    )
    if len(found) == 1:
        await state.update_data(pupil_id=found[0].id, pupil_name=found[0].name)
        await _ask(bot, chat_id, state, session, "kind", now_of(clock))
        return
    if found:
        await state.update_data(filter_ids=[pupil.id for pupil in found])
    await _ask(bot, chat_id, state, session, "pupil", now_of(clock))


async def new_talk(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None = None,
) -> None:
    await query.answer()
    assert query.message is not None
    await begin_planning(bot, query.message.chat.id, state, session, viewer, clock)


async def pupil_picked(
    query: CallbackQuery,
    callback_data: TalkPupil,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    clock: Clock | None = None,
) -> None:
    """Only a pupil that was offered counts; storage checks again when the talk is saved."""
    data = await state.get_data()
    offered = {pupil["id"]: pupil["name"] for pupil in data.get("pupils", [])}
    if callback_data.pupil_id not in offered:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    await state.update_data(
        pupil_id=callback_data.pupil_id, pupil_name=offered[callback_data.pupil_id]
    )
    await edit_card(query, fill(_("Gesprek met {name}"), name=offered[callback_data.pupil_id]))
    assert query.message is not None
    await _ask(bot, query.message.chat.id, state, session, "kind", now_of(clock))


async def pupil_page(query: CallbackQuery, callback_data: TalkPupilPage, state: FSMContext) -> None:
    await query.answer()
    await state.update_data(page=max(0, callback_data.page), filter_ids=None)
    data = await state.get_data()
    await edit_card(
        query,
        _("Met wie is het gesprek? Tik op een leerling, of typ een deel van de naam."),
        pupil_keyboard(
            data["pupils"],
            page=data["page"],
            pick=lambda pupil_id: TalkPupil(pupil_id=pupil_id),
            turn=lambda page: TalkPupilPage(page=page),
        ),
    )


async def pupil_typed(
    message: Message,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    clock: Clock | None = None,
) -> None:
    assert message.text is not None
    data = await state.get_data()
    pupils = [PupilRef(pupil["id"], pupil["name"]) for pupil in data["pupils"]]
    found = pupils_named(pupils, message.text) or pupils_matching(pupils, message.text)
    if len(found) == 1:
        await state.update_data(pupil_id=found[0].id, pupil_name=found[0].name, filter_ids=None)
        await _ask(bot, message.chat.id, state, session, "kind", now_of(clock))
        return
    if not found:
        await message.answer(fill(_("Ik vind geen leerling met „{text}”."), text=message.text))
        await state.update_data(filter_ids=None, page=0)
    else:
        await state.update_data(filter_ids=[pupil.id for pupil in found], page=0)
    await _ask(bot, message.chat.id, state, session, "pupil", now_of(clock))


async def kind_picked(
    query: CallbackQuery,
    callback_data: TalkKindPick,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    clock: Clock | None = None,
) -> None:
    if callback_data.kind not in {kind.value for kind in TalkKind}:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    kind = TalkKind(callback_data.kind)
    await state.update_data(kind=kind.value)
    data = await state.get_data()
    await edit_card(
        query,
        fill(_("{kind} met {name}"), kind=_capital(kind_label(kind)), name=data["pupil_name"]),
    )
    assert query.message is not None
    await _ask(bot, query.message.chat.id, state, session, "day", now_of(clock))


async def _moment_chosen(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None,
    day: date,
    at: time | None,
) -> None:
    """A day (and maybe a time) is known: ask what is missing, refuse the past, or go on."""
    now = now_of(clock)
    data = await state.get_data()
    calendar = await calendar_of(session, school_id=data["school_id"])
    assert calendar is not None
    if at is None:
        if day < calendar.local_date(now):
            await bot.send_message(chat_id, _("Die dag is al voorbij. Kies een latere dag."))
            await _ask(bot, chat_id, state, session, "day", now)
            return
        await state.update_data(day=day.isoformat())
        await _ask(bot, chat_id, state, session, "time", now)
        return
    moment = calendar.at(day, at)
    if moment <= now:
        await bot.send_message(chat_id, _("Dat moment is al voorbij. Kies een later moment."))
        await state.update_data(day=None)
        await _ask(bot, chat_id, state, session, "day", now)
        return
    await state.update_data(day=day.isoformat(), at=at.strftime("%H%M"))
    if data.get("move"):
        await _finish_move(bot, chat_id, state, session, viewer, clock, moment)
        return
    await _ask(bot, chat_id, state, session, "place", now)


async def day_picked(
    query: CallbackQuery,
    callback_data: TalkDay,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None = None,
) -> None:
    try:
        day = date.fromisoformat(callback_data.day)
    except ValueError:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    await edit_card(query, "📅 " + day_label(day))
    assert query.message is not None
    await _moment_chosen(bot, query.message.chat.id, state, session, viewer, clock, day, None)


async def time_picked(
    query: CallbackQuery,
    callback_data: TalkTime,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None = None,
) -> None:
    data = await state.get_data()
    hhmm = callback_data.hhmm
    if hhmm not in TIME_BUTTONS or not data.get("day"):
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    at = time(int(hhmm[:2]), int(hhmm[2:]))
    day = date.fromisoformat(data["day"])
    await edit_card(query, "📅 " + day_label(day) + " " + time_label(at))
    assert query.message is not None
    await _moment_chosen(bot, query.message.chat.id, state, session, viewer, clock, day, at)


async def moment_typed(
    message: Message,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None = None,
) -> None:
    """ "di 3 dec 14:00" at the day step, "14:15" at the time step; kindly re-asked if not."""
    assert message.text is not None
    data = await state.get_data()
    calendar = await calendar_of(session, school_id=data["school_id"])
    assert calendar is not None
    now = now_of(clock)
    try:
        typed = parse_moment(message.text[:100], today=calendar.local_date(now))
    except MomentError:
        typed = None
    at_time_step = await state.get_state() == PlanningTalk.time.state
    day = typed.day if typed is not None else None
    if day is None and typed is not None and at_time_step and data.get("day"):
        day = date.fromisoformat(data["day"])
    if typed is None or day is None:
        await message.answer(
            _("Dat snap ik niet helemaal.")
            + " "
            + (
                _("Typ een tijd, bijvoorbeeld 14:15.")
                if at_time_step
                else _("Probeer bijvoorbeeld: di 3 dec 14:00, 3-12 14:00 of morgen 10:15.")
            )
        )
        return
    await _moment_chosen(bot, message.chat.id, state, session, viewer, clock, day, typed.at)


async def _finish_planning(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None,
    place: str | None,
) -> None:
    assert viewer.person is not None
    data = await state.get_data()
    calendar = await calendar_of(session, school_id=data["school_id"])
    assert calendar is not None
    at = time(int(data["at"][:2]), int(data["at"][2:]))
    now = now_of(clock)
    try:
        talk = await plan_talk(
            session,
            organiser_id=viewer.person.id,
            pupil_id=data["pupil_id"],
            kind=TalkKind(data["kind"]),
            scheduled_at=calendar.at(date.fromisoformat(data["day"]), at),
            place=place,
            now=now,
        )
    except TalkRefusedError as error:
        if str(error) == "past":
            await bot.send_message(chat_id, _("Dat moment is al voorbij. Kies een later moment."))
            await _ask(bot, chat_id, state, session, "day", now)
            return
        await state.clear()
        await bot.send_message(chat_id, _("Met deze leerling kun je geen gesprek plannen."))
        return
    await state.clear()
    who = (
        fill(_("{name} en de ouders krijgen een uitnodiging."), name=talk.pupil_name)
        if talk.kind is TalkKind.TRIPARTITE
        else fill(_("{name} krijgt een uitnodiging."), name=talk.pupil_name)
    )
    text = "\n".join(
        [
            _("Gepland ✅"),
            *_talk_lines(talk, calendar.timezone, for_teacher=True),
            "",
            who,
            _(
                "Twee schooldagen ervoor bereidt de leerling het gesprek voor; "
                "de dag ervoor krijg je de voorbereiding en een overzicht van de periode."
            ),
        ]
    )
    _text, keyboard = _teacher_card(talk, calendar.timezone, now, [])
    await bot.send_message(chat_id, text, reply_markup=keyboard)


async def place_typed(
    message: Message,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None = None,
) -> None:
    assert message.text is not None
    if len(message.text) > MAX_PLACE:
        await message.answer(
            _("Dat is wat lang. Kun je het korter zeggen? (hooguit {limit} tekens)").format(
                limit=MAX_PLACE
            )
        )
        return
    await _finish_planning(bot, message.chat.id, state, session, viewer, clock, message.text)


async def no_place(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None = None,
) -> None:
    await query.answer()
    await edit_card(query, _("Geen plek nodig"))
    assert query.message is not None
    await _finish_planning(bot, query.message.chat.id, state, session, viewer, clock, None)


# --- moving and cancelling ---------------------------------------------------------------------


async def move_start(
    query: CallbackQuery,
    callback_data: TalkMove,
    bot: Bot,
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
    await query.answer()
    await state.set_data(
        {
            "move": talk.id,
            "school_id": talk.school_id,
            "pupil_id": talk.pupil_id,
            "pupil_name": talk.pupil_name,
            "kind": talk.kind.value,
        }
    )
    await _ask(bot, query.message.chat.id, state, session, "day", now_of(clock))


async def _finish_move(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None,
    moment: datetime,
) -> None:
    assert viewer.person is not None
    data = await state.get_data()
    await state.clear()
    try:
        talk = await move_talk(
            session,
            teacher_id=viewer.person.id,
            talk_id=data["move"],
            scheduled_at=moment,
            now=now_of(clock),
        )
    except TalkRefusedError:
        await bot.send_message(chat_id, _("Dit gesprek kun je niet meer verzetten."))
        return
    zone = await _zone(session, talk.school_id)
    text = "\n".join(
        [
            _("Verzet ✅"),
            *_talk_lines(talk, zone, for_teacher=True),
            "",
            _("Iedereen krijgt bericht."),
        ]
    )
    _text, keyboard = _teacher_card(talk, zone, now_of(clock), [])
    await bot.send_message(chat_id, text, reply_markup=keyboard)


async def cancel_tapped(
    query: CallbackQuery,
    callback_data: TalkCancel,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None = None,
) -> None:
    """First tap asks "zeker weten?"; the second cancels and tells the invitees."""
    assert viewer.person is not None
    talk = await teacher_talk(session, teacher_id=viewer.person.id, talk_id=callback_data.talk_id)
    if talk is None or talk.status is not TalkStatus.PLANNED:
        await query.answer(_("Dat gesprek ken ik niet."), show_alert=True)
        return
    zone = await _zone(session, talk.school_id)
    if not callback_data.sure:
        await query.answer()
        await edit_card(
            query,
            "\n".join(
                [*_talk_lines(talk, zone, for_teacher=True), "", _("Wil je dit gesprek afzeggen?")]
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
    talk = await cancel_talk(
        session, teacher_id=viewer.person.id, talk_id=talk.id, now=now_of(clock)
    )
    await query.answer()
    await edit_card(
        query,
        "\n".join([*_talk_lines(talk, zone, for_teacher=True), "", _("Iedereen krijgt bericht.")]),
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
    zone = await _zone(session, talk.school_id)
    text, keyboard = _teacher_card(talk, zone, now_of(clock), list(recorded.new_goals))
    extra = _("Opgeslagen in het portfolio van {name}.")
    if talk.kind is TalkKind.TRIPARTITE:
        extra += " " + _("De ouders krijgen de afspraken.")
    await message.answer(text + "\n\n" + fill(extra, name=talk.pupil_name), reply_markup=keyboard)


# --- the pupil's preparation -------------------------------------------------------------


PREPARATION_QUESTIONS = ("proud", "went_well", "hard", "evidence", "next")


def _preparation_question(step: str) -> str:
    return {
        "proud": _("Waar ben je trots op? Typ het maar."),
        "went_well": _("Wat ging goed?"),
        "hard": _("Wat vind je nog lastig?"),
        "evidence": _(
            "Kies 1 tot 3 dingen uit je portfolio om te laten zien. Tik erop, dan op Klaar."
        ),
        "next": _("Wat wil je hierna leren?"),
    }[step]


PREPARING_STATES = {
    "proud": PreparingTalk.proud,
    "went_well": PreparingTalk.went_well,
    "hard": PreparingTalk.hard,
    "evidence": PreparingTalk.evidence,
    "next": PreparingTalk.next,
}


def _evidence_keyboard(data: dict[str, Any]) -> InlineKeyboardMarkup:
    picked = set(data.get("evidence", []))
    icons = {"photo": "📷", "document": "📄", "voice": "🎤", "video": "🎬"}
    rows = [
        [
            button(
                ("✅ " if item["id"] in picked else "")
                + icons.get(item["kind"], "📎")
                + " "
                + shorten(item["label"], 40),
                TalkEvidencePick(evidence_id=item["id"]),
            )
        ]
        for item in data["choices"]
    ]
    if picked:
        rows.append([button(_("✅ Klaar"), TalkEvidenceDone())])
    rows.append([button(_("Liever niet"), TalkSkip(step="evidence"))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def _ask_preparation(message: Message, state: FSMContext, step: str) -> None:
    await state.set_state(PREPARING_STATES[step])
    data = await state.get_data()
    keyboard: InlineKeyboardMarkup | None = None
    if step == "evidence":
        keyboard = _evidence_keyboard(data)
    if step == "next":
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[[button(_("Weet ik nog niet"), TalkSkip(step="next"))]]
        )
    await message.answer(_preparation_question(step), reply_markup=keyboard)


async def prepare_tapped(
    query: CallbackQuery,
    callback_data: TalkPrepare,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
) -> None:
    """ "Ja" starts the preparation of the pupil's own planned talk; "Later" keeps the button."""
    assert viewer.person is not None
    talk = await talk_to_prepare(session, pupil_id=viewer.person.id, talk_id=callback_data.talk_id)
    if talk is None:
        await query.answer(
            _("Dat gesprek ken ik niet, of het gaat niet meer door."), show_alert=True
        )
        return
    if not callback_data.start:
        await query.answer(_("Goed! Tik later op Ja, of typ /gesprek."), show_alert=True)
        return
    await query.answer()
    assert isinstance(query.message, Message)
    choices = await evidence_choices(session, pupil_id=viewer.person.id)
    zone = await _zone(session, talk.school_id)
    await state.set_data(
        {
            "talk_id": talk.id,
            "teacher": talk.organiser_name or "",
            "answers": {},
            "evidence": [],
            "choices": [
                {
                    "id": choice.id,
                    "kind": choice.kind,
                    "label": choice.caption or day_label(choice.created_at.astimezone(zone).date()),
                }
                for choice in choices
            ],
        }
    )
    await _ask_preparation(query.message, state, "proud")


def _next_step(step: str, data: dict[str, Any]) -> str | None:
    index = PREPARATION_QUESTIONS.index(step)
    for following in PREPARATION_QUESTIONS[index + 1 :]:
        if following == "evidence" and not data.get("choices"):
            continue
        return following
    return None


async def _after_answer(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    step: str,
    clock: Clock | None,
) -> None:
    following = _next_step(step, await state.get_data())
    if following is not None:
        await _ask_preparation(message, state, following)
        return
    assert viewer.person is not None
    data = await state.get_data()
    await state.clear()
    try:
        await save_preparation(
            session,
            pupil_id=viewer.person.id,
            talk_id=data["talk_id"],
            answers=data.get("answers", {}),
            evidence_ids=data.get("evidence", []),
            now=now_of(clock),
        )
    except TalkRefusedError:
        await message.answer(_("Dat gesprek ken ik niet, of het gaat niet meer door."))
        return
    await message.answer(
        fill(
            _("Klaar! {teacher} krijgt je voorbereiding voor het gesprek. 👍"),
            teacher=data["teacher"],
        )
    )


async def answer_typed(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None = None,
) -> None:
    assert message.text is not None
    if len(message.text) > MAX_ANSWER:
        await message.answer(
            _("Dat is wat lang. Kun je het korter zeggen? (hooguit {limit} tekens)").format(
                limit=MAX_ANSWER
            )
        )
        return
    current = await state.get_state()
    step = next(name for name, value in PREPARING_STATES.items() if value.state == current)
    data = await state.get_data()
    answers = dict(data.get("answers", {}))
    answers[step] = message.text.strip()
    await state.update_data(answers=answers)
    await _after_answer(message, state, session, viewer, step, clock)


async def evidence_picked(
    query: CallbackQuery, callback_data: TalkEvidencePick, state: FSMContext
) -> None:
    data = await state.get_data()
    if callback_data.evidence_id not in {item["id"] for item in data.get("choices", [])}:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    picked: list[int] = data.get("evidence", [])
    if callback_data.evidence_id in picked:
        picked.remove(callback_data.evidence_id)
    elif len(picked) >= MAX_EVIDENCE:
        await query.answer(
            _("Je mag er hooguit {count} kiezen.").format(count=MAX_EVIDENCE), show_alert=True
        )
        return
    else:
        picked.append(callback_data.evidence_id)
    await query.answer()
    await state.update_data(evidence=picked)
    await edit_card(
        query, _preparation_question("evidence"), _evidence_keyboard(await state.get_data())
    )


async def evidence_done(
    query: CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None = None,
) -> None:
    if not (await state.get_data()).get("evidence"):
        await query.answer(_("Kies eerst minstens één ding."), show_alert=True)
        return
    await query.answer()
    assert isinstance(query.message, Message)
    await edit_card(query, _preparation_question("evidence") + " ✅")
    await _after_answer(query.message, state, session, viewer, "evidence", clock)


async def step_skipped(
    query: CallbackQuery,
    callback_data: TalkSkip,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock | None = None,
) -> None:
    current = await state.get_state()
    if (
        callback_data.step not in ("evidence", "next")
        or current != PREPARING_STATES[callback_data.step].state
    ):
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    assert isinstance(query.message, Message)
    if callback_data.step == "evidence":
        await state.update_data(evidence=[])
    await edit_card(query, _preparation_question(callback_data.step))
    await _after_answer(query.message, state, session, viewer, callback_data.step, clock)


# --- pupils and parents: their own talks ---------------------------------------------------


async def own_list(
    session: AsyncSession, viewer: Viewer, clock: Clock | None
) -> tuple[str, InlineKeyboardMarkup | None]:
    """A pupil's or parent's talks: planned ones with a "prepare" button, held ones with the
    agreements (parents: only the talks they take part in)."""
    assert viewer.person is not None
    now = now_of(clock)
    if viewer.person.role is Role.PUPIL:
        talks = await talks_of_pupil(session, pupil_id=viewer.person.id, now=now)
    else:
        talks = await talks_of_parent(session, parent_id=viewer.person.id, now=now)
    if not talks:
        # parents
        return _("Er staan geen gesprekken gepland."), None
    zone = await _zone(session, viewer.person.school_id)
    blocks = []
    rows = []
    for talk in talks:
        lines = _talk_lines(talk, zone, for_teacher=False)
        if viewer.person.role is Role.PARENT:
            lines.insert(1, "👧 " + fill("{name}", name=talk.pupil_name))
        if talk.status is TalkStatus.HELD and talk.agreements:
            # parents
            lines += [bold(_("Afspraken")), fill("{text}", text=talk.agreements)]
        if talk.status is TalkStatus.PLANNED and viewer.person.role is Role.PUPIL:
            lines.append(
                _("✅ Je hebt je voorbereid.") if talk.prepared else _("⏳ Nog niet voorbereid.")
            )
            rows.append(
                [
                    button(
                        _("✍️ Voorbereiden: {when}").format(
                            when=day_label(talk.scheduled_at.astimezone(zone).date())
                        ),
                        TalkPrepare(talk_id=talk.id, start=True),
                    )
                ]
            )
        blocks.append("\n".join(lines))
    keyboard = InlineKeyboardMarkup(inline_keyboard=rows) if rows else None
    # parents
    return _("Je gesprekken:") + "\n\n" + "\n\n".join(blocks), keyboard


# --- fallbacks -----------------------------------------------------------------------------


async def re_ask_buttons(message: Message) -> None:
    await message.answer(_("Tik op een van de knoppen hierboven, of typ /annuleer om te stoppen."))


async def re_ask_text(message: Message) -> None:
    await message.answer(_("Typ je antwoord als tekst, of typ /annuleer om te stoppen."))


def build_router() -> Router:
    router = Router(name="talks")
    teacher = HasRole(Role.TEACHER)
    pupil = HasRole(Role.PUPIL)
    router.callback_query.register(show_list, TalkList.filter(), teacher)
    router.callback_query.register(open_talk, TalkOpen.filter(), teacher)
    router.callback_query.register(new_talk, TalkNew.filter(), teacher)
    router.callback_query.register(pupil_picked, TalkPupil.filter(), PlanningTalk.pupil, teacher)
    router.callback_query.register(pupil_page, TalkPupilPage.filter(), PlanningTalk.pupil, teacher)
    router.callback_query.register(kind_picked, TalkKindPick.filter(), PlanningTalk.kind, teacher)
    router.callback_query.register(day_picked, TalkDay.filter(), PlanningTalk.day, teacher)
    router.callback_query.register(time_picked, TalkTime.filter(), PlanningTalk.time, teacher)
    router.callback_query.register(no_place, TalkNoPlace.filter(), PlanningTalk.place, teacher)
    router.callback_query.register(move_start, TalkMove.filter(), teacher)
    router.callback_query.register(cancel_tapped, TalkCancel.filter(), teacher)
    router.callback_query.register(record_start, TalkRecord.filter(), teacher)
    router.callback_query.register(goal_sets, TalkGoalSets.filter(), RecordingTalk.goals, teacher)
    router.callback_query.register(goal_set, TalkGoalSet.filter(), RecordingTalk.goals, teacher)
    router.callback_query.register(goal_line, TalkGoalLine.filter(), RecordingTalk.goals, teacher)
    router.callback_query.register(goal_picked, TalkGoalPick.filter(), RecordingTalk.goals, teacher)
    router.callback_query.register(goals_done, TalkGoalsDone.filter(), RecordingTalk.goals, teacher)
    router.callback_query.register(prepare_tapped, TalkPrepare.filter(), pupil)
    router.callback_query.register(
        evidence_picked, TalkEvidencePick.filter(), PreparingTalk.evidence, pupil
    )
    router.callback_query.register(
        evidence_done, TalkEvidenceDone.filter(), PreparingTalk.evidence, pupil
    )
    router.callback_query.register(step_skipped, TalkSkip.filter(), pupil)

    router.message.register(pupil_typed, PlanningTalk.pupil, TYPED, teacher)
    router.message.register(moment_typed, PlanningTalk.day, TYPED, teacher)
    router.message.register(moment_typed, PlanningTalk.time, TYPED, teacher)
    router.message.register(place_typed, PlanningTalk.place, TYPED, teacher)
    router.message.register(agreements_typed, RecordingTalk.agreements, TYPED, teacher)
    for state in ("proud", "went_well", "hard", "next"):
        router.message.register(answer_typed, PREPARING_STATES[state], TYPED, pupil)
    # Anything else in a step (a sticker, a photo, text where a button is expected).
    text_steps = (
        PlanningTalk.pupil,
        PlanningTalk.day,
        PlanningTalk.time,
        PlanningTalk.place,
        RecordingTalk.agreements,
        PreparingTalk.proud,
        PreparingTalk.went_well,
        PreparingTalk.hard,
        PreparingTalk.next,
    )
    for step in text_steps:
        router.message.register(re_ask_text, step, ~F.text.startswith("/"))
    for step in (PlanningTalk.kind, RecordingTalk.goals, PreparingTalk.evidence):
        router.message.register(re_ask_buttons, step, ~F.text.startswith("/"))
    return router


# --- composers: a due reminder row -> the messages it sends ----------------------------------

Composer = Callable[
    [AsyncSession, DueReminder, Recipient, datetime], Awaitable[list[TelegramMethod[Any]] | None]
]


async def _announced(session: AsyncSession, reminder: DueReminder) -> TalkView | None:
    """The talk if it is still planned at the moment this row announced, and the recipient
    is still part of it; None otherwise (moved, cancelled, held: the row is not needed)."""
    talk = await talk_by_id(session, talk_id=int(reminder.payload.get("talk_id", 0)))
    if talk is None or talk.status is not TalkStatus.PLANNED:
        return None
    announced = reminder.payload.get("scheduled_at")
    if announced is None or datetime.fromisoformat(announced) != talk.scheduled_at:
        return None
    if reminder.person_id not in await participants_of(session, talk_id=talk.id):
        return None
    return talk


def _with_whom(talk: TalkView, person_id: int) -> str:
    """ "je leergesprek met Juf Anouk" for the pupil, "... over Sam met ..." for a parent,
    "je leergesprek met Sam" for the teacher."""
    kind = kind_label(talk.kind)
    if person_id == talk.organiser_id:
        return fill(_("je {kind} met {name}"), kind=kind, name=talk.pupil_name)
    if person_id == talk.pupil_id:
        return fill(_("je {kind} met {name}"), kind=kind, name=talk.organiser_name or "")
    return fill(
        # parents
        _("het {kind} over {pupil} met {name}"),
        kind=kind,
        pupil=talk.pupil_name,
        name=talk.organiser_name or "",
    )


def _place(talk: TalkView) -> str:
    return ("\n📍 " + fill("{place}", place=talk.place)) if talk.place else ""


def _message(to: Recipient, text: str, keyboard: InlineKeyboardMarkup | None = None) -> SendMessage:
    return SendMessage(chat_id=to.telegram_user_id, text=text[:4096], reply_markup=keyboard)


async def compose_invitation(
    session: AsyncSession, reminder: DueReminder, to: Recipient, now: datetime
) -> list[TelegramMethod[Any]] | None:
    talk = await _announced(session, reminder)
    if talk is None:
        return None
    zone = await _zone(session, talk.school_id)
    template = (
        # parents
        _("📅 Verzet: {talk} is nu op {when}.")
        if reminder.payload.get("moved")
        # parents
        else _("📅 Uitnodiging: {talk}, op {when}.")
    )
    text = template.format(
        talk=_with_whom(talk, reminder.person_id), when=when_text(talk.scheduled_at, zone)
    )
    return [_message(to, _capital(text) + _place(talk))]


async def compose_reminder(
    session: AsyncSession, reminder: DueReminder, to: Recipient, now: datetime
) -> list[TelegramMethod[Any]] | None:
    talk = await _announced(session, reminder)
    if talk is None:
        return None
    if reminder.person_id not in (talk.pupil_id, talk.organiser_id):
        # A parent may have turned talk reminders off (the invitation still comes).
        preferences = await preferences_of(session, parent_id=reminder.person_id)
        if preferences is not None and not preferences.talk_reminders:
            return None
    zone = await _zone(session, talk.school_id)
    template = (
        # parents
        _("⏰ Niet vergeten: {talk} is {when}.")
        if reminder.payload.get("moment") == DAY_BEFORE
        # parents
        else _("⏰ Over een uur: {talk}, {when}.")
    )
    text = template.format(
        talk=_with_whom(talk, reminder.person_id), when=when_text(talk.scheduled_at, zone)
    )
    return [_message(to, text + _place(talk))]


async def compose_preparation(
    session: AsyncSession, reminder: DueReminder, to: Recipient, now: datetime
) -> list[TelegramMethod[Any]] | None:
    """Two school days before: the pupil is asked to prepare (unless they already did)."""
    talk = await _announced(session, reminder)
    if talk is None or talk.prepared or reminder.person_id != talk.pupil_id:
        return None
    zone = await _zone(session, talk.school_id)
    text = _("{when} heb je {talk}. Zullen we het voorbereiden?").format(
        when=when_text(talk.scheduled_at, zone), talk=_with_whom(talk, reminder.person_id)
    )
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                button(_("Ja"), TalkPrepare(talk_id=talk.id, start=True)),
                button(_("Later"), TalkPrepare(talk_id=talk.id, start=False)),
            ]
        ]
    )
    return [_message(to, _capital(text), keyboard)]


def _level(position: int | None, name: str | None) -> str:
    if name:
        return name
    defaults = {1: _("beginner"), 2: _("in ontwikkeling"), 3: _("gevorderd"), 4: _("expert")}
    return defaults.get(position or 0, "–")


def _trend_text(trend: Trend, icon: Callable[[int], str]) -> str:
    if trend.average is None:
        return "–"
    arrow = {1: " ↗️", -1: " ↘️", 0: ""}[trend.direction]
    return icon(max(1, min(4, round(trend.average)))) + arrow


def brief_text(talk: TalkView, summary: PeriodSummary, zone: ZoneInfo) -> str:
    """The pupil's preparation and the period in numbers, for the teacher the day before."""
    lines = [
        bold(_capital(_with_whom(talk, talk.organiser_id or 0)))
        + " · "
        + when_text(talk.scheduled_at, zone)
    ]
    if talk.place:
        lines.append("📍 " + fill("{place}", place=talk.place))
    lines.append("")
    if talk.prepared:
        lines.append(bold(fill(_("Voorbereiding van {name}"), name=talk.pupil_name)))
        questions = (
            ("proud", _("Trots op")),
            ("went_well", _("Ging goed")),
            ("hard", _("Nog lastig")),
            ("next", _("Wil hierna leren")),
        )
        for key, label in questions:
            answer = talk.preparation.get(key)
            if answer:
                lines.append(
                    fill("{label}: {answer}", label=label, answer=shorten(answer, MAX_LINE))
                )
        for item in summary.chosen_evidence:
            lines.append("📷 " + fill("{caption}", caption=shorten(item.caption or "–", 80)))
    else:
        lines.append(fill(_("{name} heeft zich nog niet voorbereid."), name=talk.pupil_name))
    lines += ["", bold(fill(_("Periode {name}"), name=summary.period_name or "–"))]
    for goal in summary.goals:
        lines.append(
            fill(
                _("• {goal}: zelf {own}, jij {teacher}, {days} dagen aan gewerkt"),
                goal=shorten(goal.text, 80),
                own=_level(goal.self_level, goal.self_level_name),
                teacher=_level(goal.teacher_level, goal.teacher_level_name),
                days=goal.days_worked,
            )
        )
    if not summary.goals:
        lines.append(_("Nog geen doelen in deze periode."))
    lines.append(
        _("Reflecties: {count} op {days} dagen").format(
            count=summary.reflections, days=summary.days_reflected
        )
    )
    lines.append(
        _("Inzet: {effort} · Welbevinden: {wellbeing}").format(
            effort=_trend_text(summary.effort, lambda value: EFFORT_ICON * value),
            wellbeing=_trend_text(summary.wellbeing, lambda value: FACES[value]),
        )
    )
    lines.append(
        _("Werk in het portfolio: {evidence} · Notities: {notes}").format(
            evidence=summary.evidence, notes=summary.observations
        )
    )
    for note in summary.latest_notes:
        lines.append("📝 " + fill("{note}", note=shorten(note, 120)))
    return "\n".join(lines)[:MAX_BRIEF]


async def _photos(
    session: AsyncSession, talk: TalkView, media_dir: Path, chat_id: int
) -> list[TelegramMethod[Any]]:
    """The work the pupil chose, as one photo or an album; a missing file is left out."""
    found: list[tuple[bytes, str | None]] = []
    for photo in await chosen_photos(session, talk_id=talk.id):
        path = media_dir / relative_path_for(photo.sha256, photo.mime_type)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError:
            log.warning("chosen photo %s of evidence %s is missing", path.name, photo.evidence_id)
            continue
        found.append((data, shorten(photo.caption, 1000) if photo.caption else None))
    if len(found) == 1:
        data, caption = found[0]
        return [
            SendPhoto(chat_id=chat_id, photo=BufferedInputFile(data, "werk.jpg"), caption=caption)
        ]
    if found:
        media = [
            InputMediaPhoto(media=BufferedInputFile(data, f"werk-{index + 1}.jpg"), caption=caption)
            for index, (data, caption) in enumerate(found)
        ]
        return [SendMediaGroup(chat_id=chat_id, media=list(media))]
    return []


async def compose_brief(
    session: AsyncSession,
    reminder: DueReminder,
    to: Recipient,
    now: datetime,
    *,
    settings: Settings | None = None,
) -> list[TelegramMethod[Any]] | None:
    """The day before: the pupil's preparation and the period in numbers, then the work the
    pupil chose to show."""
    talk = await _announced(session, reminder)
    if talk is None or reminder.person_id != talk.organiser_id:
        return None
    calendar = await calendar_of(session, school_id=talk.school_id)
    assert calendar is not None
    summary = await period_summary(
        session, pupil_id=talk.pupil_id, today=calendar.local_date(now), talk_id=talk.id
    )
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[button(_("Gesprek openen"), TalkOpen(talk_id=talk.id))]]
    )
    # The dispatcher runs in the bot's process, so the environment names the bot's media
    # folder; tests pass their settings.
    media_dir = Path((settings or load_settings()).media_dir)
    return [
        _message(to, brief_text(talk, summary, calendar.timezone), keyboard),
        *await _photos(session, talk, media_dir, to.telegram_user_id),
    ]


async def compose_cancelled(
    session: AsyncSession, reminder: DueReminder, to: Recipient, now: datetime
) -> list[TelegramMethod[Any]] | None:
    talk = await talk_by_id(session, talk_id=int(reminder.payload.get("talk_id", 0)))
    if talk is None or talk.status is not TalkStatus.CANCELLED:
        return None
    zone = await _zone(session, talk.school_id)
    # parents
    text = _("✖️ {talk} op {when} gaat niet door.").format(
        talk=_with_whom(talk, reminder.person_id), when=when_text(talk.scheduled_at, zone)
    )
    return [_message(to, _capital(text))]


async def compose_agreements(
    session: AsyncSession, reminder: DueReminder, to: Recipient, now: datetime
) -> list[TelegramMethod[Any]] | None:
    """After a driehoeksgesprek: the parents get what was agreed and the new goals."""
    talk = await talk_by_id(session, talk_id=int(reminder.payload.get("talk_id", 0)))
    if talk is None or talk.status is not TalkStatus.HELD or not talk.agreements:
        return None
    zone = await _zone(session, talk.school_id)
    lines = [
        # parents
        _("🤝 Afspraken uit {talk} ({when}):").format(
            talk=_with_whom(talk, reminder.person_id), when=when_text(talk.scheduled_at, zone)
        ),
        fill("{text}", text=talk.agreements),
    ]
    goals = await new_goals_of(session, talk_id=talk.id)
    if goals:
        # parents
        lines += ["", bold(_("Nieuwe doelen"))] + [fill("• {goal}", goal=g) for g in goals]
    return [_message(to, _capital("\n".join(lines)))]


COMPOSERS: dict[str, Composer] = {
    KIND_INVITATION: compose_invitation,
    KIND_REMINDER: compose_reminder,
    KIND_PREPARATION: compose_preparation,
    KIND_BRIEF: compose_brief,
    KIND_CANCELLED: compose_cancelled,
    KIND_AGREEMENTS: compose_agreements,
}
