"""Tops & tips from a parent: about a piece of work the child shared, or the child's plan.

The buttons under a summary start it (the parent then picks what it is about), or the
button under a pupil's request for feedback on their plan (that is what it is about). Once
written, the child and the mentor hear of it through a feedback notice, a reminder row the
dispatcher sends in their own language outside their quiet hours (composed in
`conversations.parent_summary`, with the pupil's request to their parents).

```mermaid
stateDiagram-v2
    [*] --> choose_target: 👍 Geef een top / 💡 Geef een tip (under a summary)
    [*] --> writing: the button under a pupil's request for feedback on their plan
    choose_target --> writing: a shared piece of work, or the plan
    writing --> [*]: text (saved; the child and the mentor are told)
    writing --> writing: not text
    choose_target --> [*]: /annuleer
    writing --> [*]: /annuleer
```
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiogram import F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import button, edit_card, shorten
from language.i18n import _
from services.clock import Clock
from storage.accounts import PersonRef, recipient, teachers_to_notify
from storage.models import FeedbackTarget, Role
from storage.parents import (
    PLAN_FEEDBACK_MOMENTS,
    FeedbackRefusedError,
    feedback_targets,
    give_feedback,
    parents_to_notify,
    plan_feedback_key,
    plan_feedback_moments_used,
)
from storage.reminders import ReminderKind, schedule_reminder

# A feedback notice meant for a parent: checked against the parent's wishes and the sharing
# of the work when it is sent, not when it was written.
PARENT_AUDIENCE = "parent"


class GiveFeedback(CallbackData, prefix="pfb"):
    """Under a summary: start a top or a tip about this child."""

    pupil_id: int
    kind: str  # "top" or "tip"


class FeedbackOn(CallbackData, prefix="ptg"):
    """The thing the top or tip is about: a shared piece of work ("e") or the plan ("p")."""

    pupil_id: int
    kind: str
    target: str
    target_id: int


class ParentFeedback(StatesGroup):
    choose_target = State()
    writing = State()


_TARGETS = {"e": FeedbackTarget.EVIDENCE, "p": FeedbackTarget.PLAN}


# --- the notices ---------------------------------------------------------------------------


async def announce_feedback(
    session: AsyncSession,
    *,
    feedback_id: int,
    person_ids: Sequence[int],
    moment: datetime,
    audience: str | None = None,
) -> None:
    """A `feedback_notice` row per person, due now: the dispatcher sends it in their own
    language, outside their quiet hours, and `compose_feedback_notice` decides its words (and,
    for parents, whether it may be sent at all)."""
    payload: dict[str, Any] = {"feedback_id": feedback_id}
    if audience is not None:
        payload["audience"] = audience
    for person_id in person_ids:
        await schedule_reminder(
            session,
            kind=ReminderKind.FEEDBACK_NOTICE,
            person_id=person_id,
            due_at=moment,
            idempotency_key=f"{ReminderKind.FEEDBACK_NOTICE}:{feedback_id}:{person_id}",
            payload=payload,
        )


async def ask_parents_for_feedback(
    session: AsyncSession, *, pupil_id: int, plan_id: int, now: datetime
) -> int | None:
    """The pupil's request for one of the plan's two feedback moments: a message to each
    linked parent, now. Returns the moment's number; None when both moments are used."""
    moment = await plan_feedback_moments_used(session, plan_id=plan_id) + 1
    if moment > PLAN_FEEDBACK_MOMENTS:
        return None
    for parent in await parents_to_notify(session, pupil_id=pupil_id):
        await schedule_reminder(
            session,
            kind=ReminderKind.PLAN_FEEDBACK_REQUEST,
            person_id=parent.person_id,
            due_at=now,
            idempotency_key=plan_feedback_key(plan_id, moment, parent.person_id),
            payload={"pupil_id": pupil_id, "plan_id": plan_id, "moment": moment},
        )
    return moment


# --- tops & tips -----------------------------------------------------------------------------


async def feedback_started(
    query: CallbackQuery,
    callback_data: GiveFeedback,
    session: AsyncSession,
    person: PersonRef,
    state: FSMContext,
) -> None:
    """Asks what the top or tip is about: the child's plan or a piece of shared work."""
    kind = "tip" if callback_data.kind == "tip" else "top"
    targets = await feedback_targets(session, parent_id=person.id, pupil_id=callback_data.pupil_id)
    if not targets:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    await state.set_state(ParentFeedback.choose_target)
    rows = [
        [
            button(
                ("📝 " + _("Het plan: {idea}").format(idea=shorten(target.label, 36)))
                if target.kind is FeedbackTarget.PLAN
                else "📷 " + shorten(target.label or _("Werk zonder titel"), 44),
                FeedbackOn(
                    pupil_id=callback_data.pupil_id,
                    kind=kind,
                    target="p" if target.kind is FeedbackTarget.PLAN else "e",
                    target_id=target.id,
                ),
            )
        ]
        for target in targets
    ]
    question = _("Waar gaat je top over?") if kind == "top" else _("Waar gaat je tip over?")
    if isinstance(query.message, Message):
        await query.message.answer(
            question, reply_markup=InlineKeyboardMarkup(inline_keyboard=rows)
        )


async def target_chosen(
    query: CallbackQuery,
    callback_data: FeedbackOn,
    session: AsyncSession,
    person: PersonRef,
    state: FSMContext,
) -> None:
    """Asks for the text of the top or tip."""
    target = _TARGETS.get(callback_data.target)
    allowed = {
        (t.kind, t.id)
        for t in await feedback_targets(
            session, parent_id=person.id, pupil_id=callback_data.pupil_id, evidence_limit=50
        )
    }
    if target is None or (target, callback_data.target_id) not in allowed:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    # From the "what about?" question that question is replaced; from a pupil's request the
    # request (with the plan) stays readable and the prompt comes below it.
    replace_card = await state.get_state() == ParentFeedback.choose_target.state
    await state.set_state(ParentFeedback.writing)
    await state.update_data(
        pupil_id=callback_data.pupil_id,
        kind="tip" if callback_data.kind == "tip" else "top",
        target=callback_data.target,
        target_id=callback_data.target_id,
    )
    prompt = (
        _("Typ je top: wat ging goed? Kort is prima.")
        if callback_data.kind != "tip"
        else _("Typ je tip: wat kan een volgende keer nog beter? Kort is prima.")
    )
    if replace_card:
        await edit_card(query, prompt)
    elif isinstance(query.message, Message):
        await query.message.answer(prompt)


async def feedback_written(
    message: Message,
    session: AsyncSession,
    person: PersonRef,
    state: FSMContext,
    clock: Clock,
) -> None:
    """Saves the top or tip; the child and the mentor hear about it."""
    assert message.text is not None
    data = await state.get_data()
    target = _TARGETS.get(str(data.get("target")))
    text = message.text.strip()
    if target is None or not text:
        await message.answer(_("Typ je top of tip als tekst, of /annuleer om te stoppen."))
        return
    is_tip = data.get("kind") == "tip"
    try:
        feedback = await give_feedback(
            session,
            parent_id=person.id,
            pupil_id=int(data["pupil_id"]),
            target=target,
            target_id=int(data["target_id"]),
            top=None if is_tip else text,
            tip=text if is_tip else None,
        )
    except FeedbackRefusedError:
        await state.clear()
        await message.answer(_("Die keuze ken ik niet."))
        return
    await state.clear()
    moment = clock.now()
    # The child and the mentor(s) who can be reached in the bot; the notice itself is sent
    # by the reminder dispatcher, in their language, outside their quiet hours.
    pupil = await recipient(session, person_id=feedback.pupil_id)
    teachers = await teachers_to_notify(session, pupil_id=feedback.pupil_id)
    await announce_feedback(
        session,
        feedback_id=feedback.id,
        person_ids=[p.person_id for p in ([pupil] if pupil else []) + teachers],
        moment=moment,
    )
    await message.answer(
        _("Dank je wel! Je kind en de mentor krijgen je top te zien.")
        if not is_tip
        else _("Dank je wel! Je kind en de mentor krijgen je tip te zien.")
    )


async def not_text(message: Message) -> None:
    """A photo or sticker while we wait for the words of the top or tip."""
    await message.answer(_("Typ je top of tip als tekst, of /annuleer om te stoppen."))


async def choose_target_fallback(message: Message) -> None:
    """Typing while the buttons ask what the feedback is about."""
    await message.answer(_("Kies hierboven waar je feedback over gaat, of /annuleer."))


def build_router() -> Router:
    router = Router(name="parent_feedback")
    parent = HasRole(Role.PARENT)
    router.callback_query.register(feedback_started, GiveFeedback.filter(), parent)
    router.callback_query.register(target_chosen, FeedbackOn.filter(), parent)
    router.message.register(feedback_written, ParentFeedback.writing, F.text, parent)
    router.message.register(not_text, ParentFeedback.writing, parent)
    router.message.register(choose_target_fallback, ParentFeedback.choose_target, parent)
    return router
