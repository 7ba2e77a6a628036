"""A teacher's quick observation: who, (a goal), the note, who may see it.

```mermaid
stateDiagram-v2
    [*] --> pupils: "📝 Notitie", /obs without text
    [*] --> goal: "Notitie bij ..." (the pupil is chosen; straight to text without goals)
    [*] --> visibility: /obs Sam, Noor werkten goed samen (names all known)
    [*] --> pupils: /obs with an unknown or ambiguous name (the note is kept)
    pupils --> pupils: tap a pupil (✅ toggles), ⬅️ ➡️ pages, typed part of a name
    pupils --> goal: "Verder" (the pupils have current goals)
    pupils --> text: "Verder" (no goals)
    pupils --> visibility: "Verder" (the note came with /obs)
    goal --> text: a goal, or "Geen doel"
    goal --> visibility: the note typed, spoken or photographed straight away (no goal)
    text --> visibility: the note typed, a voice message, or a photo (its caption the text)
    visibility --> [*]: "🔒 Alleen leerkrachten" / "👪 Ook leerling en ouders": saved
```

Nothing is written until the visibility is chosen: `/annuleer` at any step leaves no half
note. The answers so far live in the FSM data (in the database), so a restart resumes at the
same step. The pupils offered come from storage (the teacher's own groups) and every id a
button brings back is checked against them, and again by storage when the note is saved.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import button, shorten
from chat_ui.texts import fill, names_list
from config.settings import Settings
from conversations.card import TYPED, CardDialogue, one_offered, toggled, too_long
from conversations.media_intake import media_store, record_file
from conversations.pupil_picker import pupil_keyboard
from language.i18n import _, ngettext
from services.clock import Clock, school_today
from storage.accounts import PersonRef
from storage.models import Role
from storage.observations import (
    NoteMedia,
    ObservationRefusedError,
    PupilRef,
    create_observation,
    current_goals_of,
    parse_note,
    pupils_matching,
    pupils_named,
    pupils_of_teacher,
    tags_in,
    unseen_pupils,
)
from storage.overview import active_group_id
from storage.policy import teaches_pupil

MAX_GOAL_BUTTONS = 8
MAX_UNSEEN_BUTTONS = 8
MAX_NOTE = 2000
NO_GOAL = 0


class Observing(StatesGroup):
    pupils = State()
    goal = State()
    text = State()
    visibility = State()


class NotePupil(CallbackData, prefix="onp"):
    pupil_id: int


class NotePage(CallbackData, prefix="onpg"):
    page: int  # a page of all pupils; also clears a typed filter


class NotePupilsDone(CallbackData, prefix="onpd"):
    pass


class NoteGoal(CallbackData, prefix="ong"):
    goal_id: int  # NO_GOAL for "Geen doel"


class NoteVisibility(CallbackData, prefix="onv"):
    private: bool


class NoteFor(CallbackData, prefix="onf"):
    """ "Notitie bij ..." under the list of pupils not seen lately."""

    pupil_id: int


STATES = {
    "pupils": Observing.pupils,
    "goal": Observing.goal,
    "text": Observing.text,
    "visibility": Observing.visibility,
}
# Button steps edit the card message; the step after typed text gets a fresh message.
CARD_STEPS = {"pupils", "goal", "visibility"}


def _shown_pupils(data: dict[str, Any]) -> list[dict[str, Any]]:
    pupils: list[dict[str, Any]] = data["pupils"]
    if data.get("filter_ids"):
        return [pupil for pupil in pupils if pupil["id"] in data["filter_ids"]]
    return pupils


def _pupil_keyboard(data: dict[str, Any]) -> InlineKeyboardMarkup:
    picked = set(data.get("picked", []))
    return pupil_keyboard(
        _shown_pupils(data),
        page=data.get("page", 0),
        pick=lambda pupil_id: NotePupil(pupil_id=pupil_id),
        turn=lambda page: NotePage(page=page),
        picked=picked,
        filtered=bool(data.get("filter_ids")),
        done=NotePupilsDone() if picked else None,
    )


def _picked_names(data: dict[str, Any]) -> list[str]:
    names = {pupil["id"]: pupil["name"] for pupil in data["pupils"]}
    return [names[pupil_id] for pupil_id in data.get("picked", []) if pupil_id in names]


def _about(data: dict[str, Any]) -> str:
    """ "Notitie bij Sam de Vries en Noor Jansen, tag #samenwerken." """
    text = fill(_("Notitie bij {names}"), names=names_list(_picked_names(data)))
    if data.get("voice"):
        text += " 🎤"
    if data.get("photo"):
        text += " 📷"
    tags = tags_in(data.get("text"))
    if tags:
        text += ", " + ngettext("tag {tags}", "tags {tags}", len(tags)).format(
            tags=", ".join(f"#{tag}" for tag in tags)
        )
    return text + "."


def _question(step: str, data: dict[str, Any]) -> tuple[str, InlineKeyboardMarkup | None]:
    """The text and buttons of a step: one place, so a re-ask shows exactly the same."""
    if step == "pupils":
        lines = []
        if data.get("hint"):
            lines.append(data["hint"])
        lines.append(_("Over wie gaat je notitie? Tik op de leerlingen, dan op Verder."))
        lines.append(_("Je mag ook een deel van een naam typen."))
        if data.get("picked"):
            lines.append(fill(_("Gekozen: {names}"), names=names_list(_picked_names(data))))
        return "\n".join(lines), _pupil_keyboard(data)
    if step == "goal":
        buttons = [
            [button(shorten(goal["text"]), NoteGoal(goal_id=goal["id"]))] for goal in data["goals"]
        ]
        buttons.append([button(_("Geen doel"), NoteGoal(goal_id=NO_GOAL))])
        return (
            fill(_("Bij welk doel hoort het? ({names})"), names=names_list(_picked_names(data)))
            + "\n"
            + _("Je mag ook meteen je notitie typen."),
            InlineKeyboardMarkup(inline_keyboard=buttons),
        )
    if step == "text":
        return (
            _("Typ je notitie. Met #inzet, #samenwerken, #welbevinden of #zorg vind je hem terug.")
            + "\n"
            + _("Inspreken of een foto sturen mag ook."),
            None,
        )
    return (
        _about(data) + "\n" + _("Zichtbaar voor:"),
        InlineKeyboardMarkup(
            inline_keyboard=[
                [button(_("🔒 Alleen leerkrachten"), NoteVisibility(private=True))],
                [button(_("👪 Ook leerling en ouders"), NoteVisibility(private=False))],
            ]
        ),
    )


CARD = CardDialogue(STATES, _question, CARD_STEPS)


async def _no_pupils(bot: Bot, chat_id: int, state: FSMContext) -> None:
    # No dialogue is started: there would be nothing to tap and no way on but /annuleer.
    await state.clear()
    await bot.send_message(
        chat_id, _("Je hebt nog geen leerlingen. De beheerder zet je in een groep.")
    )


def _pupil_data(pupils: list[PupilRef]) -> list[dict[str, Any]]:
    return [{"id": pupil.id, "name": pupil.name} for pupil in pupils]


async def begin(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    session: AsyncSession,
    teacher: PersonRef,
    settings: Settings,
    clock: Clock,
    *,
    picked: tuple[int, ...] = (),
) -> None:
    """A new note from the menu (choose pupils), or for pupils already known."""
    # The picker offers the active group (/groep); pupils already chosen by a button may be
    # of any of the teacher's groups.
    group_id = None if picked else await active_group_id(session, teacher_id=teacher.id)
    pupils = await pupils_of_teacher(session, teacher_id=teacher.id, group_id=group_id)
    if not pupils:
        await _no_pupils(bot, chat_id, state)
        return
    await state.set_data(
        {
            "pupils": _pupil_data(pupils),
            "picked": list(picked),
            "page": 0,
            "today": school_today(settings, clock).isoformat(),
        }
    )
    if picked:
        await _after_pupils(bot, chat_id, state, session, teacher, new_message=True)
        return
    await CARD.show(bot, chat_id, state, "pupils", new_message=True)


async def begin_shortcut(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    session: AsyncSession,
    teacher: PersonRef,
    settings: Settings,
    clock: Clock,
    line: str,
) -> None:
    """`/obs Sam, Noor werkten goed samen #samenwerken`: only the visibility is asked."""
    pupils = await pupils_of_teacher(session, teacher_id=teacher.id)
    if not pupils:
        await _no_pupils(bot, chat_id, state)
        return
    parsed = parse_note(pupils, line)
    if len(parsed.text or "") > MAX_NOTE:
        # Cutting the note would lose what the teacher wrote last, without them noticing.
        await bot.send_message(
            chat_id,
            _("Dat is wat lang. Kun je het korter zeggen? (hooguit {limit} tekens)").format(
                limit=MAX_NOTE
            ),
        )
        return
    data: dict[str, Any] = {
        "pupils": _pupil_data(pupils),
        "picked": list(parsed.pupil_ids),
        "page": 0,
        "today": school_today(settings, clock).isoformat(),
    }
    if parsed.text:
        data["text"] = parsed.text
    await state.set_data(data)
    if parsed.unknown or parsed.ambiguous or not parsed.pupil_ids:
        hints = []
        if parsed.unknown:
            hints.append(
                fill(
                    _("Ik ken geen leerling {names} in je groepen."),
                    names=names_list([f"„{name}”" for name in parsed.unknown]),
                )
            )
        if parsed.ambiguous:
            # The candidates first, so the question is answered with one tap per pupil.
            candidates = {
                pupil.id for name in parsed.ambiguous for pupil in pupils_named(pupils, name)
            }
            await state.update_data(filter_ids=sorted(candidates | set(parsed.pupil_ids)))
            hints.append(
                fill(
                    _("Met {names} kan ik meerdere leerlingen bedoelen."),
                    names=names_list([f"„{name}”" for name in parsed.ambiguous]),
                )
            )
        await state.update_data(hint="\n".join(hints))
        await CARD.show(bot, chat_id, state, "pupils", new_message=True)
        return
    await _after_pupils(bot, chat_id, state, session, teacher, new_message=True)


async def _after_pupils(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    session: AsyncSession,
    teacher: PersonRef,
    *,
    new_message: bool = False,
) -> None:
    """The note may already be there (/obs); else offer the pupils' goals, else ask the text."""
    data = await state.get_data()
    if data.get("text"):
        await CARD.show(bot, chat_id, state, "visibility", new_message=new_message)
        return
    goals = await current_goals_of(
        session,
        teacher_id=teacher.id,
        pupil_ids=data["picked"],
        today=date.fromisoformat(data["today"]),
    )
    if goals:
        await state.update_data(
            goals=[{"id": goal.id, "text": goal.text} for goal in goals[:MAX_GOAL_BUTTONS]]
        )
        await CARD.show(bot, chat_id, state, "goal", new_message=new_message)
        return
    await CARD.show(bot, chat_id, state, "text", new_message=True)


async def pupil_toggled(
    query: CallbackQuery, callback_data: NotePupil, bot: Bot, state: FSMContext
) -> None:
    """A tap ticks or unticks a pupil; only pupils that were offered count."""
    data = await state.get_data()
    assert query.message is not None
    if not await one_offered(query, data["pupils"], callback_data.pupil_id):
        return
    await state.update_data(picked=toggled(data.get("picked", []), callback_data.pupil_id))
    await CARD.show(bot, query.message.chat.id, state, "pupils")


async def page_turned(
    query: CallbackQuery, callback_data: NotePage, bot: Bot, state: FSMContext
) -> None:
    await query.answer()
    assert query.message is not None
    await state.update_data(page=max(0, callback_data.page), filter_ids=None)
    await CARD.show(bot, query.message.chat.id, state, "pupils")


async def pupils_typed(message: Message, bot: Bot, state: FSMContext) -> None:
    """Part of a name: one match is ticked, several are shown on their own."""
    assert message.text is not None
    data = await state.get_data()
    pupils = [PupilRef(pupil["id"], pupil["name"]) for pupil in data["pupils"]]
    found = pupils_matching(pupils, message.text)
    if not found:
        await message.answer(fill(_("Ik vind geen leerling met „{text}”."), text=message.text))
    elif len(found) == 1:
        picked: list[int] = data.get("picked", [])
        if found[0].id not in picked:
            picked.append(found[0].id)
        await state.update_data(picked=picked, filter_ids=None, page=0)
    else:
        await state.update_data(filter_ids=[pupil.id for pupil in found], page=0)
    await CARD.show(bot, message.chat.id, state, "pupils", new_message=True)


async def pupils_done(
    query: CallbackQuery, bot: Bot, state: FSMContext, session: AsyncSession, person: PersonRef
) -> None:
    assert query.message is not None
    if not (await state.get_data()).get("picked"):
        await query.answer(_("Kies eerst minstens één leerling."), show_alert=True)
        return
    await query.answer()
    await state.update_data(hint=None, filter_ids=None)
    await _after_pupils(bot, query.message.chat.id, state, session, person)


async def goal_picked(
    query: CallbackQuery, callback_data: NoteGoal, bot: Bot, state: FSMContext
) -> None:
    data = await state.get_data()
    assert query.message is not None
    if callback_data.goal_id != NO_GOAL and callback_data.goal_id not in {
        goal["id"] for goal in data.get("goals", [])
    }:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    await state.update_data(goal_id=callback_data.goal_id or None)
    await CARD.show(bot, query.message.chat.id, state, "text", new_message=True)


# The note itself (also typed at the goal step, which then means "no goal"), or spoken.
note_typed = CARD.typed_answer("visibility", "text", MAX_NOTE)
voice_told = CARD.spoken_answer("visibility")


async def photo_shown(message: Message, bot: Bot, state: FSMContext, settings: Settings) -> None:
    """A photo (of work, of the board); its caption, if any, is the note's text."""
    if message.caption and len(message.caption) > MAX_NOTE:
        await too_long(message, MAX_NOTE)
        return
    caption: dict[str, Any] = {"text": message.caption.strip()} if message.caption else {}
    await CARD.photo_answered(message, bot, state, settings, "visibility", **caption)


async def visibility_chosen(
    query: CallbackQuery,
    callback_data: NoteVisibility,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """Saves the note; storage checks every pupil and the goal once more."""
    assert query.message is not None
    data = await state.get_data()
    voice_file_id = await record_file(session, data["voice"]) if data.get("voice") else None
    photo_file_id = (
        await record_file(session, data["photo"]["image"]) if data.get("photo") else None
    )
    try:
        await create_observation(
            session,
            author_id=person.id,
            pupil_ids=data.get("picked", []),
            text=data.get("text"),
            goal_id=data.get("goal_id"),
            is_private=callback_data.private,
            voice_file_id=voice_file_id,
            photo_file_id=photo_file_id,
        )
    except ObservationRefusedError:
        await query.answer(_("Over deze leerling mag je geen notitie maken."), show_alert=True)
        await state.clear()
        return
    await query.answer()
    await state.clear()
    chat_id = query.message.chat.id
    if data.get("card"):
        shown = (
            _("🔒 alleen leerkrachten") if callback_data.private else _("👪 ook leerling en ouders")
        )
        await bot.edit_message_text(
            text=_about(data) + " " + fill(_("Zichtbaar voor: {who}"), who=shown),
            chat_id=chat_id,
            message_id=data["card"],
        )
    text, keyboard = await unseen_message(session, person, settings, clock)
    await bot.send_message(chat_id, _("Opgeslagen.") + " " + text, reply_markup=keyboard)


async def unseen_message(
    session: AsyncSession, teacher: PersonRef, settings: Settings, clock: Clock
) -> tuple[str, InlineKeyboardMarkup | None]:
    """ "Nog niet gezien deze 2 weken: ..." with a "Notitie bij ..." button per pupil."""
    return await unseen_message_for(
        session, teacher_id=teacher.id, today=school_today(settings, clock)
    )


async def unseen_message_for(
    session: AsyncSession, *, teacher_id: int, today: date, all_groups: bool = False
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The "not seen" text for one teacher: asked for (the active group), or as the morning
    nudge (`all_groups`: a teacher of several groups is not reminded of one group only)."""
    group_id = None if all_groups else await active_group_id(session, teacher_id=teacher_id)
    days, pupils = await unseen_pupils(
        session, teacher_id=teacher_id, today=today, group_id=group_id
    )
    if days % 5 == 0:
        weeks = days // 5
        period = ngettext("deze week", "deze {count} weken", weeks).format(count=weeks)
    else:
        period = ngettext("de laatste schooldag", "de laatste {count} schooldagen", days).format(
            count=days
        )
    if not pupils:
        return fill(_("Iedereen is {period} gezien. 👏"), period=period), None
    text = fill(
        _("Nog niet gezien {period}: {names}."),
        period=period,
        names=names_list([pupil.name for pupil in pupils]),
    )
    buttons = [
        [button(fill(_("📝 Notitie bij {name}"), name=pupil.name), NoteFor(pupil_id=pupil.id))]
        for pupil in pupils[:MAX_UNSEEN_BUTTONS]
    ]
    return text, InlineKeyboardMarkup(inline_keyboard=buttons)


async def start_for_pupil(
    query: CallbackQuery,
    callback_data: NoteFor,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """ "Notitie bij ...": a new note about that pupil, if the teacher still teaches them."""
    assert query.message is not None
    if not await teaches_pupil(session, teacher_id=person.id, pupil_id=callback_data.pupil_id):
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    await begin(
        bot,
        query.message.chat.id,
        state,
        session,
        person,
        settings,
        clock,
        picked=(callback_data.pupil_id,),
    )


async def re_ask(message: Message, bot: Bot, state: FSMContext) -> None:
    """Something unexpected (a sticker, a photo, text where a button was expected)."""
    step = CARD.step_of(await state.get_state())
    if step == "text":
        await message.answer(_("Typ je notitie als tekst, of typ /annuleer om te stoppen."))
        return
    if step == "pupils" and not message.text:
        await message.answer(_("Tik op een leerling, of typ een deel van de naam."))
        return
    await CARD.ask_again(message, bot, state, step)


def build_router() -> Router:
    router = Router(name="observation")
    teacher = HasRole(Role.TEACHER)
    router.callback_query.register(start_for_pupil, NoteFor.filter(), teacher)
    router.callback_query.register(pupil_toggled, NotePupil.filter(), Observing.pupils, teacher)
    router.callback_query.register(page_turned, NotePage.filter(), Observing.pupils, teacher)
    router.callback_query.register(pupils_done, NotePupilsDone.filter(), Observing.pupils, teacher)
    router.callback_query.register(goal_picked, NoteGoal.filter(), Observing.goal, teacher)
    router.callback_query.register(
        visibility_chosen, NoteVisibility.filter(), Observing.visibility, teacher
    )
    router.message.register(pupils_typed, Observing.pupils, TYPED, teacher)
    router.message.register(note_typed, Observing.goal, TYPED, teacher)
    router.message.register(note_typed, Observing.text, TYPED, teacher)
    for state in (Observing.goal, Observing.text):
        router.message.register(voice_told, state, F.voice, teacher)
        router.message.register(photo_shown, state, F.photo, teacher)
    for state in STATES.values():
        # Commands are left to their own handlers (/annuleer, /help ...).
        router.message.register(re_ask, state, ~F.text.startswith("/"))
    return router


async def send_note_media(bot: Bot, chat_id: int, media: NoteMedia, settings: Settings) -> None:
    """The stored voice message and photo of a note, sent back into the chat."""
    store = media_store(settings)
    if media.voice is not None:
        data = await asyncio.to_thread(store.path_of(media.voice).read_bytes)
        await bot.send_voice(chat_id, BufferedInputFile(data, filename="notitie.ogg"))
    if media.photo is not None:
        data = await asyncio.to_thread(store.path_of(media.photo).read_bytes)
        await bot.send_photo(chat_id, BufferedInputFile(data, filename="notitie.jpg"))
