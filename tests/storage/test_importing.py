"""Importing people and goal sets from CSV: what ends up in the database, and what does not."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.importing.csv_reading import ImportFileError, ImportProblem
from services.importing.goal_sets import default_goal_set_name, import_goal_set
from services.importing.people import import_people
from storage.invites import RedeemOutcome, redeem_invite
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
from storage.schools import (
    NoSchoolYetError,
    SchoolAmbiguousError,
    SchoolError,
    create_school,
    current_school_year,
    find_school,
    invite_person,
    parse_school_year,
)
from tests.conftest import INVITE_SECRET

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PHYSICS = SAMPLES / "goalset-natuurkunde-vwo3-h1.csv"
SKILLS = SAMPLES / "goalset-vaardigheden.csv"
DEMO = SAMPLES / "school-demo.csv"
YEAR = "2026-2027"
NEXT_YEAR = "2027-2028"
VALID = timedelta(days=14)
PEOPLE_HEADER = "external_id,role,name,group,language,children"


@pytest.fixture
async def school(session: AsyncSession) -> School:
    return await create_school(
        session, name="De Regenboog", timezone="Europe/Amsterdam", locale="nl"
    )


def write(tmp_path: Path, name: str, *lines: str, bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return path


async def count(session: AsyncSession, model: Any, *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def person(session: AsyncSession, school: School, external_id: str) -> Person:
    found = await session.scalar(
        select(Person).where(Person.school_id == school.id, Person.external_id == external_id)
    )
    assert found is not None
    return found


async def active_groups(session: AsyncSession, person_id: int) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(Group.name, Group.school_year)
        .join(GroupMembership, GroupMembership.group_id == Group.id)
        .where(GroupMembership.person_id == person_id, GroupMembership.ended_at.is_(None))
    )
    return sorted((name, year) for name, year in rows)


async def import_demo(session: AsyncSession, school: School, path: Path = DEMO, year: str = YEAR):
    return await import_people(
        session,
        school=school,
        path=path,
        school_year=year,
        invite_valid_for=VALID,
        invite_secret=INVITE_SECRET,
    )


# --- goal sets -------------------------------------------------------------------------------


async def test_plain_goal_set_gets_goals_lines_and_prerequisites(session, school):
    result = await import_goal_set(session, school=school, path=PHYSICS, name=None)

    assert result.name == "Natuurkunde vwo3 h1"
    assert (result.created, result.has_rubric, result.levels) == (True, False, [])
    assert (result.goals.created, result.learning_lines.created) == (19, 5)
    goals = {
        goal.code: goal
        for goal in await session.scalars(
            select(Goal).where(Goal.goal_set_id == result.goal_set_id)
        )
    }
    assert len(goals) == 19
    code_of = {goal.id: code for code, goal in goals.items()}
    after: dict[str, set[str]] = {}
    for prerequisite in await session.scalars(select(GoalPrerequisite)):
        after.setdefault(code_of[prerequisite.goal_id], set()).add(
            code_of[prerequisite.requires_goal_id]
        )
    assert after["1.2d"] == {"1.1b", "1.2a"}
    assert after["1.1d"] == {"1.1c"}
    assert "1.1a" not in after and "1.4a" not in after
    assert sum(len(codes) for codes in after.values()) == result.prerequisites == 17
    lines = {
        line.id: line
        for line in await session.scalars(
            select(LearningLine).where(LearningLine.goal_set_id == result.goal_set_id)
        )
    }
    assert lines[goals["1.4b"].learning_line_id].name == "1.4 Hefbomen"
    assert sorted(line.position for line in lines.values()) == [1, 2, 3, 4, 5]
    assert goals["1.3c"].text == "Je kent het begrip gewicht"
    assert await count(session, RubricLevel) == 0


async def test_rubric_goal_set_gets_levels_in_order_and_descriptors(session, school):
    result = await import_goal_set(session, school=school, path=SKILLS, name="Vaardigheden VO")

    assert (result.name, result.has_rubric, result.goals.created) == ("Vaardigheden VO", True, 4)
    expected_levels = ["beginner", "in ontwikkeling", "gevorderd", "expert"]
    assert result.levels == expected_levels
    levels = list(
        await session.scalars(
            select(RubricLevel)
            .where(RubricLevel.goal_set_id == result.goal_set_id)
            .order_by(RubricLevel.position)
        )
    )
    assert [(level.position, level.name) for level in levels] == list(
        enumerate(expected_levels, start=1)
    )
    assert await count(session, RubricDescriptor) == 16
    descriptor = await session.scalar(
        select(RubricDescriptor.text)
        .join(Goal, Goal.id == RubricDescriptor.goal_id)
        .where(Goal.code == "RN", RubricDescriptor.rubric_level_id == levels[2].id)
    )
    assert descriptor == "Ik plan mijn week zelf en houd bij wat af is."
    goal_set = await session.get(GoalSet, result.goal_set_id)
    assert goal_set is not None and goal_set.has_rubric


@pytest.mark.parametrize("path", [PHYSICS, SKILLS], ids=["plain", "rubric"])
async def test_goal_set_reimport_changes_nothing(session, school, path):
    await import_goal_set(session, school=school, path=path, name=None)
    before = [
        await count(session, model)
        for model in (GoalSet, LearningLine, Goal, GoalPrerequisite, RubricLevel, RubricDescriptor)
    ]

    again = await import_goal_set(session, school=school, path=path, name=None)

    assert not again.created and not again.changed
    assert (again.goals.created, again.goals.updated) == (0, 0)
    assert again.goals.unchanged == before[2]
    after = [
        await count(session, model)
        for model in (GoalSet, LearningLine, Goal, GoalPrerequisite, RubricLevel, RubricDescriptor)
    ]
    assert after == before


async def test_goal_set_update_changes_texts_and_prerequisites_and_keeps_missing_goals(
    session, school, tmp_path
):
    first = write(
        tmp_path,
        "doelen.csv",
        "learning_line,code,goal,after",
        "Lijn A,a,Doel a,",
        "Lijn A,b,Doel b,a",
        "Lijn B,c,Doel c,a;b",
    )
    await import_goal_set(session, school=school, path=first, name="Doelen")
    second = write(
        tmp_path,
        "doelen.csv",
        "learning_line,code,goal,after",
        "Lijn A,a,Doel a,",
        "Lijn A,b,Doel b (nieuw),a",
        "Lijn B,d,Doel d,",
        "Lijn B,c,Doel c,b",
    )

    result = await import_goal_set(session, school=school, path=second, name="Doelen")

    assert not result.created
    assert (result.goals.created, result.goals.updated, result.goals.unchanged) == (1, 2, 1)
    assert result.not_in_file == []
    goals = {goal.code: goal for goal in await session.scalars(select(Goal))}
    assert goals["b"].text == "Doel b (nieuw)"
    pairs = {
        (prerequisite.goal_id, prerequisite.requires_goal_id)
        for prerequisite in await session.scalars(select(GoalPrerequisite))
    }
    assert pairs == {(goals["b"].id, goals["a"].id), (goals["c"].id, goals["b"].id)}

    third = write(tmp_path, "doelen.csv", "learning_line,code,goal,after", "Lijn A,a,Doel a,")
    result = await import_goal_set(session, school=school, path=third, name="Doelen")
    assert result.not_in_file == ["b", "c", "d"]
    assert await count(session, Goal) == 4


async def test_rubric_goals_with_different_levels_are_refused(session, school, tmp_path):
    path = write(
        tmp_path,
        "rubric.csv",
        "learning_line,code,goal,level,descriptor",
        "L,A,Doel A,brons,a1",
        "L,A,Doel A,zilver,a2",
        "L,B,Doel B,brons,b1",
        "L,B,Doel B,goud,b2",
    )

    with pytest.raises(ImportFileError) as raised:
        await import_goal_set(session, school=school, path=path, name=None)

    [problem] = raised.value.problems
    assert (problem.file, problem.line, problem.column) == ("rubric.csv", 4, "level")
    assert "zilver" in problem.message and "goud" in problem.message
    assert await count(session, GoalSet) == 0


async def test_rubric_rows_of_a_goal_may_leave_goal_cells_empty(session, school, tmp_path):
    path = write(
        tmp_path,
        "rubric.csv",
        "learning_line,code,goal,level,descriptor",
        "L,A,Doel A,brons,a1",
        ",A,,zilver,a2",
    )

    result = await import_goal_set(session, school=school, path=path, name=None)

    assert (result.goals.created, result.levels) == (1, ["brons", "zilver"])
    assert await count(session, RubricDescriptor) == 2


def test_default_goal_set_name_is_readable():
    assert default_goal_set_name(PHYSICS) == "Natuurkunde vwo3 h1"
    assert default_goal_set_name(Path("goalset_vaardigheden.csv")) == "Vaardigheden"
    assert default_goal_set_name(Path("rekenen groep 6.csv")) == "Rekenen groep 6"


# --- people ----------------------------------------------------------------------------------


async def test_people_import_creates_group_people_guardianships_and_codes(session, school):
    result = await import_demo(session, school)

    assert (result.people.created, result.groups_created, result.guardianships_created) == (
        18,
        1,
        8,
    )
    assert len(result.codes) == 18
    assert result.codes_expire_at is not None
    [group] = await session.scalars(select(Group))
    assert (group.name, group.school_year, group.school_id) == ("Groep 6a", YEAR, school.id)
    roles = {
        role: number
        for role, number in await session.execute(
            select(Person.role, func.count()).group_by(Person.role)
        )
    }
    assert roles == {Role.TEACHER: 2, Role.PUPIL: 8, Role.PARENT: 8}
    memberships = list(await session.scalars(select(GroupMembership)))
    assert len(memberships) == 10
    assert all(m.group_id == group.id and m.ended_at is None for m in memberships)
    teacher_one = await person(session, school, "T1")
    mentors = [m.person_id for m in memberships if m.is_mentor]
    assert mentors == [teacher_one.id]
    assert await count(session, Guardianship) == 8
    guardian = await person(session, school, "O5")
    child = await person(session, school, "P5")
    assert await count(
        session,
        Guardianship,
        Guardianship.parent_id == guardian.id,
        Guardianship.pupil_id == child.id,
    )
    assert (guardian.locale, guardian.display_name) == ("ar", "Fatima El Amrani")
    assert (await person(session, school, "P6")).display_name == "Zeynep Yılmaz"
    assert await count(session, Invite) == 18
    issued = {code.external_id: code for code in result.codes}
    assert (issued["P1"].name, issued["P1"].role) == ("Sam de Vries", Role.PUPIL)

    redeemed = await redeem_invite(
        session, telegram_user_id=501, typed_code=issued["O1"].code, secret=INVITE_SECRET
    )
    assert redeemed.outcome is RedeemOutcome.LINKED
    assert redeemed.person_id == (await person(session, school, "O1")).id


async def test_people_reimport_changes_nothing_and_issues_no_codes(session, school):
    first = await import_demo(session, school)
    await redeem_invite(
        session, telegram_user_id=7, typed_code=first.codes[0].code, secret=INVITE_SECRET
    )

    again = await import_demo(session, school)

    assert not again.changed
    assert (again.people.created, again.people.updated, again.people.unchanged) == (0, 0, 18)
    assert again.codes == [] and again.codes_expire_at is None
    assert (again.memberships_started, again.memberships_ended) == (0, 0)
    assert again.not_in_file == [] and again.guardianships_not_in_file == []
    assert await count(session, Invite) == 18
    assert await count(session, Invite, Invite.revoked_at.is_not(None)) == 0
    assert (await count(session, Group), await count(session, GroupMembership)) == (1, 10)


async def test_reimport_updates_names_and_languages(session, school, tmp_path):
    await import_demo(session, school)
    changed = DEMO.read_text(encoding="utf-8")
    changed = changed.replace("Sam de Vries", "Sam  de  Vries-Smit").replace(",en,P2", ",nl,P2")
    path = write(tmp_path, "school.csv", changed.strip())

    result = await import_demo(session, school, path)

    assert (result.people.updated, result.people.unchanged, result.codes) == (2, 16, [])
    assert (await person(session, school, "P1")).display_name == "Sam de Vries-Smit"
    assert (await person(session, school, "O2")).locale == "nl"


async def test_codes_are_issued_again_only_to_unlinked_people_whose_code_expired(session, school):
    first = await import_demo(session, school)
    await redeem_invite(  # T1
        session, telegram_user_id=8, typed_code=first.codes[0].code, secret=INVITE_SECRET
    )
    await session.execute(
        update(Invite).values(expires_at=first.codes_expire_at - timedelta(days=30))
    )

    again = await import_demo(session, school)

    assert len(again.codes) == 17
    assert "T1" not in {code.external_id for code in again.codes}


async def test_new_school_year_moves_pupils_and_keeps_accounts_and_guardianships(
    session, school, tmp_path
):
    first = await import_demo(session, school)
    codes = {code.external_id: code.code for code in first.codes}
    linked_parent = await redeem_invite(
        session, telegram_user_id=11, typed_code=codes["P1"], secret=INVITE_SECRET
    )
    assert linked_parent.outcome is RedeemOutcome.LINKED
    lines = [PEOPLE_HEADER, "T2,teacher,Meester Bram,Groep 7a,nl,", "T3,teacher,Juf Cor,Groep 7a,,"]
    lines += [
        f"P{n},pupil,{name},Groep 7a,nl,"
        for n, name in enumerate(
            [
                "Sam de Vries",
                "Noor Jansen",
                "Daan Bakker",
                "Emma Visser",
                "Yusuf El Amrani",
                "Zeynep Yılmaz",
                "Olena Kovalenko",
            ],
            start=1,
        )
    ]
    lines += ["O1,parent,Marieke de Vries,,nl,P1", "O2,parent,Peter Jansen,,en,P2;P8"]
    path = write(tmp_path, "school-2027.csv", *lines)

    result = await import_demo(session, school, path, NEXT_YEAR)

    assert (result.people.created, result.groups_created) == (1, 1)
    assert [code.external_id for code in result.codes] == ["T3"]
    assert result.memberships_started == 9  # T2, T3 and 7 pupils
    assert result.memberships_ended == 10  # everyone's Groep 6a
    sam = await person(session, school, "P1")
    assert await active_groups(session, sam.id) == [("Groep 7a", NEXT_YEAR)]
    assert await count(session, GroupMembership, GroupMembership.person_id == sam.id) == 2
    assert await count(session, AccountPerson, AccountPerson.person_id == sam.id) == 1
    assert await count(session, Guardianship) == 9  # the 8 of last year plus O2 of P8
    kacper = await person(session, school, "P8")  # not in the file: kept, without a group
    assert await active_groups(session, kacper.id) == []
    assert {ref.external_id for ref in result.not_in_file} == {
        "T1",
        "P8",
        *(f"O{n}" for n in range(3, 9)),
    }
    assert ("O3", "P3") in result.guardianships_not_in_file
    mentor = await person(session, school, "T2")
    assert await count(
        session,
        GroupMembership,
        GroupMembership.person_id == mentor.id,
        GroupMembership.is_mentor.is_(True),
        GroupMembership.ended_at.is_(None),
    )


async def test_importing_an_older_school_year_is_refused(session, school):
    await import_demo(session, school, DEMO, NEXT_YEAR)

    with pytest.raises(ImportFileError, match="2027-2028"):
        await import_demo(session, school, DEMO, YEAR)


async def test_a_role_cannot_change_on_reimport(session, school, tmp_path):
    await import_demo(session, school)
    path = write(tmp_path, "school.csv", PEOPLE_HEADER, "P1,teacher,Sam de Vries,Groep 6a,nl,")

    with pytest.raises(ImportFileError) as raised:
        await import_demo(session, school, path)

    [problem] = raised.value.problems
    assert (problem.line, problem.column) == (2, "role")


async def test_child_already_in_the_school_may_be_referred_to(session, school, tmp_path):
    await import_demo(session, school)
    lines = DEMO.read_text(encoding="utf-8").strip().splitlines()
    path = write(tmp_path, "school.csv", *lines, "O9,parent,Opa Bakker,,nl,P3")

    result = await import_demo(session, school, path)

    assert (result.people.created, result.guardianships_created, len(result.codes)) == (1, 1, 1)


async def test_byte_order_mark_and_case_of_header_are_accepted(session, school, tmp_path):
    path = write(
        tmp_path,
        "school.csv",
        "External_ID,Role,Name,Group,Language,Children",
        "P1,Pupil,Sam,6a,NL,",
        bom=True,
    )

    result = await import_demo(session, school, path)

    assert result.people.created == 1
    sam = await person(session, school, "P1")
    assert (sam.role, sam.locale) == (Role.PUPIL, "nl")


BROKEN_FILES = {
    "unknown role": (
        "school.csv",
        [PEOPLE_HEADER, "T1,teacher,Juf,6a,nl,", "P1,pupil,Sam,6a,nl,", "P2,pupill,Noor,6a,nl,"],
        4,
        "role",
        'unknown role "pupill" (pupil, teacher, parent, admin)',
    ),
    "missing column": (
        "school.csv",
        ["external_id,name,group", "P1,Sam,6a"],
        1,
        "role",
        "required column is missing",
    ),
    "bad child ref": (
        "school.csv",
        [PEOPLE_HEADER, "P1,pupil,Sam,6a,nl,", "T1,teacher,Juf,6a,nl,", "O1,parent,Ma,,nl,P1;T1"],
        4,
        "children",
        'child "T1" is a teacher, not a pupil',
    ),
    "unknown child": (
        "school.csv",
        [PEOPLE_HEADER, "P1,pupil,Sam,6a,nl,", "O1,parent,Ma,,nl,P7"],
        3,
        "children",
        'child "P7" is not a pupil in this file or in the school',
    ),
    "cycle in after": (
        "goals.csv",
        ["learning_line,code,goal,after", "L,a,A,", "L,b,B,a;c", "L,c,C,b"],
        3,
        "after",
        "goals come after each other in a circle: b after c after b",
    ),
    "unknown after": (
        "goals.csv",
        ["learning_line,code,goal,after", "L,a,A,", "L,b,B,a;z"],
        3,
        "after",
        'unknown code "z" (not a goal in this file)',
    ),
    "duplicate code": (
        "goals.csv",
        ["learning_line,code,goal,after", "L,a,A,", "L,b,B,a", "L,a,A again,"],
        4,
        "code",
        'duplicate code "a" (also on line 2)',
    ),
}


@pytest.mark.parametrize(
    ("name", "lines", "line", "column", "message"),
    list(BROKEN_FILES.values()),
    ids=list(BROKEN_FILES),
)
async def test_broken_file_writes_nothing_and_names_file_line_and_column(
    session, school, tmp_path, name, lines, line, column, message
):
    path = write(tmp_path, name, *lines)

    with pytest.raises(ImportFileError) as raised:
        if name == "goals.csv":
            await import_goal_set(session, school=school, path=path, name=None)
        else:
            await import_demo(session, school, path)

    assert raised.value.problems == [ImportProblem(name, line, column, message)]
    assert str(raised.value) == f"{name} line {line}, column {column}: {message}"
    for model in (Person, Group, GroupMembership, Guardianship, Invite, GoalSet, Goal):
        assert await count(session, model) == 0, model.__name__


async def test_all_problems_of_a_file_are_reported_together(session, school, tmp_path):
    path = write(
        tmp_path,
        "school.csv",
        PEOPLE_HEADER,
        "P1,pupil,Sam,,nl,",
        "P1,pupil,Sam again,6a,xx,",
        "O1,parent,Ma,6a,nl,",
        "T1,teacher," + "x" * 121 + ",6a,nl,",
        "T2,teacher,Juf\tAnouk,6a,nl,",
        ",admin,,,,",
    )

    with pytest.raises(ImportFileError) as raised:
        await import_demo(session, school, path)

    found = [(problem.line, problem.column) for problem in raised.value.problems]
    assert found == [
        (2, "group"),
        (3, "external_id"),
        (3, "language"),
        (4, "group"),
        (4, "children"),
        (5, "name"),
        (6, "name"),
        (7, "external_id"),
        (7, "name"),
    ]
    assert "U+0009" in str(raised.value)
    assert await count(session, Person) == 0


async def test_problems_stop_at_fifty(session, school, tmp_path):
    rows = [f"P{n},pupill,Sam,6a,nl," for n in range(80)]
    path = write(tmp_path, "school.csv", PEOPLE_HEADER, *rows)

    with pytest.raises(ImportFileError) as raised:
        await import_demo(session, school, path)

    assert len(raised.value.problems) == 50 and raised.value.more
    assert str(raised.value).splitlines()[-1].startswith("school.csv: more problems")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "school.csv: the file is empty"),
        (b"external_id;role;name;group\nP1;pupil;Sam;6a\n", "separated by semicolons"),
        (PEOPLE_HEADER.encode() + b"\nP1,pupil,Sam\xe9,6a,,\n", "line 2: not UTF-8 text"),
        (b"learning_line,code,goal\nL,a,A\n", "the header has none of the expected columns"),
    ],
    ids=["empty", "semicolons", "latin-1", "goal file"],
)
async def test_unreadable_files_are_refused_with_one_problem(
    session, school, tmp_path, content, expected
):
    path = tmp_path / "school.csv"
    path.write_bytes(content)

    with pytest.raises(ImportFileError) as raised:
        await import_demo(session, school, path)

    assert len(raised.value.problems) == 1
    assert expected in str(raised.value)


# --- schools and invites -------------------------------------------------------------------


async def test_invite_person_revokes_the_earlier_code(session, school):
    first = await import_demo(session, school)
    old = next(code.code for code in first.codes if code.external_id == "P2")

    fresh = await invite_person(
        session, school=school, external_id="P2", valid_for=VALID, invite_secret=INVITE_SECRET
    )

    assert (fresh.person.display_name, fresh.had_account) == ("Noor Jansen", False)
    wrong = await redeem_invite(session, telegram_user_id=21, typed_code=old, secret=INVITE_SECRET)
    assert wrong.outcome is RedeemOutcome.WRONG
    linked = await redeem_invite(
        session, telegram_user_id=21, typed_code=fresh.code, secret=INVITE_SECRET
    )
    assert (linked.outcome, linked.person_id) == (RedeemOutcome.LINKED, fresh.person.id)
    with pytest.raises(SchoolError, match="P99"):
        await invite_person(
            session, school=school, external_id="P99", valid_for=VALID, invite_secret=INVITE_SECRET
        )


async def test_school_names_are_unique_and_found(session, school):
    assert await find_school(session, name=None) == school
    with pytest.raises(SchoolError, match="already exists"):
        await create_school(session, name="de regenboog", timezone="Europe/Amsterdam", locale="nl")
    with pytest.raises(SchoolError, match="time zone"):
        await create_school(session, name="Andere", timezone="Mars/Olympus", locale="nl")
    other = await create_school(session, name="De Klimop", timezone="Europe/Brussels", locale="nl")
    assert await find_school(session, name="de klimop") == other
    with pytest.raises(SchoolAmbiguousError):
        await find_school(session, name=None)
    with pytest.raises(SchoolError, match="De Klimop, De Regenboog"):
        await find_school(session, name="Het Anker")


async def test_find_school_without_schools(session):
    with pytest.raises(NoSchoolYetError):
        await find_school(session, name=None)


@pytest.mark.parametrize(
    ("today", "year"),
    [
        (date(2026, 7, 31), "2025-2026"),
        (date(2026, 8, 1), "2026-2027"),
        (date(2027, 1, 15), "2026-2027"),
    ],
)
def test_current_school_year_starts_on_the_first_of_august(today, year):
    assert current_school_year(today) == year


def test_school_year_must_be_two_consecutive_years():
    assert parse_school_year(" 2026-2027 ") == "2026-2027"
    for wrong in ("2026", "2026-2028", "26-27"):
        with pytest.raises(SchoolError):
            parse_school_year(wrong)
