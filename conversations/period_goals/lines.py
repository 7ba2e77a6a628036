"""The learning lines of the period and their three tiers: a goal set, replaced or cleared
per tier."""

from __future__ import annotations

from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import button, edit_card, shorten
from chat_ui.texts import bold, fill
from config.settings import Settings
from conversations.card import arrows, paged, refuse
from conversations.goals import TIER_STARS
from conversations.period_goals.common import (
    ClearTier,
    PickPeriod,
    PickTierGoal,
    PrepActivities,
    PrepDone,
    PrepLine,
    PrepLines,
    SetTier,
    place_of,
    stop_typing,
)
from language.i18n import _, current_locale, ngettext
from services.clock import Clock
from storage.accounts import PersonRef
from storage.period_goals import (
    TIERS,
    LinePreparation,
    PeriodRef,
    PreparedTier,
    Workspace,
    clear_tier,
    goals_of_line,
    line_preparation,
    line_preparations,
    set_tier,
)

LINES_PER_PAGE = 4
GOALS_PER_PAGE = 6
# A goal's text may be long (500 characters): the page of lines shows its start, so that
# the page always fits in one message; the line's own card shows it in full.
GOAL_TEXT_LIMIT = 90
# Forged page numbers stop here.
MAX_PAGE = 100


def _period_label(period: PeriodRef) -> str:
    return fill(
        "{name} ({start} – {end})",
        name=period.name,
        start=format_date(period.starts_on, format="d MMM", locale=current_locale()),
        end=format_date(period.ends_on, format="d MMM", locale=current_locale()),
    )


def _goal_line(goal_code: str, goal_text: str) -> str:
    return fill("{code} {goal}", code=goal_code, goal=goal_text)


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


async def lines_card(
    session: AsyncSession, place: Workspace, page: int
) -> tuple[str, InlineKeyboardMarkup]:
    lines = await line_preparations(session, place=place)
    shown = paged(lines, page, LINES_PER_PAGE)
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
        if shown.pages > 1:
            text.append(
                _("Bladzijde {page} van {pages}").format(page=shown.page + 1, pages=shown.pages)
            )
    for line in shown.shown:
        text += ["", bold(line.line_name)]
        text += [_tier_text(line.at(tier), tier) for tier in TIERS]
    rows = [
        [
            button(
                f"{shorten(line.line_name, 36)} ({len(line.tiers)}/{len(TIERS)})",
                PrepLine(group_id=place.group.id, period_id=place.period.id, line_id=line.line_id),
            )
        ]
        for line in shown.shown
    ]
    navigation = arrows(
        shown, lambda page: PrepLines(group_id=place.group.id, period_id=place.period.id, page=page)
    )
    if navigation:
        rows.append(navigation)
    rows.append([button(_("✅ Klaar"), PrepDone())])
    return "\n".join(text), InlineKeyboardMarkup(inline_keyboard=rows)


async def lines_shown(
    query: CallbackQuery,
    callback_data: PickPeriod | PrepLines,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """The learning lines of the period: the first page when the current or the next period
    is chosen, another page with ⬅️ ➡️."""
    place = await place_of(query, session, person, settings, clock, callback_data)
    if place is None:
        return
    await query.answer()
    await stop_typing(state)
    page = min(callback_data.page, MAX_PAGE) if isinstance(callback_data, PrepLines) else 0
    text, keyboard = await lines_card(session, place, page)
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


async def _line_of(
    query: CallbackQuery,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
    data: PrepLine | PickTierGoal,
) -> tuple[Workspace, LinePreparation] | None:
    """The learning line a button names, in the period it names; None (the teacher kindly
    told) when either is not the teacher's to prepare."""
    place = await place_of(query, session, person, settings, clock, data)
    if place is None:
        return None
    line = await line_preparation(session, place=place, line_id=data.line_id)
    if line is None:
        await refuse(query)
        return None
    return place, line


async def line_opened(
    query: CallbackQuery,
    callback_data: PrepLine,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """One learning line: its three tiers, each to set, replace or clear."""
    found = await _line_of(query, session, person, settings, clock, callback_data)
    if found is None:
        return
    place, line = found
    await query.answer()
    await stop_typing(state)
    text, keyboard = _line_card(place, line)
    await edit_card(query, text, keyboard)


async def tier_goals(
    query: CallbackQuery,
    callback_data: PickTierGoal,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """The goals of the line, a page at a time, to put at one tier."""
    if callback_data.tier not in TIERS:
        await refuse(query)
        return
    found = await _line_of(query, session, person, settings, clock, callback_data)
    if found is None:
        return
    place, line = found
    goals = await goals_of_line(session, place=place, line_id=line.line_id)
    await query.answer()
    shown = paged(goals, callback_data.page, GOALS_PER_PAGE)
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
    for goal in shown.shown:
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
    navigation = arrows(
        shown,
        lambda page: PickTierGoal(
            group_id=place.group.id,
            period_id=place.period.id,
            line_id=line.line_id,
            tier=tier,
            page=page,
        ),
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


async def tier_changed(
    query: CallbackQuery,
    callback_data: SetTier | ClearTier,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """A goal at a tier (set, or replacing what was there), or 🗑 a tier (it leaves the
    offer; pupils who chose its goal keep it): a short confirmation, and back to the line."""
    place = await place_of(query, session, person, settings, clock, callback_data)
    if place is None:
        return
    if isinstance(callback_data, SetTier):
        change = await set_tier(
            session,
            place=place,
            teacher_id=person.id,
            tier=callback_data.tier,
            goal_id=callback_data.goal_id,
        )
        confirmation = (
            fill(
                _("Klaargezet: {stars} {goal}"),
                stars=TIER_STARS[change.tier],
                goal=shorten(change.goal.text, 150),
            )
            if change is not None and change.goal is not None
            else ""
        )
    else:
        change = await clear_tier(
            session,
            place=place,
            teacher_id=person.id,
            line_id=callback_data.line_id,
            tier=callback_data.tier,
        )
        confirmation = (
            fill(_("{stars} is weer leeg."), stars=TIER_STARS[change.tier])
            if change is not None
            else ""
        )
    if change is None or not confirmation:
        await refuse(query)
        return
    await query.answer(confirmation)
    line = await line_preparation(session, place=place, line_id=change.line_id)
    assert line is not None
    text, keyboard = _line_card(place, line, _keeping_note(change.pupils_keeping))
    await edit_card(query, text, keyboard)


async def done(query: CallbackQuery, state: FSMContext) -> None:
    """ "✅ Klaar" under the learning lines."""
    await query.answer()
    await stop_typing(state)
    await edit_card(query, _("Klaar! 👍 Aanpassen kan altijd met /voorbereiden."))
