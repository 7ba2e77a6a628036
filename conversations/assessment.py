"""A teacher gives a pupil a level on a goal (the rubric), with an optional short note.

Pupil, goal and level are buttons that carry ids; each tap is checked again in storage
(the teacher teaches the pupil now, the goal is the pupil's), so the first steps need no
dialogue state. Only the optional note is a state: the saved assessment waits for its text.

```mermaid
stateDiagram-v2
    [*] --> pupil: "📊 Niveau geven" in /klas, /niveau
    [*] --> goal: /niveau Sam, "📊 Niveau" in a pupil's timeline
    pupil --> goal: a pupil (of the active group)
    goal --> level: one of the pupil's goals this period
    level --> note: a level (saved at once; the pupil's own level is shown next to it)
    note --> [*]: a typed note, or "Klaar"
    note --> note: anything else (asked again)
```
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import button, edit_card, in_rows, main_menu, shorten
from chat_ui.texts import fill
from config.settings import Settings
from conversations.card import checked
from conversations.class_overview import AssessFrom
from conversations.rubric import default_level_names, rubric_card
from language.i18n import _
from services.clock import Clock, school_today
from storage.accounts import PersonRef, Viewer
from storage.models import Role
from storage.observations import pupils_matching, pupils_named, pupils_of_teacher
from storage.overview import (
    active_group_id,
    add_assessment_note,
    assessment_target,
    goals_to_assess,
    record_teacher_assessment,
)

MAX_NOTE = 1000
MAX_PUPIL_BUTTONS = 40
TYPED = F.text & ~F.text.startswith("/")


class TeacherAssessing(StatesGroup):
    note = State()


class AssessPupil(CallbackData, prefix="tas"):
    pupil_id: int


class AssessGoal(CallbackData, prefix="tag"):
    pupil_goal_id: int


class AssessLevel(CallbackData, prefix="tal"):
    pupil_goal_id: int
    position: int


class AssessDone(CallbackData, prefix="tad"):
    pass


def level_label(names: tuple[str | None, ...], position: int | None) -> str:
    """A rubric's own name for the level, else the default scale's name; "–" for none."""
    if position is None:
        return "–"
    if 0 < position <= len(names) and names[position - 1]:
        return str(names[position - 1])
    defaults = default_level_names()
    return defaults[position - 1] if 0 < position <= len(defaults) else str(position)


async def choose_pupil(
    bot: Bot,
    chat_id: int,
    session: AsyncSession,
    viewer: Viewer,
    teacher: PersonRef,
    settings: Settings,
    clock: Clock,
    fragment: str = "",
) -> None:
    """The pupils of the active group as buttons; a typed name that fits one pupil skips this."""
    teacher_id = teacher.id
    if fragment:
        # A name typed on purpose may be of any of the teacher's groups.
        everyone = await pupils_of_teacher(session, teacher_id=teacher_id)
        found = pupils_named(everyone, fragment) or pupils_matching(everyone, fragment)
        if len(found) == 1:
            await show_goals(bot, chat_id, session, teacher, settings, clock, found[0].id)
            return
        pupils = found
        if not found:
            await bot.send_message(
                chat_id, fill(_("Ik vind geen leerling met „{text}”."), text=fragment)
            )
    else:
        pupils = []
    if not pupils:
        group_id = await active_group_id(session, teacher_id=teacher_id)
        pupils = await pupils_of_teacher(session, teacher_id=teacher_id, group_id=group_id)
    if not pupils:
        await bot.send_message(
            chat_id,
            _("Je hebt nog geen leerlingen. De beheerder zet je in een groep."),
            reply_markup=main_menu(viewer),
        )
        return
    buttons = [
        button(pupil.name, AssessPupil(pupil_id=pupil.id)) for pupil in pupils[:MAX_PUPIL_BUTTONS]
    ]
    await bot.send_message(
        chat_id,
        _("Wie wil je een niveau geven?"),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=in_rows(buttons, 2)),
    )


async def show_goals(
    bot: Bot,
    chat_id: int,
    session: AsyncSession,
    teacher: PersonRef,
    settings: Settings,
    clock: Clock,
    pupil_id: int,
    query: CallbackQuery | None = None,
) -> bool:
    """The pupil's goals with both levels; False (nothing shown) for someone else's pupil."""
    goals = await goals_to_assess(
        session,
        teacher_id=teacher.id,
        pupil_id=pupil_id,
        today=school_today(settings, clock),
    )
    if goals is None:
        return False
    pupils = await pupils_of_teacher(session, teacher_id=teacher.id)
    name = next((pupil.name for pupil in pupils if pupil.id == pupil_id), "")
    keyboard: InlineKeyboardMarkup | None = None
    if not goals:
        text = fill(_("{name} heeft in deze periode nog geen doelen."), name=name)
    else:
        lines = [fill(_("Bij welk doel geef je {name} een niveau?"), name=name)]
        for goal in goals:
            lines += [
                "",
                fill("🎯 {code} {goal}", code=goal.goal.code, goal=goal.goal.text),
                "   "
                + fill(
                    _("leerling zelf: {own} · leerkracht: {teacher}"),
                    own=level_label(goal.level_names, goal.own_position),
                    teacher=level_label(goal.level_names, goal.teacher_position),
                ),
            ]
        text = "\n".join(lines)
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[
                [
                    button(
                        shorten(f"{goal.goal.code} {goal.goal.text}", 40),
                        AssessGoal(pupil_goal_id=goal.pupil_goal_id),
                    )
                ]
                for goal in goals
            ]
        )
    if query is not None:
        await edit_card(query, text, keyboard)
    else:
        await bot.send_message(chat_id, text, reply_markup=keyboard)
    return True


async def start_from_button(
    query: CallbackQuery,
    callback_data: AssessFrom,
    bot: Bot,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """ "📊 Niveau geven" under the overview (choose a pupil) or a timeline (that pupil)."""
    assert query.message is not None
    chat_id = query.message.chat.id
    if callback_data.pupil_id == 0:
        await query.answer()
        await choose_pupil(bot, chat_id, session, viewer, person, settings, clock)
        return
    if not await show_goals(bot, chat_id, session, person, settings, clock, callback_data.pupil_id):
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()


async def level_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """/niveau [naam]."""
    await choose_pupil(
        bot, message.chat.id, session, viewer, person, settings, clock, (command.args or "").strip()
    )


async def pupil_picked(
    query: CallbackQuery,
    callback_data: AssessPupil,
    bot: Bot,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    assert query.message is not None
    shown = await show_goals(
        bot, query.message.chat.id, session, person, settings, clock, callback_data.pupil_id, query
    )
    if not shown:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()


async def goal_picked(
    query: CallbackQuery, callback_data: AssessGoal, session: AsyncSession, person: PersonRef
) -> None:
    """The rubric of the goal: each level with what it looks like, and the pupil's own view."""
    target = await checked(
        query,
        await assessment_target(
            session, teacher_id=person.id, pupil_goal_id=callback_data.pupil_goal_id
        ),
    )
    if target is None:
        return
    names = tuple(level.name for level in target.levels)
    intro = [
        fill(_("Waar staat {name} op dit doel?"), name=target.pupil.name),
        fill("🎯 {code} {goal}", code=target.goal.code, goal=target.goal.text),
        fill(
            _("leerling zelf: {own} · leerkracht: {teacher}"),
            own=level_label(names, target.own_position),
            teacher=level_label(names, target.teacher_position),
        ),
        "",
    ]
    text, keyboard = rubric_card(
        intro,
        target.levels,
        lambda position: AssessLevel(pupil_goal_id=target.pupil_goal_id, position=position),
    )
    await edit_card(query, text, keyboard)


async def level_picked(
    query: CallbackQuery,
    callback_data: AssessLevel,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
) -> None:
    """Saved at once (a level is the point); a note may follow."""
    recorded = await checked(
        query,
        await record_teacher_assessment(
            session,
            teacher_id=person.id,
            pupil_goal_id=callback_data.pupil_goal_id,
            position=callback_data.position,
        ),
    )
    if recorded is None:
        return
    target, level, assessment_id = recorded
    await state.set_state(TeacherAssessing.note)
    await state.set_data({"assessment_id": assessment_id})
    names = tuple(choice.name for choice in target.levels)
    await edit_card(
        query,
        fill(
            _("Bewaard: {name} staat op {level} voor {goal}."),
            name=target.pupil.name,
            level=level_label(names, level.position),
            goal=target.goal.text,
        )
        + "\n"
        + _("Wil je er een korte toelichting bij? Typ hem, of tik op Klaar."),
        InlineKeyboardMarkup(inline_keyboard=[[button(_("Klaar"), AssessDone())]]),
    )


async def note_typed(
    message: Message, state: FSMContext, session: AsyncSession, viewer: Viewer, person: PersonRef
) -> None:
    assert message.text is not None
    if len(message.text) > MAX_NOTE:
        await message.answer(
            _("Dat is wat lang. Kun je het korter zeggen? (hooguit {limit} tekens)").format(
                limit=MAX_NOTE
            )
        )
        return
    data = await state.get_data()
    saved = await add_assessment_note(
        session,
        teacher_id=person.id,
        assessment_id=int(data.get("assessment_id") or 0),
        note=message.text.strip(),
    )
    await state.clear()
    if not saved:
        await message.answer(_("Die keuze ken ik niet."), reply_markup=main_menu(viewer))
        return
    await message.answer(_("Toelichting bewaard. 👍"), reply_markup=main_menu(viewer))


async def done(query: CallbackQuery, state: FSMContext) -> None:
    await query.answer()
    await state.clear()
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(reply_markup=None)


async def re_ask(message: Message) -> None:
    await message.answer(_("Typ je toelichting, of tik op Klaar. Stoppen kan met /annuleer."))


def build_router() -> Router:
    """The buttons and the note step; /niveau itself is registered with the teacher's
    commands (handlers/teacher.py), before the refusal for other roles."""
    router = Router(name="assessment")
    teacher = HasRole(Role.TEACHER)
    router.callback_query.register(start_from_button, AssessFrom.filter(), teacher)
    router.callback_query.register(pupil_picked, AssessPupil.filter(), teacher)
    router.callback_query.register(goal_picked, AssessGoal.filter(), teacher)
    router.callback_query.register(level_picked, AssessLevel.filter(), teacher)
    router.callback_query.register(done, AssessDone.filter(), teacher)
    router.message.register(note_typed, TeacherAssessing.note, TYPED, teacher)
    router.message.register(re_ask, TeacherAssessing.note, ~F.text.startswith("/"))
    return router
