"""All routers, assembled in one place.

Routers are built per app (each module's `build_router`), not at import time: an aiogram
router can belong to one dispatcher only, and tests and the demo build several apps.

Personal data lives only in private chats: every feature router hangs under `private`, whose
filter drops updates from groups and channels; `group_chat` answers those with a pointer.
The fallback router comes last so that it only sees what nothing else took.
"""

from __future__ import annotations

from aiogram import F, Router

from bot.routing import PrefixRouter


def get_routers() -> list[Router]:
    # Imported here, not at the top: conversations import handlers.filters, and importing
    # this package must not pull in every dialogue (that would make import cycles).
    from conversations import (
        evidence,
        evidence_review,
        goals,
        learning_plan,
        observation,
        onboarding,
        reflection,
        week_plan,
    )
    from handlers import (
        admin,
        common,
        errors,
        fallback,
        group_chat,
        menu,
        parents,
        portfolio,
        pupil,
        start,
        talks,
        teacher,
    )

    # Button presses go straight to the routers that have their CallbackData (bot.routing).
    private = PrefixRouter(name="private")
    for observer in (private.message, private.edited_message, private.callback_query):
        observer.filter(
            F.chat.type == "private"
            if observer is not private.callback_query
            else F.message.chat.type == "private"
        )
    private.include_routers(
        common.build_router(),  # /annuleer and /taal before any dialogue step
        start.build_router(),
        onboarding.build_router(),
        # Menu buttons and overviews before the dialogues: a menu tap in the middle of a
        # dialogue shows what was asked and leaves the dialogue where it was.
        learning_plan.build_router(),
        menu.build_router(),
        admin.build_router(),  # /export, /wis, /audit
        parents.build_router(),
        pupil.build_router(),
        reflection.build_router(),
        goals.build_router(),
        week_plan.build_router(),
        portfolio.build_router(),
        evidence.build_router(),
        evidence_review.build_router(),  # /werk: teachers on their pupils' work
        teacher.build_router(),
        observation.build_router(),
        talks.build_router(),  # /gesprek and the talk dialogues
        fallback.build_router(),
    )
    return [errors.build_router(), group_chat.build_router(), private]
