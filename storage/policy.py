"""Who may see what: the one place that decides it.

- A pupil sees their own portfolio, and nobody else's.
- A parent sees only the children linked to them (a guardianship, and they are a parent).
  Of a child's work they see only what the child shared and, where the school asks for it,
  a teacher approved; of teachers' notes only those not marked private; of talks only those
  they took part in (the weekly summary names the dates of a child's coming talks).
- A teacher sees the pupils of the groups they are in now (a membership that has not ended),
  and the groups themselves. Private notes are for teachers only.
- An admin acts only on the pupils of their own school (export, erasure, the audit log); an
  admin is not shown pupils' portfolios in the chat.
- Anyone else (an unknown id, a role with no rule here) sees nothing.

Every storage function that answers about people takes the asker's id and goes through these
rules; ids from buttons are checked here again, so a forged button finds nothing.
`tests/test_policy_single_place.py` fails when another storage module builds its own
relationship check, and `tests/storage/test_policy.py` holds the decision table.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Select, and_, exists, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Approval,
    Evidence,
    GroupMembership,
    Guardianship,
    Observation,
    Person,
    Role,
    Talk,
    TalkParticipant,
)

# Shared work reaches parents unless it waits for, or was refused, a teacher's approval.
PARENT_VISIBLE = (Approval.NOT_NEEDED, Approval.APPROVED)


# --- who someone is ----------------------------------------------------------------------


def _has_role(person_id: int, role: Role) -> ColumnElement[bool]:
    # Never correlated: put inside a query over persons, it still asks about this person.
    return (
        select(Person.id)
        .where(Person.id == person_id, Person.role == role)
        .correlate(None)
        .exists()
    )


async def _role_of(session: AsyncSession, person_id: int) -> Role | None:
    person = await session.get(Person, person_id)
    return person.role if person is not None else None


async def is_teacher(session: AsyncSession, person_id: int) -> bool:
    return await _role_of(session, person_id) is Role.TEACHER


async def acts_as_teacher(session: AsyncSession, *, person_id: int, role: Role) -> bool:
    """Asked as a teacher by a person who is one: only teachers search across pupils."""
    return role is Role.TEACHER and await is_teacher(session, person_id)


async def is_parent(session: AsyncSession, person_id: int) -> bool:
    return await _role_of(session, person_id) is Role.PARENT


def is_pupil(person: Person) -> bool:
    """For a row already loaded: only pupils have a portfolio to show, export or erase."""
    return person.role is Role.PUPIL


# --- groups and pupils ---------------------------------------------------------------------


def current_groups_of(person_id: int | ColumnElement[int]) -> Select[int]:
    """The groups a pupil or teacher is in now (memberships of earlier years have ended)."""
    return select(GroupMembership.group_id).where(
        GroupMembership.person_id == person_id, GroupMembership.ended_at.is_(None)
    )


def groups_taught_by(teacher_id: int) -> Select[int]:
    """The teacher's current groups; none for anyone who is not a teacher."""
    return current_groups_of(teacher_id).where(_has_role(teacher_id, Role.TEACHER))


def pupils_taught_by(teacher_id: int, *, group_id: int | None = None) -> Select[int]:
    """Pupils in the teacher's current groups (or in one of them); none for a non-teacher."""
    query = (
        select(GroupMembership.person_id)
        .join(Person, Person.id == GroupMembership.person_id)
        .where(
            GroupMembership.group_id.in_(groups_taught_by(teacher_id)),
            GroupMembership.ended_at.is_(None),
            Person.role == Role.PUPIL,
        )
    )
    return query.where(GroupMembership.group_id == group_id) if group_id is not None else query


def linked_children(parent_id: int) -> Select[int]:
    """The pupils linked to a parent; none when the person is not a parent."""
    return select(Guardianship.pupil_id).where(
        Guardianship.parent_id == parent_id, _has_role(parent_id, Role.PARENT)
    )


def linked_parents(pupil_id: int) -> Select[int]:
    """The parents linked to a pupil (persons who are parents), by id."""
    return (
        select(Guardianship.parent_id)
        .join(Person, Person.id == Guardianship.parent_id)
        .where(Guardianship.pupil_id == pupil_id, Person.role == Role.PARENT)
    )


def parent_child_links() -> Select[int, int]:
    """Every (parent id, pupil id) link of a person who is a parent, for whole-school audiences
    (the weekly summary); each summary is checked again with `is_parent_of` when it is sent."""
    return (
        select(Guardianship.parent_id, Guardianship.pupil_id)
        .join(Person, Person.id == Guardianship.parent_id)
        .where(Person.role == Role.PARENT)
    )


def members_of_group(group_id: int, *, mentors_only: bool = False) -> Select[int]:
    """The current members of a group (or its mentors): for the group's own prompts and
    summaries, never a reason to show one member's portfolio to another."""
    query = select(GroupMembership.person_id).where(
        GroupMembership.group_id == group_id, GroupMembership.ended_at.is_(None)
    )
    return query.where(GroupMembership.is_mentor.is_(True)) if mentors_only else query


def teachers_of_pupil(pupil_id: int) -> Select[int, bool]:
    """The teachers in the pupil's current groups, each with whether they mentor that group:
    whom to tell about the pupil's new work (the other side of `teaches_pupil`)."""
    return (
        select(GroupMembership.person_id, GroupMembership.is_mentor)
        .join(Person, Person.id == GroupMembership.person_id)
        .where(
            GroupMembership.group_id.in_(current_groups_of(pupil_id)),
            GroupMembership.ended_at.is_(None),
            Person.role == Role.TEACHER,
        )
    )


def pupils_visible_to(person_id: int, role: Role) -> Select[int]:
    """The pupils whose portfolio this person may see, as the role they act in."""
    if role is Role.TEACHER:
        return pupils_taught_by(person_id)
    if role is Role.PARENT:
        return linked_children(person_id)
    if role is Role.PUPIL:
        return select(Person.id).where(Person.id == person_id, Person.role == Role.PUPIL)
    return select(Person.id).where(false())


async def _any(session: AsyncSession, query: Select[int]) -> bool:
    return bool(await session.scalar(select(exists(query))))


async def may_see_pupil(
    session: AsyncSession, *, viewer_id: int, viewer_role: Role, pupil_id: int
) -> bool:
    """A teacher of the pupil's current group, the pupil, or one of the pupil's parents."""
    visible = pupils_visible_to(viewer_id, viewer_role)
    return await _any(session, visible.where(visible.selected_columns[0] == pupil_id))


async def teaches_pupil(session: AsyncSession, *, teacher_id: int, pupil_id: int) -> bool:
    """The teacher is in one of the pupil's current groups now."""
    return await may_see_pupil(
        session, viewer_id=teacher_id, viewer_role=Role.TEACHER, pupil_id=pupil_id
    )


async def teaches_group(session: AsyncSession, *, teacher_id: int, group_id: int) -> bool:
    """The teacher is in this group now."""
    groups = groups_taught_by(teacher_id)
    return await _any(session, groups.where(GroupMembership.group_id == group_id))


async def is_parent_of(session: AsyncSession, *, parent_id: int, pupil_id: int) -> bool:
    """The one check behind every parent view: only linked children, never another."""
    return await may_see_pupil(
        session, viewer_id=parent_id, viewer_role=Role.PARENT, pupil_id=pupil_id
    )


# --- what of a pupil's portfolio ----------------------------------------------------------


def work_visible_to_parents_clause() -> ColumnElement[bool]:
    """THE rule for parents, as SQL: every parent-facing query filters evidence with this."""
    return and_(Evidence.shared_with_parents.is_(True), Evidence.approval.in_(PARENT_VISIBLE))


def work_is_visible_to_parents(evidence: Evidence) -> bool:
    """The same rule for a loaded row."""
    return bool(evidence.shared_with_parents) and evidence.approval in PARENT_VISIBLE


def work_visible_to(viewer_role: Role) -> Sequence[ColumnElement[bool]]:
    """Conditions on `Evidence` for a viewer who may see the pupil: parents get shared work."""
    return [work_visible_to_parents_clause()] if viewer_role is Role.PARENT else []


def notes_visible_to(viewer_role: Role) -> Sequence[ColumnElement[bool]]:
    """Conditions on `Observation`: private notes are for teachers only, whoever asks."""
    return [] if viewer_role is Role.TEACHER else [Observation.is_private.is_(False)]


def note_visible_to(viewer_role: Role, note: Observation) -> bool:
    """The same rule for a loaded note."""
    return viewer_role is Role.TEACHER or not note.is_private


def talks_visible_to(viewer_id: int, viewer_role: Role) -> Sequence[ColumnElement[bool]]:
    """Conditions on `Talk`: a parent reads only the talks they took part in."""
    if viewer_role is not Role.PARENT:
        return []
    took_part = exists().where(
        TalkParticipant.talk_id == Talk.id, TalkParticipant.person_id == viewer_id
    )
    return [took_part]


# --- an admin's own school -----------------------------------------------------------------


def pupils_of_school(school_id: int) -> Select[Person]:
    """The pupils an admin of this school acts on; never anyone of another school."""
    return select(Person).where(Person.school_id == school_id, Person.role == Role.PUPIL)


async def pupil_at_school(session: AsyncSession, *, school_id: int, pupil_id: int) -> Person | None:
    """The pupil with this id when they belong to this school, else None."""
    person = await session.get(Person, pupil_id)
    if person is None or not is_pupil(person) or person.school_id != school_id:
        return None
    return person


async def person_for_admin(
    session: AsyncSession, *, admin_id: int, person_id: int
) -> Person | None:
    """The person with this id when `admin_id` is an admin of their school, else None: whom
    an admin may be told about (a code of theirs seen in a group chat)."""
    admin = await session.get(Person, admin_id)
    person = await session.get(Person, person_id)
    if admin is None or admin.role is not Role.ADMIN or person is None:
        return None
    return person if person.school_id == admin.school_id else None
