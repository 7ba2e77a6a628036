"""What every talk dialogue shares: its states, its buttons, and how a talk reads."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.state import State, StatesGroup
from babel.dates import format_skeleton, format_time
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import shorten
from chat_ui.texts import fill
from language.i18n import _, current_locale
from storage.models import TalkKind, TalkStatus
from storage.schooltime import calendar_of
from storage.talks import (
    TalkView,
)

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


def capital(text: str) -> str:
    return text[:1].upper() + text[1:]


async def school_zone(session: AsyncSession, school_id: int) -> ZoneInfo:
    calendar = await calendar_of(session, school_id=school_id)
    return calendar.timezone if calendar is not None else ZoneInfo("Europe/Amsterdam")


def talk_lines(talk: TalkView, zone: ZoneInfo, *, for_teacher: bool) -> list[str]:
    other = talk.pupil_name if for_teacher else (talk.organiser_name or "")
    lines = [
        # parents
        "🗣 " + fill(_("{kind} met {name}"), kind=capital(kind_label(talk.kind)), name=other),
        "📅 " + when_text(talk.scheduled_at, zone),
    ]
    if talk.place:
        lines.append("📍 " + fill("{place}", place=talk.place))
    if talk.status is TalkStatus.CANCELLED:
        # parents
        lines.append(_("✖️ Afgezegd"))
    return lines


def short_label(talk: TalkView, zone: ZoneInfo, name: str) -> str:
    mark = {TalkStatus.PLANNED: "🗓", TalkStatus.HELD: "✅", TalkStatus.CANCELLED: "✖️"}
    local = talk.scheduled_at.astimezone(zone)
    return shorten(
        f"{mark[talk.status]} {name} · {day_label(local.date())} {time_label(local.time())}", 60
    )
