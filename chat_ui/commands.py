"""The "/" command menu Telegram shows: the general commands for everyone, and for a linked
person the commands of their role, in their language (set per private chat)."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat
from aiogram.utils.i18n.lazy_proxy import LazyProxy

from language.i18n import __
from storage.accounts import Viewer
from storage.models import Role

log = logging.getLogger(__name__)

GENERAL: tuple[tuple[str, LazyProxy], ...] = (
    # parents
    ("start", __("Begin, of terug naar het menu")),
    # parents
    ("help", __("Hulp")),
    # parents
    ("taal", __("Kies je taal")),
    # parents
    ("annuleer", __("Stop wat je nu doet")),
)
BY_ROLE: dict[Role, tuple[tuple[str, LazyProxy], ...]] = {
    Role.PUPIL: (
        ("reflectie", __("Vertel hoe het vandaag ging")),
        ("weekplan", __("Je weekplan")),
        ("doelen", __("Kies je doelen")),
        ("mijndoelen", __("Waar sta je op je doelen?")),
        ("portfolio", __("Je bewaarde werk")),
        ("terugkijken", __("Je laatste twee weken")),
        ("mijnplan", __("Je eigen plan")),
        ("vraagfeedback", __("Vraag je ouders om feedback op je plan")),
    ),
    Role.PARENT: (
        # parents
        ("overzicht", __("Het weekoverzicht van je kind")),
        # parents
        ("instellingen", __("Wat je ontvangt en wanneer")),
        # parents
        ("gesprek", __("Gesprekken waarvoor je bent uitgenodigd")),
    ),
    Role.TEACHER: (
        ("obs", __("Snel een notitie")),
        ("nietgezien", __("Wie heb je een tijd niet gezien?")),
        ("werk", __("Werk van je leerlingen bekijken")),
        ("plannen", __("Eigen plannen van je leerlingen: tops & tips")),
        ("tijdlijn", __("Alles van een leerling")),
        ("zoek", __("Zoek in je notities")),
        ("klas", __("Waar staat je groep?")),
        ("niveau", __("Geef een leerling een niveau")),
        ("voorbereiden", __("Doelen en activiteiten klaarzetten voor een periode")),
        ("groep", __("Kies je groep")),
        ("gesprek", __("Gesprekken plannen en afronden")),
    ),
    Role.ADMIN: (
        ("export", __("Alle gegevens van een leerling, als zip")),
        ("wis", __("Alle gegevens van een leerling wissen")),
        ("audit", __("Wie exporteerde, wiste of wijzigde wat")),
    ),
}


def general_commands() -> list[BotCommand]:
    """In the current locale (the caller sets it)."""
    return [BotCommand(command=name, description=str(text)) for name, text in GENERAL]


def commands_for(role: Role | None) -> list[BotCommand]:
    own = BY_ROLE.get(role, ()) if role is not None else ()
    return [BotCommand(command=name, description=str(text)) for name, text in own] + (
        general_commands()
    )


async def show_commands(bot: Bot, chat_id: int, viewer: Viewer) -> None:
    """After joining, switching role or language: the menu of this person, in this chat only."""
    role = viewer.person.role if viewer.person is not None else None
    try:
        await bot.set_my_commands(commands_for(role), scope=BotCommandScopeChat(chat_id=chat_id))
    except TelegramAPIError:
        # The menu is a convenience; joining or switching must not fail for it.
        log.warning("could not set the command menu for a chat")
