"""Commands that work everywhere in a private chat: /help, /taal, /annuleer, /wissel."""

from __future__ import annotations

from dataclasses import replace

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.commands import show_commands
from chat_ui.i18n import viewer_is_addressed_formally
from chat_ui.keyboards import (
    BUTTON_HELP,
    BUTTON_LANGUAGE,
    BUTTON_SWITCH,
    LANGUAGE_NAMES,
    LanguageChoice,
    PersonChoice,
    language_keyboard,
    languages_for,
    main_menu,
    person_keyboard,
)
from chat_ui.texts import fill
from language.i18n import _, current_locale, formal_address, use_locale
from language.labels import role_label
from storage.accounts import Viewer, load_viewer, set_language, switch_person
from storage.models import Role


def help_text(viewer: Viewer) -> str:
    role = viewer.person.role if viewer.person else None
    # parents
    lines = [_("<b>Zo werkt het</b>")]
    if role is None:
        # parents
        lines.append(_("Typ de uitnodigingscode die je van school kreeg, of gebruik /start."))
    elif role is Role.PUPIL:
        lines.append(_("Hier houd je je portfolio bij: je doelen, hoe het ging en je werk."))
        lines += [
            "",
            _("/reflectie – vertel hoe het vandaag ging"),
            _("/doelen – kies je doelen voor deze periode"),
            _("/weekplan – plan je week en vink af wat klaar is"),
            _("/mijndoelen – waar sta je op je doelen?"),
            _("/terugkijken – je laatste twee weken"),
            _("/mijnplan – je eigen plan"),
            _("/vraagfeedback – vraag je ouders om tops & tips op je plan"),
            _("/portfolio – je bewaarde werk"),
            _("Stuur een foto van je werk om hem te bewaren."),
        ]
    elif role is Role.TEACHER:
        lines.append(_("Hier leg je observaties vast en volg je je groep."))
        lines += [
            "",
            _("/obs Sam, Noor werkten goed samen #samenwerken – snel een notitie"),
            _("/tijdlijn naam – alles van een leerling, nieuwste eerst"),
            _("/zoek woord – zoek in je notities"),
            _("/nietgezien – wie heb je een tijd niet gezien?"),
            _("/werk – werk van je leerlingen: tops & tips, en delen met ouders goedkeuren"),
            _("/plannen – de eigen plannen van je leerlingen: tops & tips"),
            _("/klas – je groep in één overzicht: niveaus, reflecties, welbevinden"),
            _("/niveau naam – geef een leerling een niveau op een doel"),
            _("/voorbereiden – zet doelen en activiteiten klaar voor een periode"),
            _("/groep – kies welke groep je ziet (als je er meer hebt)"),
            _("/gesprek – plan een gesprek, verzet het of leg afspraken vast"),
        ]
    elif role is Role.PARENT:
        # parents
        lines.append(_("Hier zie je hoe je kind leert, en wat je kind met je deelt."))
        lines += [
            "",
            # parents
            _("/overzicht – het weekoverzicht van je kind, nu meteen"),
            # parents
            _("/instellingen – wat je ontvangt, wanneer, en je stille uren"),
            # parents
            _("/gesprek – de gesprekken waarvoor je bent uitgenodigd"),
            # parents
            _(
                "Elke week krijg je vanzelf een overzicht. "
                "Met de knoppen eronder geef je een top of een tip."
            ),
        ]
    else:
        lines.append(_("Hier zie je de stand van je school."))
        lines += [
            "",
            _("/export naam – alle gegevens van een leerling, als zip (inzagerecht)"),
            _("/wis naam – alle gegevens van een leerling wissen (na bevestiging)"),
            _("/audit – wie exporteerde, wiste of wijzigde wat"),
        ]
    lines += [
        "",
        # parents
        _("/start – begin, of terug naar het menu"),
        # parents
        _("/taal – kies je taal"),
        # parents
        _("/annuleer – stop wat je nu doet"),
    ]
    if len(viewer.persons) > 1:
        # parents
        lines.append(_("/wissel – wissel van rol"))
    # parents
    lines += ["", _("Je gegevens zijn alleen zichtbaar in dit privégesprek.")]
    return "\n".join(lines)


async def show_help(message: Message, viewer: Viewer) -> None:
    """Explains what this user can do here."""
    await message.answer(help_text(viewer), reply_markup=main_menu(viewer))


async def cancel(message: Message, state: FSMContext, viewer: Viewer) -> None:
    """Stops any dialogue; what was already saved stays saved."""
    if await state.get_state() is None:
        # parents
        await message.answer(_("Er loopt nu niets om te stoppen."), reply_markup=main_menu(viewer))
        return
    await state.clear()
    # parents
    await message.answer(_("Oké, gestopt."), reply_markup=main_menu(viewer))


async def choose_language(message: Message, viewer: Viewer) -> None:
    """Offers the languages the bot speaks (parents also their home languages)."""
    role = viewer.person.role if viewer.person is not None else None
    await message.answer(
        # parents
        _("In welke taal wil je de berichten?"),
        reply_markup=language_keyboard(current_locale(), role),
    )


async def language_chosen(
    query: CallbackQuery, callback_data: LanguageChoice, session: AsyncSession
) -> None:
    """Saves the language and shows the menu in it."""
    before = await load_viewer(session, telegram_user_id=query.from_user.id)
    role = before.person.role if before.person is not None else None
    if callback_data.code not in languages_for(role):
        # parents
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await set_language(session, telegram_user_id=query.from_user.id, locale=callback_data.code)
    viewer = await load_viewer(session, telegram_user_id=query.from_user.id)
    with use_locale(callback_data.code):
        await query.answer()
        if query.message is not None and query.bot is not None:
            await show_commands(query.bot, query.message.chat.id, viewer)
        if isinstance(query.message, Message):
            await query.message.edit_text(
                # parents
                fill(_("De taal is nu {language}."), language=LANGUAGE_NAMES[callback_data.code])
            )
            # parents
            await query.message.answer(_("Kies iets uit het menu."), reply_markup=main_menu(viewer))


async def choose_person(message: Message, viewer: Viewer) -> None:
    """Lets someone with several roles (a teacher who is also a parent) pick one."""
    if len(viewer.persons) < 2:
        # parents
        await message.answer(_("Je hebt maar één rol in de bot."), reply_markup=main_menu(viewer))
        return
    # parents
    await message.answer(_("Als wie wil je verder?"), reply_markup=person_keyboard(viewer))


async def person_chosen(
    query: CallbackQuery,
    callback_data: PersonChoice,
    session: AsyncSession,
    state: FSMContext,
    viewer: Viewer,
) -> None:
    """Switches to one of the account's own persons; anyone else's id is refused."""
    chosen = next((ref for ref in viewer.persons if ref.id == callback_data.person_id), None)
    if chosen is None or not await switch_person(
        session, telegram_user_id=query.from_user.id, person_id=chosen.id
    ):
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    # A dialogue of the previous role must not continue under the new one.
    await state.clear()
    # The account's persons were read with this update; only the active one changed.
    viewer = replace(viewer, person=chosen)
    await query.answer()
    # From here on the bot speaks to the new role, "u" included when it is a parent's school's.
    with formal_address(viewer_is_addressed_formally(viewer)):
        text = fill(
            # parents
            _("Je bent nu {name} ({role})."),
            name=chosen.name,
            role=role_label(chosen.role),
        )
        if isinstance(query.message, Message):
            await query.message.edit_text(text)
            await query.message.answer(_("Kies iets uit het menu."), reply_markup=main_menu(viewer))
            if query.bot is not None:
                await show_commands(query.bot, query.message.chat.id, viewer)


def build_router() -> Router:
    router = Router(name="common")
    router.message.register(show_help, Command("help", "hulp"))
    router.message.register(show_help, F.text == BUTTON_HELP)
    router.message.register(cancel, Command("annuleer", "cancel", "stop"))
    router.message.register(choose_language, Command("taal", "language"))
    router.message.register(choose_language, F.text == BUTTON_LANGUAGE)
    router.callback_query.register(language_chosen, LanguageChoice.filter())
    router.message.register(choose_person, Command("wissel", "switch"))
    router.message.register(choose_person, F.text == BUTTON_SWITCH)
    router.callback_query.register(person_chosen, PersonChoice.filter())
    return router
