"""A teacher prepares a period for the active group (`/voorbereiden`, "🎯 Doelen klaarzetten"):
the period itself when there is none, up to three levels of goals per learning line (what
pupils pick from in /doelen), and the activities of each prepared goal (what pupils pick from
in their week plan).

Everything happens on one card that changes with each tap. The buttons carry the group,
period, line, goal or activity ids, and storage checks them all again on every tap
(`storage.period_goals`), so the steps need no dialogue state and a restart changes nothing.
Only typing an activity's name is a state: the goal it is for waits in the state's data.

```mermaid
stateDiagram-v2
    [*] --> periods: /voorbereiden, "🎯 Doelen klaarzetten" (the active group)
    periods --> lines: the current or the next period (a choice when both are there)
    periods --> start: no period yet, or the current one nearly over
    start --> length: a start day (a school day)
    length --> lines: 6, 7 or 8 weeks (ends on a school day; the period is made)
    lines --> lines: another page of learning lines
    lines --> line: a learning line
    line --> goals: "⭐ Kies een doel" / "Ander doel" for a tier
    goals --> line: a goal of the line (set, or replacing what was there)
    line --> line: "🗑 Leegmaken" a tier
    line --> activities: "📝 Activiteiten" of a prepared goal
    activities --> activities: "🗑" an activity
    activities --> typing: "➕ Activiteit toevoegen"
    typing --> typing: a typed name (added, or a kind no for a duplicate)
    typing --> activities: "✅ Klaar"
    activities --> line: "⬅️ Terug"
    line --> lines: "⬅️ Alle leerlijnen"
    lines --> [*]: "✅ Klaar"
```

- `common`: the typing state, the buttons (callback data) and the workspace a button names.
- `periods`: which period, or a new one.
- `lines`: the learning lines and their tiers.
- `activities`: the activities of a prepared goal, and typing their names.
- here: the router that ties the steps together.
"""

from __future__ import annotations

from aiogram import F, Router

from chat_ui.filters import HasRole
from conversations.card import TYPED
from conversations.period_goals.activities import (
    activities_shown,
    activity_typed,
    re_ask,
    remove_tapped,
)
from conversations.period_goals.common import (
    AddActivity,
    ClearTier,
    NewPeriod,
    NewPeriodLength,
    NewPeriodStart,
    PickPeriod,
    PickTierGoal,
    PrepActivities,
    PreparingPeriod,
    PrepDone,
    PrepLine,
    PrepLines,
    RemoveActivity,
    SetTier,
)
from conversations.period_goals.lines import (
    done,
    line_opened,
    lines_shown,
    tier_changed,
    tier_goals,
)
from conversations.period_goals.periods import (
    length_picked,
    new_period,
    start,
    start_picked,
)
from storage.models import Role

__all__ = [
    "AddActivity",
    "ClearTier",
    "NewPeriod",
    "NewPeriodLength",
    "NewPeriodStart",
    "PickPeriod",
    "PickTierGoal",
    "PrepActivities",
    "PrepDone",
    "PrepLine",
    "PrepLines",
    "PreparingPeriod",
    "RemoveActivity",
    "SetTier",
    "build_router",
    "start",
]


def build_router() -> Router:
    """The buttons and the typing step; /voorbereiden and the menu button are registered with
    the teacher's commands (handlers/teacher.py), before the refusal for other roles."""
    router = Router(name="period_goals")
    teacher = HasRole(Role.TEACHER)
    router.callback_query.register(lines_shown, PickPeriod.filter(), teacher)
    router.callback_query.register(new_period, NewPeriod.filter(), teacher)
    router.callback_query.register(start_picked, NewPeriodStart.filter(), teacher)
    router.callback_query.register(length_picked, NewPeriodLength.filter(), teacher)
    router.callback_query.register(lines_shown, PrepLines.filter(), teacher)
    router.callback_query.register(line_opened, PrepLine.filter(), teacher)
    router.callback_query.register(tier_goals, PickTierGoal.filter(), teacher)
    router.callback_query.register(tier_changed, SetTier.filter(), teacher)
    router.callback_query.register(tier_changed, ClearTier.filter(), teacher)
    router.callback_query.register(activities_shown, PrepActivities.filter(), teacher)
    router.callback_query.register(activities_shown, AddActivity.filter(), teacher)
    router.callback_query.register(remove_tapped, RemoveActivity.filter(), teacher)
    router.callback_query.register(done, PrepDone.filter(), teacher)
    router.message.register(activity_typed, PreparingPeriod.activity_name, TYPED, teacher)
    router.message.register(re_ask, PreparingPeriod.activity_name, ~F.text.startswith("/"))
    return router
