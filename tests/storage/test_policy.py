"""The decision table of `storage.policy`: every check, every actor, own and foreign objects.

De Regenboog has two groups: 6a (Sam and Noor, Juf Anouk) and 7b (Daan, Meester Kees, who
taught 6a last year: that membership has ended). Sam's mother and Noor's father are parents;
Het Anker is another school with its own admin. Sam has shared work a teacher approved,
unshared work and shared work still waiting for approval; a private and a shareable note; a
three-way talk his mother took part in and a learning talk she did not.

Each table below is written out by hand: for every object, exactly the actors allowed. Every
other actor must be refused, and so must an id nobody has, whatever role it claims.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Select, exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import policy
from storage.models import (
    Approval,
    Evidence,
    EvidenceKind,
    Group,
    GroupMembership,
    Guardianship,
    Observation,
    ObservationPupil,
    Person,
    Role,
    School,
    Talk,
    TalkKind,
    TalkParticipant,
    TalkStatus,
)
from storage.policy import (
    acts_as_teacher,
    is_parent,
    is_parent_of,
    is_teacher,
    linked_parents,
    may_see_pupil,
    members_of_group,
    note_visible_to,
    notes_visible_to,
    person_for_admin,
    pupil_at_school,
    pupils_visible_to,
    talks_visible_to,
    teachers_of_pupil,
    teaches_group,
    teaches_pupil,
    work_is_visible_to_parents,
    work_visible_to,
)

UNKNOWN_ID = 987_654
HELD_AT = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Actor:
    name: str
    person_id: int
    role: Role  # the role the actor acts in (an unknown id claims each role in turn)
    school_id: int | None


@dataclass
class World:
    actors: list[Actor]
    objects: dict[str, int]  # object name -> id (a person, group, evidence, note or talk)


async def build_world(session_factory: async_sessionmaker[AsyncSession]) -> World:
    async with session_factory() as session, session.begin():
        regenboog, anker = School(name="De Regenboog"), School(name="Het Anker")
        session.add_all([regenboog, anker])
        await session.flush()
        group_6a = Group(school_id=regenboog.id, name="Groep 6a", school_year="2026-2027")
        group_7b = Group(school_id=regenboog.id, name="Groep 7b", school_year="2026-2027")
        session.add_all([group_6a, group_7b])
        people = {
            "pupil": (regenboog, Role.PUPIL, "Sam de Vries"),
            "other pupil": (regenboog, Role.PUPIL, "Noor Jansen"),
            "pupil of 7b": (regenboog, Role.PUPIL, "Daan Bakker"),
            "parent": (regenboog, Role.PARENT, "Marieke de Vries"),
            "other parent": (regenboog, Role.PARENT, "Bram Jansen"),
            "teacher": (regenboog, Role.TEACHER, "Juf Anouk"),
            "other teacher": (regenboog, Role.TEACHER, "Meester Kees"),
            "admin": (regenboog, Role.ADMIN, "Beheer De Regenboog"),
            "other admin": (anker, Role.ADMIN, "Beheer Het Anker"),
        }
        persons: dict[str, Person] = {}
        for number, (name, (school, role, display_name)) in enumerate(people.items()):
            persons[name] = Person(
                school_id=school.id, external_id=f"E{number}", role=role, display_name=display_name
            )
        session.add_all(persons.values())
        await session.flush()
        ids = {name: person.id for name, person in persons.items()}
        session.add_all(
            [
                GroupMembership(group_id=group_6a.id, person_id=ids["pupil"]),
                GroupMembership(group_id=group_6a.id, person_id=ids["other pupil"]),
                GroupMembership(group_id=group_6a.id, person_id=ids["teacher"], is_mentor=True),
                GroupMembership(group_id=group_7b.id, person_id=ids["pupil of 7b"]),
                GroupMembership(group_id=group_7b.id, person_id=ids["other teacher"]),
                # Last year's group: an ended membership gives nothing.
                GroupMembership(
                    group_id=group_6a.id, person_id=ids["other teacher"], ended_at=HELD_AT
                ),
                Guardianship(parent_id=ids["parent"], pupil_id=ids["pupil"]),
                Guardianship(parent_id=ids["other parent"], pupil_id=ids["other pupil"]),
            ]
        )
        work = {
            "shared, approved work": (True, Approval.APPROVED),
            "unshared work": (False, Approval.NOT_NEEDED),
            "shared work waiting": (True, Approval.PENDING),
        }
        objects = {
            "pupil": ids["pupil"],
            "pupil of 7b": ids["pupil of 7b"],
            "group 6a": group_6a.id,
            "group 7b": group_7b.id,
        }
        for caption, (shared, approval) in work.items():
            evidence = Evidence(
                pupil_id=ids["pupil"],
                kind=EvidenceKind.PHOTO,
                caption=caption,
                shared_with_parents=shared,
                approval=approval,
            )
            session.add(evidence)
            await session.flush()
            objects[caption] = evidence.id
        for name, private in (("private note", True), ("shareable note", False)):
            note = Observation(author_id=ids["teacher"], text=name, is_private=private)
            session.add(note)
            await session.flush()
            session.add(ObservationPupil(observation_id=note.id, pupil_id=ids["pupil"]))
            objects[name] = note.id
        talks = {
            "talk with the parent": (TalkKind.TRIPARTITE, ("pupil", "teacher", "parent")),
            "talk without the parent": (TalkKind.LEARNING, ("pupil", "teacher")),
        }
        for name, (kind, participants) in talks.items():
            talk = Talk(
                kind=kind,
                pupil_id=ids["pupil"],
                organiser_id=ids["teacher"],
                scheduled_at=HELD_AT,
                status=TalkStatus.HELD,
                preparation={},
                agreements="Elke dag tien minuten lezen",
            )
            session.add(talk)
            await session.flush()
            session.add_all(
                TalkParticipant(talk_id=talk.id, person_id=ids[person]) for person in participants
            )
            objects[name] = talk.id
        actors = [
            Actor(name, ids[name], persons[name].role, persons[name].school_id)
            for name in people
            if name != "pupil of 7b"
        ]
        actors += [Actor("unknown", UNKNOWN_ID, role, None) for role in Role]
        return World(actors, objects)


# --- the checks, each as the asking actor sees it ---------------------------------------------

Check = Callable[[AsyncSession, Actor, int], Awaitable[bool]]


async def _may_see_pupil(session: AsyncSession, actor: Actor, pupil_id: int) -> bool:
    return await may_see_pupil(
        session, viewer_id=actor.person_id, viewer_role=actor.role, pupil_id=pupil_id
    )


async def _teaches_pupil(session: AsyncSession, actor: Actor, pupil_id: int) -> bool:
    return await teaches_pupil(session, teacher_id=actor.person_id, pupil_id=pupil_id)


async def _is_parent_of(session: AsyncSession, actor: Actor, pupil_id: int) -> bool:
    return await is_parent_of(session, parent_id=actor.person_id, pupil_id=pupil_id)


async def _teaches_group(session: AsyncSession, actor: Actor, group_id: int) -> bool:
    return await teaches_group(session, teacher_id=actor.person_id, group_id=group_id)


async def _admin_acts_on(session: AsyncSession, actor: Actor, pupil_id: int) -> bool:
    # The admin commands: only an admin reaches them (the router's role filter), and then only
    # for a pupil of the admin's own school.
    if actor.role is not Role.ADMIN or actor.school_id is None:
        return False
    return await pupil_at_school(session, school_id=actor.school_id, pupil_id=pupil_id) is not None


async def _admin_told_about(session: AsyncSession, actor: Actor, person_id: int) -> bool:
    # A notice to admins about someone (a code of theirs seen in a group chat): the role is
    # the stored one, whatever the actor claims.
    return (
        await person_for_admin(session, admin_id=actor.person_id, person_id=person_id) is not None
    )


async def _sees_work(session: AsyncSession, actor: Actor, evidence_id: int) -> bool:
    visible = pupils_visible_to(actor.person_id, actor.role)
    allowed = await session.scalar(
        select(
            exists().where(
                Evidence.id == evidence_id,
                Evidence.pupil_id.in_(visible),
                *work_visible_to(actor.role),
            )
        )
    )
    evidence = await session.get(Evidence, evidence_id)
    assert evidence is not None
    if actor.role is Role.PARENT:
        # The row rule and the SQL rule never disagree.
        assert bool(allowed) == (
            work_is_visible_to_parents(evidence)
            and await _may_see_pupil(session, actor, evidence.pupil_id)
        )
    return bool(allowed)


async def _sees_note(session: AsyncSession, actor: Actor, note_id: int) -> bool:
    visible = pupils_visible_to(actor.person_id, actor.role)
    about_visible = select(ObservationPupil.observation_id).where(
        ObservationPupil.pupil_id.in_(visible)
    )
    allowed = await session.scalar(
        select(
            exists().where(
                Observation.id == note_id,
                Observation.id.in_(about_visible),
                *notes_visible_to(actor.role),
            )
        )
    )
    note = await session.get(Observation, note_id)
    assert note is not None
    pupils = (
        await session.scalars(
            select(ObservationPupil.pupil_id).where(ObservationPupil.observation_id == note_id)
        )
    ).all()
    sees_a_pupil = [await _may_see_pupil(session, actor, pupil) for pupil in pupils]
    assert bool(allowed) == (note_visible_to(actor.role, note) and any(sees_a_pupil))
    return bool(allowed)


async def _sees_talk(session: AsyncSession, actor: Actor, talk_id: int) -> bool:
    visible = pupils_visible_to(actor.person_id, actor.role)
    return bool(
        await session.scalar(
            select(
                exists().where(
                    Talk.id == talk_id,
                    Talk.pupil_id.in_(visible),
                    *talks_visible_to(actor.person_id, actor.role),
                )
            )
        )
    )


async def _is_teacher(session: AsyncSession, actor: Actor, _: int) -> bool:
    return await is_teacher(session, actor.person_id)


async def _is_parent(session: AsyncSession, actor: Actor, _: int) -> bool:
    return await is_parent(session, actor.person_id)


async def _listed(session: AsyncSession, actor: Actor, query: Select[Any]) -> bool:
    return actor.person_id in set((await session.scalars(query)).all())


async def _teacher_to_tell(session: AsyncSession, actor: Actor, pupil_id: int) -> bool:
    return await _listed(session, actor, teachers_of_pupil(pupil_id))


async def _linked_parent(session: AsyncSession, actor: Actor, pupil_id: int) -> bool:
    return await _listed(session, actor, linked_parents(pupil_id))


async def _member(session: AsyncSession, actor: Actor, group_id: int) -> bool:
    return await _listed(session, actor, members_of_group(group_id))


async def _mentor(session: AsyncSession, actor: Actor, group_id: int) -> bool:
    return await _listed(session, actor, members_of_group(group_id, mentors_only=True))


async def _searches_across_pupils(session: AsyncSession, actor: Actor, _: int) -> bool:
    return await acts_as_teacher(session, person_id=actor.person_id, role=actor.role)


# --- the table --------------------------------------------------------------------------------

# check -> object -> the actors allowed; everyone else (and every unknown id) is refused.
# "themself" stands for the actor, for the checks about who someone is.
TABLE: dict[str, tuple[Check, dict[str, set[str]]]] = {
    "may_see_pupil": (
        _may_see_pupil,
        {
            "pupil": {"pupil", "parent", "teacher"},
            "pupil of 7b": {"other teacher"},
        },
    ),
    "teaches_pupil": (
        _teaches_pupil,
        {
            "pupil": {"teacher"},
            "pupil of 7b": {"other teacher"},
        },
    ),
    "is_parent_of": (
        _is_parent_of,
        {
            "pupil": {"parent"},
            "pupil of 7b": set(),
        },
    ),
    "teaches_group": (
        _teaches_group,
        {
            "group 6a": {"teacher"},
            "group 7b": {"other teacher"},
        },
    ),
    "admin acts on pupil (pupil_at_school)": (
        _admin_acts_on,
        {
            "pupil": {"admin"},
            "pupil of 7b": {"admin"},
        },
    ),
    "admin is told about a person (person_for_admin)": (
        _admin_told_about,
        {
            "pupil": {"admin"},
            "pupil of 7b": {"admin"},
        },
    ),
    "sees work (work_visible_to)": (
        _sees_work,
        {
            "shared, approved work": {"pupil", "parent", "teacher"},
            "unshared work": {"pupil", "teacher"},
            "shared work waiting": {"pupil", "teacher"},
        },
    ),
    "sees note (notes_visible_to)": (
        _sees_note,
        {
            "private note": {"teacher"},
            "shareable note": {"pupil", "parent", "teacher"},
        },
    ),
    "sees talk (talks_visible_to)": (
        _sees_talk,
        {
            "talk with the parent": {"pupil", "parent", "teacher"},
            "talk without the parent": {"pupil", "teacher"},
        },
    ),
    "teachers_of_pupil (whom to tell)": (
        _teacher_to_tell,
        {
            "pupil": {"teacher"},
            "pupil of 7b": {"other teacher"},
        },
    ),
    "linked_parents": (
        _linked_parent,
        {
            "pupil": {"parent"},
            "pupil of 7b": set(),
        },
    ),
    "members_of_group": (
        _member,
        {
            "group 6a": {"pupil", "other pupil", "teacher"},
            "group 7b": {"other teacher"},
        },
    ),
    "members_of_group (mentors)": (
        _mentor,
        {
            "group 6a": {"teacher"},
            "group 7b": set(),
        },
    ),
    "is_teacher": (_is_teacher, {"themself": {"teacher", "other teacher"}}),
    "is_parent": (_is_parent, {"themself": {"parent", "other parent"}}),
    "searches notes across pupils (acts_as_teacher)": (
        _searches_across_pupils,
        {"themself": {"teacher", "other teacher"}},
    ),
}

ACTORS_KNOWN = 8  # pupil, other pupil, parent, other parent, two teachers, two admins
ACTORS_EVALUATED = ACTORS_KNOWN + len(Role)  # an unknown id claims each role
CELLS = sum(len(objects) for _check, objects in TABLE.values()) * ACTORS_EVALUATED


@pytest.mark.parametrize("check_name", list(TABLE))
async def test_the_decision_table(session_factory, check_name: str):
    world = await build_world(session_factory)
    assert len(world.actors) == ACTORS_EVALUATED
    check, objects = TABLE[check_name]
    wrong = []
    async with session_factory() as session:
        for object_name, allowed in objects.items():
            object_id = world.objects.get(object_name, 0)
            for actor in world.actors:
                expected = actor.name in allowed and actor.name != "unknown"
                if await check(session, actor, object_id) != expected:
                    verdict = "allowed" if not expected else "refused"
                    wrong.append(f"{actor.name} ({actor.role.value}) {verdict}: {object_name}")
    assert not wrong, f"{check_name}: " + "; ".join(wrong)


def test_every_named_check_of_the_policy_has_rows():
    """A new check in storage.policy needs its rows here before it can be used."""
    named_checks = {
        name
        for name, value in vars(policy).items()
        if inspect.iscoroutinefunction(value)
        and not name.startswith("_")
        and value.__module__ == policy.__name__
    }
    source = Path(__file__).read_text(encoding="utf-8")
    missing = [name for name in sorted(named_checks) if f"await {name}(" not in source]
    assert not missing, f"checks without rows in the decision table: {missing}"
    print(f"policy decision table: {CELLS} cells per database backend")
