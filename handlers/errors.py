"""The last resort: an unexpected error is logged and the user hears that nothing is lost."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.types import ErrorEvent
from aiogram.utils.i18n import I18n

from chat_ui.i18n import pick_locale
from language.i18n import _

log = logging.getLogger(__name__)


async def unexpected_error(event: ErrorEvent, i18n_core: I18n) -> None:
    """Logs the error (never the message text) and apologises in the user's language."""
    update = event.update
    log.error(
        "update %s failed: %s",
        update.update_id,
        type(event.exception).__name__,
        exc_info=event.exception,
    )
    message = update.message or (update.callback_query.message if update.callback_query else None)
    user = (
        update.message.from_user
        if update.message
        else (update.callback_query.from_user if update.callback_query else None)
    )
    if message is None or message.chat.type != "private":
        return
    locale = pick_locale(None, user, set(i18n_core.available_locales), i18n_core.default_locale)
    with i18n_core.context(), i18n_core.use_locale(locale):
        # parents
        text = _("Oeps, daar ging iets mis. Er is niets kwijtgeraakt; probeer het zo nog eens.")
    try:
        await event.update.bot.send_message(message.chat.id, text)  # type: ignore[union-attr]
    except Exception:  # the error may be Telegram itself being unreachable
        log.warning("could not tell user about the failed update %s", update.update_id)


def build_router() -> Router:
    router = Router(name="errors")
    router.errors.register(unexpected_error)
    return router
