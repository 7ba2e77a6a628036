"""The pupil prepares a talk in five short questions, and sees their own talks."""

from __future__ import annotations

from typing import Any

from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
)
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import button, edit_card, shorten
from chat_ui.texts import bold, fill
from conversations.card import typed_within
from conversations.talks.common import (
    PreparingTalk,
    TalkEvidenceDone,
    TalkEvidencePick,
    TalkPrepare,
    TalkSkip,
    day_label,
    school_zone,
    talk_lines,
)
from language.i18n import _
from services.clock import Clock
from storage.accounts import PersonRef
from storage.models import Role, TalkStatus
from storage.talks import (
    MAX_ANSWER,
    MAX_EVIDENCE,
    TalkRefusedError,
    evidence_choices,
    save_preparation,
    talk_to_prepare,
    talks_of_parent,
    talks_of_pupil,
)

# --- the pupil's preparation -------------------------------------------------------------


PREPARATION_QUESTIONS = ("proud", "went_well", "hard", "evidence", "next")


def _preparation_question(step: str) -> str:
    return {
        "proud": _("Waar ben je trots op? Typ het maar."),
        "went_well": _("Wat ging goed?"),
        "hard": _("Wat vind je nog lastig?"),
        "evidence": _(
            "Kies 1 tot 3 dingen uit je portfolio om te laten zien. Tik erop, dan op Klaar."
        ),
        "next": _("Wat wil je hierna leren?"),
    }[step]


PREPARING_STATES = {
    "proud": PreparingTalk.proud,
    "went_well": PreparingTalk.went_well,
    "hard": PreparingTalk.hard,
    "evidence": PreparingTalk.evidence,
    "next": PreparingTalk.next,
}


def _evidence_keyboard(data: dict[str, Any]) -> InlineKeyboardMarkup:
    picked = set(data.get("evidence", []))
    icons = {"photo": "📷", "document": "📄", "voice": "🎤", "video": "🎬"}
    rows = [
        [
            button(
                ("✅ " if item["id"] in picked else "")
                + icons.get(item["kind"], "📎")
                + " "
                + shorten(item["label"], 40),
                TalkEvidencePick(evidence_id=item["id"]),
            )
        ]
        for item in data["choices"]
    ]
    if picked:
        rows.append([button(_("✅ Klaar"), TalkEvidenceDone())])
    rows.append([button(_("Liever niet"), TalkSkip(step="evidence"))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def _ask_preparation(message: Message, state: FSMContext, step: str) -> None:
    await state.set_state(PREPARING_STATES[step])
    data = await state.get_data()
    keyboard: InlineKeyboardMarkup | None = None
    if step == "evidence":
        keyboard = _evidence_keyboard(data)
    if step == "next":
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[[button(_("Weet ik nog niet"), TalkSkip(step="next"))]]
        )
    await message.answer(_preparation_question(step), reply_markup=keyboard)


async def prepare_tapped(
    query: CallbackQuery,
    callback_data: TalkPrepare,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
) -> None:
    """ "Ja" starts the preparation of the pupil's own planned talk; "Later" keeps the button."""
    talk = await talk_to_prepare(session, pupil_id=person.id, talk_id=callback_data.talk_id)
    if talk is None:
        await query.answer(
            _("Dat gesprek ken ik niet, of het gaat niet meer door."), show_alert=True
        )
        return
    if not callback_data.start:
        await query.answer(_("Goed! Tik later op Ja, of typ /gesprek."), show_alert=True)
        return
    await query.answer()
    assert isinstance(query.message, Message)
    choices = await evidence_choices(session, pupil_id=person.id)
    zone = await school_zone(session, talk.school_id)
    await state.set_data(
        {
            "talk_id": talk.id,
            "teacher": talk.organiser_name or "",
            "answers": {},
            "evidence": [],
            "choices": [
                {
                    "id": choice.id,
                    "kind": choice.kind,
                    "label": choice.caption or day_label(choice.created_at.astimezone(zone).date()),
                }
                for choice in choices
            ],
        }
    )
    await _ask_preparation(query.message, state, "proud")


def _next_step(step: str, data: dict[str, Any]) -> str | None:
    index = PREPARATION_QUESTIONS.index(step)
    for following in PREPARATION_QUESTIONS[index + 1 :]:
        if following == "evidence" and not data.get("choices"):
            continue
        return following
    return None


async def _after_answer(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    pupil: PersonRef,
    step: str,
    clock: Clock,
) -> None:
    following = _next_step(step, await state.get_data())
    if following is not None:
        await _ask_preparation(message, state, following)
        return
    data = await state.get_data()
    await state.clear()
    try:
        await save_preparation(
            session,
            pupil_id=pupil.id,
            talk_id=data["talk_id"],
            answers=data.get("answers", {}),
            evidence_ids=data.get("evidence", []),
            now=clock.now(),
        )
    except TalkRefusedError:
        await message.answer(_("Dat gesprek ken ik niet, of het gaat niet meer door."))
        return
    await message.answer(
        fill(
            _("Klaar! {teacher} krijgt je voorbereiding voor het gesprek. 👍"),
            teacher=data["teacher"],
        )
    )


async def answer_typed(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    answer = await typed_within(message, MAX_ANSWER)
    if answer is None:
        return
    current = await state.get_state()
    step = next(name for name, value in PREPARING_STATES.items() if value.state == current)
    data = await state.get_data()
    answers = dict(data.get("answers", {}))
    answers[step] = answer
    await state.update_data(answers=answers)
    await _after_answer(message, state, session, person, step, clock)


async def evidence_picked(
    query: CallbackQuery, callback_data: TalkEvidencePick, state: FSMContext
) -> None:
    data = await state.get_data()
    if callback_data.evidence_id not in {item["id"] for item in data.get("choices", [])}:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    picked: list[int] = data.get("evidence", [])
    if callback_data.evidence_id in picked:
        picked.remove(callback_data.evidence_id)
    elif len(picked) >= MAX_EVIDENCE:
        await query.answer(
            _("Je mag er hooguit {count} kiezen.").format(count=MAX_EVIDENCE), show_alert=True
        )
        return
    else:
        picked.append(callback_data.evidence_id)
    await query.answer()
    await state.update_data(evidence=picked)
    await edit_card(
        query, _preparation_question("evidence"), _evidence_keyboard(await state.get_data())
    )


async def evidence_done(
    query: CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    if not (await state.get_data()).get("evidence"):
        await query.answer(_("Kies eerst minstens één ding."), show_alert=True)
        return
    await query.answer()
    assert isinstance(query.message, Message)
    await edit_card(query, _preparation_question("evidence") + " ✅")
    await _after_answer(query.message, state, session, person, "evidence", clock)


async def step_skipped(
    query: CallbackQuery,
    callback_data: TalkSkip,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    clock: Clock,
) -> None:
    current = await state.get_state()
    if (
        callback_data.step not in ("evidence", "next")
        or current != PREPARING_STATES[callback_data.step].state
    ):
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    assert isinstance(query.message, Message)
    if callback_data.step == "evidence":
        await state.update_data(evidence=[])
    await edit_card(query, _preparation_question(callback_data.step))
    await _after_answer(query.message, state, session, person, callback_data.step, clock)


# --- pupils and parents: their own talks ---------------------------------------------------


async def own_list(
    session: AsyncSession, person: PersonRef, clock: Clock
) -> tuple[str, InlineKeyboardMarkup | None]:
    """A pupil's or parent's talks: planned ones with a "prepare" button, held ones with the
    agreements (parents: only the talks they take part in)."""
    now = clock.now()
    if person.role is Role.PUPIL:
        talks = await talks_of_pupil(session, pupil_id=person.id, now=now)
    else:
        talks = await talks_of_parent(session, parent_id=person.id, now=now)
    if not talks:
        # parents
        return _("Er staan geen gesprekken gepland."), None
    zone = await school_zone(session, person.school_id)
    blocks = []
    rows = []
    for talk in talks:
        lines = talk_lines(talk, zone, for_teacher=False)
        if person.role is Role.PARENT:
            lines.insert(1, "👧 " + fill("{name}", name=talk.pupil_name))
        if talk.status is TalkStatus.HELD and talk.agreements:
            # parents
            lines += [bold(_("Afspraken")), fill("{text}", text=talk.agreements)]
        if talk.status is TalkStatus.PLANNED and person.role is Role.PUPIL:
            lines.append(
                _("✅ Je hebt je voorbereid.") if talk.prepared else _("⏳ Nog niet voorbereid.")
            )
            rows.append(
                [
                    button(
                        _("✍️ Voorbereiden: {when}").format(
                            when=day_label(talk.scheduled_at.astimezone(zone).date())
                        ),
                        TalkPrepare(talk_id=talk.id, start=True),
                    )
                ]
            )
        blocks.append("\n".join(lines))
    keyboard = InlineKeyboardMarkup(inline_keyboard=rows) if rows else None
    # parents
    return _("Je gesprekken:") + "\n\n" + "\n\n".join(blocks), keyboard
