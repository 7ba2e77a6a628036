"""All routers, assembled in one place.

Routers are built per app (each module's `build_router`), not at import time: an aiogram
router can belong to one dispatcher only, and tests and the demo build several apps.

Personal data lives only in private chats: every feature router hangs under `private`, whose
filter drops updates from groups and channels; `group_chat` answers those with a pointer.
The fallback router comes last so that it only sees what nothing else took. A button press
passes by the feature routers that have no handler for its CallbackData (handlers.routing).
"""

from __future__ import annotations

from aiogram import Router

from handlers.routing import ChatTypeIs, route_presses_by_prefix


def get_routers() -> list[Router]:
    # Imported here, not at the top: importing this package (for its routing helpers) must not
    # pull in every dialogue.
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

    private = Router(name="private")
    for observer in (private.message, private.edited_message, private.callback_query):
        observer.filter(ChatTypeIs("private"))
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
    route_presses_by_prefix(private)
    return [
        errors.build_router(),
        group_chat.build_router(),
        private,
        fallback.build_outside_router(),  # taps outside a private chat: answered, no more
    ]
