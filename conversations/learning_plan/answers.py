"""The pupil's answers: each part of the plan, then the steps of the draaiboek (what, with whom,
when), and ✅ Klaar, the one moment a new plan is written. While editing, an answer saves that
one part (or the new draaiboek) straight away."""

from __future__ import annotations

from datetime import date, timedelta

from aiogram.types import Message
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.texts import fill
from conversations.learning_plan.common import (
    BUTTON_NEXT_WEEK,
    FIELD_OF_STATE,
    FIELD_ORDER,
    FIELD_STATES,
    MODE_EDIT,
    LearningPlanDialogue,
    Turn,
)
from conversations.learning_plan.plan import plan_gone, show_plan
from conversations.learning_plan.questions import ask, typed_text
from language.i18n import _, current_locale
from services.clock import school_today
from storage.learning_plans import (
    FIELD_LIMITS,
    MAX_STEP_WHAT,
    MAX_STEP_WHEN,
    MAX_STEP_WHO,
    MAX_STEPS,
    PlanField,
    PlanStep,
    PlanView,
    create_plan,
    plan_of,
    replace_steps,
    update_field,
)


def _week_of(day: date, weeks_ahead: int) -> str:
    """A dated "when", so the draaiboek still says which week it meant a month later."""
    monday = day - timedelta(days=day.weekday()) + timedelta(weeks=weeks_ahead)
    # Stored as plain text like a typed answer (escaped when shown), hence no `fill` here.
    return _("week van {date}").format(
        date=format_date(monday, format="d MMMM", locale=current_locale())
    )


async def _store_field(turn: Turn, field: PlanField, value: str | None) -> None:
    data = await turn.state.get_data()
    if data.get("mode") == MODE_EDIT:
        plan = await update_field(
            turn.session, pupil_id=turn.pupil.id, plan_id=data["plan_id"], field=field, value=value
        )
        if plan is None:
            await plan_gone(turn)
            return
        await turn.state.clear()
        await show_plan(turn, plan, intro=_("✅ Aangepast! Zo ziet je plan er nu uit:"))
        return
    answers = dict(data.get("answers", {}))
    answers[field.value] = value
    await turn.state.update_data(answers=answers)
    position = FIELD_ORDER.index(field)
    if position + 1 < len(FIELD_ORDER):
        await turn.state.set_state(FIELD_STATES[FIELD_ORDER[position + 1]])
    else:
        await turn.state.set_state(LearningPlanDialogue.step_what)
    await ask(turn)


async def field_typed(message: Message, turn: Turn) -> None:
    """The answer to one of the plan's questions (idea, why, known, after, needs)."""
    field = FIELD_OF_STATE[await turn.state.get_state()]
    text = await typed_text(message, FIELD_LIMITS[field])
    if text is None:
        return
    await _store_field(turn, field, text)


async def field_emptied(message: Message, turn: Turn) -> None:
    """Sla over (new plan) or 🧹 Leeg maken (editing): the part stays empty."""
    field = FIELD_OF_STATE[await turn.state.get_state()]
    if field is PlanField.IDEA:
        await ask(turn, prefix=_("Je idee kun je niet overslaan: daar gaat je plan over."))
        return
    await _store_field(turn, field, None)


async def kept(message: Message, turn: Turn) -> None:
    """↩️ Niet veranderen while editing a part or the steps: the plan stays as it was."""
    data = await turn.state.get_data()
    if data.get("mode") != MODE_EDIT:
        await ask(turn)
        return
    plan = await plan_of(turn.session, pupil_id=turn.pupil.id, plan_id=data["plan_id"])
    if plan is None:
        await plan_gone(turn)
        return
    await turn.state.clear()
    await show_plan(turn, plan, intro=_("Oké, er is niets veranderd."))


async def step_what_typed(message: Message, turn: Turn) -> None:
    text = await typed_text(message, MAX_STEP_WHAT)
    if text is None:
        return
    await turn.state.update_data(step={"what": text})
    await turn.state.set_state(LearningPlanDialogue.step_who)
    await ask(turn)


async def step_who_typed(message: Message, turn: Turn) -> None:
    """Who helps with this step; the Alleen button arrives here as its text."""
    text = await typed_text(message, MAX_STEP_WHO)
    if text is None:
        return
    data = await turn.state.get_data()
    await turn.state.update_data(step={**data.get("step", {}), "who": text})
    await turn.state.set_state(LearningPlanDialogue.step_when)
    await ask(turn)


async def _add_step(turn: Turn, when: str) -> None:
    data = await turn.state.get_data()
    step = {"what": "", "who": None, **data.get("step", {}), "when": when}
    steps = [*data.get("steps", []), step][:MAX_STEPS]
    await turn.state.update_data(steps=steps, step={})
    await turn.state.set_state(LearningPlanDialogue.step_more)
    await ask(turn)


async def step_when_typed(message: Message, turn: Turn) -> None:
    text = await typed_text(message, MAX_STEP_WHEN)
    if text is None:
        return
    await _add_step(turn, text)


async def step_when_week(message: Message, turn: Turn) -> None:
    """Deze week / Volgende week, saved as the date of that Monday."""
    weeks_ahead = 1 if message.text == str(BUTTON_NEXT_WEEK) else 0
    when = _week_of(school_today(turn.settings, turn.clock), weeks_ahead)
    await _add_step(turn, when)


async def step_more(message: Message, turn: Turn) -> None:
    """➕ Nog een stap, unless the draaiboek is full."""
    data = await turn.state.get_data()
    if len(data.get("steps", [])) >= MAX_STEPS:
        await ask(
            turn, prefix=fill(_("Meer dan {count} stappen past er niet in."), count=MAX_STEPS)
        )
        return
    await turn.state.set_state(LearningPlanDialogue.step_what)
    await ask(turn)


async def _create_from(
    session: AsyncSession,
    pupil_id: int,
    answers: dict[str, str | None],
    steps: list[PlanStep],
    pupil_goal_id: int | None,
) -> PlanView | None:
    idea = answers.get(PlanField.IDEA)
    assert idea is not None  # the dialogue cannot reach the steps without an idea
    return await create_plan(
        session,
        pupil_id=pupil_id,
        pupil_goal_id=pupil_goal_id,
        idea=idea,
        motivation=answers.get(PlanField.MOTIVATION),
        prior_knowledge=answers.get(PlanField.PRIOR_KNOWLEDGE),
        outcome=answers.get(PlanField.OUTCOME),
        needs=answers.get(PlanField.NEEDS),
        steps=steps,
    )


async def steps_finished(message: Message, turn: Turn) -> None:
    """✅ Klaar (or Sla over at the first step): the one moment a plan is written."""
    data = await turn.state.get_data()
    steps = [PlanStep(s["what"], s.get("who"), s.get("when")) for s in data.get("steps", [])]
    pupil_id = turn.pupil.id
    if data.get("mode") == MODE_EDIT:
        plan = await replace_steps(
            turn.session, pupil_id=pupil_id, plan_id=data["plan_id"], steps=steps
        )
        intro = _("✅ Je draaiboek is aangepast! Zo ziet je plan er nu uit:")
    else:
        answers = data.get("answers", {})
        pupil_goal_id = data.get("pupil_goal_id")
        plan = await _create_from(turn.session, pupil_id, answers, steps, pupil_goal_id)
        if plan is None and pupil_goal_id is not None:
            # The goal stopped being theirs while they typed: keep their work, without the link.
            plan = await _create_from(turn.session, pupil_id, answers, steps, None)
        intro = _("✅ Je plan is bewaard! Zo ziet het eruit:")
    if plan is None:
        await plan_gone(turn)
        return
    await turn.state.clear()
    await show_plan(turn, plan, intro=intro)


def _asked_again(current: str | None) -> str:
    if current == LearningPlanDialogue.choosing_goal.state:
        return _("Kies een van de knoppen, graag. Stoppen kan met /annuleer.")
    if current == LearningPlanDialogue.step_more.state:
        return _("Kies ➕ Nog een stap of ✅ Klaar. Stoppen kan met /annuleer.")
    return _("Ik kan hier alleen getypte tekst lezen. Typ je antwoord, graag. 🙂")


async def re_ask(message: Message, turn: Turn) -> None:
    """Anything the question did not ask for (text while the goal buttons wait, a photo,
    sticker or voice message where a typed answer was expected): the question again."""
    await ask(turn, prefix=_asked_again(await turn.state.get_state()))
