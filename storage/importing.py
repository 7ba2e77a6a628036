"""Importing a school's people and its goal sets from CSV files.

An import is all-or-nothing: the whole file is read and checked (against itself and against
what the school already holds) before a single row is written, and every problem found is
reported with its file, line and column, so one round of fixing is usually enough. Nothing here
commits; the caller's transaction does, so a failure later on still leaves the database as it was.

Importing the same file twice changes nothing: people are matched on (school, external_id),
goals on (goal set, code), learning lines on their name, groups on (name, school year).

People file: `external_id,role,name,group,language,children`. `group` is required for pupils
and teachers (a teacher may list several groups, `;`-separated) and empty for parents and
admins; `children` lists a parent's children by external id, `;`-separated, each a pupil in the
file or already in the school; an empty `language` leaves the stored language alone. A person's
role never changes: a row that would change one is refused.

A people file is the whole school for one school year. Decisions that follow from that:

* People who are in the school but not in the file are never deleted (leaving is a separate
  decision); their group memberships end and the result lists them as "not in this file".
* Memberships of other groups end and new ones start: importing next year's file moves every
  pupil to the new groups and keeps their portfolio, Telegram account and guardianships.
* Guardianships in the file are added. None are removed: those no longer in the file are only
  reported, because losing a parent's access silently would be worse than an extra one.
* Invite codes are issued to every person in the file who has no linked Telegram account and
  no unused code that is still valid. On a first import that is everyone; a re-import issues
  codes only to new people (and to those whose code expired unused), so printed slips keep
  working. A fresh code for one person is a separate, deliberate step
  (`storage.schools.invite_person`).

Goal-set files are told apart by their header: `learning_line,code,goal[,after]`, or with
`level,descriptor` a rubric, one row per level in order; every goal of a rubric has the same
levels, and those become the set's rubric levels. Goals missing from a later file are kept,
because pupils' goals, evidence and assessments refer to them.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import NoReturn

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.invites import issue_invite
from storage.models import (
    AccountPerson,
    Goal,
    GoalPrerequisite,
    GoalSet,
    Group,
    GroupMembership,
    Guardianship,
    Invite,
    LearningLine,
    Person,
    Role,
    RubricDescriptor,
    RubricLevel,
    School,
)
from storage.schools import SchoolError, known_languages, parse_school_year
from storage.types import utcnow

# Past this many problems the rest are mostly echoes of the first ones (a shifted column).
MAX_PROBLEMS = 50

PERSON_NAME_MAX = 120
EXTERNAL_ID_MAX = 64
GROUP_NAME_MAX = 100
GOAL_SET_NAME_MAX = 200
LEARNING_LINE_MAX = 200
GOAL_CODE_MAX = 32
GOAL_TEXT_MAX = 500
LEVEL_NAME_MAX = 64
DESCRIPTOR_MAX = 500

PEOPLE_REQUIRED = ("external_id", "role", "name", "group")
PEOPLE_OPTIONAL = ("language", "children")
GOALS_REQUIRED = ("learning_line", "code", "goal")
RUBRIC_REQUIRED = (*GOALS_REQUIRED, "level", "descriptor")
GOALS_OPTIONAL = ("after",)

_ROLES = ", ".join(role.value for role in Role)
_GROUPED_ROLES = (Role.PUPIL, Role.TEACHER)
_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
_GOAL_SET_PREFIX = re.compile(r"^(goal[-_ ]?sets?|doelen(sets?)?)[-_ ]+", re.IGNORECASE)


# --- results and errors ----------------------------------------------------------------------


@dataclass(frozen=True)
class ImportProblem:
    file: str
    line: int  # 0 when the problem is about the file as a whole
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line == 0 else f"{self.file} line {self.line}"
        if self.column is not None:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


class ImportFileError(Exception):
    """The file cannot be imported; nothing was written. One problem per line in str()."""

    def __init__(self, problems: Sequence[ImportProblem], *, more: bool = False) -> None:
        self.problems = list(problems)
        self.more = more
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [str(problem) for problem in self.problems]
        if self.more and self.problems:
            lines.append(
                f"{self.problems[0].file}: more problems than these {len(self.problems)}; "
                "fix these first"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class ChangeCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class IssuedCode:
    external_id: str
    name: str
    role: Role
    code: str


@dataclass(frozen=True)
class PersonRef:
    external_id: str
    name: str
    role: Role


@dataclass(frozen=True)
class PeopleImportResult:
    school_year: str
    people: ChangeCounts
    groups_created: int
    memberships_started: int
    memberships_ended: int
    mentors_changed: int
    guardianships_created: int
    codes: list[IssuedCode]
    codes_expire_at: datetime | None
    # In the school (and not marked as left) but not in the file: kept, without a group now.
    not_in_file: list[PersonRef]
    # (parent external_id, pupil external_id) pairs the database has and the file does not.
    guardianships_not_in_file: list[tuple[str, str]]

    @property
    def changed(self) -> bool:
        return bool(
            self.people.created
            or self.people.updated
            or self.groups_created
            or self.memberships_started
            or self.memberships_ended
            or self.mentors_changed
            or self.guardianships_created
            or self.codes
        )


@dataclass(frozen=True)
class GoalSetImportResult:
    goal_set_id: int
    name: str
    created: bool
    has_rubric: bool
    levels: list[str]
    level_changes: ChangeCounts
    learning_lines: ChangeCounts
    # A goal counts as updated when its text, line, place, prerequisites or descriptors changed.
    goals: ChangeCounts
    prerequisites: int
    # Codes of goals the set has and the file does not; they are kept (pupils' work refers
    # to them).
    not_in_file: list[str]

    @property
    def changed(self) -> bool:
        return bool(
            self.created
            or self.level_changes.created
            or self.level_changes.updated
            or self.learning_lines.created
            or self.learning_lines.updated
            or self.goals.created
            or self.goals.updated
        )


@dataclass
class _Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def count(self, *, created: bool = False, updated: bool = False) -> None:
        if created:
            self.created += 1
        elif updated:
            self.updated += 1
        else:
            self.unchanged += 1

    def freeze(self) -> ChangeCounts:
        return ChangeCounts(self.created, self.updated, self.unchanged)


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[ImportProblem] = []
        self.more = False

    def add(self, line: int, column: str | None, message: str) -> None:
        if len(self.items) >= MAX_PROBLEMS:
            self.more = True
            return
        self.items.append(ImportProblem(self.file, line, column, message))

    def raise_if_any(self) -> None:
        if self.items:
            # Checks run in several passes; the reader wants them in file order.
            raise ImportFileError(sorted(self.items, key=lambda item: item.line), more=self.more)

    def fail(self, line: int, column: str | None, message: str) -> NoReturn:
        self.add(line, column, message)
        self.raise_if_any()
        raise AssertionError("unreachable: a problem was just added")


# --- reading CSV -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]

    def raw(self, column: str) -> str:
        return self.values.get(column, "").strip()


@dataclass(frozen=True)
class _Table:
    header_line: int
    columns: list[str]
    rows: list[_Row]


def _column_name(cell: str) -> str:
    return "_".join(cell.strip().lower().split())


async def _read_csv(path: Path, problems: _Problems) -> _Table:
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as error:
        problems.fail(0, None, f"cannot read the file: {error.strerror or error}")
    return _parse_csv(data, problems)


def _parse_csv(data: bytes, problems: _Problems) -> _Table:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        problems.fail(line, None, 'not UTF-8 text; save the file as "CSV UTF-8"')

    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    header_line = 1
    rows: list[_Row] = []
    start = 1
    try:
        for record in reader:
            # A quoted value may span lines: report the line the record starts on.
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header, header_line = [_column_name(cell) for cell in record], line
                while header and not header[-1]:
                    header.pop()  # spreadsheets add empty columns at the end
                continue
            extra = record[len(header) :]
            if any(cell.strip() for cell in extra):
                problems.add(
                    line,
                    None,
                    f"{len(record)} values but the header has {len(header)} columns "
                    "(a comma in a value needs quotes around the value)",
                )
                continue
            values = {
                column: record[index] if index < len(record) else ""
                for index, column in enumerate(header)
            }
            rows.append(_Row(line, values))
    except csv.Error as error:
        problems.fail(reader.line_num, None, f"not valid CSV: {error}")

    if header is None:
        problems.add(0, None, "the file is empty")
    elif len(header) == 1 and ";" in header[0]:
        problems.add(
            header_line,
            None,
            'the columns are separated by semicolons; save the file comma-separated ("CSV UTF-8")',
        )
    elif not rows and not problems.items:
        problems.add(0, None, "the file has a header but no rows")
    problems.raise_if_any()
    assert header is not None
    return _Table(header_line, header, rows)


def _check_columns(
    table: _Table, problems: _Problems, *, required: Sequence[str], optional: Sequence[str]
) -> None:
    expected = (*required, *optional)
    if not set(table.columns) & set(expected):
        # Most likely the wrong file: one line says so better than a line per column.
        problems.fail(
            table.header_line,
            None,
            f"the header has none of the expected columns ({', '.join(expected)}); "
            f"found: {', '.join(table.columns)}",
        )
    seen: set[str] = set()
    for position, column in enumerate(table.columns, start=1):
        if not column:
            problems.add(table.header_line, None, f"column {position} of the header has no name")
        elif column in seen:
            problems.add(table.header_line, column, "this column appears twice in the header")
        elif column not in expected:
            problems.add(
                table.header_line, column, f"unknown column (expected: {', '.join(expected)})"
            )
        seen.add(column)
    for column in required:
        if column not in seen:
            problems.add(table.header_line, column, "required column is missing")
    # Rows cannot be checked against a header that is wrong.
    problems.raise_if_any()


def _bad_character(text: str) -> str | None:
    for char in text:
        if unicodedata.category(char) in _CONTROL_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def _clean(
    text: str, line: int, column: str, problems: _Problems, *, max_length: int
) -> str | None:
    """One value, NFC-normalised with runs of spaces collapsed, or None if it is not usable.

    Normalising makes "é" typed two ways the same name, so a re-import does not count it as
    a change.
    """
    bad = _bad_character(text)
    if bad is not None:
        problems.add(line, column, f"control character {bad} is not allowed")
        return None
    cleaned = unicodedata.normalize("NFC", re.sub(r"\s{2,}", " ", text.strip()))
    if len(cleaned) > max_length:
        problems.add(line, column, f"too long: {len(cleaned)} characters, at most {max_length}")
        return None
    return cleaned


def _value(
    row: _Row, column: str, problems: _Problems, *, max_length: int, required: bool = True
) -> str:
    raw = row.raw(column)
    if not raw:
        if required:
            problems.add(row.line, column, "empty; a value is required")
        return ""
    return _clean(raw, row.line, column, problems, max_length=max_length) or ""


def _value_list(row: _Row, column: str, problems: _Problems, *, max_length: int) -> list[str]:
    """A `;`-separated list, without empties and repeats, in the order given."""
    items: list[str] = []
    for part in row.raw(column).split(";"):
        if not part.strip():
            continue
        item = _clean(part, row.line, column, problems, max_length=max_length)
        if item and item not in items:
            items.append(item)
    return items


# --- people ----------------------------------------------------------------------------------


@dataclass
class _PersonRow:
    line: int
    external_id: str
    role: Role | None
    name: str
    groups: list[str]
    locale: str | None
    children: list[str]


def _parse_people(table: _Table, problems: _Problems) -> list[_PersonRow]:
    people: list[_PersonRow] = []
    first_line: dict[str, int] = {}
    for row in table.rows:
        external_id = _value(row, "external_id", problems, max_length=EXTERNAL_ID_MAX)
        duplicate = external_id in first_line
        if duplicate:
            problems.add(
                row.line,
                "external_id",
                f'duplicate external id "{external_id}" (also on line {first_line[external_id]})',
            )
        elif external_id:
            first_line[external_id] = row.line
        role = _parse_role(row, problems)
        name = _value(row, "name", problems, max_length=PERSON_NAME_MAX)
        groups = _value_list(row, "group", problems, max_length=GROUP_NAME_MAX)
        if role in _GROUPED_ROLES and not groups and not row.raw("group"):
            problems.add(row.line, "group", f"empty; a {role} needs a group")
        elif role is Role.PUPIL and len(groups) > 1:
            problems.add(row.line, "group", f"a pupil is in one group, not {len(groups)}")
        elif role in (Role.PARENT, Role.ADMIN) and row.raw("group"):
            problems.add(row.line, "group", f"a {role} is in no group; leave it empty")
        locale = _parse_language(row, problems)
        children = _value_list(row, "children", problems, max_length=EXTERNAL_ID_MAX)
        if role is Role.PARENT and not children and not row.raw("children"):
            problems.add(
                row.line, "children", "empty; a parent needs a child (external ids, ;-separated)"
            )
        elif role is not None and role is not Role.PARENT and row.raw("children"):
            problems.add(row.line, "children", f"only parents have children, not a {role}")
        if not duplicate:
            people.append(_PersonRow(row.line, external_id, role, name, groups, locale, children))
    return people


def _parse_role(row: _Row, problems: _Problems) -> Role | None:
    raw = row.raw("role")
    if not raw:
        problems.add(row.line, "role", f"empty; a value is required ({_ROLES})")
        return None
    try:
        return Role(raw.lower())
    except ValueError:
        problems.add(row.line, "role", f'unknown role "{raw}" ({_ROLES})')
        return None


def _parse_language(row: _Row, problems: _Problems) -> str | None:
    raw = row.raw("language")
    if not raw:
        return None  # the stored language (or the school's) stays
    if raw.lower() not in known_languages():
        problems.add(
            row.line,
            "language",
            f'unknown language "{raw}" (a two-letter code such as nl, en, tr, ar, pl, uk)',
        )
        return None
    return raw.lower()


async def _check_people_against_school(
    session: AsyncSession,
    *,
    school: School,
    school_year: str,
    rows: list[_PersonRow],
    existing: dict[str, Person],
    problems: _Problems,
) -> None:
    for row in rows:
        known = existing.get(row.external_id)
        if known is not None and row.role is not None and known.role is not row.role:
            problems.add(
                row.line,
                "role",
                f'"{row.external_id}" is a {known.role} in the school; a role cannot change '
                f"(give the {row.role} a new external id)",
            )

    roles_in_file = {row.external_id: row.role for row in rows if row.external_id}
    for row in rows:
        for child in row.children if row.role is Role.PARENT else []:
            if child in roles_in_file:
                role = roles_in_file[child]
            elif child in existing:
                role = existing[child].role
            else:
                problems.add(
                    row.line,
                    "children",
                    f'child "{child}" is not a pupil in this file or in the school',
                )
                continue
            if role is not None and role is not Role.PUPIL:
                problems.add(row.line, "children", f'child "{child}" is a {role}, not a pupil')

    later = await session.scalar(
        select(func.max(Group.school_year))
        .join(GroupMembership, GroupMembership.group_id == Group.id)
        .where(
            Group.school_id == school.id,
            Group.school_year > school_year,
            GroupMembership.ended_at.is_(None),
        )
    )
    if later is not None:
        problems.add(
            0,
            None,
            f"the school already has people in groups of {later}; this import is for "
            f"{school_year} and would move them back a year",
        )


async def import_people(
    session: AsyncSession,
    *,
    school: School,
    path: Path,
    school_year: str,
    invite_valid_for: timedelta,
) -> PeopleImportResult:
    """Bring the school's people, groups and guardianships in line with the file."""
    problems = _Problems(path.name)
    try:
        school_year = parse_school_year(school_year)
    except SchoolError as error:
        problems.fail(0, None, str(error))
    table = await _read_csv(path, problems)
    _check_columns(table, problems, required=PEOPLE_REQUIRED, optional=PEOPLE_OPTIONAL)
    rows = _parse_people(table, problems)
    existing = {
        person.external_id: person
        for person in await session.scalars(select(Person).where(Person.school_id == school.id))
    }
    await _check_people_against_school(
        session,
        school=school,
        school_year=school_year,
        rows=rows,
        existing=existing,
        problems=problems,
    )
    problems.raise_if_any()

    now = utcnow()
    groups, groups_created = await _ensure_groups(session, school, school_year, rows)
    persons, people = await _upsert_persons(session, school, rows, existing)
    started, ended, mentors_changed = await _sync_memberships(
        session, school, rows, persons, groups, now
    )
    guardianships_created, guardianships_kept = await _add_guardianships(
        session, school, rows, persons
    )
    codes = await _issue_missing_invites(session, school, rows, persons, invite_valid_for, now)

    in_file = {row.external_id for row in rows}
    not_in_file = [
        PersonRef(person.external_id, person.display_name, person.role)
        for person in sorted(existing.values(), key=lambda person: person.external_id)
        if person.external_id not in in_file and person.left_school_on is None
    ]
    return PeopleImportResult(
        school_year=school_year,
        people=people,
        groups_created=groups_created,
        memberships_started=started,
        memberships_ended=ended,
        mentors_changed=mentors_changed,
        guardianships_created=guardianships_created,
        codes=codes,
        codes_expire_at=now + invite_valid_for if codes else None,
        not_in_file=not_in_file,
        guardianships_not_in_file=guardianships_kept,
    )


async def _ensure_groups(
    session: AsyncSession, school: School, school_year: str, rows: list[_PersonRow]
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
    session: AsyncSession, school: School, rows: list[_PersonRow], existing: dict[str, Person]
) -> tuple[dict[str, Person], ChangeCounts]:
    tally = _Tally()
    persons: dict[str, Person] = {}
    for row in rows:
        assert row.role is not None  # rows with problems never get here
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
    rows: list[_PersonRow],
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
    session: AsyncSession, school: School, rows: list[_PersonRow], persons: dict[str, Person]
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
    rows: list[_PersonRow],
    persons: dict[str, Person],
    valid_for: timedelta,
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
        code = await issue_invite(session, person_id=person.id, valid_for=valid_for, now=now)
        codes.append(IssuedCode(person.external_id, person.display_name, person.role, code))
    return codes


# --- goal sets -------------------------------------------------------------------------------


@dataclass
class _GoalRow:
    line: int
    code: str
    learning_line: str
    text: str
    after: list[str]
    # (level name, descriptor, line) in file order; empty without a rubric.
    levels: list[tuple[str, str, int]] = field(default_factory=list)


def default_goal_set_name(path: Path) -> str:
    """A readable name from the file's: "goalset-natuurkunde-vwo3-h1" → "Natuurkunde vwo3 h1"."""
    stem = _GOAL_SET_PREFIX.sub("", path.stem)
    words = " ".join(re.split(r"[-_\s]+", stem)).strip() or path.stem
    return words[:1].upper() + words[1:]


def _goal_set_name(name: str, problems: _Problems) -> str:
    bad = _bad_character(name)
    if bad is not None:
        problems.fail(0, None, f"control character {bad} in the goal set's name")
    cleaned = unicodedata.normalize("NFC", " ".join(name.split()))
    if not cleaned:
        problems.fail(0, None, "the goal set needs a name")
    if len(cleaned) > GOAL_SET_NAME_MAX:
        problems.fail(0, None, f"the goal set's name is longer than {GOAL_SET_NAME_MAX} characters")
    return cleaned


def _parse_goals(table: _Table, problems: _Problems, *, has_rubric: bool) -> list[_GoalRow]:
    goals: list[_GoalRow] = []
    first_line: dict[str, int] = {}
    for row in table.rows:
        code = _value(row, "code", problems, max_length=GOAL_CODE_MAX)
        current = goals[-1] if goals else None
        continues = has_rubric and current is not None and code and code == current.code
        # Later rows of a rubric goal may leave the goal's own cells empty (merged cells).
        line_name = _value(
            row, "learning_line", problems, max_length=LEARNING_LINE_MAX, required=not continues
        )
        text = _value(row, "goal", problems, max_length=GOAL_TEXT_MAX, required=not continues)
        after = _value_list(row, "after", problems, max_length=GOAL_CODE_MAX)

        if continues and current is not None:
            for column, value, first in (
                ("learning_line", line_name, current.learning_line),
                ("goal", text, current.text),
            ):
                if value and value != first:
                    problems.add(
                        row.line,
                        column,
                        f'differs from line {current.line}, the first row of goal "{code}"',
                    )
            if row.raw("after") and after != current.after:
                problems.add(
                    row.line,
                    "after",
                    f'differs from line {current.line}, the first row of goal "{code}"',
                )
            goal = current
        else:
            if code and code in first_line:
                hint = "; the rows of one goal must be next to each other" if has_rubric else ""
                problems.add(
                    row.line,
                    "code",
                    f'duplicate code "{code}" (also on line {first_line[code]}){hint}',
                )
                continue
            if code:
                first_line[code] = row.line
            goal = _GoalRow(row.line, code, line_name, text, after)
            goals.append(goal)

        if has_rubric:
            level = _value(row, "level", problems, max_length=LEVEL_NAME_MAX)
            descriptor = _value(row, "descriptor", problems, max_length=DESCRIPTOR_MAX)
            if level and any(level == name for name, _, _ in goal.levels):
                problems.add(
                    row.line, "level", f'level "{level}" appears twice for goal "{goal.code}"'
                )
            goal.levels.append((level, descriptor, row.line))

    if has_rubric:
        _check_levels_match(goals, problems)
    _check_prerequisites(goals, problems)
    return goals


def _check_levels_match(goals: list[_GoalRow], problems: _Problems) -> None:
    if not goals:
        return
    reference = goals[0]
    expected = [name for name, _, _ in reference.levels]
    for goal in goals[1:]:
        names = [name for name, _, _ in goal.levels]
        if names != expected:
            problems.add(
                goal.line,
                "level",
                f'goal "{goal.code}" has levels ({", ".join(names)}) but goal "{reference.code}" '
                f"on line {reference.line} has ({', '.join(expected)}); every goal needs the "
                "same levels in the same order",
            )


def _check_prerequisites(goals: list[_GoalRow], problems: _Problems) -> None:
    codes = {goal.code for goal in goals if goal.code}
    edges: dict[str, list[str]] = {}
    for goal in goals:
        valid: list[str] = []
        for code in goal.after:
            if code == goal.code:
                problems.add(goal.line, "after", f'goal "{code}" cannot come after itself')
            elif code not in codes:
                problems.add(goal.line, "after", f'unknown code "{code}" (not a goal in this file)')
            else:
                valid.append(code)
        if goal.code:
            edges[goal.code] = valid
    line_of = {goal.code: goal.line for goal in goals}
    for cycle in _cycles(list(edges), edges):
        problems.add(
            line_of[cycle[0]],
            "after",
            "goals come after each other in a circle: " + " after ".join(cycle),
        )


def _cycles(order: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """One cycle per back edge of a depth-first search (iterative: goal lines can be long)."""
    unseen, on_path, done = 0, 1, 2
    state = dict.fromkeys(order, unseen)
    cycles: list[list[str]] = []
    for start in order:
        if state[start] != unseen:
            continue
        state[start] = on_path
        path = [start]
        stack = [iter(edges[start])]
        while stack:
            for nxt in stack[-1]:
                if state[nxt] == on_path:
                    cycles.append([*path[path.index(nxt) :], nxt])
                elif state[nxt] == unseen:
                    state[nxt] = on_path
                    path.append(nxt)
                    stack.append(iter(edges[nxt]))
                    break
            else:
                state[path.pop()] = done
                stack.pop()
    return cycles


async def import_goal_set(
    session: AsyncSession, *, school: School, path: Path, name: str | None
) -> GoalSetImportResult:
    """Create or update a goal set from a plain or a rubric file (told apart by the header)."""
    problems = _Problems(path.name)
    set_name = _goal_set_name(name if name is not None else default_goal_set_name(path), problems)

    table = await _read_csv(path, problems)
    has_rubric = "level" in table.columns or "descriptor" in table.columns
    _check_columns(
        table,
        problems,
        required=RUBRIC_REQUIRED if has_rubric else GOALS_REQUIRED,
        optional=GOALS_OPTIONAL,
    )
    goals = _parse_goals(table, problems, has_rubric=has_rubric)
    levels = [level for level, _, _ in goals[0].levels] if has_rubric and goals else []

    goal_set = await session.scalar(
        select(GoalSet).where(
            GoalSet.school_id == school.id, func.lower(GoalSet.name) == set_name.lower()
        )
    )
    old_levels: list[RubricLevel] = []
    if goal_set is not None:
        if goal_set.has_rubric != has_rubric:
            kind = "has a rubric" if goal_set.has_rubric else "has no rubric"
            problems.add(
                table.header_line,
                None,
                f'goal set "{goal_set.name}" {kind} and this file '
                f"{'has' if has_rubric else 'has none'}; import it under another name",
            )
        old_levels = list(
            await session.scalars(
                select(RubricLevel)
                .where(RubricLevel.goal_set_id == goal_set.id)
                .order_by(RubricLevel.position)
            )
        )
        if has_rubric and len(levels) < len(old_levels):
            # Assessments point at levels: dropping one would lose where pupils stand.
            problems.add(
                table.header_line,
                "level",
                f'goal set "{goal_set.name}" has {len(old_levels)} levels and the file '
                f"{len(levels)}; levels can be renamed or added, not removed",
            )
    problems.raise_if_any()

    created = goal_set is None
    if goal_set is None:
        goal_set = GoalSet(school_id=school.id, name=set_name, has_rubric=has_rubric)
        session.add(goal_set)
        await session.flush()

    level_rows, level_changes = await _sync_levels(session, goal_set, levels, old_levels)
    lines, line_changes = await _sync_learning_lines(session, goal_set, goals)
    goal_rows, changed_goals, created_goals = await _sync_goals(session, goal_set, goals, lines)
    changed_goals |= await _sync_prerequisites(session, goal_set, goals, goal_rows)
    if has_rubric:
        changed_goals |= await _sync_descriptors(session, goal_set, goals, goal_rows, level_rows)

    tally = _Tally()
    for goal in goals:
        tally.count(created=goal.code in created_goals, updated=goal.code in changed_goals)
    in_file = {goal.code for goal in goals}
    return GoalSetImportResult(
        goal_set_id=goal_set.id,
        name=goal_set.name,
        created=created,
        has_rubric=has_rubric,
        levels=levels,
        level_changes=level_changes,
        learning_lines=line_changes,
        goals=tally.freeze(),
        prerequisites=sum(len(goal.after) for goal in goals),
        not_in_file=sorted(code for code in goal_rows if code not in in_file),
    )


async def _sync_levels(
    session: AsyncSession, goal_set: GoalSet, levels: list[str], old_levels: list[RubricLevel]
) -> tuple[list[RubricLevel], ChangeCounts]:
    """Levels are matched by place, so renaming "brons" to "beginner" keeps assessments."""
    tally = _Tally()
    rows: list[RubricLevel] = []
    for position, level_name in enumerate(levels, start=1):
        if position <= len(old_levels):
            level = old_levels[position - 1]
            renamed = level.name != level_name
            level.name = level_name
            tally.count(updated=renamed)
        else:
            level = RubricLevel(goal_set_id=goal_set.id, position=position, name=level_name)
            session.add(level)
            tally.count(created=True)
        rows.append(level)
    await session.flush()
    return rows, tally.freeze()


async def _sync_learning_lines(
    session: AsyncSession, goal_set: GoalSet, goals: list[_GoalRow]
) -> tuple[dict[str, LearningLine], ChangeCounts]:
    existing = {
        line.name: line
        for line in await session.scalars(
            select(LearningLine).where(LearningLine.goal_set_id == goal_set.id)
        )
    }
    tally = _Tally()
    for position, name in enumerate(dict.fromkeys(goal.learning_line for goal in goals), 1):
        line = existing.get(name)
        if line is None:
            existing[name] = LearningLine(goal_set_id=goal_set.id, name=name, position=position)
            session.add(existing[name])
            tally.count(created=True)
        else:
            moved = line.position != position
            line.position = position
            tally.count(updated=moved)
    await session.flush()
    return existing, tally.freeze()


async def _sync_goals(
    session: AsyncSession,
    goal_set: GoalSet,
    goals: list[_GoalRow],
    lines: dict[str, LearningLine],
) -> tuple[dict[str, Goal], set[str], set[str]]:
    """Returns all goals of the set by code, the codes updated and the codes created."""
    existing = {
        goal.code: goal
        for goal in await session.scalars(select(Goal).where(Goal.goal_set_id == goal_set.id))
    }
    updated: set[str] = set()
    created: set[str] = set()
    for position, row in enumerate(goals, start=1):
        line_id = lines[row.learning_line].id
        goal = existing.get(row.code)
        if goal is None:
            existing[row.code] = Goal(
                goal_set_id=goal_set.id,
                learning_line_id=line_id,
                code=row.code,
                text=row.text,
                position=position,
            )
            session.add(existing[row.code])
            created.add(row.code)
        elif (goal.text, goal.learning_line_id, goal.position) != (row.text, line_id, position):
            goal.text, goal.learning_line_id, goal.position = row.text, line_id, position
            updated.add(row.code)
    await session.flush()
    return existing, updated, created


async def _sync_prerequisites(
    session: AsyncSession, goal_set: GoalSet, goals: list[_GoalRow], goal_rows: dict[str, Goal]
) -> set[str]:
    """The file says what each of its goals comes after, so that replaces what was stored."""
    wanted = {
        (goal_rows[goal.code].id, goal_rows[code].id) for goal in goals for code in goal.after
    }
    in_file = {goal_rows[goal.code].id for goal in goals}
    code_of = {goal.id: code for code, goal in goal_rows.items()}
    stored = await session.scalars(
        select(GoalPrerequisite)
        .join(Goal, Goal.id == GoalPrerequisite.goal_id)
        .where(Goal.goal_set_id == goal_set.id)
    )
    changed: set[str] = set()
    have: set[tuple[int, int]] = set()
    for prerequisite in stored:
        pair = (prerequisite.goal_id, prerequisite.requires_goal_id)
        if prerequisite.goal_id in in_file and pair not in wanted:
            await session.delete(prerequisite)
            changed.add(code_of[prerequisite.goal_id])
        have.add(pair)
    for goal_id, requires_id in sorted(wanted - have):
        session.add(GoalPrerequisite(goal_id=goal_id, requires_goal_id=requires_id))
        changed.add(code_of[goal_id])
    await session.flush()
    return changed


async def _sync_descriptors(
    session: AsyncSession,
    goal_set: GoalSet,
    goals: list[_GoalRow],
    goal_rows: dict[str, Goal],
    levels: list[RubricLevel],
) -> set[str]:
    stored = {
        (descriptor.goal_id, descriptor.rubric_level_id): descriptor
        for descriptor in await session.scalars(
            select(RubricDescriptor)
            .join(Goal, Goal.id == RubricDescriptor.goal_id)
            .where(Goal.goal_set_id == goal_set.id)
        )
    }
    changed: set[str] = set()
    for goal in goals:
        goal_id = goal_rows[goal.code].id
        for level, (_, text, _) in zip(levels, goal.levels, strict=True):
            descriptor = stored.get((goal_id, level.id))
            if descriptor is None:
                session.add(RubricDescriptor(goal_id=goal_id, rubric_level_id=level.id, text=text))
                changed.add(goal.code)
            elif descriptor.text != text:
                descriptor.text = text
                changed.add(goal.code)
    await session.flush()
    return changed
