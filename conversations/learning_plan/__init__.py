"""'Mijn eigen plan': a pupil writes a plan for a self-chosen goal, one short question at a time.

The questions follow the school template (seed 003, "Mijn eigen plan" and its draaiboek): my
idea, why I want it, what I already know, what I can do afterwards, who and what I need, and
the timeline (what, with whom, when). Nothing is saved until the pupil presses ✅ Klaar, so
/annuleer (handled by `handlers.common`) leaves no half plan behind. Everything the dialogue
knows lives in the FSM state and data (in the database), so after a restart it asks the same
question again. Editing a part re-uses the question states with `mode: "edit"` in the data.

```mermaid
stateDiagram-v2
    state "plan list (a message with buttons, no state)" as plan_list
    state "plan shown (one message with ✏️ buttons, no state)" as plan_shown
    [*] --> plan_list: /mijnplan, /plan (has plans)
    [*] --> choosing_goal: /mijnplan (no plans yet), goals this period
    [*] --> idea: /mijnplan (no plans yet), no goals this period
    plan_list --> plan_shown: 📄 own plan (another pupil's gets an alert)
    plan_list --> choosing_goal: ➕ Nieuw plan (idea when no goals)
    choosing_goal --> idea: 🎯 own goal, 💡 Een eigen idee
    choosing_goal --> choosing_goal: goal not theirs (alert), text, not text
    idea --> motivation: text ≤ 300
    motivation --> prior_knowledge: text, Sla over
    prior_knowledge --> outcome: text, Sla over
    outcome --> needs: text, Sla over
    needs --> step_what: text, Sla over
    step_what --> step_who: text
    step_who --> step_when: text, Alleen
    step_when --> step_more: text, Deze week, Volgende week
    step_more --> step_what: ➕ Nog een stap (at most 8)
    step_more --> step_more: anything else
    step_more --> plan_shown: ✅ Klaar (saved now, all at once)
    step_what --> plan_shown: Sla over, ✅ Klaar (saved)
    plan_shown --> idea: ✏️ Idee, edit mode (✏️ Waarom .. ✏️ Nodig alike)
    plan_shown --> step_what: ✏️ Stappen, edit mode (a new timeline)
    idea --> plan_shown: edit mode - text (only that part saved), ↩️ Niet veranderen
    idea --> idea: too long, not text, a command (every question alike)
    plan_list --> [*]
    plan_shown --> [*]
    note right of step_what
        /annuleer (handlers.common) ends every state; nothing is saved.
        /mijnplan in a state asks the same question again.
    end note
```

- `common`: the states, the buttons (callback data and reply-keyboard answers), a pupil's turn.
- `plan`: how a plan reads, with its ✏️ buttons.
- `questions`: each state's question, and what a typed answer must be.
- `starting`: the list of plans, a plan shown, a new plan begun, a part to change chosen.
- `answers`: the answers, each part and each step, and saving the plan.
- here: the router that ties the steps together.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, StateFilter

from chat_ui.filters import HasRole
from chat_ui.keyboards import BUTTON_MY_PLAN
from conversations.learning_plan.answers import (
    field_emptied,
    field_typed,
    kept,
    re_ask,
    step_more,
    step_what_typed,
    step_when_typed,
    step_when_week,
    step_who_typed,
    steps_finished,
)
from conversations.learning_plan.common import (
    BUTTON_CLEAR,
    BUTTON_DONE,
    BUTTON_KEEP,
    BUTTON_MORE,
    BUTTON_NEXT_WEEK,
    BUTTON_SKIP,
    BUTTON_THIS_WEEK,
    FIELD_STATES,
    LearningPlanDialogue,
    PlanEdit,
    PlanGoal,
    PlanMenu,
    PlanPart,
    WithTurn,
)
from conversations.learning_plan.plan import render_plan, timeline_lines
from conversations.learning_plan.starting import (
    edit_pressed,
    goal_chosen,
    menu_pressed,
    not_for_this_role,
    show_plans,
)
from storage.models import Role

__all__ = [
    "LearningPlanDialogue",
    "PlanEdit",
    "PlanGoal",
    "PlanMenu",
    "PlanPart",
    "build_router",
    "render_plan",
    "timeline_lines",
]


def build_router() -> Router:
    router = Router(name="learning_plan")
    pupils = Router(name="learning_plan_pupils")
    for observer in (pupils.message, pupils.callback_query):
        observer.filter(HasRole(Role.PUPIL))
    pupils.message.filter(WithTurn())
    pupils.message.register(show_plans, Command("mijnplan", "plan"))
    pupils.message.register(show_plans, F.text == BUTTON_MY_PLAN)
    pupils.callback_query.register(menu_pressed, PlanMenu.filter())
    pupils.callback_query.register(edit_pressed, PlanEdit.filter())
    pupils.callback_query.register(
        goal_chosen, PlanGoal.filter(), LearningPlanDialogue.choosing_goal
    )
    pupils.message.register(re_ask, LearningPlanDialogue.choosing_goal)

    field_states = StateFilter(*FIELD_STATES.values())
    pupils.message.register(kept, field_states, F.text == BUTTON_KEEP)
    pupils.message.register(
        field_emptied, field_states, (F.text == BUTTON_SKIP) | (F.text == BUTTON_CLEAR)
    )
    pupils.message.register(field_typed, field_states, F.text)

    what = LearningPlanDialogue.step_what
    pupils.message.register(kept, what, F.text == BUTTON_KEEP)
    pupils.message.register(steps_finished, what, (F.text == BUTTON_SKIP) | (F.text == BUTTON_DONE))
    pupils.message.register(step_what_typed, what, F.text)
    pupils.message.register(step_who_typed, LearningPlanDialogue.step_who, F.text)
    pupils.message.register(
        step_when_week,
        LearningPlanDialogue.step_when,
        (F.text == BUTTON_THIS_WEEK) | (F.text == BUTTON_NEXT_WEEK),
    )
    pupils.message.register(step_when_typed, LearningPlanDialogue.step_when, F.text)
    more = LearningPlanDialogue.step_more
    pupils.message.register(step_more, more, F.text == BUTTON_MORE)
    pupils.message.register(steps_finished, more, F.text == BUTTON_DONE)
    pupils.message.register(re_ask, more)
    pupils.message.register(re_ask, StateFilter(LearningPlanDialogue))

    # Apart and after the pupils' router: a parent router's own handlers would run first.
    others = Router(name="learning_plan_others")
    others.message.register(not_for_this_role, Command("mijnplan", "plan"))
    router.include_routers(pupils, others)
    return router
