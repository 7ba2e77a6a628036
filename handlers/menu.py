"""The first button of each role's menu: who is in my group, my children, my school."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.filters import HasRole
from chat_ui.keyboards import (
    BUTTON_MY_CHILDREN,
    BUTTON_MY_GROUP,
    BUTTON_MY_GROUPS,
    BUTTON_SCHOOL,
    main_menu,
)
from chat_ui.texts import bold, fill, names_list
from language.i18n import _
from language.labels import role_label
from storage.accounts import PersonRef, Viewer, active_groups_of, children_of, school_status
from storage.models import Role


async def my_group(
    message: Message, session: AsyncSession, viewer: Viewer, person: PersonRef
) -> None:
    """Shows a pupil their group and mentor."""
    groups = await active_groups_of(session, person_id=person.id)
    if not groups:
        text = _("Je zit nog niet in een groep. Je leerkracht zet je erin.")
    else:
        group = groups[0]
        text = fill(_("Je zit in {group}."), group=group.name)
        if group.mentors:
            text += "\n" + fill(_("Je mentor: {mentors}"), mentors=names_list(list(group.mentors)))
    await message.answer(text, reply_markup=main_menu(viewer))


async def my_groups(
    message: Message, session: AsyncSession, viewer: Viewer, person: PersonRef
) -> None:
    """Shows a teacher their groups with the number of pupils."""
    groups = await active_groups_of(session, person_id=person.id)
    if not groups:
        text = _("Je hebt nog geen groep. De beheerder van de school zet je in een groep.")
    else:
        lines = [_("Je groepen:")]
        lines += [
            bold(group.name) + " – " + _("aantal leerlingen: {count}").format(count=group.pupils)
            for group in groups
        ]
        text = "\n".join(lines)
    await message.answer(text, reply_markup=main_menu(viewer))


async def my_children(
    message: Message, session: AsyncSession, viewer: Viewer, person: PersonRef
) -> None:
    """Shows a parent which children they are linked to."""
    children = await children_of(session, parent_id=person.id)
    if not children:
        # parents
        text = _("Er is nog geen kind aan je gekoppeld. Neem contact op met de school.")
    else:
        text = fill(
            # parents
            _("Je bent gekoppeld aan {children}."),
            children=names_list([child.name for child in children]),
        )
    await message.answer(text, reply_markup=main_menu(viewer))


async def school(
    message: Message, session: AsyncSession, viewer: Viewer, person: PersonRef
) -> None:
    """Shows an admin how many people of each role have joined."""
    status = await school_status(session, school_id=person.school_id)
    lines = [bold(status.school_name)]
    for role in Role:
        total = status.people.get(role, 0)
        if total:
            lines.append(
                _("{role}: {linked} van {total} aangemeld").format(
                    role=role_label(role).capitalize(),
                    linked=status.linked.get(role, 0),
                    total=total,
                )
            )
    await message.answer("\n".join(lines), reply_markup=main_menu(viewer))


def build_router() -> Router:
    router = Router(name="menu")
    router.message.register(my_group, F.text == BUTTON_MY_GROUP, HasRole(Role.PUPIL))
    router.message.register(my_groups, F.text == BUTTON_MY_GROUPS, HasRole(Role.TEACHER))
    router.message.register(my_children, F.text == BUTTON_MY_CHILDREN, HasRole(Role.PARENT))
    router.message.register(school, F.text == BUTTON_SCHOOL, HasRole(Role.ADMIN))
    return router
