"""Who is talking to the bot: the Telegram account, its persons, and the one now active."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.invites import get_or_create_account
from storage.models import (
    Account,
    AccountPerson,
    Group,
    Person,
    Role,
    School,
)
from storage.policy import (
    current_groups_of,
    linked_children,
    members_of_group,
    teachers_of_pupil,
)
from storage.types import utcnow


@dataclass(frozen=True)
class PersonRef:
    id: int
    name: str
    role: Role
    school_id: int
    locale: str | None
    # The school writes to its parents with "u" (read for everyone; only parents get it).
    parent_address_formal: bool = False


@dataclass(frozen=True)
class Viewer:
    """The current Telegram user as the handlers see it; plain data, no ORM objects."""

    telegram_user_id: int
    account_id: int | None
    account_locale: str | None
    person: PersonRef | None
    persons: tuple[PersonRef, ...]

    @property
    def locale(self) -> str | None:
        if self.person is not None and self.person.locale:
            return self.person.locale
        return self.account_locale


def _ref(person: Person) -> PersonRef:
    return PersonRef(
        id=person.id,
        name=person.display_name,
        role=person.role,
        school_id=person.school_id,
        locale=person.locale,
    )


# Every update starts with this: the account and its persons in one statement, as plain
# columns (no ORM objects to build and track), one row per person (one with NULLs for none).
# On the tables, not the ORM classes: a plain Core SELECT skips the ORM's compile and loading
# steps, which cost more than the query itself (storage.updates runs it with the claim).
_ACCOUNT, _LINK, _PERSON, _SCHOOL = (
    model.__table__ for model in (Account, AccountPerson, Person, School)
)
VIEWER_ROWS = (
    select(
        _ACCOUNT.c.id.label("account_id"),
        _ACCOUNT.c.active_person_id,
        _ACCOUNT.c.locale.label("account_locale"),
        _PERSON.c.id.label("person_id"),
        _PERSON.c.display_name,
        _PERSON.c.role,
        _PERSON.c.school_id,
        _PERSON.c.locale.label("person_locale"),
        _PERSON.c.unreachable_since,
        _SCHOOL.c.parent_address_formal,
    )
    .select_from(_ACCOUNT)
    .outerjoin(_LINK, _LINK.c.account_id == _ACCOUNT.c.id)
    .outerjoin(_PERSON, _PERSON.c.id == _LINK.c.person_id)
    .outerjoin(_SCHOOL, _SCHOOL.c.id == _PERSON.c.school_id)
    .where(_ACCOUNT.c.telegram_user_id == bindparam("telegram_user_id"))
    .order_by(_PERSON.c.role, _PERSON.c.display_name)
)
# Positions in a row of VIEWER_ROWS (storage.updates reads them inside a wider row).
VIEWER_COLUMNS = len(VIEWER_ROWS.selected_columns)


async def load_viewer(session: AsyncSession, *, telegram_user_id: int) -> Viewer:
    """The viewer again, mid-update: only ever in answer to a message or a tap in the private
    chat, so they can be written to."""
    rows = (await session.execute(VIEWER_ROWS, {"telegram_user_id": telegram_user_id})).all()
    return await viewer_from_rows(
        session, telegram_user_id=telegram_user_id, rows=rows, reachable=True
    )


async def viewer_from_rows(
    session: AsyncSession,
    *,
    telegram_user_id: int,
    rows: Sequence[Row[*tuple[Any, ...]]],
    reachable: bool | None,
) -> Viewer:
    """The viewer from the rows of VIEWER_ROWS, repairing what those rows show is stale.

    `reachable` is what the update says about writing to them: True (they wrote or tapped
    in the private chat, or unblocked the bot), False (they blocked it), None (nothing: an
    update from elsewhere, a tap on a message in another chat, says nothing about the
    private chat). Their persons are marked reachable or unreachable accordingly.
    """
    if not rows:
        return Viewer(telegram_user_id, None, None, None, ())
    account_id, active_person_id, account_locale = rows[0][:3]
    refs = tuple(
        PersonRef(
            id=row[3],
            name=row[4],
            role=Role(row[5]),
            school_id=row[6],
            locale=row[7],
            parent_address_formal=bool(row[9]),
        )
        for row in rows
        if row[3] is not None
    )
    if reachable is not None:
        # row[8]: since when the person is marked unreachable; only a change is written.
        changed = [
            row[3] for row in rows if row[3] is not None and (row[8] is not None) is reachable
        ]
        if changed:
            await session.execute(
                update(Person)
                .where(Person.id.in_(changed))
                .values(unreachable_since=None if reachable else utcnow())
            )
    active = next((ref for ref in refs if ref.id == active_person_id), None)
    if active is None and refs:
        # The active person was moved to another account or erased: fall back to another one.
        active = refs[0]
        await session.execute(
            update(Account).where(Account.id == account_id).values(active_person_id=active.id)
        )
    return Viewer(telegram_user_id, account_id, account_locale, active, refs)


async def switch_person(session: AsyncSession, *, telegram_user_id: int, person_id: int) -> bool:
    """Make one of the account's own persons the active one; False for anyone else's."""
    account = await session.scalar(
        select(Account).where(Account.telegram_user_id == telegram_user_id)
    )
    if account is None:
        return False
    linked = await session.scalar(
        select(AccountPerson).where(
            AccountPerson.account_id == account.id, AccountPerson.person_id == person_id
        )
    )
    if linked is None:
        return False
    account.active_person_id = person_id
    return True


async def set_language(session: AsyncSession, *, telegram_user_id: int, locale: str) -> None:
    """The chosen language holds for the account and for the active person's messages."""
    account = await get_or_create_account(session, telegram_user_id=telegram_user_id)
    account.locale = locale
    if account.active_person_id is not None:
        person = await session.get(Person, account.active_person_id)
        if person is not None:
            person.locale = locale


@dataclass(frozen=True)
class GroupSummary:
    id: int
    name: str
    pupils: int
    mentors: tuple[str, ...]


async def active_groups_of(session: AsyncSession, *, person_id: int) -> list[GroupSummary]:
    """The groups a pupil or teacher is in now, with pupil counts and mentor names."""
    groups = (
        await session.scalars(
            select(Group).where(Group.id.in_(current_groups_of(person_id))).order_by(Group.name)
        )
    ).all()
    summaries = []
    for group in groups:
        pupils = await session.scalar(
            select(func.count())
            .select_from(Person)
            .where(Person.id.in_(members_of_group(group.id)), Person.role == Role.PUPIL)
        )
        mentors = (
            await session.scalars(
                select(Person.display_name)
                .where(Person.id.in_(members_of_group(group.id, mentors_only=True)))
                .order_by(Person.display_name)
            )
        ).all()
        summaries.append(GroupSummary(group.id, group.name, int(pupils or 0), tuple(mentors)))
    return summaries


async def children_of(session: AsyncSession, *, parent_id: int) -> list[PersonRef]:
    children = (
        await session.scalars(
            select(Person)
            .where(Person.id.in_(linked_children(parent_id)))
            .order_by(Person.display_name)
        )
    ).all()
    return [_ref(child) for child in children]


@dataclass(frozen=True)
class SchoolStatus:
    school_name: str
    people: dict[Role, int]
    linked: dict[Role, int]


async def school_status(session: AsyncSession, *, school_id: int) -> SchoolStatus:
    """How many people of each role the school has, and how many have joined in Telegram."""
    school = await session.get(School, school_id)
    assert school is not None
    people = dict(
        (
            await session.execute(
                select(Person.role, func.count())
                .where(Person.school_id == school_id)
                .group_by(Person.role)
            )
        ).all()
    )
    linked = dict(
        (
            await session.execute(
                select(Person.role, func.count())
                .join(AccountPerson, AccountPerson.person_id == Person.id)
                .where(Person.school_id == school_id)
                .group_by(Person.role)
            )
        ).all()
    )
    return SchoolStatus(school.name, people, linked)


@dataclass(frozen=True)
class Recipient:
    """Someone the bot can message now: linked to a Telegram account and not unreachable."""

    person_id: int
    name: str
    telegram_user_id: int
    locale: str | None


async def teachers_to_notify(session: AsyncSession, *, pupil_id: int) -> list[Recipient]:
    """The mentors of the pupil's current group, or all its teachers when it has no mentor."""
    teachers = teachers_of_pupil(pupil_id).subquery()
    rows = (
        await session.execute(
            select(Person, Account.telegram_user_id, teachers.c.is_mentor)
            .join(teachers, teachers.c.person_id == Person.id)
            .join(AccountPerson, AccountPerson.person_id == Person.id)
            .join(Account, Account.id == AccountPerson.account_id)
            .where(Person.unreachable_since.is_(None))
            .order_by(Person.display_name)
        )
    ).all()
    mentors = [row for row in rows if row[2]] or rows
    seen: set[int] = set()
    recipients = []
    for person, telegram_user_id, _is_mentor in mentors:
        if person.id not in seen:
            seen.add(person.id)
            recipients.append(
                Recipient(person.id, person.display_name, telegram_user_id, person.locale)
            )
    return recipients


async def recipient(session: AsyncSession, *, person_id: int) -> Recipient | None:
    row = (
        await session.execute(
            select(Person, Account.telegram_user_id)
            .join(AccountPerson, AccountPerson.person_id == Person.id)
            .join(Account, Account.id == AccountPerson.account_id)
            .where(Person.id == person_id, Person.unreachable_since.is_(None))
        )
    ).one_or_none()
    if row is None:
        return None
    person, telegram_user_id = row
    return Recipient(person.id, person.display_name, telegram_user_id, person.locale)


@dataclass(frozen=True)
class DeliveryTarget:
    """Where and how a scheduled message reaches a person."""

    recipient: Recipient
    role: Role
    school_id: int
    # The person's language, else the account's, else the school's.
    locale: str
    preferences: dict[str, Any]
    # The school writes to its parents with "u"; whether this person is one is up to the role.
    parent_address_formal: bool = False


async def delivery_target(session: AsyncSession, *, person_id: int) -> DeliveryTarget | None:
    """None when the person has no Telegram account linked or has blocked the bot."""
    row = (
        await session.execute(
            select(Person, Account, School.locale, School.parent_address_formal)
            .join(AccountPerson, AccountPerson.person_id == Person.id)
            .join(Account, Account.id == AccountPerson.account_id)
            .join(School, School.id == Person.school_id)
            .where(Person.id == person_id, Person.unreachable_since.is_(None))
        )
    ).one_or_none()
    if row is None:
        return None
    person, account, school_locale, parent_address_formal = row
    locale = person.locale or account.locale or school_locale
    return DeliveryTarget(
        recipient=Recipient(person.id, person.display_name, account.telegram_user_id, locale),
        role=person.role,
        school_id=person.school_id,
        locale=locale,
        preferences=dict(person.preferences or {}),
        parent_address_formal=bool(parent_address_formal),
    )


async def mark_unreachable(session: AsyncSession, *, person_id: int, now: datetime) -> None:
    """Telegram said the user blocked the bot: stop scheduling for them until they return."""
    person = await session.get(Person, person_id)
    if person is not None and person.unreachable_since is None:
        person.unreachable_since = now
