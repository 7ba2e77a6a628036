"""Talks (gesprekken): a teacher plans, moves, cancels and wraps up a talk; the pupil prepares.

```mermaid
stateDiagram-v2
    [*] --> pupil: /gesprek, "Nieuw gesprek"
    [*] --> kind: /gesprek Sam (one pupil fits the name)
    pupil --> pupil: ⬅️ ➡️ pages, part of a name typed
    pupil --> kind: a pupil
    kind --> day: leergesprek / coachgesprek / driehoeksgesprek
    day --> time: a school day tapped, or a day typed ("morgen", "3-12")
    day --> place: a day and a time typed ("di 3 dec 14:00")
    time --> place: a time tapped or typed
    place --> [*]: a place typed, or "Geen plek nodig": planned, everyone invited
    [*] --> day: "Verzetten" on a talk
    time --> [*]: (moving) moved, everyone told

    [*] --> agreements: "Afspraken vastleggen" (after the talk)
    agreements --> goals: the agreements typed
    goals --> goals: goal set -> line -> goals (✅ toggles)
    goals --> [*]: "Opslaan" / "Geen nieuwe doelen": held, parents told

    [*] --> proud: "Ja" under the pupil's preparation notice
    proud --> went_well --> hard --> evidence --> next
    hard --> next: no work in the portfolio yet
    next --> [*]: typed, or "Weet ik nog niet": saved for the teacher
```

Nothing is written until a dialogue's last step; the answers so far live in the FSM data (in
the database), so a restart resumes at the same step. Every id a button brings back is
checked again by storage (`storage/talks.py`). Messages to anyone other than the person in
this chat are reminder rows; the composers turn a due row into messages, and check first
that the talk is still as announced (a moved or cancelled talk sends nothing).

- `common`: the states, the buttons (callback data) and how a talk reads in a message.
- `moments`: reading a typed day and time ("di 3 dec 14:00").
- `talk_card`: the teacher's list and a talk's card; cancelling a talk.
- `planning`: planning and moving a talk.
- `wrap_up`: after the talk, the agreements and new goals.
- `preparation`: the pupil's five questions before the talk, and a pupil's or parent's list.
- `composers`: due reminder rows to messages (invitation, reminder, brief, ...).
- here: the router that ties the steps together, with the fallbacks of every step.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message

from chat_ui.filters import HasRole
from conversations.card import TYPED
from conversations.talks.common import (
    PlanningTalk,
    PreparingTalk,
    RecordingTalk,
    TalkCancel,
    TalkDay,
    TalkEvidenceDone,
    TalkEvidencePick,
    TalkGoalLine,
    TalkGoalPick,
    TalkGoalsDone,
    TalkGoalSet,
    TalkGoalSets,
    TalkKindPick,
    TalkList,
    TalkMove,
    TalkNew,
    TalkNoPlace,
    TalkOpen,
    TalkPrepare,
    TalkPupil,
    TalkPupilPage,
    TalkRecord,
    TalkSkip,
    TalkTime,
)
from conversations.talks.planning import (
    kind_picked,
    moment_picked,
    moment_typed,
    move_start,
    new_talk,
    no_place,
    place_typed,
    pupil_page,
    pupil_picked,
    pupil_typed,
)
from conversations.talks.preparation import (
    PREPARING_STATES,
    answer_typed,
    evidence_done,
    evidence_picked,
    prepare_tapped,
    step_skipped,
)
from conversations.talks.talk_card import cancel_tapped, open_talk, show_list
from conversations.talks.wrap_up import (
    NEW_GOALS,
    agreements_typed,
    goal_line,
    goal_picked,
    goal_sets,
    goals_done,
    record_start,
)
from language.i18n import _
from storage.models import Role

# --- fallbacks -----------------------------------------------------------------------------


async def re_ask_buttons(message: Message) -> None:
    await message.answer(_("Tik op een van de knoppen hierboven, of typ /annuleer om te stoppen."))


async def re_ask_text(message: Message) -> None:
    await message.answer(_("Typ je antwoord als tekst, of typ /annuleer om te stoppen."))


def build_router() -> Router:
    router = Router(name="talks")
    teacher = HasRole(Role.TEACHER)
    pupil = HasRole(Role.PUPIL)
    router.callback_query.register(show_list, TalkList.filter(), teacher)
    router.callback_query.register(open_talk, TalkOpen.filter(), teacher)
    router.callback_query.register(new_talk, TalkNew.filter(), teacher)
    router.callback_query.register(pupil_picked, TalkPupil.filter(), PlanningTalk.pupil, teacher)
    router.callback_query.register(pupil_page, TalkPupilPage.filter(), PlanningTalk.pupil, teacher)
    router.callback_query.register(kind_picked, TalkKindPick.filter(), PlanningTalk.kind, teacher)
    router.callback_query.register(moment_picked, TalkDay.filter(), PlanningTalk.day, teacher)
    router.callback_query.register(moment_picked, TalkTime.filter(), PlanningTalk.time, teacher)
    router.callback_query.register(no_place, TalkNoPlace.filter(), PlanningTalk.place, teacher)
    router.callback_query.register(move_start, TalkMove.filter(), teacher)
    router.callback_query.register(cancel_tapped, TalkCancel.filter(), teacher)
    router.callback_query.register(record_start, TalkRecord.filter(), teacher)
    router.callback_query.register(goal_sets, TalkGoalSets.filter(), RecordingTalk.goals, teacher)
    router.callback_query.register(
        NEW_GOALS.set_opened, TalkGoalSet.filter(), RecordingTalk.goals, teacher
    )
    router.callback_query.register(goal_line, TalkGoalLine.filter(), RecordingTalk.goals, teacher)
    router.callback_query.register(goal_picked, TalkGoalPick.filter(), RecordingTalk.goals, teacher)
    router.callback_query.register(goals_done, TalkGoalsDone.filter(), RecordingTalk.goals, teacher)
    router.callback_query.register(prepare_tapped, TalkPrepare.filter(), pupil)
    router.callback_query.register(
        evidence_picked, TalkEvidencePick.filter(), PreparingTalk.evidence, pupil
    )
    router.callback_query.register(
        evidence_done, TalkEvidenceDone.filter(), PreparingTalk.evidence, pupil
    )
    router.callback_query.register(step_skipped, TalkSkip.filter(), pupil)

    router.message.register(pupil_typed, PlanningTalk.pupil, TYPED, teacher)
    router.message.register(moment_typed, PlanningTalk.day, TYPED, teacher)
    router.message.register(moment_typed, PlanningTalk.time, TYPED, teacher)
    router.message.register(place_typed, PlanningTalk.place, TYPED, teacher)
    router.message.register(agreements_typed, RecordingTalk.agreements, TYPED, teacher)
    for state in ("proud", "went_well", "hard", "next"):
        router.message.register(answer_typed, PREPARING_STATES[state], TYPED, pupil)
    # Anything else in a step (a sticker, a photo, text where a button is expected).
    text_steps = (
        PlanningTalk.pupil,
        PlanningTalk.day,
        PlanningTalk.time,
        PlanningTalk.place,
        RecordingTalk.agreements,
        PreparingTalk.proud,
        PreparingTalk.went_well,
        PreparingTalk.hard,
        PreparingTalk.next,
    )
    for step in text_steps:
        router.message.register(re_ask_text, step, ~F.text.startswith("/"))
    for step in (PlanningTalk.kind, RecordingTalk.goals, PreparingTalk.evidence):
        router.message.register(re_ask_buttons, step, ~F.text.startswith("/"))
    return router
