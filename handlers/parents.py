"""Parents' entry points: the weekly summary on request and the settings card; and the
pupil's side of the plan's feedback moments (asking the parents for tops & tips)."""

from __future__ import annotations

from pathlib import Path

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import (
    BUTTON_PARENT_SETTINGS,
    BUTTON_SUMMARY,
    button,
    edit_card,
    main_menu,
    shorten,
)
from chat_ui.texts import fill
from config.settings import Settings
from conversations import parent_feedback, parent_settings, parent_summary
from language.i18n import _
from services.clock import Clock, school_now
from storage.accounts import PersonRef, Viewer
from storage.learning_plans import plan_of, plans_of
from storage.models import Role
from storage.parents import parents_to_notify


async def overview(
    message: Message,
    bot: Bot,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """Sends the summary of each of the parent's children, as on Friday."""
    now = school_now(settings, clock)
    methods = await parent_summary.all_summaries(
        session,
        parent_id=person.id,
        chat_id=message.chat.id,
        now=now,
        today=now.date(),
        media_dir=Path(settings.media_dir),
    )
    if not methods:
        await message.answer(
            _("Er is nog geen kind aan je gekoppeld. Neem contact op met de school."),
            reply_markup=main_menu(viewer),
        )
        return
    await parent_summary.send_all(bot, methods)


async def preferences(message: Message, session: AsyncSession, person: PersonRef) -> None:
    """Shows what the parent receives and when, with buttons to change it."""
    await parent_settings.show_settings(message, session, person)


class AskPlanFeedback(CallbackData, prefix="askfb"):
    plan_id: int


async def ask_feedback(
    message: Message, session: AsyncSession, viewer: Viewer, person: PersonRef
) -> None:
    """Lets a pupil pick the plan their parents should give tops & tips on."""
    plans = await plans_of(session, pupil_id=person.id)
    if not plans:
        await message.answer(
            _("Je hebt nog geen eigen plan. Maak er een met /mijnplan."),
            reply_markup=main_menu(viewer),
        )
        return
    await message.answer(
        _("Op welk plan wil je feedback van je ouders? Je kunt dat twee keer per plan vragen."),
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[
                [button("📝 " + shorten(plan.idea, 44), AskPlanFeedback(plan_id=plan.id))]
                for plan in plans[:6]
            ]
        ),
    )


async def feedback_plan_chosen(
    query: CallbackQuery,
    callback_data: AskPlanFeedback,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """Sends the request to each linked parent, at most twice per plan."""
    plan = await plan_of(session, pupil_id=person.id, plan_id=callback_data.plan_id)
    if plan is None:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    if not await parents_to_notify(session, pupil_id=person.id):
        await edit_card(query, _("Er is nog geen ouder aan je gekoppeld in de bot."))
        return
    moment = await parent_feedback.ask_parents_for_feedback(
        session, pupil_id=person.id, plan_id=plan.id, now=school_now(settings, clock)
    )
    if moment is None:
        await edit_card(query, _("Je hebt al twee keer feedback gevraagd op dit plan."))
        return
    await edit_card(
        query,
        fill(
            _("Verstuurd! Je ouders krijgen je vraag. Dit is feedbackmoment {moment} van 2."),
            moment=moment,
        ),
    )


def build_router() -> Router:
    router = Router(name="parents")
    parent = HasRole(Role.PARENT)
    router.message.register(overview, Command("overzicht", "summary"), parent)
    router.message.register(overview, F.text == BUTTON_SUMMARY, parent)
    router.message.register(preferences, Command("instellingen", "settings"), parent)
    router.message.register(preferences, F.text == BUTTON_PARENT_SETTINGS, parent)
    pupil = HasRole(Role.PUPIL)
    router.message.register(ask_feedback, Command("vraagfeedback"), pupil)
    router.callback_query.register(feedback_plan_chosen, AskPlanFeedback.filter(), pupil)
    router.include_routers(parent_settings.build_router(), parent_feedback.build_router())
    return router
