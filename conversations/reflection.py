"""The daily reflection: at most six taps and under a minute, buttons only, typing optional.

```mermaid
stateDiagram-v2
    [*] --> goals: /reflectie, menu button, daily prompt
    goals --> other_work: "Iets anders"
    goals --> how: a goal (one tap), or several then "Verder"
    other_work --> how: typed, or "Sla over"
    how --> effort: 😀 🙂 😐 😟
    effort --> wellbeing: 💪 .. 💪💪💪💪
    wellbeing --> extra: 😀 🙂 😐 😟
    extra --> photo: "Foto van mijn werk"
    extra --> typing: "Typen"
    extra --> voice: "Inspreken"
    extra --> next_step: "Nee, klaar", or a photo / text / voice sent straight away
    photo --> next_step: the photo becomes evidence tagged with the goals
    typing --> next_step
    voice --> next_step
    next_step --> [*]: typed, or "Weet ik nog niet": saved, summary
```

Nothing is written until the last step: `/annuleer` at any point leaves no half reflection.
The answers so far live in the FSM data (in the database), so a restart resumes at the same
step. Button steps edit one "card" message, so the chat stays tidy.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import BUTTON_REFLECT, in_rows, main_menu, shorten
from chat_ui.texts import bold, fill
from config.settings import Settings
from conversations.card import TYPED, CardDialogue, one_offered, toggled, typed_within
from conversations.media_intake import image_from_data, record_file
from language.i18n import _, __, ngettext
from services.clock import Clock, school_today
from storage.accounts import PersonRef, Viewer
from storage.evidence import NewEvidence, create_evidence
from storage.models import EvidenceKind, Role
from storage.reflections import (
    ReflectionAnswers,
    own_goal_ids,
    reflection_goals,
    save_checked_reflection,
    times_worked_on,
)
from storage.week_plans import monday_of

MAX_GOAL_BUTTONS = 8
MAX_SHORT_TEXT = 300
MAX_LONG_TEXT = 1000
OTHER = 0


class Reflecting(StatesGroup):
    goals = State()
    other_work = State()
    how = State()
    effort = State()
    wellbeing = State()
    extra = State()
    photo = State()
    typing = State()
    voice = State()
    next_step = State()


class PickGoal(CallbackData, prefix="rg"):
    goal_id: int  # OTHER for "iets anders"


class GoalsDone(CallbackData, prefix="rgd"):
    more: bool  # True: switch to choosing several goals; False: done choosing


class Scale(CallbackData, prefix="rsc"):
    step: str
    value: int


class Extra(CallbackData, prefix="rx"):
    kind: str  # "photo", "text", "voice" or "none"


class Skip(CallbackData, prefix="rsk"):
    step: str


class StartReflection(CallbackData, prefix="rstart"):
    """The button of the daily prompt."""


# The four-point scales, highest first as the pupil reads them. Values: 4 = best.
HOW_OPTIONS = ((4, __("😀 Top")), (3, __("🙂 Goed")), (2, __("😐 Gaat wel")), (1, __("😟 Lastig")))
EFFORT_OPTIONS = ((1, "💪"), (2, "💪💪"), (3, "💪💪💪"), (4, "💪💪💪💪"))
FEEL_OPTIONS = ((4, "😀"), (3, "🙂"), (2, "😐"), (1, "😟"))


def _goal_keyboard(
    goals: list[dict[str, Any]], picked: list[int], multi: bool
) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            text=("✅ " if goal["id"] in picked else "") + shorten(goal["text"]),
            callback_data=PickGoal(goal_id=goal["id"]).pack(),
        )
        for goal in goals
    ]
    rows = in_rows(buttons, 1)
    rows.append(
        [InlineKeyboardButton(text=_("Iets anders"), callback_data=PickGoal(goal_id=OTHER).pack())]
    )
    if multi:
        if picked:
            rows.append(
                [
                    InlineKeyboardButton(
                        text=_("Verder ➡️"), callback_data=GoalsDone(more=False).pack()
                    )
                ]
            )
    elif len(goals) > 1:
        rows.append(
            [
                InlineKeyboardButton(
                    text=_("➕ Meer doelen tegelijk"), callback_data=GoalsDone(more=True).pack()
                )
            ]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _scale_keyboard(
    step: str, options: tuple[tuple[int, Any], ...], width: int
) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(text=str(label), callback_data=Scale(step=step, value=value).pack())
        for value, label in options
    ]
    return InlineKeyboardMarkup(inline_keyboard=in_rows(buttons, width))


def _extra_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("📷 Foto van mijn werk"), callback_data=Extra(kind="photo").pack()
                )
            ],
            [
                InlineKeyboardButton(
                    text=_("🎤 Inspreken"), callback_data=Extra(kind="voice").pack()
                ),
                InlineKeyboardButton(text=_("✍️ Typen"), callback_data=Extra(kind="text").pack()),
            ],
            [InlineKeyboardButton(text=_("Nee, klaar"), callback_data=Extra(kind="none").pack())],
        ]
    )


def _skip_keyboard(step: str, label: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=label, callback_data=Skip(step=step).pack())]]
    )


def _question(step: str, data: dict[str, Any]) -> tuple[str, InlineKeyboardMarkup | None]:
    """The text and buttons of a step: one place, so a re-ask shows exactly the same."""
    if step == "goals":
        text = fill(_("Hoi {name}! Waar heb je vandaag aan gewerkt?"), name=data["name"])
        if not data["goals"]:
            text += "\n" + _("Je hebt nog geen doelen voor deze periode. Kies ze met /doelen.")
        elif data.get("multi"):
            text += "\n" + _("Tik op alle doelen waar je aan werkte, dan op Verder.")
        return text, _goal_keyboard(
            data["goals"], data.get("goal_ids", []), data.get("multi", False)
        )
    if step == "other_work":
        return (
            _("Waar heb je aan gewerkt? Typ het kort, bijvoorbeeld: spreekbeurt over vulkanen."),
            _skip_keyboard("other_work", _("Sla over")),
        )
    if step == "how":
        return _("Hoe ging het?"), _scale_keyboard("how", HOW_OPTIONS, 2)
    if step == "effort":
        return _("Hoeveel moeite heb je gedaan?"), _scale_keyboard("effort", EFFORT_OPTIONS, 4)
    if step == "wellbeing":
        return _("Hoe voel je je nu?"), _scale_keyboard("wellbeing", FEEL_OPTIONS, 4)
    if step == "extra":
        return (
            _("Wil je nog iets vertellen of laten zien? Je mag ook meteen typen of inspreken."),
            _extra_keyboard(),
        )
    if step == "photo":
        return _("Stuur de foto van je werk maar! 📷"), None
    if step == "typing":
        return _("Typ maar wat je wilt vertellen."), None
    if step == "voice":
        return _("Houd de microfoon ingedrukt en spreek je bericht in. 🎤"), None
    return (
        _("Wat is je volgende stap? Typ het kort."),
        _skip_keyboard("next_step", _("Weet ik nog niet")),
    )


STATES = {
    "goals": Reflecting.goals,
    "other_work": Reflecting.other_work,
    "how": Reflecting.how,
    "effort": Reflecting.effort,
    "wellbeing": Reflecting.wellbeing,
    "extra": Reflecting.extra,
    "photo": Reflecting.photo,
    "typing": Reflecting.typing,
    "voice": Reflecting.voice,
    "next_step": Reflecting.next_step,
}
# Button steps edit the card message; typed steps get a fresh message below the pupil's text.
CARD_STEPS = {"goals", "how", "effort", "wellbeing", "extra"}


CARD = CardDialogue(STATES, _question, CARD_STEPS)


async def begin(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    session: AsyncSession,
    pupil: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """Start a reflection: this week's goals first, then the period's other goals."""
    today = school_today(settings, clock)
    choices = await reflection_goals(
        session,
        pupil_id=pupil.id,
        school_id=pupil.school_id,
        today=today,
        week_start=monday_of(today),
    )
    goals = [{"id": goal_id, "text": text} for goal_id, text in choices[:MAX_GOAL_BUTTONS]]
    await state.set_data(
        {
            "name": pupil.name.split()[0],
            "goals": goals,
            "goal_ids": [],
            "today": today.isoformat(),
        }
    )
    await CARD.show(bot, chat_id, state, "goals", new_message=True)


async def start_command(
    message: Message,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """/reflectie or the menu button: today's reflection (a second one adds to the first)."""
    await begin(bot, message.chat.id, state, session, person, settings, clock)


async def start_from_prompt(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """The daily prompt's button."""
    await query.answer()
    assert query.message is not None
    await begin(bot, query.message.chat.id, state, session, person, settings, clock)


async def goal_picked(
    query: CallbackQuery, callback_data: PickGoal, bot: Bot, state: FSMContext
) -> None:
    """One tap picks the goal and moves on; in "several goals" mode it toggles."""
    data = await state.get_data()
    assert query.message is not None
    if callback_data.goal_id == OTHER:
        await query.answer()
        await CARD.show(bot, query.message.chat.id, state, "other_work", new_message=True)
        return
    if not await one_offered(query, data["goals"], callback_data.goal_id):
        return
    if not data.get("multi"):
        await state.update_data(goal_ids=[callback_data.goal_id])
        await CARD.show(bot, query.message.chat.id, state, "how")
        return
    await state.update_data(goal_ids=toggled(data.get("goal_ids", []), callback_data.goal_id))
    await CARD.show(bot, query.message.chat.id, state, "goals")


async def goals_mode(
    query: CallbackQuery, callback_data: GoalsDone, bot: Bot, state: FSMContext
) -> None:
    """ "Meer doelen tegelijk" switches to ticking several goals; "Verder" goes on."""
    await query.answer()
    assert query.message is not None
    if callback_data.more:
        await state.update_data(multi=True)
        await CARD.show(bot, query.message.chat.id, state, "goals")
        return
    if not (await state.get_data()).get("goal_ids"):
        await CARD.show(bot, query.message.chat.id, state, "goals")
        return
    await CARD.show(bot, query.message.chat.id, state, "how")


# What the pupil worked on, in their own words.
other_work_typed = CARD.typed_answer("how", "other_work", MAX_SHORT_TEXT)


NEXT_AFTER_SCALE = {"how": "effort", "effort": "wellbeing", "wellbeing": "extra"}


async def scale_answered(
    query: CallbackQuery, callback_data: Scale, bot: Bot, state: FSMContext
) -> None:
    """A tap on one of the emoji scales."""
    current = await state.get_state()
    if (
        current != STATES.get(callback_data.step, Reflecting.goals).state
        or not 1 <= callback_data.value <= 4
    ):
        await query.answer(_("Deze vraag is al beantwoord."), show_alert=False)
        return
    await query.answer()
    assert query.message is not None
    await state.update_data({callback_data.step: callback_data.value})
    await CARD.show(bot, query.message.chat.id, state, NEXT_AFTER_SCALE[callback_data.step])


async def extra_chosen(
    query: CallbackQuery, callback_data: Extra, bot: Bot, state: FSMContext
) -> None:
    """Tell something (typing or voice), or nothing."""
    await query.answer()
    assert query.message is not None
    step = {"photo": "photo", "text": "typing", "voice": "voice"}.get(
        callback_data.kind, "next_step"
    )
    await CARD.show(bot, query.message.chat.id, state, step, new_message=True)


# Typed text at the "tell something" step (also when typed without tapping ✍️), or a voice
# message there; kept with the reflection.
text_told = CARD.typed_answer("next_step", "text", MAX_LONG_TEXT)
voice_told = CARD.spoken_answer("next_step")


async def photo_shown(message: Message, bot: Bot, state: FSMContext, settings: Settings) -> None:
    """A photo of the work: cleaned and kept; it becomes evidence when the reflection is saved."""
    await CARD.photo_answered(message, bot, state, settings, "next_step", several=True)


async def skipped(
    query: CallbackQuery,
    callback_data: Skip,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
) -> None:
    """ "Sla over" for what else was worked on, "Weet ik nog niet" for the next step."""
    current = await state.get_state()
    if current != STATES.get(callback_data.step, Reflecting.goals).state:
        await query.answer(_("Deze vraag is al beantwoord."))
        return
    await query.answer()
    assert query.message is not None
    if callback_data.step == "other_work":
        await CARD.show(bot, query.message.chat.id, state, "how", new_message=True)
        return
    await finish(query.message.chat.id, bot, state, session, viewer, person)


async def next_step_typed(
    message: Message,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
) -> None:
    """The pupil's next step, in their own words; then the reflection is saved."""
    next_step = await typed_within(message, MAX_SHORT_TEXT)
    if next_step is None:
        return
    await state.update_data(next_step=next_step)
    await finish(message.chat.id, bot, state, session, viewer, person)


async def finish(
    chat_id: int,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    viewer: Viewer,
    pupil: PersonRef,
) -> None:
    """Save everything at once and praise the effort, never the marks."""
    data = await state.get_data()
    on_date = date.fromisoformat(data["today"])
    voice_file_id = await record_file(session, data["voice"]) if data.get("voice") else None
    # A goal the teacher dropped while the pupil was answering is left out, not an error.
    goal_ids = sorted(
        await own_goal_ids(session, pupil_id=pupil.id, goal_ids=data.get("goal_ids", []))
    )
    reflection = await save_checked_reflection(
        session,
        pupil_id=pupil.id,
        on_date=on_date,
        answers=ReflectionAnswers(
            goal_ids=tuple(goal_ids),
            other_work=data.get("other_work"),
            how_it_went=data["how"],
            effort=data["effort"],
            wellbeing=data["wellbeing"],
            text=data.get("text"),
            voice_file_id=voice_file_id,
            next_step=data.get("next_step"),
        ),
    )
    if data.get("photos"):
        await create_evidence(
            session,
            school_id=pupil.school_id,
            new=NewEvidence(
                pupil_id=pupil.id,
                kind=EvidenceKind.PHOTO,
                files=[image_from_data(photo) for photo in data["photos"]],
                goal_ids=goal_ids,
                reflection_id=reflection.id,
            ),
        )
    await state.clear()
    summary = await _summary(session, pupil, data, on_date)
    await bot.send_message(chat_id, summary, reply_markup=main_menu(viewer))


async def _summary(
    session: AsyncSession, pupil: PersonRef, data: dict[str, Any], on_date: date
) -> str:
    goal_texts = {goal["id"]: goal["text"] for goal in data["goals"]}
    picked = [goal_id for goal_id in data.get("goal_ids", []) if goal_id in goal_texts]
    what = ", ".join(bold(goal_texts[goal_id]) for goal_id in picked) or bold(
        data.get("other_work") or _("je werk")
    )
    effort = "💪" * int(data["effort"])
    if data["effort"] >= 3:
        text = _("Top, {name}! Je hebt vandaag hard gewerkt aan {what} {effort}.")
    elif data["effort"] == 2:
        text = _("Goed zo, {name}! Je hebt vandaag gewerkt aan {what} {effort}.")
    else:
        text = _("Fijn dat je het hebt opgeschreven, {name}. Morgen is er weer een nieuwe dag.")
    lines = [text.format(name=bold(data["name"]), what=what, effort=effort)]
    if picked:
        week_start = monday_of(on_date)
        count = await times_worked_on(
            session,
            pupil_id=pupil.id,
            goal_id=picked[0],
            since=week_start,
            until=on_date,
        )
        lines.append(
            ngettext(
                "Dit was de eerste keer deze week.",
                "Je werkte er deze week al {count} keer aan.",
                count,
            ).format(count=count)
        )
    if data.get("photos"):
        lines.append(_("📷 Je foto staat in je portfolio."))
    lines.append(_("Tot morgen! 👋"))
    return "\n".join(lines)


async def re_ask(message: Message, bot: Bot, state: FSMContext) -> None:
    """Typing or a photo where a button was expected: a gentle re-ask, with the buttons."""
    step = CARD.step_of(await state.get_state())
    if step in {"typing", "other_work", "next_step"}:
        await message.answer(_("Typ je antwoord als tekst, of tik op de knop."))
        return
    if step == "voice":
        await message.answer(_("Stuur een spraakbericht, of typ /annuleer om te stoppen."))
        return
    if step == "photo":
        await message.answer(_("Stuur een foto, of typ /annuleer om te stoppen."))
        return
    await CARD.ask_again(message, bot, state, step)


def build_router() -> Router:
    router = Router(name="reflection")
    pupil = HasRole(Role.PUPIL)
    router.message.register(start_command, Command("reflectie", "reflect"), pupil)
    router.message.register(start_command, F.text == BUTTON_REFLECT, pupil)
    router.callback_query.register(start_from_prompt, StartReflection.filter(), pupil)
    router.callback_query.register(goal_picked, PickGoal.filter(), Reflecting.goals)
    router.callback_query.register(goals_mode, GoalsDone.filter(), Reflecting.goals)
    router.callback_query.register(scale_answered, Scale.filter())
    router.callback_query.register(extra_chosen, Extra.filter(), Reflecting.extra)
    # The steps that save take the pupil from the role filter; only a pupil starts this dialogue.
    router.callback_query.register(skipped, Skip.filter(), pupil)
    router.message.register(other_work_typed, Reflecting.other_work, TYPED)
    router.message.register(text_told, Reflecting.extra, TYPED)
    router.message.register(text_told, Reflecting.typing, TYPED)
    router.message.register(voice_told, Reflecting.extra, F.voice)
    router.message.register(voice_told, Reflecting.voice, F.voice)
    router.message.register(photo_shown, Reflecting.extra, F.photo)
    router.message.register(photo_shown, Reflecting.photo, F.photo)
    router.message.register(next_step_typed, Reflecting.next_step, TYPED, pupil)
    for state in STATES.values():
        # Commands are left to their own handlers (/annuleer, /help ...).
        router.message.register(re_ask, state, ~F.text.startswith("/"))
    return router
