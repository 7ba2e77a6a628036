"""The teacher's side before a talk: the list and card, planning, moving and cancelling."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
)
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import button, edit_card, in_rows
from chat_ui.texts import bold, fill
from conversations.observation import pupil_keyboard
from conversations.talks.common import (
    RECORD_FROM,
    SCHOOL_DAY_BUTTONS,
    TIME_BUTTONS,
    PlanningTalk,
    TalkCancel,
    TalkDay,
    TalkKindPick,
    TalkList,
    TalkMove,
    TalkNew,
    TalkNoPlace,
    TalkOpen,
    TalkPupil,
    TalkPupilPage,
    TalkRecord,
    TalkTime,
    capital,
    day_label,
    kind_label,
    now_of,
    school_zone,
    short_label,
    talk_lines,
    time_label,
)
from conversations.talks.moments import MomentError, parse_moment
from language.i18n import _
from services.clock import Clock
from storage.accounts import Viewer
from storage.models import TalkKind, TalkStatus
from storage.observations import PupilRef, pupils_matching, pupils_named, pupils_of_teacher
from storage.overview import active_group_id
from storage.schooltime import SchoolCalendar, calendar_of
from storage.talks import (
    MAX_PLACE,
    TalkRefusedError,
    TalkView,
    cancel_talk,
    move_talk,
    new_goals_of,
    plan_talk,
    talks_of_teacher,
    teacher_talk,
)

# --- the teacher: list and card --------------------------------------------------------------


async def teacher_list(
    session: AsyncSession, viewer: Viewer, clock: Clock | None
) -> tuple[str, InlineKeyboardMarkup]:
    """ "Je gesprekken": planned talks first, then recent ones; a button each and "Nieuw"."""
    assert viewer.person is not None
    talks = await talks_of_teacher(session, teacher_id=viewer.person.id, now=now_of(clock))
    zone = await school_zone(session, viewer.person.school_id)
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
    zone = await school_zone(session, talk.school_id)
    goals = await new_goals_of(session, talk_id=talk.id)
    text, keyboard = teacher_card(talk, zone, now_of(clock), goals)
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
        fill(_("{kind} met {name}"), kind=capital(kind_label(kind)), name=data["pupil_name"]),
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
    zone = await school_zone(session, talk.school_id)
    text = "\n".join(
        [
            _("Verzet ✅"),
            *talk_lines(talk, zone, for_teacher=True),
            "",
            _("Iedereen krijgt bericht."),
        ]
    )
    _text, keyboard = teacher_card(talk, zone, now_of(clock), [])
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
    talk = await cancel_talk(
        session, teacher_id=viewer.person.id, talk_id=talk.id, now=now_of(clock)
    )
    await query.answer()
    await edit_card(
        query,
        "\n".join([*talk_lines(talk, zone, for_teacher=True), "", _("Iedereen krijgt bericht.")]),
    )
