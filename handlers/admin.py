"""A school admin's privacy commands: `/export`, `/wis` (erase) and `/audit`.

An admin acts only on pupils of their own school: every lookup and every id in a button goes
through `storage.pupil_lookup` with the admin's school. Erasing asks first, with a button that
works for a short time only, so an old confirmation scrolled up in the chat cannot erase
anyone by accident; the button's data is re-checked like any other (it is never trusted).
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.texts import bold, fill
from config.settings import Settings
from language.i18n import _, use_locale
from services.clock import Clock
from services.erasure import erase_pupil
from services.export import MAX_CHAT_BYTES, export_bytes, export_filename, export_locale
from storage.accounts import PersonRef
from storage.audit import (
    ACTION_ERASE,
    ACTION_EXPORT,
    ACTION_GOALS_IMPORT,
    ACTION_INVITE,
    ACTION_INVITE_SEEN_IN_GROUP,
    ACTION_PEOPLE_IMPORT,
    ACTION_PERIOD_CREATE,
    ACTION_PERIOD_GOAL,
    AuditEntry,
    latest_audit,
    record_export,
)
from storage.erasure import erasure_preview
from storage.models import Role
from storage.pupil_lookup import PupilMatch, find_pupils, pupil_of_school
from storage.subject_data import collect_pupil_data

# How long the erase button works after /wis.
CONFIRM_FOR = timedelta(minutes=2)
AUDIT_LINES = 15


class EraseConfirm(CallbackData, prefix="wis"):
    pupil_id: int
    issued: int  # unix seconds when /wis was typed
    ok: bool


async def _one_pupil(
    message: Message, session: AsyncSession, admin: PersonRef, query: str, command: str
) -> PupilMatch | None:
    """The single pupil of the admin's school the text names; otherwise say why and None."""
    if not query.strip():
        await message.answer(
            fill(
                _("Typ achter /{command} het leerlingnummer of de naam, bijv. /{command} P12"),
                command=command,
            )
        )
        return None
    found = await find_pupils(session, school_id=admin.school_id, query=query)
    if not found:
        await message.answer(fill(_("Geen leerling gevonden bij „{query}”."), query=query))
        return None
    if len(found) > 1:
        lines = [_("Meer leerlingen passen. Typ het leerlingnummer:")]
        lines += [fill("{id} – {name}", id=pupil.external_id, name=pupil.name) for pupil in found]
        await message.answer("\n".join(lines))
        return None
    return found[0]


async def export_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """/export PUPIL: the pupil's whole portfolio as one zip, to this admin only."""
    pupil = await _one_pupil(message, session, person, command.args or "", "export")
    if pupil is None:
        return
    data = await collect_pupil_data(session, pupil_id=pupil.id, now=clock.now())
    with use_locale(export_locale(data)):
        archive = await export_bytes(data, media_dir=settings.media_dir)
    if len(archive) > MAX_CHAT_BYTES:
        await message.answer(
            fill(
                _(
                    "Deze export is te groot voor Telegram. Maak hem op de server met: "
                    "portfolio-bot export {id}"
                ),
                id=pupil.external_id,
            )
        )
        return
    # Logged before sending: if sending fails, the update's transaction rolls back the entry.
    await record_export(session, data=data, actor_person_id=person.id, via="chat")
    await message.answer_document(
        BufferedInputFile(archive, export_filename(data)),
        caption=fill(
            _(
                "Alle gegevens van {name}. Open index.html in een browser; data.json bevat "
                "hetzelfde voor een computer. Privé-notities van leerkrachten staan er niet in. "
                "Bewaar het bestand veilig en verwijder het na het overdragen."
            ),
            name=pupil.name,
        ),
    )


_COUNT_LABELS = {
    "reflections": lambda: _("reflecties"),
    "evidence": lambda: _("bewijsstukken"),
    "goals": lambda: _("doelen"),
    "assessments": lambda: _("beoordelingen"),
    "week_plans": lambda: _("weekplannen"),
    "learning_plans": lambda: _("eigen plannen"),
    "feedback": lambda: _("tops & tips"),
    "talks": lambda: _("gesprekken"),
    "observations_removed": lambda: _("notities (alleen over deze leerling)"),
    "observations_unlinked": lambda: _("notities ook over anderen (de naam gaat eruit)"),
    "parent_links": lambda: _("koppelingen met ouders"),
    "telegram_links": lambda: _("Telegram-koppeling"),
}


async def erase_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    """/wis PUPIL: shows what will go and asks to confirm within two minutes."""
    pupil = await _one_pupil(message, session, person, command.args or "", "wis")
    if pupil is None:
        return
    preview = await erasure_preview(session, pupil_id=pupil.id)
    lines = [
        fill(
            _("⚠️ Je gaat alle gegevens van {name} ({id}) wissen:"),
            name=pupil.name,
            id=pupil.external_id,
        )
    ]
    lines += [
        f"• {label()}: {preview.counts[key]}"
        for key, label in _COUNT_LABELS.items()
        if preview.counts.get(key)
    ]
    lines += [
        "",
        bold(_("Dit kan niet ongedaan worden gemaakt.")),
        fill(
            _("Wil de leerling of een ouder de gegevens hebben? Maak dan eerst /export {id}."),
            id=pupil.external_id,
        ),
        _("De knop werkt twee minuten."),
    ]
    issued = int(clock.now().timestamp())
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=fill(_("🗑 Ja, wis {name} definitief"), name=pupil.name),
                    callback_data=EraseConfirm(pupil_id=pupil.id, issued=issued, ok=True).pack(),
                )
            ],
            [
                InlineKeyboardButton(
                    text=_("Nee, niet wissen"),
                    callback_data=EraseConfirm(pupil_id=pupil.id, issued=issued, ok=False).pack(),
                )
            ],
        ]
    )
    await message.answer("\n".join(lines), reply_markup=keyboard)


async def erase_confirmed(
    query: CallbackQuery,
    callback_data: EraseConfirm,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    message = query.message if isinstance(query.message, Message) else None
    if not callback_data.ok:
        await query.answer()
        if message is not None:
            await message.edit_text(_("Niet gewist."))
        return
    pupil = await pupil_of_school(
        session, school_id=person.school_id, pupil_id=callback_data.pupil_id
    )
    if pupil is None:
        await query.answer(_("Deze leerling bestaat niet (meer)."), show_alert=True)
        return
    age = clock.now().timestamp() - callback_data.issued
    if not 0 <= age <= CONFIRM_FOR.total_seconds():
        await query.answer(
            _("Deze knop is verlopen. Typ /wis opnieuw als je echt wilt wissen."), show_alert=True
        )
        return
    await erase_pupil(
        session,
        pupil_id=pupil.id,
        media_dir=settings.media_dir,
        actor_person_id=person.id,
    )
    await query.answer()
    if message is not None:
        # The name goes from the confirmation too: the chat keeps only the pupil number.
        await message.edit_text(
            fill(_("Gewist: alle gegevens van leerling {id}."), id=pupil.external_id)
        )


def _action(entry: AuditEntry) -> str:
    labels = {
        ACTION_EXPORT: _("export"),
        ACTION_PEOPLE_IMPORT: _("leerlingen en ouders ingelezen"),
        ACTION_GOALS_IMPORT: _("doelen ingelezen"),
        ACTION_INVITE: _("nieuwe code"),
        ACTION_INVITE_SEEN_IN_GROUP: _("code ingetrokken: stond in een groepsgesprek"),
        ACTION_PERIOD_CREATE: _("nieuwe periode"),
        ACTION_PERIOD_GOAL: _("doel van een periode klaargezet"),
    }
    if entry.action in labels:
        return labels[entry.action]
    if entry.action == ACTION_ERASE:
        if str(entry.details.get("reason", "")).startswith("retention"):
            return _("gewist (bewaartermijn voorbij)")
        return _("gewist")
    return entry.action


async def audit_command(
    message: Message, session: AsyncSession, person: PersonRef, settings: Settings
) -> None:
    """/audit: the latest exports, erasures and changes in the admin's school."""
    entries = await latest_audit(session, school_id=person.school_id, limit=AUDIT_LINES)
    if not entries:
        await message.answer(_("Het logboek is nog leeg."))
        return
    zone = ZoneInfo(settings.timezone)
    lines = [bold(_("Logboek, nieuwste eerst:"))]
    for entry in entries:
        actor = entry.actor_name or entry.actor_label
        subject = entry.subject_name or entry.subject_ref or entry.subject_kind
        lines.append(
            fill(
                "{at} · {actor} · {action} · {subject}",
                at=f"{entry.at.astimezone(zone):%d-%m-%Y %H:%M}",
                actor=actor,
                action=_action(entry),
                subject=subject,
            )
        )
    await message.answer("\n".join(lines))


async def not_for_you(message: Message) -> None:
    await message.answer(_("Dat kan alleen de beheerder van de school."))


def build_router() -> Router:
    router = Router(name="admin")
    admin = HasRole(Role.ADMIN)
    router.message.register(export_command, Command("export"), admin)
    router.message.register(erase_command, Command("wis"), admin)
    router.message.register(audit_command, Command("audit"), admin)
    router.callback_query.register(erase_confirmed, EraseConfirm.filter(), admin)
    router.message.register(not_for_you, Command("export", "wis", "audit"))
    router.callback_query.register(_refuse_button, EraseConfirm.filter())
    return router


async def _refuse_button(query: CallbackQuery) -> None:
    await query.answer(_("Dat kan alleen de beheerder van de school."), show_alert=True)
