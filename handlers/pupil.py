"""A pupil's overviews: my goals with where I stand (`/mijndoelen`), and looking back
(`/terugkijken`); plus "where am I now?" on a goal (self-assessment with the rubric)."""

from __future__ import annotations

from datetime import date, timedelta

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import BUTTON_LOOK_BACK, BUTTON_MY_GOALS, edit_card, main_menu, shorten
from chat_ui.texts import bold, fill
from config.settings import Settings
from conversations.card import checked
from conversations.goals import OpenMyGoals
from conversations.rubric import level_title, rubric_card
from language.i18n import _, current_locale, ngettext
from services.clock import Clock, school_today
from storage.accounts import PersonRef, Viewer
from storage.goals import (
    LevelView,
    levels_for,
    own_pupil_goal,
    progress_of,
    pupil_context,
    record_self_assessment,
)
from storage.models import PupilGoalStatus, Role
from storage.observations import ItemKind, timeline
from storage.reflections import reflections_since
from storage.week_plans import monday_of, plan_items

LOOK_BACK_DAYS = 14
# Notes a teacher shared with the pupil, newest first, under the look back.
MAX_NOTES_SHOWN = 5
HOW_EMOJI = {4: "😀", 3: "🙂", 2: "😐", 1: "😟"}


class Assess(CallbackData, prefix="sa"):
    pupil_goal_id: int


class AssessLevel(CallbackData, prefix="sal"):
    pupil_goal_id: int
    position: int


def level_name(position: int | None, name: str | None) -> str:
    """A rubric's own level name, or the default scale's name in the user's language."""
    return level_title(LevelView(None, position or 0, name, None))


async def my_goals(
    message: Message,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """My goals of this period, per line: my level, my teacher's level, days worked on."""
    today = school_today(settings, clock)
    context = await pupil_context(session, pupil_id=person.id, today=today)
    if context.period_id is None or context.period_starts_on is None:
        await message.answer(_("Er is nu geen periode."), reply_markup=main_menu(viewer))
        return
    progress = await progress_of(session, context=context, since=context.period_starts_on)
    if not progress:
        await message.answer(
            _("Je hebt nog geen doelen voor deze periode. Kies ze met /doelen."),
            reply_markup=main_menu(viewer),
        )
        return
    items = await plan_items(session, pupil_id=person.id, week_start=monday_of(today))
    lines = [bold(fill(_("Mijn doelen – {period}"), period=context.period_name or ""))]
    current_line = None
    rows = []
    for entry in progress:
        goal = entry.choice.goal
        if goal.line_name != current_line:
            current_line = goal.line_name
            lines += ["", "📚 " + bold(current_line)]
        lines.append(fill("🎯 {goal}", goal=goal.text))
        details = [
            fill(
                _("ik: {level}"),
                level=level_name(entry.self_level, entry.self_level_name)
                if entry.self_level
                else "–",
            ),
            fill(
                _("juf/meester: {level}"),
                level=level_name(entry.teacher_level, entry.teacher_level_name)
                if entry.teacher_level
                else "–",
            ),
            ngettext(
                "{days} dag aan gewerkt", "{days} dagen aan gewerkt", entry.days_worked
            ).format(days=entry.days_worked),
        ]
        goal_items = [item for item in items if item.pupil_goal_id == entry.choice.pupil_goal_id]
        if goal_items:
            details.append(
                _("deze week {done}/{total} ✅").format(
                    done=sum(item.done for item in goal_items), total=len(goal_items)
                )
            )
        if entry.choice.status is PupilGoalStatus.PROPOSED:
            details.append(_("wacht op je leerkracht"))
        lines.append("   " + " · ".join(details))
        rows.append(
            [
                InlineKeyboardButton(
                    text=fill(_("📍 Waar sta ik? {goal}"), goal=goal.text[:40]),
                    callback_data=Assess(pupil_goal_id=entry.choice.pupil_goal_id).pack(),
                )
            ]
        )
    await message.answer("\n".join(lines), reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))


async def my_goals_from_prompt(
    query: CallbackQuery,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """The goal review's button: the same as /mijndoelen."""
    await query.answer()
    if isinstance(query.message, Message):
        await my_goals(query.message, session, viewer, person, settings, clock)


async def ask_level(
    query: CallbackQuery, callback_data: Assess, session: AsyncSession, person: PersonRef
) -> None:
    """ "Where am I now on this goal?" with the rubric's levels and what each looks like."""
    pupil_goal = await checked(
        query,
        await own_pupil_goal(
            session, pupil_id=person.id, pupil_goal_id=callback_data.pupil_goal_id
        ),
    )
    if pupil_goal is None:
        return
    text, keyboard = rubric_card(
        [_("Waar sta je nu? Lees de niveaus en kies wat het beste past.")],
        await levels_for(session, goal_id=pupil_goal.goal_id),
        lambda position: AssessLevel(pupil_goal_id=callback_data.pupil_goal_id, position=position),
    )
    assert query.message is not None
    await query.message.answer(text, reply_markup=keyboard)


async def level_chosen(
    query: CallbackQuery, callback_data: AssessLevel, session: AsyncSession, person: PersonRef
) -> None:
    """Stores the self-assessment with today's date, so progress shows over time."""
    level = await checked(
        query,
        await record_self_assessment(
            session,
            pupil_id=person.id,
            pupil_goal_id=callback_data.pupil_goal_id,
            position=callback_data.position,
        ),
    )
    if level is not None:
        await edit_card(
            query, fill(_("Bewaard: je staat nu op {level}. 👍"), level=level_title(level))
        )


async def look_back(
    message: Message,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """The last two weeks of reflections, one compact line each."""
    today = school_today(settings, clock)
    since = today - timedelta(days=LOOK_BACK_DAYS - 1)
    reflections = await reflections_since(session, pupil_id=person.id, since=since)
    seen = await _notes_since(session, person.id, since)
    if not reflections:
        lines = [_("Je hebt de afgelopen twee weken nog niet gereflecteerd. Begin met /reflectie!")]
        await message.answer("\n".join(lines + seen), reply_markup=main_menu(viewer))
        return
    lines = [bold(_("Terugkijken: de laatste twee weken"))]
    for reflection in reflections:
        day = format_date(reflection.on_date, format="EEE d MMM", locale=current_locale())
        what = ", ".join(reflection.goals) or reflection.other_work or _("iets anders")
        line = fill(
            "{day} · {what} {how} {effort} {feel}",
            day=day,
            what=what[:60],
            how=HOW_EMOJI.get(reflection.how_it_went or 0, ""),
            effort="💪" * (reflection.effort or 0),
            feel=HOW_EMOJI.get(reflection.wellbeing or 0, ""),
        )
        if reflection.next_step:
            line += "\n      " + fill(_("➡️ volgende stap: {step}"), step=reflection.next_step)
        lines.append(line)
    days = len({reflection.on_date for reflection in reflections})
    lines += [
        "",
        ngettext(
            "Je reflecteerde op {days} dag. Goed bezig!",
            "Je reflecteerde op {days} dagen. Goed bezig!",
            days,
        ).format(days=days),
    ]
    await message.answer("\n".join(lines + seen), reply_markup=main_menu(viewer))


async def _notes_since(session: AsyncSession, pupil_id: int, since: date) -> list[str]:
    """What the teacher noted about the pupil and marked for the pupil and parents (never a
    private note: the policy leaves those out for a pupil), as lines under the look back."""
    page = await timeline(
        session,
        viewer_id=pupil_id,
        viewer_role=Role.PUPIL,
        pupil_id=pupil_id,
        kinds=[ItemKind.OBSERVATION],
        per_page=MAX_NOTES_SHOWN,
    )
    notes = [item for item in page.items if item.at.date() >= since] if page else []
    if not notes:
        return []
    lines = ["", bold(_("👀 Wat je juf of meester zag"))]
    for note in notes:
        day = format_date(note.at.date(), format="EEE d MMM", locale=current_locale())
        lines.append(fill("{day} · {text}", day=day, text=shorten(note.text, 200)))
        if note.author:
            lines[-1] += fill(" <i>({author})</i>", author=note.author)
    return lines


def build_router() -> Router:
    router = Router(name="pupil")
    pupil = HasRole(Role.PUPIL)
    router.message.register(my_goals, Command("mijndoelen", "mygoals"), pupil)
    router.message.register(my_goals, F.text == BUTTON_MY_GOALS, pupil)
    router.message.register(look_back, Command("terugkijken", "lookback"), pupil)
    router.message.register(look_back, F.text == BUTTON_LOOK_BACK, pupil)
    router.callback_query.register(my_goals_from_prompt, OpenMyGoals.filter(), pupil)
    router.callback_query.register(ask_level, Assess.filter(), pupil)
    router.callback_query.register(level_chosen, AssessLevel.filter(), pupil)
    return router
