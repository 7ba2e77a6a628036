"""/instellingen for parents: what arrives and when, on one card that edits itself.

The weekly summary on or off and its day and time, talk reminders, feedback notices, and the
quiet hours in which nothing arrives. Every tap saves at once (`storage.parents`), so there is
no half-finished state to resume; the reminder planner and dispatcher read the same values.

```mermaid
stateDiagram-v2
    [*] --> card: /instellingen or ⚙️ Instellingen
    card --> card: toggle summary / talks / feedback
    card --> day: 📅 day
    day --> card: a weekday
    card --> time: 🕓 time
    time --> card: a time
    card --> quiet_start: 🌙 quiet hours
    quiet_start --> quiet_end: a start time
    quiet_end --> card: an end time
    card --> [*]: ✅ Klaar
```
"""

from __future__ import annotations

from datetime import time

from aiogram import Router
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from babel.dates import format_time, get_day_names
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import button, edit_card, in_rows
from chat_ui.texts import fill
from language.i18n import _, current_locale
from storage.accounts import PersonRef
from storage.models import Role
from storage.parents import (
    ParentPreferences,
    change_preferences,
    parse_hhmm,
    preferences_of,
)

SUMMARY_TIMES = ("12:00", "15:00", "16:00", "17:00", "18:00", "19:00")
QUIET_STARTS = ("19:00", "20:00", "21:00", "22:00", "23:00")
QUIET_ENDS = ("06:00", "07:00", "07:30", "08:00", "09:00")


class Setting(CallbackData, prefix="pset"):
    """A tap on the settings card: what to do, and a value for it."""

    action: str
    value: str = ""


def _on_off(value: bool) -> str:
    return _("aan") if value else _("uit")


def weekday_name(iso_weekday: int) -> str:
    return str(get_day_names("wide", locale=current_locale())[iso_weekday - 1])


def clock_time(value: time) -> str:
    return str(format_time(value, format="short", locale=current_locale()))


def settings_text(preferences: ParentPreferences) -> str:
    if preferences.weekly_summary:
        summary = fill(
            _("📬 Weekoverzicht: aan, op {day} om {time}"),
            day=weekday_name(preferences.summary_weekday),
            time=clock_time(preferences.summary_time),
        )
    else:
        summary = _("📬 Weekoverzicht: uit (vraag het op met /overzicht)")
    return "\n".join(
        [
            "<b>" + _("Wat wil je ontvangen?") + "</b>",
            "",
            summary,
            fill(
                _("📅 Herinneringen aan gesprekken: {value}"),
                value=_on_off(preferences.talk_reminders),
            ),
            fill(
                _("💬 Berichten over feedback: {value}"),
                value=_on_off(preferences.feedback_notices),
            ),
            fill(
                _("🌙 Stille uren: {start} – {end}. Dan komt er niets binnen."),
                start=clock_time(preferences.quiet_start),
                end=clock_time(preferences.quiet_end),
            ),
        ]
    )


def settings_keyboard(preferences: ParentPreferences) -> InlineKeyboardMarkup:
    rows = [
        [
            button(
                _("📬 Weekoverzicht uitzetten")
                if preferences.weekly_summary
                else _("📬 Weekoverzicht aanzetten"),
                Setting(action="summary"),
            )
        ],
    ]
    if preferences.weekly_summary:
        rows.append(
            [
                button(_("📅 Andere dag"), Setting(action="day")),
                button(_("🕓 Andere tijd"), Setting(action="time")),
            ]
        )
    rows += [
        [
            button(
                _("Gesprekken: herinnering uitzetten")
                if preferences.talk_reminders
                else _("Gesprekken: herinnering aanzetten"),
                Setting(action="talks"),
            )
        ],
        [
            button(
                _("Feedback: berichten uitzetten")
                if preferences.feedback_notices
                else _("Feedback: berichten aanzetten"),
                Setting(action="feedback"),
            )
        ],
        [button(_("🌙 Stille uren kiezen"), Setting(action="quiet"))],
        [button(_("✅ Klaar"), Setting(action="done"))],
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _times(action: str, values: tuple[str, ...]) -> list[list[InlineKeyboardButton]]:
    buttons = []
    for value in values:
        parsed = parse_hhmm(value)
        assert parsed is not None
        # Callback data cannot hold ":" (aiogram's separator): "19:00" travels as "1900".
        packed = value.replace(":", "")
        buttons.append(button(clock_time(parsed), Setting(action=action, value=packed)))
    return in_rows(buttons, 3)


def _unpacked(value: str) -> str:
    return f"{value[:2]}:{value[2:]}" if len(value) == 4 and value.isdigit() else ""


async def show_settings(message: Message, session: AsyncSession, parent: PersonRef) -> None:
    """Shows the parent's settings card."""
    preferences = await preferences_of(session, parent_id=parent.id)
    if preferences is None:
        return
    await message.answer(settings_text(preferences), reply_markup=settings_keyboard(preferences))


async def setting_tapped(
    query: CallbackQuery, callback_data: Setting, session: AsyncSession, person: PersonRef
) -> None:
    """Saves one change, or opens the choice of a day or time, and redraws the card."""
    parent_id = person.id
    current = await preferences_of(session, parent_id=parent_id)
    if current is None:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    action, value = callback_data.action, callback_data.value
    if action in ("time", "quiet_start", "quiet_end") and value:
        value = _unpacked(value)
    updated: ParentPreferences | None = current
    if action == "summary":
        updated = await change_preferences(
            session, parent_id=parent_id, weekly_summary=not current.weekly_summary
        )
    elif action == "talks":
        updated = await change_preferences(
            session, parent_id=parent_id, talk_reminders=not current.talk_reminders
        )
    elif action == "feedback":
        updated = await change_preferences(
            session, parent_id=parent_id, feedback_notices=not current.feedback_notices
        )
    elif action == "day" and not value:
        days = [
            button(weekday_name(day), Setting(action="day", value=str(day))) for day in range(1, 8)
        ]
        await query.answer()
        await edit_card(
            query,
            _("Op welke dag wil je het weekoverzicht?"),
            InlineKeyboardMarkup(inline_keyboard=in_rows(days, 2)),
        )
        return
    elif action == "day" and value.isdigit() and 1 <= int(value) <= 7:
        updated = await change_preferences(session, parent_id=parent_id, summary_weekday=int(value))
    elif action == "time" and not value:
        await query.answer()
        await edit_card(
            query,
            _("Hoe laat wil je het weekoverzicht?"),
            InlineKeyboardMarkup(inline_keyboard=_times("time", SUMMARY_TIMES)),
        )
        return
    elif action == "time" and value in SUMMARY_TIMES:
        updated = await change_preferences(
            session, parent_id=parent_id, summary_time=parse_hhmm(value)
        )
    elif action == "quiet":
        await query.answer()
        await edit_card(
            query,
            _("Vanaf hoe laat wil je geen berichten meer?"),
            InlineKeyboardMarkup(inline_keyboard=_times("quiet_start", QUIET_STARTS)),
        )
        return
    elif action == "quiet_start" and value in QUIET_STARTS:
        updated = await change_preferences(
            session, parent_id=parent_id, quiet_start=parse_hhmm(value)
        )
        await query.answer()
        await edit_card(
            query,
            _("En vanaf hoe laat mogen ze weer komen?"),
            InlineKeyboardMarkup(inline_keyboard=_times("quiet_end", QUIET_ENDS)),
        )
        return
    elif action == "quiet_end" and value in QUIET_ENDS:
        updated = await change_preferences(
            session, parent_id=parent_id, quiet_end=parse_hhmm(value)
        )
    elif action == "done":
        await query.answer()
        await edit_card(query, settings_text(current) + "\n\n" + _("Opgeslagen. ✅"))
        return
    else:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    assert updated is not None
    await query.answer(_("Opgeslagen. ✅"))
    await edit_card(query, settings_text(updated), settings_keyboard(updated))


def build_router() -> Router:
    router = Router(name="parent_settings")
    router.callback_query.register(setting_tapped, Setting.filter(), HasRole(Role.PARENT))
    return router
