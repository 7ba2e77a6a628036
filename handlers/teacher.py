"""A teacher's entry points: notes, who was not seen lately, a pupil's timeline, search, the
class overview (`/klas`), the active group (`/groep`), giving a level (`/niveau`),
preparing a period's goals and activities (`/voorbereiden`) and tops & tips on pupils' own
plans (`/plannen`, in `conversations/plan_review.py`).

The note dialogue itself lives in `conversations/observation.py`; the timeline is a paged,
filtered view without dialogue state: everything it needs rides in the button, and storage
checks again on every tap that the teacher still teaches the pupil.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import (
    BUTTON_CLASS,
    BUTTON_NOTE,
    BUTTON_PREPARE,
    BUTTON_TIMELINE,
    BUTTON_UNSEEN,
    main_menu,
)
from chat_ui.texts import bold, fill
from config.settings import Settings
from conversations import assessment, class_overview, observation, period_goals, plan_review
from language.i18n import _
from services.clock import Clock
from storage.accounts import PersonRef, Viewer
from storage.models import Role
from storage.observations import (
    ItemKind,
    PupilRef,
    TimelineItem,
    TimelinePage,
    note_media,
    pupils_matching,
    pupils_named,
    pupils_of_teacher,
    search_observations,
    tags_in,
    tags_of_pupil,
    timeline,
)
from storage.overview import active_group_id

PER_PAGE = 5
# Deeper pages cost a longer query per source; forged page numbers stop here.
MAX_PAGE = 200
# A whole class as buttons, two a row: Dutch groups run to 30-odd pupils (a combination
# group a few more); Telegram allows 100 buttons in a message.
MAX_PUPIL_BUTTONS = 40
# Callback data holds at most 64 bytes: a longer tag filter is not carried in a button.
MAX_TAG_IN_BUTTON = 30
ALL = "all"
KIND_ICONS = {
    ItemKind.OBSERVATION: "📝",
    ItemKind.REFLECTION: "✍️",
    ItemKind.EVIDENCE: "📷",
    ItemKind.ASSESSMENT: "📊",
    ItemKind.TALK: "🤝",
}
FACES = {4: "😀", 3: "🙂", 2: "😐", 1: "😟"}


class OpenNoteMedia(CallbackData, prefix="otm"):
    """Plays a spoken note or shows a note's photo, from the timeline."""

    observation_id: int


class TimelineView(CallbackData, prefix="otl"):
    pupil_id: int
    kind: str  # ALL or an ItemKind
    page: int
    tag: str  # "" for no tag filter


async def note_start(
    message: Message,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """ "📝 Notitie": choose the pupils first."""
    await observation.begin(bot, message.chat.id, state, session, person, settings, clock)


async def obs_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """/obs [names, note]: the one-line note, or the menu's dialogue without text."""
    if not command.args or not command.args.strip():
        await observation.begin(bot, message.chat.id, state, session, person, settings, clock)
        return
    await observation.begin_shortcut(
        bot, message.chat.id, state, session, person, settings, clock, command.args.strip()
    )


async def unseen(
    message: Message,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """ "👀 Nog niet gezien" and /nietgezien."""
    text, keyboard = await observation.unseen_message(session, person, settings, clock)
    await message.answer(text, reply_markup=keyboard)


def _pupil_buttons(pupils: list[PupilRef], tag: str) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            text=pupil.name,
            callback_data=TimelineView(
                pupil_id=pupil.id, kind=ALL, page=0, tag=tag[:MAX_TAG_IN_BUTTON]
            ).pack(),
        )
        for pupil in pupils[:MAX_PUPIL_BUTTONS]
    ]
    return InlineKeyboardMarkup(
        inline_keyboard=[buttons[index : index + 2] for index in range(0, len(buttons), 2)]
    )


async def find_start(
    message: Message, session: AsyncSession, viewer: Viewer, person: PersonRef
) -> None:
    """ "🔎 Zoeken": a pupil's timeline by button, or a word with /zoek."""
    # The buttons list the active group; /tijdlijn with a name finds any of the teacher's.
    group_id = await active_group_id(session, teacher_id=person.id)
    pupils = await pupils_of_teacher(session, teacher_id=person.id, group_id=group_id)
    if not pupils:
        await message.answer(
            _("Je hebt nog geen leerlingen. De beheerder zet je in een groep."),
            reply_markup=main_menu(viewer),
        )
        return
    await message.answer(
        _("Van wie wil je de tijdlijn zien?")
        + "\n"
        + _("Zoeken op een woord in alle notities: /zoek woord"),
        reply_markup=_pupil_buttons(pupils, ""),
    )


async def timeline_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
) -> None:
    """/tijdlijn NAAM [#tag]: one pupil's timeline, or a choice when the name is unclear."""
    args = command.args or ""
    tags = tags_in(args)
    tag = tags[0] if tags else ""
    name = " ".join(word for word in args.split() if not word.startswith("#"))
    pupils = await pupils_of_teacher(session, teacher_id=person.id)
    found = (pupils_named(pupils, name) or pupils_matching(pupils, name)) if name else []
    if len(found) == 1:
        page = await timeline(
            session,
            viewer_id=person.id,
            viewer_role=Role.TEACHER,
            pupil_id=found[0].id,
            tag=tag or None,
            per_page=PER_PAGE,
        )
        assert page is not None  # the pupil came from the teacher's own groups
        tags = await _tags(session, person, page)
        await message.answer(
            _render(page, settings, ALL, tag),
            reply_markup=_keyboard(page, ALL, tag, tags, ZoneInfo(settings.timezone)),
        )
        return
    if not pupils:
        await message.answer(_("Je hebt nog geen leerlingen. De beheerder zet je in een groep."))
        return
    if name and not found:
        text = fill(_("Ik vind geen leerling met „{text}”."), text=name)
    else:
        text = _("Van wie wil je de tijdlijn zien?")
    await message.answer(text, reply_markup=_pupil_buttons(found or pupils, tag))


async def timeline_turned(
    query: CallbackQuery,
    callback_data: TimelineView,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
) -> None:
    """A filter or page button; the pupil id is checked again (it may be forged or stale)."""
    kind = callback_data.kind if callback_data.kind in (ALL, *ItemKind.ALL) else ALL
    tag = callback_data.tag.casefold()
    page = await timeline(
        session,
        viewer_id=person.id,
        viewer_role=Role.TEACHER,
        pupil_id=callback_data.pupil_id,
        kinds=ItemKind.ALL if kind == ALL else (kind,),
        tag=tag or None,
        page=min(max(0, callback_data.page), MAX_PAGE),
        per_page=PER_PAGE,
    )
    if page is None:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    # The chooser and the timeline itself both turn into the new view: one tidy message.
    if isinstance(query.message, Message):
        try:
            await query.message.edit_text(
                _render(page, settings, kind, tag),
                reply_markup=_keyboard(
                    page,
                    kind,
                    tag,
                    await _tags(session, person, page),
                    ZoneInfo(settings.timezone),
                ),
            )
        except TelegramBadRequest as error:
            # Tapping the filter already shown changes nothing; Telegram calls that an error.
            if "not modified" not in str(error):
                raise


async def note_media_opened(
    query: CallbackQuery,
    callback_data: OpenNoteMedia,
    bot: Bot,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
) -> None:
    """🎤 / 📷 under the timeline: the note's voice message or photo, for whoever may read it."""
    media = await note_media(
        session,
        viewer_id=person.id,
        viewer_role=Role.TEACHER,
        observation_id=callback_data.observation_id,
    )
    if media is None or (media.voice is None and media.photo is None):
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    assert query.message is not None
    await observation.send_note_media(bot, query.message.chat.id, media, settings)


async def _tags(session: AsyncSession, teacher: PersonRef, page: TimelinePage) -> list[str]:
    return await tags_of_pupil(
        session, viewer_id=teacher.id, viewer_role=Role.TEACHER, pupil_id=page.pupil.id
    )


def _item_line(item: TimelineItem, zone: ZoneInfo) -> str:
    when = item.at.astimezone(zone).strftime("%d-%m %H:%M")
    icon = KIND_ICONS[item.kind]
    if item.kind == ItemKind.OBSERVATION:
        head = f"{icon} {when}"
        if item.author:
            head += " · " + fill("{author}", author=item.author)
        if item.is_private:
            head += " 🔒"
        # A spoken note or a photo is marked; the file itself is opened elsewhere.
        media = ("🎤 " if item.details.get("voice") else "") + (
            "📷 " if item.details.get("photo") else ""
        )
        line = head + "\n" + media + fill("{text}", text=item.text)
        if item.details.get("goal"):
            line += "\n🎯 " + fill("{goal}", goal=item.details["goal"])
        return line
    if item.kind == ItemKind.REFLECTION:
        details = item.details
        line = f"{icon} {when} " + _("reflectie")
        line += f" {FACES.get(details.get('how') or 0, '')} " + "💪" * int(
            details.get("effort") or 0
        )
        if item.text:
            line += "\n" + fill("{text}", text=item.text)
        if details.get("next_step"):
            line += "\n" + fill(_("Volgende stap: {step}"), step=details["next_step"])
        return line
    if item.kind == ItemKind.EVIDENCE:
        return (
            f"{icon} {when} "
            + _("werk")
            + ("\n" + fill("{text}", text=item.text) if item.text else "")
        )
    if item.kind == ItemKind.TALK:
        return (
            f"{icon} {when} "
            + _("gesprek gevoerd")
            + ("\n" + fill(_("Afspraken: {text}"), text=item.text) if item.text else "")
        )
    by = _("leerling") if item.details.get("by") == "pupil" else _("leerkracht")
    line = f"{icon} {when} " + fill(
        _("niveau {level} ({by}): {goal}"),
        level=item.details.get("level") or "?",
        by=by,
        goal=item.text,
    )
    # The explanation typed after the level (/niveau) is found again here.
    if item.details.get("note"):
        line += "\n" + fill("💬 {note}", note=item.details["note"])
    return line


def _render(page: TimelinePage, settings: Settings, kind: str, tag: str) -> str:
    zone = ZoneInfo(settings.timezone)
    lines = ["🔎 " + _("Tijdlijn van {name}").format(name=bold(page.pupil.name))]
    if tag:
        lines.append(fill(_("Alleen notities met #{tag}"), tag=tag))
    if page.page:
        lines.append(_("Bladzijde {page}").format(page=page.page + 1))
    if not page.items:
        lines.append(_("Hier staat nog niets."))
    for item in page.items:
        lines += ["", _item_line(item, zone)]
    return "\n".join(lines)


def _keyboard(
    page: TimelinePage,
    kind: str,
    tag: str,
    tags: list[str] | None = None,
    zone: ZoneInfo | None = None,
) -> InlineKeyboardMarkup:
    zone = zone or ZoneInfo("Europe/Amsterdam")
    tag = tag[:MAX_TAG_IN_BUTTON]
    labels = [
        (ALL, _("Alles")),
        (ItemKind.OBSERVATION, "📝"),
        (ItemKind.REFLECTION, "✍️"),
        (ItemKind.EVIDENCE, "📷"),
        (ItemKind.ASSESSMENT, "📊"),
        (ItemKind.TALK, "🤝"),
    ]
    kinds = [
        InlineKeyboardButton(
            text=("• " if value == kind else "") + label,
            callback_data=TimelineView(pupil_id=page.pupil.id, kind=value, page=0, tag=tag).pack(),
        )
        for value, label in labels
    ]
    rows = [kinds]
    nav = []
    if page.page > 0:
        nav.append(
            InlineKeyboardButton(
                text=_("⬅️ Nieuwer"),
                callback_data=TimelineView(
                    pupil_id=page.pupil.id, kind=kind, page=page.page - 1, tag=tag
                ).pack(),
            )
        )
    if page.has_more:
        nav.append(
            InlineKeyboardButton(
                text=_("Ouder ➡️"),
                callback_data=TimelineView(
                    pupil_id=page.pupil.id, kind=kind, page=page.page + 1, tag=tag
                ).pack(),
            )
        )
    if nav:
        rows.append(nav)
    usable = [t for t in tags or [] if len(t) <= MAX_TAG_IN_BUTTON]
    # Tags belong to notes only: under a reflections-only view they would find nothing.
    if usable and not tag and kind in (ALL, ItemKind.OBSERVATION):
        buttons = [
            InlineKeyboardButton(
                text=f"#{t}",
                callback_data=TimelineView(pupil_id=page.pupil.id, kind=kind, page=0, tag=t).pack(),
            )
            for t in usable
        ]
        rows += [buttons[index : index + 3] for index in range(0, len(buttons), 3)]
    media = [
        InlineKeyboardButton(
            text=("🎤 " if item.details.get("voice") else "📷 ")
            + item.at.astimezone(zone).strftime("%d-%m"),
            callback_data=OpenNoteMedia(observation_id=item.id).pack(),
        )
        for item in page.items
        if item.kind == ItemKind.OBSERVATION
        and (item.details.get("voice") or item.details.get("photo"))
    ]
    rows += [media[index : index + 3] for index in range(0, len(media), 3)]
    rows.append(
        [
            InlineKeyboardButton(
                text=_("📊 Niveau geven"),
                callback_data=class_overview.AssessFrom(pupil_id=page.pupil.id).pack(),
            )
        ]
    )
    if tag:
        rows.append(
            [
                InlineKeyboardButton(
                    text=_("Alle tags"),
                    callback_data=TimelineView(
                        pupil_id=page.pupil.id, kind=kind, page=0, tag=""
                    ).pack(),
                )
            ]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def search_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
) -> None:
    """/zoek WOORD: notes about the teacher's pupils with that word, newest first."""
    word = (command.args or "").strip()
    if not word:
        await message.answer(_("Typ een woord achter /zoek, bijvoorbeeld: /zoek samenwerken"))
        return
    found = await search_observations(
        session, viewer_id=person.id, viewer_role=Role.TEACHER, word=word
    )
    if not found:
        await message.answer(fill(_("Geen notities gevonden met „{word}”."), word=word))
        return
    zone = ZoneInfo(settings.timezone)
    lines = [fill(_("Notities met „{word}”:"), word=word)]
    for item in found:
        lines += ["", bold(", ".join(item.pupils)) + "\n" + _item_line(item, zone)]
    await message.answer("\n".join(lines))


async def class_overview_start(
    message: Message,
    bot: Bot,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """ "📊 Klas" and /klas: the active group at a glance."""
    await class_overview.show(bot, message.chat.id, session, viewer, person, settings, clock)


async def group_command(
    message: Message, bot: Bot, session: AsyncSession, viewer: Viewer, person: PersonRef
) -> None:
    """/groep: which of the teacher's groups the overview and pupil lists are about."""
    await class_overview.choose_group(
        bot, message.chat.id, session, viewer, person, show_after=False
    )


async def not_for_you(message: Message, viewer: Viewer) -> None:
    """A pupil or parent typing a teacher's command gets a kind no, not silence."""
    await message.answer(
        _("Dat kan alleen een leerkracht. Kies iets uit het menu, of typ /help."),
        reply_markup=main_menu(viewer),
    )


def build_router() -> Router:
    router = Router(name="teacher")
    teacher = HasRole(Role.TEACHER)
    router.message.register(note_start, F.text == BUTTON_NOTE, teacher)
    router.message.register(obs_command, Command("obs", "notitie"), teacher)
    router.message.register(unseen, F.text == BUTTON_UNSEEN, teacher)
    router.message.register(unseen, Command("nietgezien"), teacher)
    router.message.register(find_start, F.text == BUTTON_TIMELINE, teacher)
    router.message.register(timeline_command, Command("tijdlijn"), teacher)
    router.message.register(search_command, Command("zoek"), teacher)
    router.callback_query.register(timeline_turned, TimelineView.filter(), teacher)
    router.callback_query.register(note_media_opened, OpenNoteMedia.filter(), teacher)
    router.message.register(class_overview_start, F.text == BUTTON_CLASS, teacher)
    router.message.register(class_overview_start, Command("klas"), teacher)
    router.message.register(group_command, Command("groep"), teacher)
    router.message.register(assessment.level_command, Command("niveau"), teacher)
    router.message.register(period_goals.start, F.text == BUTTON_PREPARE, teacher)
    router.message.register(period_goals.start, Command("voorbereiden"), teacher)
    router.message.register(plan_review.PLANS.open, Command("plannen"), teacher)
    router.callback_query.register(
        class_overview.choose_group_tapped, class_overview.ChooseGroup.filter(), teacher
    )
    router.callback_query.register(
        class_overview.group_chosen, class_overview.GroupChoice.filter(), teacher
    )
    router.callback_query.register(
        class_overview.adjust_start, class_overview.AdjustProposal.filter(), teacher
    )
    router.callback_query.register(
        class_overview.adjust_chosen, class_overview.AdjustTo.filter(), teacher
    )
    router.message.register(
        not_for_you,
        Command(
            "obs",
            "notitie",
            "nietgezien",
            "tijdlijn",
            "zoek",
            "klas",
            "groep",
            "niveau",
            "voorbereiden",
            "plannen",
        ),
    )
    # Giving a level: its buttons and its one dialogue step (the optional note).
    router.include_router(assessment.build_router())
    # Preparing a period: its buttons and its one typing step (activity names).
    router.include_router(period_goals.build_router())
    # Tops & tips on pupils' own plans: the card's buttons and the typing step.
    router.include_router(plan_review.build_router())
    return router
