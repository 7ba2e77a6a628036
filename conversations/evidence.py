"""Keeping work in the portfolio: a pupil sends a photo, album, file, voice message, video or
round video message outside any dialogue, and tags it in a few taps on one card message.

```mermaid
stateDiagram-v2
    [*] --> goals: photo, album, image or PDF as a file, voice message, video
    goals --> goals: an album's next photo (added, the card counts it), a goal ticked
    goals --> caption: "Verder" (with goals ticked) or "Geen doel"
    goals --> place: the same, when the pupil wrote a caption with the file
    caption --> place: typed, or "Nee"
    place --> sharing: "Op school" / "Buiten school"
    sharing --> [*]: "Ja" / "Nee, alleen juf/meester": saved, "Bewaard in je portfolio"
    [*] --> goals: portfolio "Doelen" (editing: "Verder" saves the goals)
    [*] --> caption: portfolio "Bijschrift" (editing: the typed text is saved)
```

Nothing is written to the database until the last tap; the files are already in the media
store (content-addressed) and only described in the FSM data, so `/annuleer` keeps no rows and
a restart resumes at the same step with every file. Files without rows are swept later.

Videos (also round video messages, and videos sent as a file) are checked against
`Settings.max_video_seconds` and Telegram's 20 MB download limit before anything is kept, and
cleaned of their metadata (`media.metadata`); Telegram's thumbnail becomes the item's.

Albums: Telegram sends each photo of an album as its own update with one `media_group_id`,
and event isolation hands them to us one by one. The first photo starts the dialogue; the
next ones, seeing the same `media_group_id` in the FSM data, join it and the card is edited to
count them. This is the debounce: no timer that a restart could lose, no sleeping handler
(on SQLite that would hold up every user), one item and one card per album.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import button, shorten
from chat_ui.texts import bold, fill
from config.settings import Settings
from conversations.card import TYPED, CardDialogue, one_offered, toggled, typed_within
from conversations.media_intake import (
    file_from_data,
    image_from_data,
    is_video_document,
    keep_document,
    keep_photo,
    keep_video,
    keep_video_document,
    keep_video_note,
    keep_voice,
    kept_or_explained,
    video_from_data,
)
from conversations.work_card import about_lines
from language.i18n import _, ngettext
from services.clock import Clock, school_today
from storage.accounts import PersonRef
from storage.evidence import (
    NewEvidence,
    create_evidence,
    evidence_of,
    set_caption,
    set_goals,
)
from storage.goals import chosen_goals, pupil_context
from storage.media_files import StoredFile, StoredImage, StoredVideo
from storage.models import Approval, EvidenceKind, Role, School
from storage.week_plans import monday_of, week_goal_ids

MAX_GOAL_BUTTONS = 10
MAX_CAPTION = 1000
NO_GOAL = 0

SENT_WORK = F.photo | F.document | F.voice | F.video | F.video_note


class Tagging(StatesGroup):
    goals = State()
    caption = State()
    place = State()
    sharing = State()


class TagGoal(CallbackData, prefix="eg"):
    goal_id: int  # NO_GOAL for "Geen doel"


class TagGoalsDone(CallbackData, prefix="egd"):
    pass


class NoCaption(CallbackData, prefix="enc"):
    pass


class Place(CallbackData, prefix="epl"):
    outside: bool


class Share(CallbackData, prefix="esh"):
    shared: bool


class ShowEvidence(CallbackData, prefix="pfo"):
    """Back to one item in the portfolio (handled by `handlers.portfolio`)."""

    evidence_id: int


class EditEvidence(CallbackData, prefix="pfe"):
    """The portfolio's "Bijschrift" / "Doelen" buttons: start a one-step edit."""

    evidence_id: int
    what: str  # "caption" or "goals"


STATES = {
    "goals": Tagging.goals,
    "caption": Tagging.caption,
    "place": Tagging.place,
    "sharing": Tagging.sharing,
}


def sharing_line(shared: bool, approval: Approval) -> str:
    """Who may see the work, as the pupil reads it (here and on the portfolio card)."""
    if not shared:
        return _("🔒 Alleen voor school")
    if approval is Approval.PENDING:
        return _("⏳ Gedeeld met ouders: wacht op je juf/meester")
    if approval is Approval.PRIVATE:
        return _("🔒 Je juf/meester houdt dit op school")
    return _("👨‍👩‍👧 Gedeeld met ouders")


def _what(data: dict[str, Any]) -> str:
    """ "je foto", "je 3 foto's", "je bestand", "je spraakbericht", "je video": the card's
    subject."""
    files = data["files"]
    if data["kind"] == EvidenceKind.VOICE:
        return _("je spraakbericht")
    if data["kind"] == EvidenceKind.VIDEO:
        return ngettext("je video", "je {count} video's", len(files)).format(count=len(files))
    if data["kind"] == EvidenceKind.DOCUMENT:
        return ngettext("je bestand", "je {count} bestanden", len(files)).format(count=len(files))
    return ngettext("je foto", "je {count} foto's", len(files)).format(count=len(files))


def _question(step: str, data: dict[str, Any]) -> tuple[str, InlineKeyboardMarkup]:
    """The text and buttons of a step: one place, so a re-ask shows exactly the same."""
    editing = data.get("editing") is not None
    if step == "goals":
        if editing:
            text = _("Bij welke doelen hoort dit? Tik ze aan, dan op Verder.")
        else:
            text = fill(_("📥 Ik bewaar {what}. Bij welk doel hoort het?"), what=_what(data))
            text += "\n" + _("Tik één of meer doelen aan, dan op Verder.")
        picked = data.get("goal_ids", [])
        rows = [
            [
                button(
                    ("✅ " if goal["id"] in picked else "")
                    + ("📅 " if goal.get("week") else "")
                    + shorten(goal["text"]),
                    TagGoal(goal_id=goal["id"]),
                )
            ]
            for goal in data["goals"]
        ]
        last = [button(_("Geen doel"), TagGoal(goal_id=NO_GOAL))]
        if picked:
            last.append(button(_("Verder ➡️"), TagGoalsDone()))
        rows.append(last)
        return text, InlineKeyboardMarkup(inline_keyboard=rows)
    if step == "caption":
        if editing:
            text = _("Typ het nieuwe bijschrift.")
            label = _("Geen bijschrift")
        else:
            text = _("Wil je er iets bij schrijven? Typ het kort, of tik op Nee.")
            label = _("Nee")
        return text, InlineKeyboardMarkup(inline_keyboard=[[button(label, NoCaption())]])
    if step == "place":
        return _("Waar heb je dit gemaakt?"), InlineKeyboardMarkup(
            inline_keyboard=[
                [
                    button(_("🏫 Op school"), Place(outside=False)),
                    button(_("🏠 Buiten school"), Place(outside=True)),
                ]
            ]
        )
    default = bool(data.get("default_shared"))
    return _("Mogen je ouders dit zien?"), InlineKeyboardMarkup(
        inline_keyboard=[
            [button(("✅ " if default else "") + _("Ja"), Share(shared=True))],
            [
                button(
                    ("✅ " if not default else "") + _("Nee, alleen juf/meester"),
                    Share(shared=False),
                )
            ],
        ]
    )


# Every step is a question on the card.
CARD = CardDialogue(STATES, _question)


async def _goal_options(
    session: AsyncSession, pupil: PersonRef, settings: Settings, clock: Clock
) -> list[dict[str, Any]]:
    """This week's goals first (marked 📅), then the period's other goals."""
    today = school_today(settings, clock)
    context = await pupil_context(session, pupil_id=pupil.id, today=today)
    if context.period_id is None:
        return []
    choices = await chosen_goals(session, pupil_id=pupil.id, period_id=context.period_id)
    this_week = await week_goal_ids(session, pupil_id=pupil.id, week_start=monday_of(today))
    order = {goal_id: index for index, goal_id in enumerate(this_week)}
    choices.sort(key=lambda choice: order.get(choice.goal.id, len(order)))
    return [
        {"id": c.goal.id, "text": c.goal.text, "week": c.goal.id in order}
        for c in choices[:MAX_GOAL_BUTTONS]
    ]


async def _keep(message: Message, bot: Bot, settings: Settings) -> dict[str, Any]:
    """Download and store what was sent; an entry for the FSM data. Raises MediaRefusedError."""
    if message.photo:
        return {"image": True, "stored": await keep_photo(bot, message.photo, settings)}
    if message.voice is not None:
        return {"image": False, "stored": await keep_voice(bot, message.voice, settings)}
    if message.video is not None:
        stored = await keep_video(bot, message.video, settings)
        return {"image": False, "video": True, "stored": stored, "name": message.video.file_name}
    if message.video_note is not None:
        stored = await keep_video_note(bot, message.video_note, settings)
        return {"image": False, "video": True, "stored": stored}
    assert message.document is not None
    if is_video_document(message.document):
        stored = await keep_video_document(bot, message.document, settings)
        return {"image": False, "video": True, "stored": stored, "name": message.document.file_name}
    is_image, stored = await keep_document(bot, message.document, settings)
    return {"image": is_image, "stored": stored, "name": message.document.file_name}


def _kind(files: list[dict[str, Any]], message: Message | None = None) -> EvidenceKind:
    if message is not None and message.voice is not None:
        return EvidenceKind.VOICE
    if all(entry["image"] for entry in files):
        return EvidenceKind.PHOTO
    if all(entry.get("video") for entry in files):
        return EvidenceKind.VIDEO
    return EvidenceKind.DOCUMENT  # an album of photos and videos, or files of several kinds


def _stored(entry: dict[str, Any]) -> StoredImage | StoredVideo | StoredFile:
    if entry["image"]:
        return image_from_data(entry["stored"])
    if entry.get("video"):
        return video_from_data(entry["stored"])
    return file_from_data(entry["stored"])


def _caption_of(message: Message) -> str | None:
    caption = (message.caption or "").strip()
    return caption[:MAX_CAPTION] or None


async def work_sent(
    message: Message,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """A photo, file, voice message or video outside any dialogue: keep the file, ask about
    it."""
    entry = await kept_or_explained(message, _keep(message, bot, settings))
    if entry is None:
        return
    school = await session.get(School, person.school_id)
    files = [entry]
    await state.set_data(
        {
            "files": files,
            "kind": _kind(files, message).value,
            "media_group_id": message.media_group_id,
            "caption": _caption_of(message),
            "goals": await _goal_options(session, person, settings, clock),
            "goal_ids": [],
            "default_shared": bool(school and school.evidence_shared_by_default),
        }
    )
    await CARD.show(bot, message.chat.id, state, "goals", new_message=True)


async def more_sent(message: Message, bot: Bot, state: FSMContext, settings: Settings) -> None:
    """Work sent while tagging: the next photo of the same album joins the item; anything
    else is a gentle "finish this one first"."""
    data = await state.get_data()
    group = data.get("media_group_id")
    if group is None or message.media_group_id != group or data.get("editing") is not None:
        await message.answer(
            _("Je bent nog bezig met je vorige werk. Maak dat eerst af, of typ /annuleer.")
        )
        await CARD.show(
            bot,
            message.chat.id,
            state,
            CARD.step_of(await state.get_state(), "goals"),
            new_message=True,
        )
        return
    entry = await kept_or_explained(message, _keep(message, bot, settings))
    if entry is None:
        return
    files = [*data["files"], entry]
    kind = _kind(files)
    await state.update_data(
        files=files, kind=kind.value, caption=data.get("caption") or _caption_of(message)
    )
    step = CARD.step_of(await state.get_state(), "goals")
    if step == "goals":
        # Only this step's text counts the photos; redrawing another step would be an edit
        # that changes nothing, which Telegram refuses.
        await CARD.show(bot, message.chat.id, state, step)


async def goal_tapped(
    query: CallbackQuery,
    callback_data: TagGoal,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
) -> None:
    """A goal toggles its tick; "Geen doel" goes on without goals."""
    data = await state.get_data()
    assert query.message is not None
    if callback_data.goal_id == NO_GOAL:
        await query.answer()
        await state.update_data(goal_ids=[])
        await _after_goals(query.message.chat.id, bot, state, session, person)
        return
    if not await one_offered(query, data["goals"], callback_data.goal_id):
        return
    await state.update_data(goal_ids=toggled(data.get("goal_ids", []), callback_data.goal_id))
    await CARD.show(bot, query.message.chat.id, state, "goals")


async def goals_done(
    query: CallbackQuery, bot: Bot, state: FSMContext, session: AsyncSession, person: PersonRef
) -> None:
    await query.answer()
    assert query.message is not None
    if not (await state.get_data()).get("goal_ids"):
        return  # a stale "Verder": the card already shows the goals without it
    await _after_goals(query.message.chat.id, bot, state, session, person)


async def _after_goals(
    chat_id: int, bot: Bot, state: FSMContext, session: AsyncSession, pupil: PersonRef
) -> None:
    data = await state.get_data()
    if data.get("editing") is not None:
        await set_goals(
            session,
            pupil_id=pupil.id,
            evidence_id=data["editing"],
            goal_ids=data.get("goal_ids", []),
        )
        await _edited(chat_id, bot, state, data)
        return
    # A caption sent with the file already answers the caption question.
    await CARD.show(bot, chat_id, state, "place" if data.get("caption") else "caption")


async def caption_typed(
    message: Message, bot: Bot, state: FSMContext, session: AsyncSession, person: PersonRef
) -> None:
    caption = await typed_within(message, MAX_CAPTION)
    if caption is None:
        return
    await state.update_data(caption=caption)
    await _after_caption(message.chat.id, bot, state, session, person)


async def caption_skipped(
    query: CallbackQuery, bot: Bot, state: FSMContext, session: AsyncSession, person: PersonRef
) -> None:
    await query.answer()
    assert query.message is not None
    await state.update_data(caption=None)
    await _after_caption(query.message.chat.id, bot, state, session, person, same_card=True)


async def _after_caption(
    chat_id: int,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    pupil: PersonRef,
    *,
    same_card: bool = False,
) -> None:
    data = await state.get_data()
    if data.get("editing") is not None:
        await set_caption(
            session,
            pupil_id=pupil.id,
            evidence_id=data["editing"],
            caption=data.get("caption"),
        )
        await _edited(chat_id, bot, state, data, same_card=same_card)
        return
    # After typing, the card is above the pupil's text: the next question comes below it.
    await CARD.show(bot, chat_id, state, "place", new_message=not same_card)


async def place_chosen(
    query: CallbackQuery, callback_data: Place, bot: Bot, state: FSMContext
) -> None:
    await query.answer()
    assert query.message is not None
    await state.update_data(outside_school=callback_data.outside)
    await CARD.show(bot, query.message.chat.id, state, "sharing")


async def sharing_chosen(
    query: CallbackQuery,
    callback_data: Share,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
) -> None:
    """The last tap: everything is written at once."""
    assert query.message is not None
    await query.answer()
    data = await state.get_data()
    evidence = await create_evidence(
        session,
        school_id=person.school_id,
        new=NewEvidence(
            pupil_id=person.id,
            kind=EvidenceKind(data["kind"]),
            files=[_stored(f) for f in data["files"]],
            goal_ids=data.get("goal_ids", []),
            caption=data.get("caption"),
            outside_school=bool(data.get("outside_school")),
            shared_with_parents=callback_data.shared,
            media_group_id=data.get("media_group_id"),
            original_names=[f.get("name") for f in data["files"]],
        ),
    )
    await state.clear()
    view = await evidence_of(session, pupil_id=person.id, evidence_id=evidence.id)
    assert view is not None
    lines = [bold(_("Bewaard in je portfolio ✅")), *about_lines(view)]
    lines.append(sharing_line(view.shared_with_parents, view.approval))
    await bot.edit_message_text(
        text="\n".join(lines),
        chat_id=query.message.chat.id,
        message_id=data["card"],
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[
                [button(_("🗂 Bekijk je portfolio"), ShowEvidence(evidence_id=evidence.id))]
            ]
        ),
    )


async def edit_started(
    query: CallbackQuery,
    callback_data: EditEvidence,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """The portfolio's "Bijschrift" or "Doelen": the same step as when tagging, but it saves
    straight away. The evidence id is checked here and again when saving."""
    assert query.message is not None
    view = await evidence_of(session, pupil_id=person.id, evidence_id=callback_data.evidence_id)
    if view is None or callback_data.what not in {"caption", "goals"}:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    if await state.get_state() is not None and (await state.get_data()).get("editing") is None:
        # Files being tagged would be lost without a word.
        await query.answer(
            _("Je bent nog bezig met je vorige werk. Maak dat eerst af, of typ /annuleer."),
            show_alert=True,
        )
        return
    await query.answer()
    goals = await _goal_options(session, person, settings, clock)
    offered = {goal["id"] for goal in goals}
    # Goals of an earlier period stay tickable, so editing never drops them unseen.
    goals += [{"id": gid, "text": text} for gid, text in view.goals if gid not in offered]
    await state.set_data(
        {
            "editing": view.id,
            "goals": goals,
            "goal_ids": [gid for gid, _text in view.goals],
            "caption": view.caption,
        }
    )
    await CARD.show(bot, query.message.chat.id, state, callback_data.what, new_message=True)


async def _edited(
    chat_id: int, bot: Bot, state: FSMContext, data: dict[str, Any], *, same_card: bool = True
) -> None:
    await state.clear()
    text = _("Aangepast ✅")
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [button(_("🗂 Terug naar je portfolio"), ShowEvidence(evidence_id=data["editing"]))]
        ]
    )
    if same_card and data.get("card"):
        await bot.edit_message_text(
            text=text, chat_id=chat_id, message_id=data["card"], reply_markup=keyboard
        )
        return
    await bot.send_message(chat_id, text, reply_markup=keyboard)


async def re_ask(message: Message, bot: Bot, state: FSMContext) -> None:
    """Typing where a button was expected: a gentle re-ask, with the buttons below it."""
    await CARD.ask_again(message, bot, state, CARD.step_of(await state.get_state(), "goals"))


async def not_for_this_role(message: Message) -> None:
    """Teachers, parents and admins sending a photo: pupils keep their own work here."""
    await message.answer(
        _("Foto's en werk bewaren doen leerlingen hier zelf. Kies iets uit het menu.")
    )


def build_router() -> Router:
    router = Router(name="evidence")
    pupil = HasRole(Role.PUPIL)
    idle = StateFilter(None)
    router.message.register(work_sent, idle, SENT_WORK, pupil)
    router.message.register(
        not_for_this_role, idle, SENT_WORK, HasRole(Role.TEACHER, Role.PARENT, Role.ADMIN)
    )
    router.callback_query.register(edit_started, EditEvidence.filter(), pupil)
    # The steps that save take the pupil from the role filter; only a pupil starts tagging.
    router.callback_query.register(goal_tapped, TagGoal.filter(), Tagging.goals, pupil)
    router.callback_query.register(goals_done, TagGoalsDone.filter(), Tagging.goals, pupil)
    router.callback_query.register(caption_skipped, NoCaption.filter(), Tagging.caption, pupil)
    router.callback_query.register(place_chosen, Place.filter(), Tagging.place)
    router.callback_query.register(sharing_chosen, Share.filter(), Tagging.sharing, pupil)
    router.message.register(caption_typed, Tagging.caption, TYPED, pupil)
    for state in STATES.values():
        router.message.register(more_sent, state, SENT_WORK)
        # Commands are left to their own handlers (/annuleer, /help ...).
        router.message.register(re_ask, state, ~F.text.startswith("/"))
    return router
