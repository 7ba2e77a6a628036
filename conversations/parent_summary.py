"""The parents' weekly summary, and the messages of parents' tops & tips.

One function composes the summary of one child for one parent (`summary_messages`); the
Friday reminder (`compose_parent_summary`, called by the reminder dispatcher inside the
parent's locale) and `/overzicht` (sent right away) both use it, so what a parent gets on
Friday and on request is the same. Its parts: the text (goals worked on and how often, effort
and wellbeing in words, levels, the teacher's shareable notes, upcoming talks, one question
to ask the child tonight), the photos the child shared (an album, at most 10), the videos
the child shared (each its own message, a round one round, at most three), and the progress
picture. The storage layer decides what a parent may see (`storage.summaries`).

The dialogue in which a parent gives a top or a tip is `conversations.parent_feedback`; the
notices it leads to, and a pupil's request for tops & tips on their plan, are composed here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.methods import (
    SendDocument,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SendVideo,
    SendVideoNote,
    TelegramMethod,
)
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardMarkup,
    InputMediaPhoto,
)
from babel.dates import format_date, format_datetime
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import button, shorten
from chat_ui.texts import fill
from conversations.media_intake import is_round_video
from conversations.parent_feedback import PARENT_AUDIENCE, FeedbackOn, GiveFeedback
from language.i18n import _, current_locale
from media.store import EXTENSIONS, relative_path_for
from scheduler.composers import ComposerContext, ComposerRegistry
from services.pictures.progress import draw_progress, picture_texts
from storage.accounts import Recipient
from storage.evidence import videos_for_parent
from storage.models import FeedbackTarget
from storage.parents import (
    PLAN_FEEDBACK_MOMENTS,
    children_of_parent,
    feedback_notice,
    feedback_notice_for_parent,
    feedback_targets,
    plan_for_parent,
    preferences_of,
)
from storage.reminders import DueReminder, ReminderKind
from storage.summaries import ChildWeek, child_week, week_start_of

log = logging.getLogger(__name__)

MAX_GOALS_LISTED = 6
MAX_LEVELS_LISTED = 8
# A summary stays well under Telegram's 4096 characters, whatever teachers and pupils typed.
MAX_NOTE = 500
MAX_CAPTION = 850


# --- words ---------------------------------------------------------------------------------


def _average(values: Sequence[int]) -> float | None:
    return sum(values) / len(values) if values else None


def effort_words(name: str, values: Sequence[int]) -> str | None:
    """Effort in words a parent understands; never a number, never a reproach."""
    average = _average(values)
    if average is None:
        return None
    if average >= 3.5:
        return fill(_("{name} zette zich deze week heel goed in. 💪"), name=name)
    if average >= 2.5:
        return fill(_("{name} zette zich deze week goed in."), name=name)
    if average >= 1.75:
        return fill(_("{name} deed deze week wat mee, soms met wat meer moeite."), name=name)
    return fill(_("{name} vond het deze week soms lastig om aan de slag te gaan."), name=name)


def wellbeing_words(name: str, values: Sequence[int]) -> str | None:
    average = _average(values)
    if average is None:
        return None
    if average >= 3.25:
        return fill(_("{name} voelde zich meestal goed. 😊"), name=name)
    if average >= 2.5:
        return fill(_("{name} voelde zich meestal wel oké."), name=name)
    return fill(
        _(
            "{name} voelde zich deze week niet altijd fijn. "
            "Misschien fijn om er samen rustig over te praten."
        ),
        name=name,
    )


def talk_kind(kind: str) -> str:
    names = {
        "learning": _("leergesprek"),
        "coach": _("coachgesprek"),
        "tripartite": _("driehoeksgesprek (met jou erbij)"),
    }
    return names.get(kind, _("gesprek"))


def level_label(position: int | None, name: str | None) -> str:
    if position is None:
        return _("nog niet beoordeeld")
    if name:
        return name  # the rubric's own name, as the school wrote it
    defaults = (_("beginner"), _("in ontwikkeling"), _("gevorderd"), _("expert"))
    return defaults[min(max(position, 1), len(defaults)) - 1]


def question_for_tonight(week: ChildWeek) -> str:
    """One question made from the child's own week, so the summary starts a talk at home."""
    name = week.first_name
    captioned = next((photo for photo in week.photos if photo.caption), None)
    if captioned is not None and captioned.caption:
        return fill(
            _("Vraag {name} vanavond eens naar de foto ‘{caption}’: hoe heb je dat gemaakt?"),
            name=name,
            caption=shorten(captioned.caption, 60),
        )
    if week.goals_worked:
        return fill(
            _("Vraag {name} vanavond eens: wat heb je deze week geleerd bij ‘{goal}’?"),
            name=name,
            goal=shorten(week.goals_worked[0].text, 80),
        )
    if week.photos:
        return fill(
            _("Vraag {name} vanavond eens naar de foto die {name} deelde: wat zie ik daar?"),
            name=name,
        )
    return fill(_("Vraag {name} vanavond eens: wat was het leukste van deze week?"), name=name)


def summary_text(week: ChildWeek, now: datetime, *, videos: int = 0) -> str:
    """The text part of the summary, in the current locale, as HTML; `videos` is how many of
    the shared items come along as videos (they are not "other shared work")."""
    locale = current_locale()
    name = week.first_name
    zone = ZoneInfo(week.school_timezone)
    lines = [
        "<b>"
        + fill(
            _("Week {week} van {name}"),
            week=week.week_start.isocalendar().week,
            name=week.pupil_name,
        )
        + "</b> 🌱",
        fill(
            _("{first} – {last}"),
            first=format_date(week.week_start, "d MMM", locale=locale),
            last=format_date(week.week_start + timedelta(days=4), "d MMM", locale=locale),
        ),
        "",
    ]
    if week.is_empty:
        lines.append(
            fill(
                _(
                    "Deze week staat er nog niets nieuws van {name} in het portfolio. Dat is "
                    "niet erg: soms gaat een week op aan ander werk, of vergeet je het even."
                ),
                name=name,
            )
        )
    else:
        if week.goals_worked:
            # Plain here: `fill` escapes the whole list once.
            worked = ", ".join(
                _("{goal} ({times}×)").format(goal=shorten(goal.text, 80), times=goal.times)
                for goal in week.goals_worked[:MAX_GOALS_LISTED]
            )
            lines.append(fill(_("{name} werkte aan: {goals}."), name=name, goals=worked))
        elif week.reflections:
            lines.append(fill(_("{name} vertelde deze week hoe het ging op school."), name=name))
        for sentence in (effort_words(name, week.effort), wellbeing_words(name, week.wellbeing)):
            if sentence:
                lines.append(sentence)
    assessed = [level for level in week.levels if level.level is not None]
    if assessed:
        lines += ["", "<b>" + _("Niveau nu") + "</b>"]
        for level in assessed[:MAX_LEVELS_LISTED]:
            lines.append(
                fill(
                    _("{goal} — {level}"),
                    goal=shorten(level.text, 70),
                    level=level_label(level.level, level.level_name),
                )
            )
    for note in week.notes:
        lines += [
            "",
            fill(_("{teacher} schreef:"), teacher=note.author_name or _("De leerkracht")),
            fill("<i>{text}</i>", text=shorten(note.text, MAX_NOTE)),
        ]
    if week.photos or videos:
        lines += [
            "",
            fill(_("📷 {name} deelde deze week werk met je (hieronder)."), name=name),
        ]
    other_shared = week.other_shared - videos
    if other_shared > 0:
        lines.append(
            fill(
                _("📎 Er is ook ander gedeeld werk: {count}. Vraag {name} het je te laten zien."),
                count=other_shared,
                name=name,
            )
        )
    for talk in week.talks:
        when = format_datetime(talk.scheduled_at.astimezone(zone), "EEE d MMM HH:mm", locale=locale)
        lines += [
            "",
            fill(_("📅 Volgend gesprek: {kind}, {when}."), kind=talk_kind(talk.kind), when=when),
        ]
    lines += ["", "💬 " + question_for_tonight(week)]
    return "\n".join(lines)


# --- the messages -----------------------------------------------------------------------------


def _feedback_keyboard(week: ChildWeek, can_give: bool) -> InlineKeyboardMarkup | None:
    if not can_give:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                button(_("👍 Geef een top"), GiveFeedback(pupil_id=week.pupil_id, kind="top")),
                button(_("💡 Geef een tip"), GiveFeedback(pupil_id=week.pupil_id, kind="tip")),
            ]
        ]
    )


async def _read_photos(week: ChildWeek, media_dir: Path) -> list[tuple[bytes, str | None]]:
    photos = []
    for photo in week.photos:
        path = media_dir / relative_path_for(photo.sha256, photo.mime_type)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError:
            # A file the sweep removed or a moved media folder: leave the photo out.
            log.warning("shared photo %s of evidence %s is missing", path.name, photo.evidence_id)
            continue
        # Telegram allows 1024 characters in a caption; a long one is cut, never refused.
        caption = shorten(photo.caption, MAX_CAPTION) if photo.caption else None
        if photo.goals:
            caption = "\n".join(filter(None, [caption, "🎯 " + shorten(photo.goals[0], 120)]))
        photos.append((data, caption))
    return photos


def _week_window(week: ChildWeek) -> tuple[datetime, datetime]:
    """The week as moments: from Monday 0:00 to the next Monday 0:00 at the school."""
    zone = ZoneInfo(week.school_timezone)
    since = datetime.combine(week.week_start, time(0), tzinfo=zone).astimezone(UTC)
    until = datetime.combine(week.week_end + timedelta(days=1), time(0), tzinfo=zone)
    return since, until.astimezone(UTC)


async def _video_messages(
    session: AsyncSession, week: ChildWeek, *, parent_id: int, chat_id: int, media_dir: Path
) -> list[TelegramMethod[Any]]:
    """The videos the child shared this week, each as its own message (a round one round)."""
    since, until = _week_window(week)
    methods: list[TelegramMethod[Any]] = []
    for video in await videos_for_parent(
        session, parent_id=parent_id, pupil_id=week.pupil_id, since=since, until=until
    ):
        path = media_dir / relative_path_for(video.file.sha256, video.file.mime_type)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError:
            log.warning("shared video %s of evidence %s is missing", path.name, video.evidence_id)
            continue
        if is_round_video(video.file):
            # A round video message carries no caption.
            methods.append(
                SendVideoNote(
                    chat_id=chat_id,
                    video_note=BufferedInputFile(data, "rondje.mp4"),
                    duration=video.file.duration_seconds,
                    length=video.file.width,
                )
            )
            continue
        caption = shorten(video.caption, MAX_CAPTION) if video.caption else None
        if video.goals:
            caption = "\n".join(filter(None, [caption, "🎯 " + shorten(video.goals[0], 120)]))
        caption_html = fill("{caption}", caption=caption) if caption else None
        if video.file.mime_type == "video/mp4":
            methods.append(
                SendVideo(
                    chat_id=chat_id,
                    video=BufferedInputFile(data, "video.mp4"),
                    duration=video.file.duration_seconds,
                    width=video.file.width,
                    height=video.file.height,
                    supports_streaming=True,
                    caption=caption_html,
                )
            )
        else:
            # Telegram plays MP4 only; a MOV or WebM arrives as a file to open.
            name = "video." + EXTENSIONS.get(video.file.mime_type, "bin")
            methods.append(
                SendDocument(
                    chat_id=chat_id, document=BufferedInputFile(data, name), caption=caption_html
                )
            )
    return methods


async def summary_messages(
    session: AsyncSession,
    *,
    parent_id: int,
    pupil_id: int,
    week_start: date,
    chat_id: int,
    now: datetime,
    media_dir: Path,
) -> list[TelegramMethod[Any]]:
    """The summary of one child for one parent, as Bot API calls in the current locale;
    empty when the child is not this parent's."""
    week = await child_week(
        session, parent_id=parent_id, pupil_id=pupil_id, week_start=week_start, now=now
    )
    if week is None:
        return []
    targets = await feedback_targets(session, parent_id=parent_id, pupil_id=pupil_id)
    keyboard = _feedback_keyboard(week, bool(targets))
    videos = await _video_messages(
        session, week, parent_id=parent_id, chat_id=chat_id, media_dir=media_dir
    )
    methods: list[TelegramMethod[Any]] = [
        SendMessage(chat_id=chat_id, text=summary_text(week, now, videos=len(videos)))
    ]
    photos = await _read_photos(week, media_dir)
    if len(photos) == 1:
        data, caption = photos[0]
        methods.append(
            SendPhoto(
                chat_id=chat_id,
                photo=BufferedInputFile(data, "werk.jpg"),
                caption=fill("{caption}", caption=caption) if caption else None,
            )
        )
    elif photos:
        methods.append(
            SendMediaGroup(
                chat_id=chat_id,
                media=[
                    InputMediaPhoto(
                        media=BufferedInputFile(data, f"werk-{index + 1}.jpg"),
                        caption=fill("{caption}", caption=caption) if caption else None,
                    )
                    for index, (data, caption) in enumerate(photos)
                ],
            )
        )
    methods += videos
    if week.levels:
        texts = picture_texts(week.first_name, week.period_name)
        picture = await asyncio.to_thread(draw_progress, week.levels, texts)
        methods.append(
            SendPhoto(
                chat_id=chat_id,
                photo=BufferedInputFile(picture, "voortgang.png"),
                caption=fill(_("Waar {name} nu staat, per leerlijn."), name=week.pupil_name),
                reply_markup=keyboard,
            )
        )
    elif keyboard is not None:
        # No picture to carry the buttons: they go under the text.
        first = methods[0]
        assert isinstance(first, SendMessage)
        methods[0] = first.model_copy(update={"reply_markup": keyboard})
    return methods


def summary_week(today: date) -> date:
    """The week a summary on request is about: this week, except on a Monday (and the
    weekend before it), when this week has hardly begun and last week is what there is."""
    return week_start_of(today - timedelta(days=1))


async def all_summaries(
    session: AsyncSession,
    *,
    parent_id: int,
    chat_id: int,
    now: datetime,
    today: date,
    media_dir: Path,
) -> list[TelegramMethod[Any]]:
    """`/overzicht`: one summary per child, each clearly named, the same as on Friday."""
    methods: list[TelegramMethod[Any]] = []
    for child in await children_of_parent(session, parent_id=parent_id):
        methods += await summary_messages(
            session,
            parent_id=parent_id,
            pupil_id=child.id,
            week_start=summary_week(today),
            chat_id=chat_id,
            now=now,
            media_dir=media_dir,
        )
    return methods


# --- composers for the reminder dispatcher ------------------------------------------------


async def compose_parent_summary(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> list[TelegramMethod[Any]] | None:
    """The Friday summary of the child in the payload; None when the parent switched the
    summary off since it was planned, or the child is not (any more) theirs."""
    preferences = await preferences_of(session, parent_id=reminder.person_id)
    if preferences is None or not preferences.weekly_summary:
        return None
    try:
        pupil_id = int(reminder.payload["pupil_id"])
        week_start = date.fromisoformat(str(reminder.payload["week_start"]))
    except (KeyError, TypeError, ValueError):
        log.error("parent summary reminder %s has a broken payload", reminder.id)
        return None
    methods = await summary_messages(
        session,
        parent_id=reminder.person_id,
        pupil_id=pupil_id,
        week_start=week_start,
        chat_id=to.telegram_user_id,
        now=context.now,
        # The shared photos and videos, from the app's own media store.
        media_dir=context.media.root,
    )
    return methods or None


async def compose_feedback_notice(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> list[TelegramMethod[Any]] | None:
    """Tell the child (or the mentor) about a parent's top or tip, or a parent about a
    teacher's top or tip on work the child shared."""
    try:
        feedback_id = int(reminder.payload["feedback_id"])
    except (KeyError, TypeError, ValueError):
        return None
    if reminder.payload.get("audience") == PARENT_AUDIENCE:
        notice = await feedback_notice_for_parent(
            session, feedback_id=feedback_id, parent_id=to.person_id
        )
    else:
        notice = await feedback_notice(session, feedback_id=feedback_id)
    if notice is None:
        return None
    if to.person_id == notice.pupil_id:
        lines = [fill(_("{author} gaf je feedback"), author=notice.author_name)]
    else:
        lines = [
            fill(
                _("{author} gaf {pupil} feedback"),
                author=notice.author_name,
                pupil=notice.pupil_name,
            )
        ]
    about = (
        _("over het plan ‘{about}’")
        if notice.target is FeedbackTarget.PLAN
        else _("over het werk ‘{about}’")
    )
    lines[0] += " " + fill(about, about=shorten(notice.about or "…", 60)) + ":"
    if notice.top:
        lines.append(fill(_("👍 Top: {text}"), text=notice.top))
    if notice.tip:
        lines.append(fill(_("💡 Tip: {text}"), text=notice.tip))
    return [SendMessage(chat_id=to.telegram_user_id, text="\n".join(lines))]


async def compose_plan_feedback_request(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> list[TelegramMethod[Any]] | None:
    """A pupil asks their parents for tops & tips on their own plan (one of two moments)."""
    try:
        plan_id = int(reminder.payload["plan_id"])
        moment = int(reminder.payload.get("moment", 1))
    except (KeyError, TypeError, ValueError):
        return None
    plan = await plan_for_parent(session, parent_id=reminder.person_id, plan_id=plan_id)
    if plan is None:
        return None
    name = plan.pupil_name.split()[0] if plan.pupil_name.split() else plan.pupil_name
    lines = [
        fill(
            _("{name} vraagt je om feedback op het eigen plan (moment {moment} van {total})."),
            name=name,
            moment=moment,
            total=PLAN_FEEDBACK_MOMENTS,
        ),
        "",
        fill(_("💡 Het idee: {idea}"), idea=plan.idea),
    ]
    if plan.outcome:
        lines.append(
            fill(_("🎯 Wat {name} daarna kan: {outcome}"), name=name, outcome=plan.outcome)
        )
    lines += [
        "",
        fill(
            _("Geef een top (wat is goed aan het plan?) en een tip (wat kan {name} nog beter?)."),
            name=name,
        ),
    ]
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                button(
                    _("👍 Geef een top"),
                    FeedbackOn(pupil_id=plan.pupil_id, kind="top", target="p", target_id=plan.id),
                ),
                button(
                    _("💡 Geef een tip"),
                    FeedbackOn(pupil_id=plan.pupil_id, kind="tip", target="p", target_id=plan.id),
                ),
            ]
        ]
    )
    return [SendMessage(chat_id=to.telegram_user_id, text="\n".join(lines), reply_markup=keyboard)]


def register_composers(registry: ComposerRegistry) -> None:
    """The Friday summary, the tops & tips notices and the pupil's request for feedback."""
    registry.register(ReminderKind.PARENT_SUMMARY, compose_parent_summary)
    registry.register(ReminderKind.FEEDBACK_NOTICE, compose_feedback_notice)
    registry.register(ReminderKind.PLAN_FEEDBACK_REQUEST, compose_plan_feedback_request)


async def send_all(bot: Bot, methods: Sequence[TelegramMethod[Any]]) -> None:
    """Send composed messages in order (the on-request path; the dispatcher has its own)."""
    for method in methods:
        await bot(method)
