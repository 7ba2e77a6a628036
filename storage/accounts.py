"""Who is talking to the bot: the Telegram account, its persons, and the one now active."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.invites import get_or_create_account
from storage.models import (
    Account,
    AccountPerson,
    Group,
    GroupMembership,
    Guardianship,
    Person,
    Role,
    School,
)


@dataclass(frozen=True)
class PersonRef:
    id: int
    name: str
    role: Role
    school_id: int
    locale: str | None


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


async def load_viewer(session: AsyncSession, *, telegram_user_id: int) -> Viewer:
    account = await session.scalar(
        select(Account).where(Account.telegram_user_id == telegram_user_id)
    )
    if account is None:
        return Viewer(telegram_user_id, None, None, None, ())
    persons = (
        await session.scalars(
            select(Person)
            .join(AccountPerson, AccountPerson.person_id == Person.id)
            .where(AccountPerson.account_id == account.id)
            .order_by(Person.role, Person.display_name)
        )
    ).all()
    for person in persons:
        if person.unreachable_since is not None:
            # They are talking to the bot again, so they have unblocked it.
            person.unreachable_since = None
    refs = tuple(_ref(person) for person in persons)
    active = next((ref for ref in refs if ref.id == account.active_person_id), None)
    if active is None and refs:
        # The active person was moved to another account or erased: fall back to another one.
        active = refs[0]
        account.active_person_id = active.id
    return Viewer(telegram_user_id, account.id, account.locale, active, refs)


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
            select(Group)
            .join(GroupMembership, GroupMembership.group_id == Group.id)
            .where(GroupMembership.person_id == person_id, GroupMembership.ended_at.is_(None))
            .order_by(Group.name)
        )
    ).all()
    summaries = []
    for group in groups:
        pupils = await session.scalar(
            select(func.count())
            .select_from(GroupMembership)
            .join(Person, Person.id == GroupMembership.person_id)
            .where(
                GroupMembership.group_id == group.id,
                GroupMembership.ended_at.is_(None),
                Person.role == Role.PUPIL,
            )
        )
        mentors = (
            await session.scalars(
                select(Person.display_name)
                .join(GroupMembership, GroupMembership.person_id == Person.id)
                .where(
                    GroupMembership.group_id == group.id,
                    GroupMembership.ended_at.is_(None),
                    GroupMembership.is_mentor.is_(True),
                )
                .order_by(Person.display_name)
            )
        ).all()
        summaries.append(GroupSummary(group.id, group.name, int(pupils or 0), tuple(mentors)))
    return summaries


async def children_of(session: AsyncSession, *, parent_id: int) -> list[PersonRef]:
    children = (
        await session.scalars(
            select(Person)
            .join(Guardianship, Guardianship.pupil_id == Person.id)
            .where(Guardianship.parent_id == parent_id)
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
    pupil_groups = select(GroupMembership.group_id).where(
        GroupMembership.person_id == pupil_id, GroupMembership.ended_at.is_(None)
    )
    rows = (
        await session.execute(
            select(Person, Account.telegram_user_id, GroupMembership.is_mentor)
            .join(GroupMembership, GroupMembership.person_id == Person.id)
            .join(AccountPerson, AccountPerson.person_id == Person.id)
            .join(Account, Account.id == AccountPerson.account_id)
            .where(
                GroupMembership.group_id.in_(pupil_groups),
                GroupMembership.ended_at.is_(None),
                Person.role == Role.TEACHER,
                Person.unreachable_since.is_(None),
            )
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


async def delivery_target(session: AsyncSession, *, person_id: int) -> DeliveryTarget | None:
    """None when the person has no Telegram account linked or has blocked the bot."""
    row = (
        await session.execute(
            select(Person, Account, School.locale)
            .join(AccountPerson, AccountPerson.person_id == Person.id)
            .join(Account, Account.id == AccountPerson.account_id)
            .join(School, School.id == Person.school_id)
            .where(Person.id == person_id, Person.unreachable_since.is_(None))
        )
    ).one_or_none()
    if row is None:
        return None
    person, account, school_locale = row
    locale = person.locale or account.locale or school_locale
    return DeliveryTarget(
        recipient=Recipient(person.id, person.display_name, account.telegram_user_id, locale),
        role=person.role,
        school_id=person.school_id,
        locale=locale,
        preferences=dict(person.preferences or {}),
    )


async def mark_unreachable(session: AsyncSession, *, person_id: int, now: datetime) -> None:
    """Telegram said the user blocked the bot: stop scheduling for them until they return."""
    person = await session.get(Person, person_id)
    if person is not None and person.unreachable_since is None:
        person.unreachable_since = now
