"""Importing a school's people from a CSV file: `external_id,role,name,group,language,children`.

`group` is required for pupils and teachers (a teacher may list several groups, `;`-separated)
and empty for parents and admins; `children` lists a parent's children by external id,
`;`-separated, each a pupil in the file or already in the school; an empty `language` leaves
the stored language alone. A person's role never changes: a row that would change one is
refused. The first teacher listed for a group is its mentor.

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

The file is read and checked here (services.importing.csv_reading); the rows are written by
storage.roster. Importing the same file twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from services.importing.csv_reading import (
    CsvRow,
    CsvTable,
    Problems,
    cell_list,
    cell_value,
    check_columns,
    read_csv,
)
from storage.change_counts import ChangeCounts
from storage.models import Person, Role, School
from storage.roster import (
    IssuedCode,
    RosterEntry,
    later_school_year_in_use,
    people_by_external_id,
    write_roster,
)
from storage.schools import SchoolError, known_languages, parse_school_year
from storage.types import utcnow

PERSON_NAME_MAX = 120
EXTERNAL_ID_MAX = 64
GROUP_NAME_MAX = 100

PEOPLE_REQUIRED = ("external_id", "role", "name", "group")
PEOPLE_OPTIONAL = ("language", "children")

_ROLES = ", ".join(role.value for role in Role)
_GROUPED_ROLES = (Role.PUPIL, Role.TEACHER)


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


@dataclass
class _PersonRow:
    line: int
    external_id: str
    role: Role | None
    name: str
    groups: list[str]
    locale: str | None
    children: list[str]


def _parse_people(table: CsvTable, problems: Problems) -> list[_PersonRow]:
    people: list[_PersonRow] = []
    first_line: dict[str, int] = {}
    for row in table.rows:
        external_id = cell_value(row, "external_id", problems, max_length=EXTERNAL_ID_MAX)
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
        name = cell_value(row, "name", problems, max_length=PERSON_NAME_MAX)
        groups = cell_list(row, "group", problems, max_length=GROUP_NAME_MAX)
        if role in _GROUPED_ROLES and not groups and not row.raw("group"):
            problems.add(row.line, "group", f"empty; a {role} needs a group")
        elif role is Role.PUPIL and len(groups) > 1:
            problems.add(row.line, "group", f"a pupil is in one group, not {len(groups)}")
        elif role in (Role.PARENT, Role.ADMIN) and row.raw("group"):
            problems.add(row.line, "group", f"a {role} is in no group; leave it empty")
        locale = _parse_language(row, problems)
        children = cell_list(row, "children", problems, max_length=EXTERNAL_ID_MAX)
        if role is Role.PARENT and not children and not row.raw("children"):
            problems.add(
                row.line, "children", "empty; a parent needs a child (external ids, ;-separated)"
            )
        elif role is not None and role is not Role.PARENT and row.raw("children"):
            problems.add(row.line, "children", f"only parents have children, not a {role}")
        if not duplicate:
            people.append(_PersonRow(row.line, external_id, role, name, groups, locale, children))
    return people


def _parse_role(row: CsvRow, problems: Problems) -> Role | None:
    raw = row.raw("role")
    if not raw:
        problems.add(row.line, "role", f"empty; a value is required ({_ROLES})")
        return None
    try:
        return Role(raw.lower())
    except ValueError:
        problems.add(row.line, "role", f'unknown role "{raw}" ({_ROLES})')
        return None


def _parse_language(row: CsvRow, problems: Problems) -> str | None:
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


def _check_people_against_school(
    rows: list[_PersonRow],
    existing: dict[str, Person],
    problems: Problems,
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


async def import_people(
    session: AsyncSession,
    *,
    school: School,
    path: Path,
    school_year: str,
    invite_valid_for: timedelta,
    invite_secret: bytes,
) -> PeopleImportResult:
    """Bring the school's people, groups and guardianships in line with the file."""
    problems = Problems(path.name)
    try:
        school_year = parse_school_year(school_year)
    except SchoolError as error:
        problems.fail(0, None, str(error))
    table = await read_csv(path, problems)
    check_columns(table, problems, required=PEOPLE_REQUIRED, optional=PEOPLE_OPTIONAL)
    rows = _parse_people(table, problems)
    existing = await people_by_external_id(session, school_id=school.id)
    _check_people_against_school(rows, existing, problems)
    later = await later_school_year_in_use(session, school_id=school.id, school_year=school_year)
    if later is not None:
        problems.add(
            0,
            None,
            f"the school already has people in groups of {later}; this import is for "
            f"{school_year} and would move them back a year",
        )
    problems.raise_if_any()

    now = utcnow()
    changes = await write_roster(
        session,
        school=school,
        school_year=school_year,
        entries=[_entry(row) for row in rows],
        existing=existing,
        invite_valid_for=invite_valid_for,
        invite_secret=invite_secret,
        now=now,
    )
    in_file = {row.external_id for row in rows}
    not_in_file = [
        PersonRef(person.external_id, person.display_name, person.role)
        for person in sorted(existing.values(), key=lambda person: person.external_id)
        if person.external_id not in in_file and person.left_school_on is None
    ]
    return PeopleImportResult(
        school_year=school_year,
        people=changes.people,
        groups_created=changes.groups_created,
        memberships_started=changes.memberships_started,
        memberships_ended=changes.memberships_ended,
        mentors_changed=changes.mentors_changed,
        guardianships_created=changes.guardianships_created,
        codes=changes.codes,
        codes_expire_at=now + invite_valid_for if changes.codes else None,
        not_in_file=not_in_file,
        guardianships_not_in_file=changes.guardianships_not_in_file,
    )


def _entry(row: _PersonRow) -> RosterEntry:
    assert row.role is not None  # rows with problems never get here
    return RosterEntry(row.external_id, row.role, row.name, row.groups, row.locale, row.children)
