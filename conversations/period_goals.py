"""A teacher prepares a period for the active group (`/voorbereiden`, "🎯 Doelen klaarzetten"):
the period itself when there is none, up to three levels of goals per learning line (what
pupils pick from in /doelen), and the activities of each prepared goal (what pupils pick from
in their week plan).

Everything happens on one card that changes with each tap. The buttons carry the group,
period, line, goal or activity ids, and storage checks them all again on every tap
(`storage.period_goals`), so the steps need no dialogue state and a restart changes nothing.
Only typing an activity's name is a state: the goal it is for waits in the state's data.

```mermaid
stateDiagram-v2
    [*] --> periods: /voorbereiden, "🎯 Doelen klaarzetten" (the active group)
    periods --> lines: the current or the next period (a choice when both are there)
    periods --> start: no period yet, or the current one nearly over
    start --> length: a start day (a school day)
    length --> lines: 6, 7 or 8 weeks (ends on a school day; the period is made)
    lines --> lines: another page of learning lines
    lines --> line: a learning line
    line --> goals: "⭐ Kies een doel" / "Ander doel" for a tier
    goals --> line: a goal of the line (set, or replacing what was there)
    line --> line: "🗑 Leegmaken" a tier
    line --> activities: "📝 Activiteiten" of a prepared goal
    activities --> activities: "🗑" an activity
    activities --> typing: "➕ Activiteit toevoegen"
    typing --> typing: a typed name (added, or a kind no for a duplicate)
    typing --> activities: "✅ Klaar"
    activities --> line: "⬅️ Terug"
    line --> lines: "⬅️ Alle leerlijnen"
    lines --> [*]: "✅ Klaar"
```
"""

from __future__ import annotations

from datetime import date

from aiogram import F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import button, edit_card, in_rows, main_menu, shorten
from chat_ui.texts import bold, fill
from config.settings import Settings
from conversations.goals import TIER_STARS
from language.i18n import _, current_locale, ngettext, use_locale
from services.clock import Clock, school_today
from storage.accounts import Viewer
from storage.models import Role
from storage.overview import active_group
from storage.period_goals import (
    MAX_ACTIVITIES_PER_GOAL,
    MAX_ACTIVITY_TEXT,
    PERIOD_WEEKS,
    TIERS,
    ActivityItem,
    ActivityOutcome,
    LinePreparation,
    PeriodChoice,
    PeriodRef,
    PreparedTier,
    TierChange,
    Workspace,
    activities_of,
    add_activity,
    clear_tier,
    create_period,
    goals_of_line,
    line_preparation,
    line_preparations,
    period_choice,
    period_end,
    prepared_goal,
    remove_activity,
    school_calendar_of_group,
    set_tier,
    start_options,
    workspace,
)

LINES_PER_PAGE = 4
GOALS_PER_PAGE = 6
# A goal's text may be long (500 characters): the page of lines shows its start, so that
# the page always fits in one message; the line's own card shows it in full.
GOAL_TEXT_LIMIT = 90
# Forged page numbers stop here.
MAX_PAGE = 100
TYPED = F.text & ~F.text.startswith("/")


class PreparingPeriod(StatesGroup):
    activity_name = State()


class PickPeriod(CallbackData, prefix="vbp"):
    group_id: int
    period_id: int


class NewPeriod(CallbackData, prefix="vbn"):
    group_id: int


class NewPeriodStart(CallbackData, prefix="vbs"):
    group_id: int
    day: int  # date.toordinal()


class NewPeriodLength(CallbackData, prefix="vbw"):
    group_id: int
    day: int
    weeks: int


class PrepLines(CallbackData, prefix="vbl"):
    group_id: int
    period_id: int
    page: int


class PrepLine(CallbackData, prefix="vbr"):
    group_id: int
    period_id: int
    line_id: int


class PickTierGoal(CallbackData, prefix="vbt"):
    group_id: int
    period_id: int
    line_id: int
    tier: int
    page: int


class SetTier(CallbackData, prefix="vbg"):
    group_id: int
    period_id: int
    tier: int
    goal_id: int


class ClearTier(CallbackData, prefix="vbc"):
    group_id: int
    period_id: int
    line_id: int
    tier: int


class PrepActivities(CallbackData, prefix="vba"):
    group_id: int
    period_id: int
    goal_id: int


class AddActivity(CallbackData, prefix="vbi"):
    group_id: int
    period_id: int
    goal_id: int


class RemoveActivity(CallbackData, prefix="vbx"):
    group_id: int
    period_id: int
    activity_id: int


class PrepDone(CallbackData, prefix="vbk"):
    pass


def _day(day: date) -> str:
    return format_date(day, format="EEE d MMM", locale=current_locale())


def _period_label(period: PeriodRef) -> str:
    return fill(
        "{name} ({start} – {end})",
        name=period.name,
        start=format_date(period.starts_on, format="d MMM", locale=current_locale()),
        end=format_date(period.ends_on, format="d MMM", locale=current_locale()),
    )


def _goal_line(goal_code: str, goal_text: str) -> str:
    return fill("{code} {goal}", code=goal_code, goal=goal_text)


async def _refuse(query: CallbackQuery) -> None:
    await query.answer(_("Die keuze ken ik niet."), show_alert=True)


async def _stop_typing(state: FSMContext) -> None:
    """Leaving the activities card ends the typing step: later words are no activity."""
    if await state.get_state() == PreparingPeriod.activity_name.state:
        await state.clear()


# --- which period --------------------------------------------------------------------------


async def start(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """/voorbereiden and "🎯 Doelen klaarzetten": the active group's period to prepare."""
    assert viewer.person is not None
    await _stop_typing(state)
    group = await active_group(session, teacher_id=viewer.person.id)
    if group is None:
        await message.answer(
            _("Je hebt nog geen groep. De beheerder van de school zet je in een groep."),
            reply_markup=main_menu(viewer),
        )
        return
    today = school_today(settings, clock)
    choice = await period_choice(
        session, teacher_id=viewer.person.id, group_id=group.id, today=today
    )
    assert choice is not None  # the active group is one of the teacher's own
    if choice.current is not None and choice.next is None and not choice.nearly_over(today):
        place = await workspace(
            session,
            teacher_id=viewer.person.id,
            group_id=group.id,
            period_id=choice.current.id,
            today=today,
        )
        assert place is not None
        text, keyboard = await _lines_card(session, place, 0)
        await message.answer(text, reply_markup=keyboard)
        return
    if choice.current is None and choice.next is not None:
        place = await workspace(
            session,
            teacher_id=viewer.person.id,
            group_id=group.id,
            period_id=choice.next.id,
            today=today,
        )
        assert place is not None
        text, keyboard = await _lines_card(session, place, 0)
        await message.answer(text, reply_markup=keyboard)
        return
    if choice.current is None:
        question, days = await _start_card(session, viewer, group.id, group.name, today)
        await message.answer(question, reply_markup=days)
        return
    await message.answer(_choice_text(choice, today), reply_markup=_choice_keyboard(choice))


def _choice_text(choice: PeriodChoice, today: date) -> str:
    question = (
        _("De periode is bijna om. Welke periode wil je voorbereiden?")
        if choice.nearly_over(today)
        else _("Welke periode wil je voorbereiden?")
    )
    return "🎯 " + bold(choice.group.name) + "\n" + question


def _choice_keyboard(choice: PeriodChoice) -> InlineKeyboardMarkup:
    assert choice.current is not None
    group_id = choice.group.id
    rows = [
        [
            button(
                # A button is plain text, not HTML: no escaping here.
                "📅 "
                + _("{name} (nu, tot {end})").format(
                    name=choice.current.name, end=_day(choice.current.ends_on)
                ),
                PickPeriod(group_id=group_id, period_id=choice.current.id),
            )
        ]
    ]
    if choice.next is not None:
        rows.append(
            [
                button(
                    "📅 "
                    + _("{name} (vanaf {start})").format(
                        name=choice.next.name, start=_day(choice.next.starts_on)
                    ),
                    PickPeriod(group_id=group_id, period_id=choice.next.id),
                )
            ]
        )
    else:
        rows.append([button(_("➕ Nieuwe periode daarna"), NewPeriod(group_id=group_id))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def period_picked(
    query: CallbackQuery,
    callback_data: PickPeriod,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """The current or the next period, chosen: its learning lines."""
    place = await _place(session, viewer, settings, clock, callback_data)
    if place is None:
        await _refuse(query)
        return
    await query.answer()
    await _stop_typing(state)
    text, keyboard = await _lines_card(session, place, 0)
    await edit_card(query, text, keyboard)


# --- a new period --------------------------------------------------------------------------


async def _start_card(
    session: AsyncSession, viewer: Viewer, group_id: int, group_name: str, today: date
) -> tuple[str, InlineKeyboardMarkup | None]:
    assert viewer.person is not None
    days = await start_options(session, teacher_id=viewer.person.id, group_id=group_id, today=today)
    if not days:
        return _("Ik vind geen schooldag om een periode mee te beginnen."), None
    text = "🎯 " + bold(group_name) + "\n" + _("Er is nog geen nieuwe periode. Wanneer begint hij?")
    buttons = [
        button(_day(day), NewPeriodStart(group_id=group_id, day=day.toordinal())) for day in days
    ]
    return text, InlineKeyboardMarkup(inline_keyboard=in_rows(buttons, 2))


async def new_period(
    query: CallbackQuery,
    callback_data: NewPeriod,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """ "➕ Nieuwe periode daarna": the start days after the current period."""
    assert viewer.person is not None
    today = school_today(settings, clock)
    choice = await period_choice(
        session, teacher_id=viewer.person.id, group_id=callback_data.group_id, today=today
    )
    if choice is None:
        await _refuse(query)
        return
    await query.answer()
    question, days = await _start_card(session, viewer, choice.group.id, choice.group.name, today)
    await edit_card(query, question, days)


def _valid_day(ordinal: int) -> date | None:
    try:
        return date.fromordinal(ordinal)
    except (ValueError, OverflowError):
        return None


async def start_picked(
    query: CallbackQuery,
    callback_data: NewPeriodStart,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """A start day: now the length, each with the school day it would end on."""
    assert viewer.person is not None
    today = school_today(settings, clock)
    day = _valid_day(callback_data.day)
    offered = await start_options(
        session, teacher_id=viewer.person.id, group_id=callback_data.group_id, today=today
    )
    calendar = await school_calendar_of_group(
        session, teacher_id=viewer.person.id, group_id=callback_data.group_id
    )
    if day is None or day not in offered or calendar is None:
        await _refuse(query)
        return
    await query.answer()
    rows = []
    for weeks in PERIOD_WEEKS:
        end = period_end(calendar, day, weeks)
        if end is None:
            continue
        label = _("{weeks} weken, t/m {end}").format(weeks=weeks, end=_day(end))
        rows.append(
            [
                button(
                    label,
                    NewPeriodLength(
                        group_id=callback_data.group_id, day=day.toordinal(), weeks=weeks
                    ),
                )
            ]
        )
    await edit_card(
        query,
        fill(_("De periode begint op {start}. Hoe lang duurt hij?"), start=_day(day)),
        InlineKeyboardMarkup(inline_keyboard=rows),
    )


async def length_picked(
    query: CallbackQuery,
    callback_data: NewPeriodLength,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """The period is made; its learning lines come next."""
    assert viewer.person is not None
    today = school_today(settings, clock)
    day = _valid_day(callback_data.day)
    calendar = await school_calendar_of_group(
        session, teacher_id=viewer.person.id, group_id=callback_data.group_id
    )
    end = period_end(calendar, day, callback_data.weeks) if calendar and day else None
    if day is None or calendar is None or end is None:
        await _refuse(query)
        return
    # The name is what pupils see in /doelen: in the school's language.
    with use_locale(calendar.locale):
        name = _("Periode {start} – {end}").format(
            start=format_date(day, format="d MMM", locale=calendar.locale),
            end=format_date(end, format="d MMM", locale=calendar.locale),
        )
    place = await create_period(
        session,
        teacher_id=viewer.person.id,
        group_id=callback_data.group_id,
        start=day,
        weeks=callback_data.weeks,
        name=name,
        today=today,
    )
    if place is None:
        await _refuse(query)
        return
    await query.answer(_("Periode gemaakt. 👍"))
    text, keyboard = await _lines_card(session, place, 0)
    await edit_card(query, text, keyboard)


# --- learning lines and their tiers ----------------------------------------------------------


async def _place(
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None,
    data: PickPeriod
    | PrepLines
    | PrepLine
    | PickTierGoal
    | SetTier
    | ClearTier
    | PrepActivities
    | AddActivity
    | RemoveActivity,
) -> Workspace | None:
    assert viewer.person is not None
    return await workspace(
        session,
        teacher_id=viewer.person.id,
        group_id=data.group_id,
        period_id=data.period_id,
        today=school_today(settings, clock),
    )


def _tier_text(
    prepared: PreparedTier | None, tier: int, limit: int | None = GOAL_TEXT_LIMIT
) -> str:
    stars = TIER_STARS[tier]
    if prepared is None:
        return f"{stars} " + _("nog leeg")
    goal_text = shorten(prepared.goal.text, limit) if limit else prepared.goal.text
    return f"{stars} " + _goal_line(prepared.goal.code, goal_text)


def _header(place: Workspace) -> str:
    return "🎯 " + bold(place.group.name) + " · " + _period_label(place.period)


async def _lines_card(
    session: AsyncSession, place: Workspace, page: int
) -> tuple[str, InlineKeyboardMarkup]:
    lines = await line_preparations(session, place=place)
    pages = max(1, (len(lines) + LINES_PER_PAGE - 1) // LINES_PER_PAGE)
    page = min(max(page, 0), pages - 1)
    shown = lines[page * LINES_PER_PAGE : (page + 1) * LINES_PER_PAGE]
    text = [_header(place)]
    if not lines:
        text.append(_("De school heeft nog geen doelen ingelezen. Vraag het de beheerder."))
    else:
        text.append(
            _("Per leerlijn kiezen je leerlingen uit deze niveaus in /doelen.")
            if place.teacher_led
            else _(
                "Let op: in deze groep kiezen leerlingen zelf hun doelen. Deze niveaus zien ze "
                "niet in /doelen; de activiteiten wel in hun weekplan."
            )
        )
        if pages > 1:
            text.append(_("Bladzijde {page} van {pages}").format(page=page + 1, pages=pages))
    for line in shown:
        text += ["", bold(line.line_name)]
        text += [_tier_text(line.at(tier), tier) for tier in TIERS]
    rows = [
        [
            button(
                f"{shorten(line.line_name, 36)} ({len(line.tiers)}/{len(TIERS)})",
                PrepLine(group_id=place.group.id, period_id=place.period.id, line_id=line.line_id),
            )
        ]
        for line in shown
    ]
    navigation = []
    if page > 0:
        navigation.append(
            button(
                "⬅️", PrepLines(group_id=place.group.id, period_id=place.period.id, page=page - 1)
            )
        )
    if page < pages - 1:
        navigation.append(
            button(
                "➡️", PrepLines(group_id=place.group.id, period_id=place.period.id, page=page + 1)
            )
        )
    if navigation:
        rows.append(navigation)
    rows.append([button(_("✅ Klaar"), PrepDone())])
    return "\n".join(text), InlineKeyboardMarkup(inline_keyboard=rows)


async def lines_page(
    query: CallbackQuery,
    callback_data: PrepLines,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """Another page of learning lines."""
    place = await _place(session, viewer, settings, clock, callback_data)
    if place is None:
        await _refuse(query)
        return
    await query.answer()
    await _stop_typing(state)
    text, keyboard = await _lines_card(session, place, min(callback_data.page, MAX_PAGE))
    await edit_card(query, text, keyboard)


def _line_card(
    place: Workspace, line: LinePreparation, note: str = ""
) -> tuple[str, InlineKeyboardMarkup]:
    text = [_header(place), "", bold(line.line_name) + fill(" ({set})", set=line.goal_set_name)]
    text += [_tier_text(line.at(tier), tier, limit=None) for tier in TIERS]
    if note:
        text += ["", note]
    group_id, period_id = place.group.id, place.period.id
    rows = []
    for tier in TIERS:
        prepared = line.at(tier)
        stars = TIER_STARS[tier]
        pick = PickTierGoal(
            group_id=group_id, period_id=period_id, line_id=line.line_id, tier=tier, page=0
        )
        if prepared is None:
            rows.append([button(f"{stars} " + _("Kies een doel"), pick)])
            continue
        rows.append(
            [
                button(f"{stars} " + _("Ander doel"), pick),
                button(
                    "📝 " + _("Activiteiten"),
                    PrepActivities(
                        group_id=group_id, period_id=period_id, goal_id=prepared.goal.id
                    ),
                ),
                button(
                    "🗑 " + _("Leegmaken"),
                    ClearTier(
                        group_id=group_id, period_id=period_id, line_id=line.line_id, tier=tier
                    ),
                ),
            ]
        )
    rows.append(
        [
            button(
                _("⬅️ Alle leerlijnen"),
                PrepLines(group_id=group_id, period_id=period_id, page=0),
            )
        ]
    )
    return "\n".join(text), InlineKeyboardMarkup(inline_keyboard=rows)


async def line_opened(
    query: CallbackQuery,
    callback_data: PrepLine,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """One learning line: its three tiers, each to set, replace or clear."""
    place = await _place(session, viewer, settings, clock, callback_data)
    line = (
        await line_preparation(session, place=place, line_id=callback_data.line_id)
        if place is not None
        else None
    )
    if place is None or line is None:
        await _refuse(query)
        return
    await query.answer()
    await _stop_typing(state)
    text, keyboard = _line_card(place, line)
    await edit_card(query, text, keyboard)


async def tier_goals(
    query: CallbackQuery,
    callback_data: PickTierGoal,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """The goals of the line, a page at a time, to put at one tier."""
    place = await _place(session, viewer, settings, clock, callback_data)
    line = (
        await line_preparation(session, place=place, line_id=callback_data.line_id)
        if place is not None
        else None
    )
    if place is None or line is None or callback_data.tier not in TIERS:
        await _refuse(query)
        return
    goals = await goals_of_line(session, place=place, line_id=line.line_id)
    await query.answer()
    pages = max(1, (len(goals) + GOALS_PER_PAGE - 1) // GOALS_PER_PAGE)
    page = min(max(callback_data.page, 0), pages - 1)
    shown = goals[page * GOALS_PER_PAGE : (page + 1) * GOALS_PER_PAGE]
    tier = callback_data.tier
    tier_of = {prepared.goal.id: prepared.tier for prepared in line.tiers}
    text = [
        fill(
            _("Welk doel zet je klaar als {stars} bij {line}?"),
            stars=TIER_STARS[tier],
            line=line.line_name,
        ),
        "",
    ]
    rows = []
    for goal in shown:
        mark = f"{TIER_STARS[tier_of[goal.id]]} " if goal.id in tier_of else ""
        text.append(mark + _goal_line(goal.code, goal.text))
        rows.append(
            [
                button(
                    mark + shorten(f"{goal.code} {goal.text}", 44),
                    SetTier(
                        group_id=place.group.id,
                        period_id=place.period.id,
                        tier=tier,
                        goal_id=goal.id,
                    ),
                )
            ]
        )
    navigation = []
    for target, label in ((page - 1, "⬅️"), (page + 1, "➡️")):
        if 0 <= target < pages:
            navigation.append(
                button(
                    label,
                    PickTierGoal(
                        group_id=place.group.id,
                        period_id=place.period.id,
                        line_id=line.line_id,
                        tier=tier,
                        page=target,
                    ),
                )
            )
    if navigation:
        rows.append(navigation)
    rows.append(
        [
            button(
                _("⬅️ Terug"),
                PrepLine(group_id=place.group.id, period_id=place.period.id, line_id=line.line_id),
            )
        ]
    )
    await edit_card(query, "\n".join(text), InlineKeyboardMarkup(inline_keyboard=rows))


def _keeping_note(count: int) -> str:
    if not count:
        return ""
    return ngettext(
        "{count} leerling koos het vorige doel al en houdt het.",
        "{count} leerlingen kozen het vorige doel al en houden het.",
        count,
    ).format(count=count)


async def tier_set(
    query: CallbackQuery,
    callback_data: SetTier,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """A goal at a tier: set, or replacing what was there; back to the line."""
    assert viewer.person is not None
    place = await _place(session, viewer, settings, clock, callback_data)
    change = (
        await set_tier(
            session,
            place=place,
            teacher_id=viewer.person.id,
            tier=callback_data.tier,
            goal_id=callback_data.goal_id,
        )
        if place is not None
        else None
    )
    if place is None or change is None or change.goal is None:
        await _refuse(query)
        return
    done = fill(
        _("Klaargezet: {stars} {goal}"),
        stars=TIER_STARS[change.tier],
        goal=shorten(change.goal.text, 150),
    )
    await _back_to_line(query, session, place, change, done)


async def tier_cleared(
    query: CallbackQuery,
    callback_data: ClearTier,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """🗑 a tier: it leaves the offer; pupils who chose its goal keep it."""
    assert viewer.person is not None
    place = await _place(session, viewer, settings, clock, callback_data)
    change = (
        await clear_tier(
            session,
            place=place,
            teacher_id=viewer.person.id,
            line_id=callback_data.line_id,
            tier=callback_data.tier,
        )
        if place is not None
        else None
    )
    if place is None or change is None:
        await _refuse(query)
        return
    done = fill(_("{stars} is weer leeg."), stars=TIER_STARS[change.tier])
    await _back_to_line(query, session, place, change, done)


async def _back_to_line(
    query: CallbackQuery, session: AsyncSession, place: Workspace, change: TierChange, done: str
) -> None:
    """The tap's short confirmation, and the line's card as it is now."""
    await query.answer(done)
    line = await line_preparation(session, place=place, line_id=change.line_id)
    assert line is not None
    text, keyboard = _line_card(place, line, _keeping_note(change.pupils_keeping))
    await edit_card(query, text, keyboard)


# --- activities ----------------------------------------------------------------------------


def _activities_card(
    place: Workspace,
    prepared: PreparedTier,
    activities: list[ActivityItem],
    *,
    typing: bool,
    note: str = "",
) -> tuple[str, InlineKeyboardMarkup]:
    group_id, period_id = place.group.id, place.period.id
    text = [
        "📝 "
        + fill(
            _("Activiteiten bij {stars} {goal}"),
            stars=TIER_STARS[prepared.tier],
            goal=prepared.goal.text,
        ),
        "",
    ]
    for number, activity in enumerate(activities, start=1):
        line = fill("{number}. {text}", number=number, text=activity.text)
        if activity.in_plans:
            line += " " + ngettext(
                "(in {count} weekplan)", "(in {count} weekplannen)", activity.in_plans
            ).format(count=activity.in_plans)
        text.append(line)
    if not activities:
        text.append(_("Nog geen activiteiten."))
    text += ["", _("Leerlingen kiezen hieruit in hun weekplan.")]
    if note:
        text += ["", note]
    if typing:
        text += [
            "",
            fill(
                _("Typ de naam van een activiteit (hooguit {limit} tekens), of tik op Klaar."),
                limit=MAX_ACTIVITY_TEXT,
            ),
        ]
    rows = [
        [
            button(
                "🗑 " + shorten(activity.text, 40),
                RemoveActivity(group_id=group_id, period_id=period_id, activity_id=activity.id),
            )
        ]
        for activity in activities
    ]
    if typing:
        rows.append(
            [
                button(
                    _("✅ Klaar"),
                    PrepActivities(
                        group_id=group_id, period_id=period_id, goal_id=prepared.goal.id
                    ),
                )
            ]
        )
    else:
        rows.append(
            [
                button(
                    _("➕ Activiteit toevoegen"),
                    AddActivity(group_id=group_id, period_id=period_id, goal_id=prepared.goal.id),
                )
            ]
        )
    rows.append(
        [
            button(
                _("⬅️ Terug"),
                PrepLine(group_id=group_id, period_id=period_id, line_id=prepared.goal.line_id),
            )
        ]
    )
    return "\n".join(text), InlineKeyboardMarkup(inline_keyboard=rows)


async def _activities(
    session: AsyncSession, place: Workspace, goal_id: int
) -> tuple[PreparedTier, list[ActivityItem]] | None:
    prepared = await prepared_goal(session, place=place, goal_id=goal_id)
    activities = await activities_of(session, place=place, goal_id=goal_id)
    if prepared is None or activities is None:
        return None
    return prepared, activities


async def activities_opened(
    query: CallbackQuery,
    callback_data: PrepActivities,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """The activities of a prepared goal ("✅ Klaar" after typing comes here too)."""
    place = await _place(session, viewer, settings, clock, callback_data)
    found = await _activities(session, place, callback_data.goal_id) if place else None
    if place is None or found is None:
        await _refuse(query)
        return
    await query.answer()
    await _stop_typing(state)
    text, keyboard = _activities_card(place, *found, typing=False)
    await edit_card(query, text, keyboard)


async def add_tapped(
    query: CallbackQuery,
    callback_data: AddActivity,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """ "➕ Activiteit toevoegen": the names are typed next, one message each."""
    place = await _place(session, viewer, settings, clock, callback_data)
    found = await _activities(session, place, callback_data.goal_id) if place else None
    if place is None or found is None:
        await _refuse(query)
        return
    await query.answer()
    await state.set_state(PreparingPeriod.activity_name)
    await state.set_data(
        {
            "group_id": place.group.id,
            "period_id": place.period.id,
            "goal_id": callback_data.goal_id,
        }
    )
    text, keyboard = _activities_card(place, *found, typing=True)
    await edit_card(query, text, keyboard)


async def activity_typed(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """A typed activity name: added (or kindly refused); the next one may follow."""
    assert viewer.person is not None and message.text is not None
    data = await state.get_data()
    place = await workspace(
        session,
        teacher_id=viewer.person.id,
        group_id=int(data.get("group_id") or 0),
        period_id=int(data.get("period_id") or 0),
        today=school_today(settings, clock),
    )
    goal_id = int(data.get("goal_id") or 0)
    result = (
        await add_activity(
            session, place=place, teacher_id=viewer.person.id, goal_id=goal_id, text=message.text
        )
        if place is not None
        else None
    )
    if place is None or result is None:
        # The goal left the offer meanwhile (a co-teacher), or the teacher left the group.
        await state.clear()
        await message.answer(
            _("Dit doel staat niet meer klaar voor deze periode. Begin opnieuw met /voorbereiden."),
            reply_markup=main_menu(viewer),
        )
        return
    outcome, item = result
    if outcome is ActivityOutcome.TOO_LONG:
        await message.answer(
            _("Dat is wat lang. Kun je het korter zeggen? (hooguit {limit} tekens)").format(
                limit=MAX_ACTIVITY_TEXT
            )
        )
        return
    if outcome is ActivityOutcome.EMPTY:
        await re_ask(message)
        return
    typing = True
    if outcome is ActivityOutcome.ADDED:
        assert item is not None
        note = "➕ " + fill(_("Toegevoegd: {text}"), text=item.text)
    elif outcome is ActivityOutcome.DUPLICATE:
        assert item is not None
        note = fill(_("„{text}” staat er al bij dit doel. 🙂"), text=item.text)
    else:
        note = _("Dit doel heeft al {limit} activiteiten. Haal er eerst een weg.").format(
            limit=MAX_ACTIVITIES_PER_GOAL
        )
        typing = False
        await state.clear()
    found = await _activities(session, place, goal_id)
    assert found is not None
    text, keyboard = _activities_card(place, *found, typing=typing, note=note)
    await message.answer(text, reply_markup=keyboard)


async def remove_tapped(
    query: CallbackQuery,
    callback_data: RemoveActivity,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    """🗑 an activity: off the list; a pupil who planned it keeps it in their week plan."""
    place = await _place(session, viewer, settings, clock, callback_data)
    removed = (
        await remove_activity(session, place=place, activity_id=callback_data.activity_id)
        if place is not None
        else None
    )
    if place is None or removed is None:
        await _refuse(query)
        return
    await query.answer()
    note = "🗑 " + fill(_("Weggehaald: {text}"), text=removed.text)
    if removed.in_plans:
        note += "\n" + ngettext(
            "Het staat in {count} weekplan; daar blijft het staan.",
            "Het staat in {count} weekplannen; daar blijft het staan.",
            removed.in_plans,
        ).format(count=removed.in_plans)
    found = await _activities(session, place, removed.goal_id)
    assert found is not None
    typing = await state.get_state() == PreparingPeriod.activity_name.state
    text, keyboard = _activities_card(place, *found, typing=typing, note=note)
    await edit_card(query, text, keyboard)


async def re_ask(message: Message) -> None:
    """Anything but a name while a name is asked for."""
    await message.answer(
        _("Typ de naam van de activiteit, of tik op Klaar. Stoppen kan met /annuleer.")
    )


async def done(query: CallbackQuery, state: FSMContext) -> None:
    """ "✅ Klaar" under the learning lines."""
    await query.answer()
    await _stop_typing(state)
    await edit_card(query, _("Klaar! 👍 Aanpassen kan altijd met /voorbereiden."))


def build_router() -> Router:
    """The buttons and the typing step; /voorbereiden and the menu button are registered with
    the teacher's commands (handlers/teacher.py), before the refusal for other roles."""
    router = Router(name="period_goals")
    teacher = HasRole(Role.TEACHER)
    router.callback_query.register(period_picked, PickPeriod.filter(), teacher)
    router.callback_query.register(new_period, NewPeriod.filter(), teacher)
    router.callback_query.register(start_picked, NewPeriodStart.filter(), teacher)
    router.callback_query.register(length_picked, NewPeriodLength.filter(), teacher)
    router.callback_query.register(lines_page, PrepLines.filter(), teacher)
    router.callback_query.register(line_opened, PrepLine.filter(), teacher)
    router.callback_query.register(tier_goals, PickTierGoal.filter(), teacher)
    router.callback_query.register(tier_set, SetTier.filter(), teacher)
    router.callback_query.register(tier_cleared, ClearTier.filter(), teacher)
    router.callback_query.register(activities_opened, PrepActivities.filter(), teacher)
    router.callback_query.register(add_tapped, AddActivity.filter(), teacher)
    router.callback_query.register(remove_tapped, RemoveActivity.filter(), teacher)
    router.callback_query.register(done, PrepDone.filter(), teacher)
    router.message.register(activity_typed, PreparingPeriod.activity_name, TYPED, teacher)
    router.message.register(re_ask, PreparingPeriod.activity_name, ~F.text.startswith("/"))
    return router
