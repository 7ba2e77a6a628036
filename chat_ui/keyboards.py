"""Keyboards shared by several handlers: the main menu per role, language and person choice.

Callback data is small and typed (aiogram CallbackData); what arrives is never trusted: every
id in it is checked again by storage before anything happens.
"""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)

from language.i18n import _, __
from language.labels import role_label
from storage.accounts import Viewer
from storage.models import Role

# Each language in its own name. The first two are complete for everyone; the others are
# the home languages of many parents and cover everything a parent sees (parents only).
LANGUAGE_NAMES = {
    "nl": "🇳🇱 Nederlands",
    "en": "🇬🇧 English",
    "tr": "🇹🇷 Türkçe",
    "ar": "العربية",
    "pl": "🇵🇱 Polski",
    "uk": "🇺🇦 Українська",
}
PARENT_ONLY_LANGUAGES = frozenset({"tr", "ar", "pl", "uk"})


class LanguageChoice(CallbackData, prefix="lang"):
    code: str


class PersonChoice(CallbackData, prefix="as"):
    person_id: int


# Lazy labels: the same objects build the keyboard (in the user's language) and match the
# button the user pressed (in whatever language the keyboard was shown).
# parents
BUTTON_HELP = __("❓ Hulp")
# parents
BUTTON_LANGUAGE = __("🌐 Taal")
# parents
BUTTON_SWITCH = __("🔁 Wissel van rol")
BUTTON_MY_GROUP = __("👥 Mijn groep")
BUTTON_MY_GROUPS = __("👥 Mijn groepen")
# parents
BUTTON_MY_CHILDREN = __("👨‍👩‍👧 Mijn kinderen")
BUTTON_SCHOOL = __("🏫 School")
BUTTON_REFLECT = __("✍️ Reflectie")
BUTTON_WEEK_PLAN = __("📅 Weekplan")
BUTTON_MY_GOALS = __("🎯 Mijn doelen")
BUTTON_LOOK_BACK = __("🔙 Terugkijken")
BUTTON_MY_PLAN = __("📝 Mijn plan")
BUTTON_NOTE = __("📝 Notitie")
BUTTON_UNSEEN = __("👀 Nog niet gezien")
BUTTON_TIMELINE = __("🔎 Zoeken")
BUTTON_CLASS = __("📊 Klas")
BUTTON_PREPARE = __("🎯 Doelen klaarzetten")
BUTTON_WORK = __("📥 Werk")
BUTTON_TALKS = __("🗣 Gesprekken")
BUTTON_PORTFOLIO = __("🗂 Portfolio")
# parents
BUTTON_SUMMARY = __("📬 Overzicht")
# parents
BUTTON_PARENT_SETTINGS = __("⚙️ Instellingen")


def main_menu(viewer: Viewer) -> ReplyKeyboardMarkup | None:
    if viewer.person is None:
        return None
    role_rows = {
        Role.PUPIL: [
            [BUTTON_REFLECT, BUTTON_WEEK_PLAN],
            [BUTTON_MY_GOALS, BUTTON_LOOK_BACK],
            [BUTTON_MY_GROUP, BUTTON_MY_PLAN, BUTTON_PORTFOLIO],
        ],
        Role.TEACHER: [
            [BUTTON_NOTE, BUTTON_UNSEEN],
            [BUTTON_MY_GROUPS, BUTTON_TIMELINE],
            [BUTTON_CLASS, BUTTON_PREPARE],
            [BUTTON_WORK, BUTTON_TALKS],
        ],
        Role.PARENT: [[BUTTON_SUMMARY, BUTTON_MY_CHILDREN], [BUTTON_PARENT_SETTINGS]],
        Role.ADMIN: [[BUTTON_SCHOOL]],
    }[viewer.person.role]
    last_row = [BUTTON_HELP, BUTTON_LANGUAGE]
    if len(viewer.persons) > 1:
        last_row.append(BUTTON_SWITCH)
    rows = [*role_rows, last_row]
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=str(label)) for label in row] for row in rows],
        resize_keyboard=True,
        is_persistent=True,
    )


def languages_for(role: Role | None) -> list[str]:
    """Pupils and teachers choose between the complete languages; parents (and newcomers,
    who may be parents) also get the parents' home languages."""
    if role in (None, Role.PARENT):
        return list(LANGUAGE_NAMES)
    return [code for code in LANGUAGE_NAMES if code not in PARENT_ONLY_LANGUAGES]


def language_keyboard(current: str, role: Role | None = None) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            text=("✅ " if code == current else "") + LANGUAGE_NAMES[code],
            callback_data=LanguageChoice(code=code).pack(),
        )
        for code in languages_for(role)
    ]
    return InlineKeyboardMarkup(inline_keyboard=in_rows(buttons, 2))


def person_keyboard(viewer: Viewer) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=("✅ " if viewer.person and person.id == viewer.person.id else "")
                    # parents
                    + _("{name} ({role})").format(name=person.name, role=role_label(person.role)),
                    callback_data=PersonChoice(person_id=person.id).pack(),
                )
            ]
            for person in viewer.persons
        ]
    )


def button(text: str, data: CallbackData) -> InlineKeyboardButton:
    """An inline button; `data` is one of the typed CallbackData classes of a conversation."""
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def shorten(text: str, limit: int = 48) -> str:
    """Goal texts and captions on buttons: long ones are cut so a phone shows them whole."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def in_rows(buttons: list[InlineKeyboardButton], width: int) -> list[list[InlineKeyboardButton]]:
    return [buttons[index : index + width] for index in range(0, len(buttons), width)]


async def edit_card(
    query: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup | None = None
) -> None:
    """Replace the message the pressed button belongs to (one card per dialogue)."""
    if isinstance(query.message, Message):
        await query.message.edit_text(text, reply_markup=keyboard)
