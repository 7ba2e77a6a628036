"""Due reminder rows of the talks turned into messages: invitations, reminders, the
preparation notice, the teacher's brief, cancellations and the agreements
(`register_composers` adds them to the app's registry, scheduler.composers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.methods import SendMediaGroup, SendMessage, SendPhoto, TelegramMethod
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardMarkup,
    InputMediaPhoto,
)
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import button, shorten
from chat_ui.texts import bold, fill
from conversations.talks.common import (
    EFFORT_ICON,
    FACES,
    MAX_BRIEF,
    MAX_LINE,
    TalkOpen,
    TalkPrepare,
    capital,
    kind_label,
    school_zone,
    when_text,
)
from language.i18n import _
from media.store import MediaStore
from scheduler.composers import ComposerContext, ComposerRegistry
from storage.accounts import Recipient
from storage.models import TalkStatus
from storage.parents import preferences_of
from storage.reminders import DueReminder, ReminderKind
from storage.schooltime import calendar_of
from storage.talks import (
    DAY_BEFORE,
    PeriodSummary,
    TalkView,
    Trend,
    chosen_photos,
    new_goals_of,
    participants_of,
    period_summary,
    talk_by_id,
)

log = logging.getLogger(__name__)


# --- composers: a due reminder row -> the messages it sends ----------------------------------


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
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> list[TelegramMethod[Any]] | None:
    talk = await _announced(session, reminder)
    if talk is None:
        return None
    zone = await school_zone(session, talk.school_id)
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
    return [_message(to, capital(text) + _place(talk))]


async def compose_reminder(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> list[TelegramMethod[Any]] | None:
    talk = await _announced(session, reminder)
    if talk is None:
        return None
    if reminder.person_id not in (talk.pupil_id, talk.organiser_id):
        # A parent may have turned talk reminders off (the invitation still comes).
        preferences = await preferences_of(session, parent_id=reminder.person_id)
        if preferences is not None and not preferences.talk_reminders:
            return None
    zone = await school_zone(session, talk.school_id)
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
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> list[TelegramMethod[Any]] | None:
    """Two school days before: the pupil is asked to prepare (unless they already did)."""
    talk = await _announced(session, reminder)
    if talk is None or talk.prepared or reminder.person_id != talk.pupil_id:
        return None
    zone = await school_zone(session, talk.school_id)
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
    return [_message(to, capital(text), keyboard)]


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
        bold(capital(_with_whom(talk, talk.organiser_id or 0)))
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
    session: AsyncSession, talk: TalkView, store: MediaStore, chat_id: int
) -> list[TelegramMethod[Any]]:
    """The work the pupil chose, as one photo or an album; a missing file is left out."""
    found: list[tuple[bytes, str | None]] = []
    for photo in await chosen_photos(session, talk_id=talk.id):
        path = store.path_of(photo)
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
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> list[TelegramMethod[Any]] | None:
    """The day before: the pupil's preparation and the period in numbers, then the work the
    pupil chose to show."""
    talk = await _announced(session, reminder)
    if talk is None or reminder.person_id != talk.organiser_id:
        return None
    calendar = await calendar_of(session, school_id=talk.school_id)
    assert calendar is not None
    summary = await period_summary(
        session, pupil_id=talk.pupil_id, today=calendar.local_date(context.now), talk_id=talk.id
    )
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[button(_("Gesprek openen"), TalkOpen(talk_id=talk.id))]]
    )
    return [
        _message(to, brief_text(talk, summary, calendar.timezone), keyboard),
        *await _photos(session, talk, context.media, to.telegram_user_id),
    ]


async def compose_cancelled(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> list[TelegramMethod[Any]] | None:
    talk = await talk_by_id(session, talk_id=int(reminder.payload.get("talk_id", 0)))
    if talk is None or talk.status is not TalkStatus.CANCELLED:
        return None
    zone = await school_zone(session, talk.school_id)
    # parents
    text = _("✖️ {talk} op {when} gaat niet door.").format(
        talk=_with_whom(talk, reminder.person_id), when=when_text(talk.scheduled_at, zone)
    )
    return [_message(to, capital(text))]


async def compose_agreements(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> list[TelegramMethod[Any]] | None:
    """After a driehoeksgesprek: the parents get what was agreed and the new goals."""
    talk = await talk_by_id(session, talk_id=int(reminder.payload.get("talk_id", 0)))
    if talk is None or talk.status is not TalkStatus.HELD or not talk.agreements:
        return None
    zone = await school_zone(session, talk.school_id)
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
    return [_message(to, capital("\n".join(lines)))]


def register_composers(registry: ComposerRegistry) -> None:
    """Everything the talks send: planned, moved, cancelled, prepared and held."""
    registry.register(ReminderKind.TALK_INVITATION, compose_invitation)
    registry.register(ReminderKind.TALK_REMINDER, compose_reminder)
    registry.register(ReminderKind.TALK_PREPARATION, compose_preparation)
    registry.register(ReminderKind.TALK_BRIEF, compose_brief)
    registry.register(ReminderKind.TALK_CANCELLED, compose_cancelled)
    registry.register(ReminderKind.TALK_AGREEMENTS, compose_agreements)
