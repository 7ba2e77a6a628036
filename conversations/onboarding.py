"""Onboarding: link a Telegram account to a pupil, teacher, parent or admin with an invite code.

```mermaid
stateDiagram-v2
    [*] --> waiting_for_code: /start (no code)
    [*] --> linked: /start CODE (deep link)
    waiting_for_code --> linked: valid code
    waiting_for_code --> waiting_for_code: wrong / used / expired code, not a code, not text
    waiting_for_code --> locked: 5 wrong codes in 15 minutes
    waiting_for_code --> [*]: /annuleer
    linked --> [*]: welcome + menu of the role
```
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message
from babel.dates import format_time
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.commands import show_commands
from chat_ui.i18n import viewer_is_addressed_formally
from chat_ui.keyboards import main_menu
from chat_ui.texts import fill, names_list
from config.settings import Settings, invite_secret_of
from language.i18n import _, current_locale, formal_address
from storage.accounts import Viewer, active_groups_of, children_of, load_viewer
from storage.invites import RedeemOutcome, looks_like_code, redeem_invite
from storage.models import Role


class Onboarding(StatesGroup):
    waiting_for_code = State()


async def ask_for_code(message: Message, state: FSMContext) -> None:
    """Explain what the code is and wait for it."""
    await state.set_state(Onboarding.waiting_for_code)
    await message.answer(
        # parents
        _(
            "Welkom bij het Leerling Portfolio! 👋\n\n"
            "Je hebt een uitnodigingscode gekregen van school, op een briefje of in een mail. "
            "Typ die code hier, bijvoorbeeld <code>ABCD-EFGH</code>."
        )
    )


async def use_code(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    settings: Settings,
    typed: str,
) -> None:
    """Redeem a typed or deep-linked code and welcome the person, or say kindly what is wrong."""
    assert message.from_user is not None
    result = await redeem_invite(
        session,
        telegram_user_id=message.from_user.id,
        typed_code=typed,
        secret=invite_secret_of(settings),
    )
    if result.outcome in (RedeemOutcome.LINKED, RedeemOutcome.ALREADY_LINKED):
        await state.clear()
        viewer = await load_viewer(session, telegram_user_id=message.from_user.id)
        # Only now is it known who this is, and so whether the school says "u" to them.
        with formal_address(viewer_is_addressed_formally(viewer)):
            await message.answer(
                await welcome_text(session, viewer), reply_markup=main_menu(viewer)
            )
            if message.bot is not None:
                await show_commands(message.bot, message.chat.id, viewer)
        return
    await state.set_state(Onboarding.waiting_for_code)
    if result.outcome is RedeemOutcome.LOCKED:
        assert result.locked_until is not None
        await message.answer(
            fill(
                # parents
                _(
                    "Er zijn te veel verkeerde codes geprobeerd. Probeer het om {time} opnieuw. "
                    "Klopt je code echt niet? Vraag dan je leerkracht om een nieuwe."
                ),
                time=_local_time(result.locked_until, settings),
            )
        )
        return
    replies = {
        # parents
        RedeemOutcome.WRONG: _(
            "Deze code ken ik niet. Kijk nog eens goed op je briefje en typ hem opnieuw."
        ),
        # parents
        RedeemOutcome.USED: _(
            "Deze code is al gebruikt. Elke code werkt maar één keer. "
            "Vraag je leerkracht of de school om een nieuwe code."
        ),
        # parents
        RedeemOutcome.EXPIRED: _(
            "Deze code is verlopen. Vraag je leerkracht of de school om een nieuwe code."
        ),
    }
    text = replies[result.outcome]
    if result.failures_left is not None and result.failures_left <= 2:
        # parents
        text += "\n" + _("Let op: nog {count} keer proberen, daarna moet je even wachten.").format(
            count=result.failures_left
        )
    await message.answer(text)


def _local_time(moment: datetime, settings: Settings) -> str:
    local = moment.astimezone(ZoneInfo(settings.timezone))
    return format_time(local, format="short", locale=current_locale())


async def welcome_text(session: AsyncSession, viewer: Viewer) -> str:
    """A welcome that tells each role what the bot is for them."""
    person = viewer.person
    assert person is not None
    if person.role is Role.PUPIL:
        groups = await active_groups_of(session, person_id=person.id)
        return fill(
            _(
                "Hoi {name}! 👋 Je bent gekoppeld aan je portfolio{group}.\n\n"
                "Hier houd je bij waar je aan werkt, hoe het ging en wat je gemaakt hebt. "
                "Jij bepaalt wat je ouders te zien krijgen."
            ),
            name=person.name,
            group=(" " + _("in {group}").format(group=groups[0].name)) if groups else "",
        )
    if person.role is Role.TEACHER:
        groups = await active_groups_of(session, person_id=person.id)
        return fill(
            _(
                "Welkom, {name}! Je bent gekoppeld als leerkracht van {groups}.\n\n"
                "Hier leg je snel een observatie vast en zie je waar je leerlingen staan."
            ),
            name=person.name,
            groups=names_list([group.name for group in groups]) or _("(nog geen groep)"),
        )
    if person.role is Role.PARENT:
        children = await children_of(session, parent_id=person.id)
        return fill(
            # parents
            _(
                "Welkom, {name}! Je bent gekoppeld als ouder of verzorger van {children}.\n\n"
                "Je krijgt een overzicht van wat je kind leert en het werk dat je kind met je "
                "deelt. Je ziet alleen je eigen kind."
            ),
            name=person.name,
            # parents
            children=names_list([child.name for child in children]) or _("(nog geen kind)"),
        )
    return fill(
        _("Welkom, {name}! Je bent gekoppeld als beheerder van de school."), name=person.name
    )


async def code_typed(
    message: Message, state: FSMContext, session: AsyncSession, settings: Settings
) -> None:
    """Takes the code the user typed; text that is no code at all gets a hint, not a strike."""
    assert message.text is not None
    if not looks_like_code(message.text):
        await message.answer(
            fill(
                # parents
                _(
                    "Dat lijkt niet op een code. Een code heeft 8 letters en cijfers, "
                    "zoals {example}. Typ /annuleer om te stoppen."
                ),
                example="ABCD-EFGH",
            )
        )
        return
    await use_code(message, state, session, settings, message.text)


async def not_text(message: Message) -> None:
    """A photo, sticker or voice message while we wait for the code."""
    # parents
    await message.answer(_("Stuur je code als tekst, zoals {example}.").format(example="ABCD-EFGH"))


def build_router() -> Router:
    router = Router(name="onboarding")
    router.message.register(code_typed, Onboarding.waiting_for_code, F.text)
    router.message.register(not_text, Onboarding.waiting_for_code)
    return router
