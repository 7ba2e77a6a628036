"""The pupil's portfolio (`/portfolio`, menu button): one item at a time on one card message,
newest first, with paging, a filter per goal, and the item's actions (show the file, share
with parents or not, caption, goals, delete).

A text card with a "Bekijk" button rather than a photo message edited with
`edit_message_media`: documents, voice messages and videos page the same way, and a card
never has to change type. Every id in a button is checked against the pupil in storage.
"""

from __future__ import annotations

from pathlib import Path

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import BUTTON_PORTFOLIO, button
from chat_ui.texts import bold, fill
from config.settings import Settings
from conversations.evidence import EditEvidence, ShowEvidence, sharing_line
from conversations.work_card import FilesButton, about_lines, day_line, files_label
from language.i18n import _
from media.store import delete_media_if_unused
from storage.accounts import PersonRef
from storage.evidence import (
    EvidenceView,
    delete_evidence,
    evidence_goals,
    evidence_of,
    evidence_page,
    evidence_position,
    set_sharing,
)
from storage.models import Approval, Role

ALL_GOALS = 0


class Page(CallbackData, prefix="pf"):
    offset: int
    goal_id: int  # ALL_GOALS: no filter


class Look(CallbackData, prefix="pfl"):
    evidence_id: int


class ToggleShare(CallbackData, prefix="pfs"):
    evidence_id: int
    offset: int
    goal_id: int


class Remove(CallbackData, prefix="pfd"):
    evidence_id: int
    offset: int
    goal_id: int
    sure: bool


class ChooseFilter(CallbackData, prefix="pff"):
    offset: int
    goal_id: int


def _item_text(
    item: EvidenceView, settings: Settings, position: int, total: int, goal: str | None
) -> str:
    lines = [
        bold(_("🗂 Je portfolio")) + " · " + _("{n} van {total}").format(n=position, total=total)
    ]
    if goal:
        lines.append(fill(_("🔎 Alleen: {goal}"), goal=goal))
    lines += ["", day_line(item, settings.timezone), *about_lines(item)]
    lines.append(sharing_line(item.shared_with_parents, item.approval))
    for feedback in item.feedback:
        if feedback.top:
            lines.append(fill(_("⭐ Top: {text}"), text=feedback.top))
        if feedback.tip:
            lines.append(fill(_("💡 Tip: {text}"), text=feedback.tip))
    return "\n".join(lines)


def _item_keyboard(
    item: EvidenceView, offset: int, total: int, goal_id: int
) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    paging = []
    if offset > 0:
        paging.append(button(_("◀️ Nieuwer"), Page(offset=offset - 1, goal_id=goal_id)))
    if offset + 1 < total:
        paging.append(button(_("Ouder ▶️"), Page(offset=offset + 1, goal_id=goal_id)))
    if paging:
        rows.append(paging)
    if item.files:
        rows.append([button(files_label(item.kind), Look(evidence_id=item.id))])
    share = ToggleShare(evidence_id=item.id, offset=offset, goal_id=goal_id)
    rows.append(
        [
            button(
                _("🔒 Niet meer delen met ouders")
                if item.shared_with_parents
                else _("👨‍👩‍👧 Deel met ouders"),
                share,
            )
        ]
    )
    rows.append(
        [
            button(_("✏️ Bijschrift"), EditEvidence(evidence_id=item.id, what="caption")),
            button(_("🎯 Doelen"), EditEvidence(evidence_id=item.id, what="goals")),
        ]
    )
    rows.append(
        [
            button(_("🔎 Per doel"), ChooseFilter(offset=offset, goal_id=goal_id)),
            button(
                _("🗑 Verwijder"),
                Remove(evidence_id=item.id, offset=offset, goal_id=goal_id, sure=False),
            ),
        ]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def _card(
    session: AsyncSession, person: PersonRef, settings: Settings, offset: int, goal_id: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The card for one position of the (filtered) portfolio; past the end shows the last."""
    pupil_id = person.id
    goals = dict(await evidence_goals(session, pupil_id=pupil_id))
    if goal_id not in goals:
        goal_id = ALL_GOALS  # a filter whose last item was deleted, or a forged one
    filter_id = goal_id or None
    page = await evidence_page(
        session, pupil_id=pupil_id, goal_id=filter_id, offset=max(offset, 0), limit=1
    )
    if not page.items and page.total:
        offset = page.total - 1
        page = await evidence_page(
            session, pupil_id=pupil_id, goal_id=filter_id, offset=offset, limit=1
        )
    if not page.items:
        return (
            _("Je portfolio is nog leeg. Stuur een foto van je werk, dan bewaar ik hem hier. 📷"),
            None,
        )
    offset = max(offset, 0)
    item = page.items[0]
    text = _item_text(item, settings, offset + 1, page.total, goals.get(goal_id))
    return text, _item_keyboard(item, offset, page.total, goal_id)


async def _redraw(
    query: CallbackQuery,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
    offset: int,
    goal_id: int,
) -> None:
    assert isinstance(query.message, Message)
    text, keyboard = await _card(session, person, settings, offset, goal_id)
    try:
        await query.message.edit_text(text, reply_markup=keyboard)
    except TelegramBadRequest as error:
        # A double tap (or a stale page button) may ask for the card that is already shown.
        if "not modified" not in str(error):
            raise


async def open_portfolio(
    message: Message, session: AsyncSession, person: PersonRef, settings: Settings
) -> None:
    """/portfolio or the menu button: the newest item."""
    text, keyboard = await _card(session, person, settings, 0, ALL_GOALS)
    await message.answer(text, reply_markup=keyboard)


async def show_evidence(
    query: CallbackQuery,
    callback_data: ShowEvidence,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
) -> None:
    """ "Bekijk je portfolio" under a saved or edited item: a new card at that item."""
    assert isinstance(query.message, Message)
    await query.answer()
    offset = await evidence_position(
        session, pupil_id=person.id, evidence_id=callback_data.evidence_id
    )
    text, keyboard = await _card(session, person, settings, offset, ALL_GOALS)
    await query.message.answer(text, reply_markup=keyboard)


async def page_turned(
    query: CallbackQuery,
    callback_data: Page,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
) -> None:
    await query.answer()
    await _redraw(query, session, person, settings, callback_data.offset, callback_data.goal_id)


async def filter_chosen(
    query: CallbackQuery, callback_data: ChooseFilter, session: AsyncSession, person: PersonRef
) -> None:
    """A row per goal that has work, and "Alles"."""
    assert isinstance(query.message, Message)
    await query.answer()
    goals = await evidence_goals(session, pupil_id=person.id)
    rows = [
        [
            button(
                ("✅ " if goal_id == callback_data.goal_id else "") + text[:48],
                Page(offset=0, goal_id=goal_id),
            )
        ]
        for goal_id, text in goals
    ]
    rows.append([button(_("Alles"), Page(offset=0, goal_id=ALL_GOALS))])
    await query.message.edit_text(
        _("Van welk doel wil je het werk zien?"),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


async def sharing_toggled(
    query: CallbackQuery,
    callback_data: ToggleShare,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
) -> None:
    item = await evidence_of(session, pupil_id=person.id, evidence_id=callback_data.evidence_id)
    if item is None:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    shared = not item.shared_with_parents
    await set_sharing(session, pupil_id=person.id, evidence_id=item.id, shared=shared)
    now_shared = await evidence_of(session, pupil_id=person.id, evidence_id=item.id)
    if not shared:
        answer = _("Nu alleen voor school.")
    elif now_shared is not None and now_shared.approval is Approval.PENDING:
        # The school asks a teacher to look first (other children may be in the photo).
        answer = _("Je juf of meester kijkt er eerst even naar.")
    else:
        answer = _("Je ouders kunnen dit nu zien.")
    await query.answer(answer)
    await _redraw(query, session, person, settings, callback_data.offset, callback_data.goal_id)


async def remove_tapped(
    query: CallbackQuery,
    callback_data: Remove,
    session: AsyncSession,
    person: PersonRef,
    settings: Settings,
) -> None:
    """First "Weet je het zeker?", then the rows go, and each file once nothing uses it."""
    assert isinstance(query.message, Message)
    if not callback_data.sure:
        item = await evidence_of(session, pupil_id=person.id, evidence_id=callback_data.evidence_id)
        if item is None:
            await query.answer(_("Die keuze ken ik niet."), show_alert=True)
            return
        await query.answer()
        keep = Page(offset=callback_data.offset, goal_id=callback_data.goal_id)
        sure = Remove(
            evidence_id=item.id,
            offset=callback_data.offset,
            goal_id=callback_data.goal_id,
            sure=True,
        )
        await query.message.edit_text(
            _("Weet je het zeker? Dit werk gaat dan uit je portfolio, voor altijd."),
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[[button(_("🗑 Ja, verwijder"), sure), button(_("Nee"), keep)]]
            ),
        )
        return
    media_ids = await delete_evidence(
        session, pupil_id=person.id, evidence_id=callback_data.evidence_id
    )
    if media_ids is None:
        await query.answer(_("Die keuze ken ik niet."), show_alert=True)
        return
    for media_id in media_ids:
        # The file itself goes after the commit, and only if no other item shares it.
        await delete_media_if_unused(
            session, media_file_id=media_id, media_dir=Path(settings.media_dir)
        )
    await query.answer(_("Verwijderd."))
    await _redraw(query, session, person, settings, callback_data.offset, callback_data.goal_id)


async def _own_work(
    session: AsyncSession, pupil: PersonRef, evidence_id: int
) -> EvidenceView | None:
    return await evidence_of(session, pupil_id=pupil.id, evidence_id=evidence_id)


LOOK = FilesButton(_own_work)


def build_router() -> Router:
    router = Router(name="portfolio")
    pupil = HasRole(Role.PUPIL)
    router.message.register(open_portfolio, Command("portfolio"), pupil)
    router.message.register(open_portfolio, F.text == BUTTON_PORTFOLIO, pupil)
    router.callback_query.register(show_evidence, ShowEvidence.filter(), pupil)
    router.callback_query.register(page_turned, Page.filter(), pupil)
    router.callback_query.register(filter_chosen, ChooseFilter.filter(), pupil)
    router.callback_query.register(sharing_toggled, ToggleShare.filter(), pupil)
    router.callback_query.register(remove_tapped, Remove.filter(), pupil)
    router.callback_query.register(LOOK.tapped, Look.filter(), pupil)
    return router
