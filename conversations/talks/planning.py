"""Planning a talk (pupil, kind, day, time, place) and moving one (a new day and time)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from aiogram import Bot
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
)
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import button, edit_card, in_rows
from chat_ui.texts import fill
from conversations.card import refuse, too_long
from conversations.pupil_picker import pupil_keyboard
from conversations.talks.common import (
    SCHOOL_DAY_BUTTONS,
    TIME_BUTTONS,
    PlanningTalk,
    TalkDay,
    TalkKindPick,
    TalkMove,
    TalkNoPlace,
    TalkPupil,
    TalkPupilPage,
    TalkTime,
    capital,
    day_label,
    kind_label,
    school_zone,
    talk_lines,
    time_label,
)
from conversations.talks.moments import MomentError, parse_moment
from conversations.talks.talk_card import teacher_card
from language.i18n import _
from services.clock import Clock
from storage.accounts import PersonRef
from storage.models import TalkKind, TalkStatus
from storage.observations import PupilRef, pupils_matching, pupils_named, pupils_of_teacher
from storage.overview import active_group_id
from storage.schooltime import SchoolCalendar, calendar_of
from storage.talks import (
    MAX_PLACE,
    TalkRefusedError,
    move_talk,
    plan_talk,
    teacher_talk,
)

# --- planning --------------------------------------------------------------------------------


def _pupils_data(pupils: list[PupilRef]) -> list[dict[str, Any]]:
    return [{"id": pupil.id, "name": pupil.name} for pupil in pupils]


def _school_days(calendar: SchoolCalendar, now: datetime) -> list[date]:
    local = now.astimezone(calendar.timezone)
    first = local.date() if local.time() < time(16, 0) else local.date() + timedelta(days=1)
    return calendar.school_days_between(first, first + timedelta(days=21))[:SCHOOL_DAY_BUTTONS]


async def _calendar(session: AsyncSession, data: dict[str, Any]) -> SchoolCalendar:
    """The calendar of the school the talk is planned at (its id is in the data)."""
    calendar = await calendar_of(session, school_id=data["school_id"])
    assert calendar is not None
    return calendar


def _pupil_question(data: dict[str, Any]) -> tuple[str, InlineKeyboardMarkup]:
    """The pupils offered, a page at a time (only those a typed name fits, when it fits
    several)."""
    shown = data["pupils"]
    if data.get("filter_ids"):
        shown = [pupil for pupil in shown if pupil["id"] in data["filter_ids"]]
    return _("Met wie is het gesprek? Tik op een leerling, of typ een deel van de naam."), (
        pupil_keyboard(
            shown,
            page=data.get("page", 0),
            pick=lambda pupil_id: TalkPupil(pupil_id=pupil_id),
            turn=lambda page: TalkPupilPage(page=page),
            filtered=bool(data.get("filter_ids")),
        )
    )


async def _past(
    bot: Bot, chat_id: int, state: FSMContext, session: AsyncSession, now: datetime
) -> None:
    """The moment chosen is over by now: the day is asked again."""
    await bot.send_message(chat_id, _("Dat moment is al voorbij. Kies een later moment."))
    await _ask(bot, chat_id, state, session, "day", now)


async def _ask(
    bot: Bot, chat_id: int, state: FSMContext, session: AsyncSession, step: str, now: datetime
) -> None:
    """Asks a planning step as a new message (the card of the previous step stays as it is)."""
    data = await state.get_data()
    calendar = await _calendar(session, data)
    if step == "pupil":
        await state.set_state(PlanningTalk.pupil)
        text, keyboard = _pupil_question(data)
    elif step == "kind":
        await state.set_state(PlanningTalk.kind)
        text = fill(_("Wat voor gesprek met {name}?"), name=data["pupil_name"])
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[
                [button(capital(kind_label(kind)), TalkKindPick(kind=kind.value))]
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
    person: PersonRef,
    clock: Clock,
    name: str = "",
) -> None:
    """A new talk: the pupil first (skipped when a typed name fits exactly one pupil)."""
    everyone = await pupils_of_teacher(session, teacher_id=person.id)
    if not everyone:
        await state.clear()
        await bot.send_message(
            chat_id, _("Je hebt nog geen leerlingen. De beheerder zet je in een groep.")
        )
        return
    # The buttons offer the active group (/groep), as the note's picker does; a typed name
    # finds any of the teacher's pupils.
    group_id = await active_group_id(session, teacher_id=person.id)
    pupils = await pupils_of_teacher(session, teacher_id=person.id, group_id=group_id)
    found = (pupils_named(everyone, name) or pupils_matching(everyone, name)) if name else []
    offered = {pupil.id: pupil for pupil in [*(pupils or everyone), *found]}
    await state.set_data(
        {
            "pupils": _pupils_data(list(offered.values())),
            "page": 0,
            "school_id": person.school_id,
        }
    )
    if len(found) == 1:
        await state.update_data(pupil_id=found[0].id, pupil_name=found[0].name)
        await _ask(bot, chat_id, state, session, "kind", clock.now())
        return
    if found:
        await state.update_data(filter_ids=[pupil.id for pupil in found])
    await _ask(bot, chat_id, state, session, "pupil", clock.now())


async def new_talk(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    await query.answer()
    assert query.message is not None
    await begin_planning(bot, query.message.chat.id, state, session, person, clock)


async def pupil_picked(
    query: CallbackQuery,
    callback_data: TalkPupil,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    clock: Clock,
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
    await _ask(bot, query.message.chat.id, state, session, "kind", clock.now())


async def pupil_page(query: CallbackQuery, callback_data: TalkPupilPage, state: FSMContext) -> None:
    await query.answer()
    await state.update_data(page=max(0, callback_data.page), filter_ids=None)
    await edit_card(query, *_pupil_question(await state.get_data()))


async def pupil_typed(
    message: Message,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    clock: Clock,
) -> None:
    assert message.text is not None
    data = await state.get_data()
    pupils = [PupilRef(pupil["id"], pupil["name"]) for pupil in data["pupils"]]
    found = pupils_named(pupils, message.text) or pupils_matching(pupils, message.text)
    if len(found) == 1:
        await state.update_data(pupil_id=found[0].id, pupil_name=found[0].name, filter_ids=None)
        await _ask(bot, message.chat.id, state, session, "kind", clock.now())
        return
    if not found:
        await message.answer(fill(_("Ik vind geen leerling met „{text}”."), text=message.text))
        await state.update_data(filter_ids=None, page=0)
    else:
        await state.update_data(filter_ids=[pupil.id for pupil in found], page=0)
    await _ask(bot, message.chat.id, state, session, "pupil", clock.now())


async def kind_picked(
    query: CallbackQuery,
    callback_data: TalkKindPick,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    clock: Clock,
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
        fill(_("{kind} met {name}"), kind=capital(kind_label(kind)), name=data["pupil_name"]),
    )
    assert query.message is not None
    await _ask(bot, query.message.chat.id, state, session, "day", clock.now())


async def _moment_chosen(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
    day: date,
    at: time | None,
) -> None:
    """A day (and maybe a time) is known: ask what is missing, refuse the past, or go on."""
    now = clock.now()
    data = await state.get_data()
    calendar = await _calendar(session, data)
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
        await state.update_data(day=None)
        await _past(bot, chat_id, state, session, now)
        return
    await state.update_data(day=day.isoformat(), at=at.strftime("%H%M"))
    if data.get("move"):
        await _finish_move(bot, chat_id, state, session, person, clock, moment)
        return
    await _ask(bot, chat_id, state, session, "place", now)


def _iso_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


async def moment_picked(
    query: CallbackQuery,
    callback_data: TalkDay | TalkTime,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    """A school day tapped at the day step, or a time at the time step (on the day chosen)."""
    data = await state.get_data()
    at: time | None = None
    if isinstance(callback_data, TalkDay):
        day = _iso_day(callback_data.day)
    elif callback_data.hhmm in TIME_BUTTONS and data.get("day"):
        at = time(int(callback_data.hhmm[:2]), int(callback_data.hhmm[2:]))
        day = date.fromisoformat(data["day"])
    else:
        day = None
    if day is None:
        await refuse(query)
        return
    await query.answer()
    shown = "📅 " + day_label(day)
    if at is not None:
        shown += " " + time_label(at)
    await edit_card(query, shown)
    assert query.message is not None
    await _moment_chosen(bot, query.message.chat.id, state, session, person, clock, day, at)


async def moment_typed(
    message: Message,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    """ "di 3 dec 14:00" at the day step, "14:15" at the time step; kindly re-asked if not."""
    assert message.text is not None
    data = await state.get_data()
    calendar = await _calendar(session, data)
    now = clock.now()
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
    await _moment_chosen(bot, message.chat.id, state, session, person, clock, day, typed.at)


async def _finish_planning(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
    place: str | None,
) -> None:
    data = await state.get_data()
    calendar = await _calendar(session, data)
    at = time(int(data["at"][:2]), int(data["at"][2:]))
    now = clock.now()
    try:
        talk = await plan_talk(
            session,
            organiser_id=person.id,
            pupil_id=data["pupil_id"],
            kind=TalkKind(data["kind"]),
            scheduled_at=calendar.at(date.fromisoformat(data["day"]), at),
            place=place,
            now=now,
        )
    except TalkRefusedError as error:
        if str(error) == "past":
            await _past(bot, chat_id, state, session, now)
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
            *talk_lines(talk, calendar.timezone, for_teacher=True),
            "",
            who,
            _(
                "Twee schooldagen ervoor bereidt de leerling het gesprek voor; "
                "de dag ervoor krijg je de voorbereiding en een overzicht van de periode."
            ),
        ]
    )
    _text, keyboard = teacher_card(talk, calendar.timezone, now, [])
    await bot.send_message(chat_id, text, reply_markup=keyboard)


async def place_typed(
    message: Message,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    assert message.text is not None
    if len(message.text) > MAX_PLACE:
        await too_long(message, MAX_PLACE)
        return
    await _finish_planning(bot, message.chat.id, state, session, person, clock, message.text)


async def no_place(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    await query.answer()
    await edit_card(query, _("Geen plek nodig"))
    assert query.message is not None
    await _finish_planning(bot, query.message.chat.id, state, session, person, clock, None)


# --- moving and cancelling ---------------------------------------------------------------------


async def move_start(
    query: CallbackQuery,
    callback_data: TalkMove,
    bot: Bot,
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
    await _ask(bot, query.message.chat.id, state, session, "day", clock.now())


async def _finish_move(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
    moment: datetime,
) -> None:
    data = await state.get_data()
    await state.clear()
    try:
        talk = await move_talk(
            session,
            teacher_id=person.id,
            talk_id=data["move"],
            scheduled_at=moment,
            now=clock.now(),
        )
    except TalkRefusedError:
        await bot.send_message(chat_id, _("Dit gesprek kun je niet meer verzetten."))
        return
    zone = await school_zone(session, talk.school_id)
    text = "\n".join(
        [
            _("Verzet ✅"),
            *talk_lines(talk, zone, for_teacher=True),
            "",
            _("Iedereen krijgt bericht."),
        ]
    )
    _text, keyboard = teacher_card(talk, zone, clock.now(), [])
    await bot.send_message(chat_id, text, reply_markup=keyboard)
