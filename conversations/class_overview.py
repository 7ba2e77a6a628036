"""The teacher's class overview (`/klas`, "📊 Klas") and the choice of group (`/groep`).

No dialogue state: the overview is one answer (a picture of the grid, then a compact table
with who has not reflected this week, wellbeing signals and open goal proposals, and buttons
to act on them). Every button carries ids only; storage checks them again on each tap.

```mermaid
stateDiagram-v2
    [*] --> overview: /klas, "📊 Klas"
    overview --> overview: "👥 Andere groep" -> a group (the active group changes)
    overview --> assessment: "📊 Niveau geven" (conversations/assessment.py)
    overview --> decided: "✅ Goed" / "✖️ Nu niet" on a proposal (conversations/goals.py)
    overview --> adjust: "🔁 Ander doel" on a proposal
    adjust --> [*]: another goal of the line (the pupil hears it)
    overview --> note: "📝 Notitie bij ..." (conversations/observation.py)
    [*] --> groups: /groep
    groups --> [*]: a group
```
"""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
)
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.keyboards import button, main_menu, shorten
from chat_ui.texts import bold, fill, names_list
from config.settings import Settings
from conversations.card import checked, refuse
from conversations.goals import Decide, proposal_gone
from conversations.observation import NoteFor
from conversations.rubric import default_level_names
from language.i18n import _, current_locale, use_locale
from services.clock import Clock, school_today
from services.pictures.class_overview import MAX_COLUMNS, PictureTexts, draw_class_overview_pages
from storage.accounts import PersonRef, Viewer, recipient
from storage.overview import (
    ClassOverview,
    LineColumn,
    active_group,
    adjust_proposal,
    class_overview,
    groups_of_teacher,
    proposal_choice,
    set_active_group,
)

# The table is monospaced: a phone shows about 32 characters of it per line.
NAME_WIDTH = 13
MAX_PROPOSAL_BUTTONS = 8
MAX_WELLBEING_BUTTONS = 5
MAX_ALTERNATIVES = 12
MESSAGE_LIMIT = 4096
# Rows of the table in one block: 50 rows of about 35 characters stay far below a message.
TABLE_ROWS = 50
FACES = {4: "😀", 3: "🙂", 2: "😐", 1: "😟"}

log = logging.getLogger(__name__)


class ChooseGroup(CallbackData, prefix="kgr"):
    pass


class GroupChoice(CallbackData, prefix="kgc"):
    group_id: int
    show: bool  # show the overview of the chosen group straight away


class AdjustProposal(CallbackData, prefix="kad"):
    """ "🔁 Ander doel" under a pupil's proposal: the other goals of its line."""

    pupil_goal_id: int


class AdjustTo(CallbackData, prefix="kat"):
    pupil_goal_id: int
    goal_id: int


class AssessFrom(CallbackData, prefix="kas"):
    """ "📊 Niveau geven": handled by conversations/assessment.py."""

    pupil_id: int  # 0: choose the pupil first


def picture_texts(overview: ClassOverview, when: str) -> PictureTexts:
    title = overview.group.name
    if overview.period_name:
        title += " – " + overview.period_name
    return PictureTexts(
        title=title,
        subtitle=_("Waar staat iedereen? {date}").format(date=when),
        pupil_header=_("Leerling"),
        lines_header=_("Leerlijnen"),
        levels_header=_("Niveaus"),
        own_mark=_("ik"),
        key_teacher=_("vol vlak: niveau van de leerkracht"),
        key_own=_("rand en „ik”: de leerling zelf"),
        key_none=_("–: doel, nog geen niveau"),
        key_no_goal=_("·: geen doel op deze lijn"),
        default_levels=default_level_names(),
    )


def _cell(overview: ClassOverview, pupil_index: int, column: LineColumn) -> str:
    standing = overview.pupils[pupil_index].cells.get(column.id)
    if standing is None:
        return " · "
    if standing.position is None:
        return " – "
    return f" {standing.position}" + (" " if standing.by_teacher else "*")


def _tables(overview: ClassOverview, columns: list[LineColumn], first_number: int) -> list[str]:
    """Pupils down, lines across, a level number in each cell (monospaced, in <pre>); a big
    group in several blocks, so that each fits in a message."""
    header = (
        " " * NAME_WIDTH + "".join(f"{first_number + index:>2} " for index in range(len(columns)))
    ).rstrip()
    rows = []
    for index, standing in enumerate(overview.pupils):
        name = standing.pupil.name
        name = name if len(name) <= NAME_WIDTH - 1 else name[: NAME_WIDTH - 2] + "…"
        cells = "".join(_cell(overview, index, column) for column in columns)
        rows.append((name.ljust(NAME_WIDTH) + cells).rstrip())
    return [
        "<pre>"
        + fill("{table}", table="\n".join([header, *rows[start : start + TABLE_ROWS]]))
        + "</pre>"
        for start in range(0, len(rows), TABLE_ROWS)
    ]


def _pack(blocks: list[tuple[str, str]]) -> list[str]:
    """Blocks (each with the separator before it) into as few messages as Telegram allows."""
    parts: list[str] = []
    for separator, block in blocks:
        if parts and len(parts[-1]) + len(separator) + len(block) <= MESSAGE_LIMIT:
            parts[-1] += separator + block
        else:
            parts.append(block[:MESSAGE_LIMIT])
    return parts


def _scale_text(overview: ClassOverview) -> str:
    """ "1 beginner … 4 expert" for the scale of the first line (others are on the picture)."""
    names = [
        name or (default_level_names()[index] if index < 4 else "")
        for index, name in enumerate(overview.lines[0].scale)
    ]
    return f"1 {names[0]} … {len(names)} {names[-1]}"


def overview_text(overview: ClassOverview, *, several_groups: bool) -> list[str]:
    """The compact table and the lists under it, as one or more messages (HTML)."""
    title = "📊 " + bold(overview.group.name)
    if overview.period_name:
        title += fill(" · {period}", period=overview.period_name)
    lines = [title]
    if not overview.pupils:
        lines.append(_("Er zitten nog geen leerlingen in deze groep."))
    elif overview.period_name is None:
        lines.append(_("Er is nu geen periode, dus nog geen doelen om te laten zien."))
    elif not overview.lines:
        lines.append(_("Nog niemand heeft doelen voor deze periode."))
    else:
        for start in range(0, len(overview.lines), MAX_COLUMNS):
            columns = overview.lines[start : start + MAX_COLUMNS]
            lines += _tables(overview, columns, start + 1)
        lines.append(
            "\n".join(
                fill("{number} = {line}", number=index, line=column.name)
                for index, column in enumerate(overview.lines, start=1)
            )
        )
        lines.append(
            fill(
                _(
                    "Cijfer = niveau ({scale}), * = eigen inschatting van de leerling, "
                    "– = nog geen niveau, · = geen doel op deze lijn."
                ),
                scale=_scale_text(overview),
            )
        )
    lists = []
    if overview.pupils:
        if overview.not_reflected:
            lists.append(
                "✍️ "
                + fill(
                    _("Nog geen reflectie deze week: {names}."),
                    names=names_list([pupil.name for pupil in overview.not_reflected]),
                )
            )
        else:
            lists.append("✍️ " + _("Iedereen heeft deze week al gereflecteerd. 👏"))
        if overview.wellbeing:
            # Only the teacher gets this message; the words stay calm and private.
            entries = [
                fill(
                    _("{name} ({faces}, laatst {date})"),
                    name=signal.pupil.name,
                    faces=" ".join(FACES.get(answer, "?") for answer in reversed(signal.answers)),
                    date=format_date(signal.last_on, format="d MMM", locale=current_locale()),
                )
                for signal in overview.wellbeing
            ]
            lists.append(
                "💛 "
                + _("Voelde zich de laatste drie keer niet zo goed (alleen voor jou):")
                + "\n"
                + "\n".join("• " + entry for entry in entries)
            )
        if overview.proposals:
            lists.append(
                "🙋 "
                + _("Voorstellen voor een doel, die wachten op jou:")
                + "\n"
                + "\n".join(
                    "• "
                    + fill(
                        "{name}: {code} {goal}",
                        name=proposal.pupil.name,
                        code=proposal.goal.code,
                        goal=proposal.goal.text,
                    )
                    for proposal in overview.proposals
                )
            )
    if several_groups:
        lists.append(_("Een andere groep bekijken: /groep"))
    return _pack([("\n", line) for line in lines] + [("\n\n", entry) for entry in lists])


def overview_keyboard(overview: ClassOverview, *, several_groups: bool) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    for proposal in overview.proposals[:MAX_PROPOSAL_BUTTONS]:
        label = shorten(f"{proposal.pupil.name.split()[0]}: {proposal.goal.code}", 28)
        rows.append(
            [
                button("✅ " + label, Decide(pupil_goal_id=proposal.pupil_goal_id, approve=True)),
                button(_("🔁 Ander doel"), AdjustProposal(pupil_goal_id=proposal.pupil_goal_id)),
                button(_("✖️ Nu niet"), Decide(pupil_goal_id=proposal.pupil_goal_id, approve=False)),
            ]
        )
    for signal in overview.wellbeing[:MAX_WELLBEING_BUTTONS]:
        rows.append(
            [
                button(
                    fill(_("📝 Notitie bij {name}"), name=signal.pupil.name),
                    NoteFor(pupil_id=signal.pupil.id),
                )
            ]
        )
    if overview.pupils:
        rows.append([button(_("📊 Niveau geven"), AssessFrom(pupil_id=0))])
    if several_groups:
        rows.append([button(_("👥 Andere groep"), ChooseGroup())])
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def show(
    bot: Bot,
    chat_id: int,
    session: AsyncSession,
    viewer: Viewer,
    teacher: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """The picture, then the table with what needs attention, for the active group."""
    teacher_id = teacher.id
    groups = await groups_of_teacher(session, teacher_id=teacher_id)
    group = await active_group(session, teacher_id=teacher_id)
    if group is None:
        await bot.send_message(
            chat_id,
            _("Je hebt nog geen groep. De beheerder van de school zet je in een groep."),
            reply_markup=main_menu(viewer),
        )
        return
    today = school_today(settings, clock)
    overview = await class_overview(session, teacher_id=teacher_id, group_id=group.id, today=today)
    assert overview is not None  # the group is one of the teacher's own
    several = len(groups) > 1
    if overview.lines:
        when = format_date(today, format="d MMMM y", locale=current_locale())
        # Drawing takes a few tenths of a second: off the event loop, so other chats go on.
        # The words are translated here, in this update's language, before the thread starts.
        pictures = await asyncio.to_thread(
            draw_class_overview_pages,
            overview.lines,
            overview.pupils,
            picture_texts(overview, when),
            page_label=_("blad {page} van {pages}"),
        )
        caption = fill(_("{group}: waar staat iedereen?"), group=overview.group.name)
        # An album holds 2 to 10 photos: a very big group gets several, a lone page a photo.
        for first in range(0, len(pictures), 10):
            chunk = pictures[first : first + 10]
            files = [
                BufferedInputFile(picture.png, f"klasoverzicht-{first + number}.png")
                for number, picture in enumerate(chunk, 1)
            ]
            text = caption if first == 0 else None
            if len(files) == 1:
                await bot.send_photo(chat_id, files[0], caption=text)
                continue
            await bot.send_media_group(
                chat_id,
                [
                    InputMediaPhoto(media=file, caption=text if number == 0 else None)
                    for number, file in enumerate(files)
                ],
            )
    parts = overview_text(overview, several_groups=several)
    for part in parts[:-1]:
        await bot.send_message(chat_id, part)
    keyboard = overview_keyboard(overview, several_groups=several)
    await bot.send_message(
        chat_id, parts[-1], reply_markup=keyboard if keyboard.inline_keyboard else None
    )


def _groups_keyboard(
    groups: list[tuple[int, str, bool]], *, show_after: bool
) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                button(
                    ("✅ " if active else "") + name,
                    GroupChoice(group_id=group_id, show=show_after),
                )
            ]
            for group_id, name, active in groups
        ]
    )


async def choose_group(
    bot: Bot,
    chat_id: int,
    session: AsyncSession,
    viewer: Viewer,
    teacher: PersonRef,
    *,
    show_after: bool,
) -> None:
    """Which group the overview, the pupil lists and "not seen" are about."""
    groups = await groups_of_teacher(session, teacher_id=teacher.id)
    if not groups:
        await bot.send_message(
            chat_id,
            _("Je hebt nog geen groep. De beheerder van de school zet je in een groep."),
            reply_markup=main_menu(viewer),
        )
        return
    current = await active_group(session, teacher_id=teacher.id)
    assert current is not None
    if len(groups) == 1:
        await bot.send_message(
            chat_id,
            fill(_("Je hebt één groep: {group}."), group=current.name),
            reply_markup=main_menu(viewer),
        )
        return
    await bot.send_message(
        chat_id,
        fill(_("Je kijkt nu naar {group}. Welke groep wil je zien?"), group=current.name),
        reply_markup=_groups_keyboard(
            [(group.id, group.name, group.id == current.id) for group in groups],
            show_after=show_after,
        ),
    )


async def choose_group_tapped(
    query: CallbackQuery, bot: Bot, session: AsyncSession, viewer: Viewer, person: PersonRef
) -> None:
    await query.answer()
    assert query.message is not None
    await choose_group(bot, query.message.chat.id, session, viewer, person, show_after=True)


async def group_chosen(
    query: CallbackQuery,
    callback_data: GroupChoice,
    bot: Bot,
    session: AsyncSession,
    viewer: Viewer,
    person: PersonRef,
    settings: Settings,
    clock: Clock,
) -> None:
    """Only a group the teacher is in now can become the active one (ids may be forged)."""
    group = await set_active_group(session, teacher_id=person.id, group_id=callback_data.group_id)
    if group is None:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    await query.answer()
    assert query.message is not None
    if isinstance(query.message, Message):
        await query.message.edit_text(fill(_("Je kijkt nu naar {group}. 👍"), group=group.name))
    if callback_data.show:
        await show(bot, query.message.chat.id, session, viewer, person, settings, clock)


async def adjust_start(
    query: CallbackQuery, callback_data: AdjustProposal, session: AsyncSession, person: PersonRef
) -> None:
    """The other goals of the proposal's learning line, to set one instead."""
    choice = await proposal_choice(
        session, teacher_id=person.id, pupil_goal_id=callback_data.pupil_goal_id
    )
    if choice is None or not choice.alternatives:
        await refuse(query, proposal_gone())
        return
    await query.answer()
    assert query.message is not None
    proposal = choice.proposal
    await query.message.answer(
        fill(
            _("{name} stelde voor: {code} {goal}\nWelk doel uit {line} past beter?"),
            name=proposal.pupil.name,
            code=proposal.goal.code,
            goal=proposal.goal.text,
            line=proposal.goal.line_name,
        ),
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[
                [
                    button(
                        shorten(f"{goal.code} {goal.text}", 44),
                        AdjustTo(pupil_goal_id=proposal.pupil_goal_id, goal_id=goal.id),
                    )
                ]
                for goal in choice.alternatives[:MAX_ALTERNATIVES]
            ]
        ),
    )


async def adjust_chosen(
    query: CallbackQuery,
    callback_data: AdjustTo,
    bot: Bot,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
) -> None:
    """Sets the chosen goal instead of the proposal; storage checks both ids again."""
    adjusted = await checked(
        query,
        await adjust_proposal(
            session,
            teacher_id=person.id,
            pupil_goal_id=callback_data.pupil_goal_id,
            goal_id=callback_data.goal_id,
        ),
        proposal_gone(),
    )
    if adjusted is None:
        return
    proposal, goal = adjusted
    if isinstance(query.message, Message):
        await query.message.edit_text(
            fill(
                _("🔁 {name} werkt nu aan {code} {goal}."),
                name=proposal.pupil.name,
                code=goal.code,
                goal=goal.text,
            )
        )
    pupil = await recipient(session, person_id=proposal.pupil.id)
    if pupil is None:
        return
    with use_locale(pupil.locale or settings.default_locale):
        text = fill(
            _("Je leerkracht koos in plaats van {proposed} dit doel voor je: {goal}. Succes! 💪"),
            proposed=proposal.goal.text,
            goal=goal.text,
        )
    try:
        await bot.send_message(pupil.telegram_user_id, text)
    except TelegramAPIError:
        log.warning("could not tell pupil %s about the adjusted goal", proposal.pupil.id)
