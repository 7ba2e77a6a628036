"""A school's people as the roster of one school year: groups, people, group memberships,
guardianships, and invite codes for those who have not signed in yet.

`write_roster` brings the database in line with a checked list of entries (the people file,
see services.importing.people); it decides nothing about the file itself. What it does:

* People are matched on (school, external_id); a new one is created, a known one gets the
  entry's name and (when given) language. A role never changes: the importer refuses that.
* Groups are matched on (name, school year) and created when new.
* The active memberships become exactly those of the entries: memberships of other groups end
  and new ones start, so next year's roster moves every pupil to the new groups and keeps their
  portfolio, Telegram account and guardianships. The first teacher listed for a group is its
  mentor.
* Guardianships of the entries are added, none removed: those only the school has are
  reported, because losing a parent's access silently would be worse than an extra one.
* Invite codes go to every person of the entries without a linked Telegram account and
  without an unused code that is still valid: on a first import that is everyone, on a
  re-import only new people (and those whose code expired unused), so printed slips keep
  working.

Nothing here commits: the caller's transaction does, so a failure later on still leaves the
database as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.change_counts import ChangeCounts, ChangeTally
from storage.invites import issue_invite
from storage.models import (
    AccountPerson,
    Group,
    GroupMembership,
    Guardianship,
    Invite,
    Person,
    Role,
    School,
)


@dataclass(frozen=True)
class RosterEntry:
    """One person of a checked people file."""

    external_id: str
    role: Role
    name: str
    groups: list[str]
    locale: str | None  # None leaves the stored language alone
    children: list[str]  # a parent's children, by external id


@dataclass(frozen=True)
class IssuedCode:
    external_id: str
    name: str
    role: Role
    code: str


@dataclass(frozen=True)
class RosterChanges:
    people: ChangeCounts
    groups_created: int
    memberships_started: int
    memberships_ended: int
    mentors_changed: int
    guardianships_created: int
    # (parent external_id, pupil external_id) pairs the database has and the entries do not.
    guardianships_not_in_file: list[tuple[str, str]]
    codes: list[IssuedCode]


async def people_by_external_id(session: AsyncSession, *, school_id: int) -> dict[str, Person]:
    """Everyone of the school, left or not, by their external id."""
    return {
        person.external_id: person
        for person in await session.scalars(select(Person).where(Person.school_id == school_id))
    }


async def later_school_year_in_use(
    session: AsyncSession, *, school_id: int, school_year: str
) -> str | None:
    """The latest school year after `school_year` in which someone of the school is still in a
    group, else None."""
    return await session.scalar(
        select(func.max(Group.school_year))
        .join(GroupMembership, GroupMembership.group_id == Group.id)
        .where(
            Group.school_id == school_id,
            Group.school_year > school_year,
            GroupMembership.ended_at.is_(None),
        )
    )


async def write_roster(
    session: AsyncSession,
    *,
    school: School,
    school_year: str,
    entries: Sequence[RosterEntry],
    existing: dict[str, Person],
    invite_valid_for: timedelta,
    invite_secret: bytes,
    now: datetime,
) -> RosterChanges:
    """Bring the school's people, groups, memberships and guardianships in line with the
    entries and issue the missing invite codes; `existing` is `people_by_external_id`."""
    rows = list(entries)
    groups, groups_created = await _ensure_groups(session, school, school_year, rows)
    persons, people = await _upsert_persons(session, school, rows, existing)
    started, ended, mentors_changed = await _sync_memberships(
        session, school, rows, persons, groups, now
    )
    guardianships_created, guardianships_kept = await _add_guardianships(
        session, school, rows, persons
    )
    codes = await _issue_missing_invites(
        session, school, rows, persons, invite_valid_for, invite_secret, now
    )
    return RosterChanges(
        people=people,
        groups_created=groups_created,
        memberships_started=started,
        memberships_ended=ended,
        mentors_changed=mentors_changed,
        guardianships_created=guardianships_created,
        guardianships_not_in_file=guardianships_kept,
        codes=codes,
    )


async def _ensure_groups(
    session: AsyncSession, school: School, school_year: str, rows: list[RosterEntry]
) -> tuple[dict[str, Group], int]:
    names = list(dict.fromkeys(name for row in rows for name in row.groups))
    groups = {
        group.name: group
        for group in await session.scalars(
            select(Group).where(Group.school_id == school.id, Group.school_year == school_year)
        )
    }
    created = 0
    for name in names:
        if name not in groups:
            groups[name] = Group(school_id=school.id, name=name, school_year=school_year)
            session.add(groups[name])
            created += 1
    await session.flush()
    return groups, created


async def _upsert_persons(
    session: AsyncSession, school: School, rows: list[RosterEntry], existing: dict[str, Person]
) -> tuple[dict[str, Person], ChangeCounts]:
    tally = ChangeTally()
    persons: dict[str, Person] = {}
    for row in rows:
        person = existing.get(row.external_id)
        if person is None:
            person = Person(
                school_id=school.id,
                external_id=row.external_id,
                display_name=row.name,
                role=row.role,
                locale=row.locale,
            )
            session.add(person)
            tally.count(created=True)
        else:
            updated = False
            if person.display_name != row.name:
                person.display_name = row.name
                updated = True
            if row.locale is not None and person.locale != row.locale:
                person.locale = row.locale
                updated = True
            tally.count(updated=updated)
        persons[row.external_id] = person
    await session.flush()
    return persons, tally.freeze()


async def _sync_memberships(
    session: AsyncSession,
    school: School,
    rows: list[RosterEntry],
    persons: dict[str, Person],
    groups: dict[str, Group],
    now: datetime,
) -> tuple[int, int, int]:
    """Make the active memberships exactly those of the file; returns started, ended, mentors."""
    wanted: dict[tuple[int, int], bool] = {}
    groups_with_mentor: set[str] = set()
    for row in rows:
        for name in row.groups:
            # The first teacher listed for a group is its mentor.
            is_mentor = row.role is Role.TEACHER and name not in groups_with_mentor
            if is_mentor:
                groups_with_mentor.add(name)
            wanted[(groups[name].id, persons[row.external_id].id)] = is_mentor

    active = await session.scalars(
        select(GroupMembership)
        .join(Group, Group.id == GroupMembership.group_id)
        .where(Group.school_id == school.id, GroupMembership.ended_at.is_(None))
    )
    ended = 0
    for membership in active:
        if (membership.group_id, membership.person_id) not in wanted:
            membership.ended_at = now
            ended += 1

    group_ids = {group.id for group in groups.values()}
    known = {
        (membership.group_id, membership.person_id): membership
        for membership in await session.scalars(
            select(GroupMembership).where(GroupMembership.group_id.in_(group_ids))
        )
    }
    started = mentors_changed = 0
    for (group_id, person_id), is_mentor in wanted.items():
        current = known.get((group_id, person_id))
        if current is None:
            session.add(
                GroupMembership(
                    group_id=group_id, person_id=person_id, is_mentor=is_mentor, started_at=now
                )
            )
            started += 1
        elif current.ended_at is not None:
            # One row per (group, person): someone who comes back to a group gets it again.
            current.ended_at = None
            current.is_mentor = is_mentor
            started += 1
        elif current.is_mentor != is_mentor:
            current.is_mentor = is_mentor
            mentors_changed += 1
    await session.flush()
    return started, ended, mentors_changed


async def _add_guardianships(
    session: AsyncSession, school: School, rows: list[RosterEntry], persons: dict[str, Person]
) -> tuple[int, list[tuple[str, str]]]:
    """Add the file's guardianships; return how many were new and those only the school has."""
    existing = {
        (parent_id, pupil_id)
        for parent_id, pupil_id in await session.execute(
            select(Guardianship.parent_id, Guardianship.pupil_id)
            .join(Person, Person.id == Guardianship.parent_id)
            .where(Person.school_id == school.id)
        )
    }
    wanted: list[tuple[int, int]] = []
    for row in rows:
        for child in row.children:
            pair = (persons[row.external_id].id, await _person_id(session, school, persons, child))
            if pair not in wanted:
                wanted.append(pair)
    created = 0
    for parent_id, pupil_id in wanted:
        if (parent_id, pupil_id) not in existing:
            session.add(Guardianship(parent_id=parent_id, pupil_id=pupil_id))
            created += 1
    await session.flush()

    only_in_school = existing - set(wanted)
    if not only_in_school:
        return created, []
    ids = {person_id for pair in only_in_school for person_id in pair}
    external = {
        person_id: external_id
        for person_id, external_id in await session.execute(
            select(Person.id, Person.external_id).where(Person.id.in_(ids))
        )
    }
    return created, sorted((external[p], external[c]) for p, c in only_in_school)


async def _person_id(
    session: AsyncSession, school: School, persons: dict[str, Person], external_id: str
) -> int:
    if external_id in persons:
        return persons[external_id].id
    person_id = await session.scalar(
        select(Person.id).where(Person.school_id == school.id, Person.external_id == external_id)
    )
    assert person_id is not None  # checked before anything was written
    return person_id


async def _issue_missing_invites(
    session: AsyncSession,
    school: School,
    rows: list[RosterEntry],
    persons: dict[str, Person],
    valid_for: timedelta,
    invite_secret: bytes,
    now: datetime,
) -> list[IssuedCode]:
    linked = set(
        await session.scalars(
            select(AccountPerson.person_id)
            .join(Person, Person.id == AccountPerson.person_id)
            .where(Person.school_id == school.id)
        )
    )
    # An unused, unexpired code is on a slip somewhere: a new one would silently void it.
    pending = set(
        await session.scalars(
            select(Invite.person_id)
            .join(Person, Person.id == Invite.person_id)
            .where(
                Person.school_id == school.id,
                Invite.used_at.is_(None),
                Invite.revoked_at.is_(None),
                Invite.expires_at > now,
            )
        )
    )
    codes: list[IssuedCode] = []
    for row in rows:
        person = persons[row.external_id]
        if person.id in linked or person.id in pending:
            continue
        code = await issue_invite(
            session, person_id=person.id, valid_for=valid_for, secret=invite_secret, now=now
        )
        codes.append(IssuedCode(person.external_id, person.display_name, person.role, code))
    return codes
