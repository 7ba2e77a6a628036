"""Observations in storage: who may write and read them, names in a one-line note, unseen."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from conversations.observation import unseen_message_for
from language.i18n import load_i18n
from storage.models import (
    Group,
    GroupMembership,
    Observation,
    ObservationTag,
    Person,
    Reflection,
    Role,
    Talk,
    TalkKind,
    TalkParticipant,
    TalkStatus,
)
from storage.observations import (
    ItemKind,
    ObservationRefusedError,
    PupilRef,
    create_observation,
    parse_note,
    pupils_of_teacher,
    search_observations,
    tags_in,
    tags_of_pupil,
    timeline,
    unseen_pupils,
    window_start,
)
from storage.overview import set_active_group
from tests.factories import DemoSchool, build_school


async def other_group(session_factory, school: DemoSchool) -> dict[str, int]:
    """Groep 7b with its own teacher and pupil (Daan), none of Juf Anouk's business."""
    async with session_factory() as session, session.begin():
        group = Group(school_id=school.school_id, name="Groep 7b", school_year="2026-2027")
        session.add(group)
        teacher = Person(
            school_id=school.school_id, external_id="T2", role=Role.TEACHER, display_name="Juf Ria"
        )
        daan = Person(
            school_id=school.school_id,
            external_id="P3",
            role=Role.PUPIL,
            display_name="Daan Bakker",
        )
        session.add_all([teacher, daan])
        await session.flush()
        session.add_all(
            [
                GroupMembership(group_id=group.id, person_id=teacher.id, is_mentor=True),
                GroupMembership(group_id=group.id, person_id=daan.id),
            ]
        )
        return {"T2": teacher.id, "P3": daan.id}


PUPILS = [PupilRef(1, "Sam de Vries"), PupilRef(2, "Noor Jansen"), PupilRef(3, "Chloé Smit")]


@pytest.mark.parametrize(
    ("line", "ids", "unknown", "text"),
    [
        (
            "Sam, Noor werkten goed samen #samenwerken",
            (1, 2),
            (),
            "werkten goed samen #samenwerken",
        ),
        ("sam de vries, NOOR, chloe hielpen", (1, 2, 3), (), "hielpen"),
        ("Sam en Noor werkten samen", (1, 2), (), "werkten samen"),
        ("Sam werkte goed, maar was moe", (1,), (), "werkte goed, maar was moe"),
        ("Sam, goed gedaan, Noor ook", (1,), (), "goed gedaan, Noor ook"),
        ("Daan, Noor waren druk", (2,), ("Daan",), "waren druk"),
        ("Daan was druk", (), ("Daan",), "was druk"),
        ("Noor", (2,), (), ""),
    ],
)
def test_names_before_the_note(line, ids, unknown, text):
    parsed = parse_note(PUPILS, line)
    assert parsed.pupil_ids == ids
    assert parsed.unknown == unknown
    assert parsed.text == text


def test_two_pupils_with_one_first_name_are_ambiguous():
    pupils = [*PUPILS, PupilRef(4, "Sam Bakker")]
    parsed = parse_note(pupils, "Sam, Noor lazen")
    assert parsed.ambiguous == ("Sam",) and parsed.pupil_ids == (2,)
    assert parse_note(pupils, "Sam Bakker las").pupil_ids == (4,)


def test_tags_are_lower_case_and_once():
    assert tags_in("#Inzet top #zorg, #inzet en #welbevinden!") == ["inzet", "zorg", "welbevinden"]


def test_the_window_counts_weekdays_only():
    thursday = date(2026, 11, 26)
    assert window_start(thursday, 1) == thursday
    assert window_start(thursday, 5) == date(2026, 11, 20)  # last Friday
    assert window_start(thursday, 10) == date(2026, 11, 13)
    assert window_start(date(2026, 11, 29), 1) == date(2026, 11, 27)  # Sunday -> Friday


async def test_a_teacher_writes_only_about_their_own_pupils(session_factory):
    school = await build_school(session_factory)
    others = await other_group(session_factory, school)
    teacher, sam, noor = school.persons["T1"], school.persons["P1"], school.persons["P2"]
    async with session_factory() as session, session.begin():
        assert [p.name for p in await pupils_of_teacher(session, teacher_id=teacher)] == [
            "Noor Jansen",
            "Sam de Vries",
        ]
        assert await pupils_of_teacher(session, teacher_id=sam) == []
        with pytest.raises(ObservationRefusedError):
            await create_observation(
                session, author_id=teacher, pupil_ids=[sam, others["P3"]], text="Samen #inzet"
            )
        with pytest.raises(ObservationRefusedError):  # a pupil cannot write notes
            await create_observation(session, author_id=noor, pupil_ids=[sam], text="Hoi")
        with pytest.raises(ObservationRefusedError):  # a goal none of them has
            await create_observation(
                session, author_id=teacher, pupil_ids=[sam], text="x", goal_id=1
            )
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Observation)) == 0
    async with session_factory() as session, session.begin():
        await create_observation(
            session, author_id=teacher, pupil_ids=[sam, noor], text="Goed #Inzet #zorg"
        )
    async with session_factory() as session:
        tags = (
            await session.scalars(select(ObservationTag.tag).order_by(ObservationTag.tag))
        ).all()
        assert tags == ["inzet", "zorg"]


async def test_private_notes_stay_with_teachers(session_factory):
    school = await build_school(session_factory)
    others = await other_group(session_factory, school)
    teacher, sam = school.persons["T1"], school.persons["P1"]
    async with session_factory() as session, session.begin():
        await create_observation(session, author_id=teacher, pupil_ids=[sam], text="Geheim #zorg")
        await create_observation(
            session, author_id=teacher, pupil_ids=[sam], text="Knap gedaan", is_private=False
        )
        session.add(
            Reflection(pupil_id=sam, on_date=date.today(), how_it_went=4, effort=3, wellbeing=4)
        )
    async with session_factory() as session:
        seen = await timeline(session, viewer_id=teacher, viewer_role=Role.TEACHER, pupil_id=sam)
        assert seen is not None
        assert {item.text for item in seen.items} >= {"Geheim #zorg", "Knap gedaan"}
        assert ItemKind.REFLECTION in {item.kind for item in seen.items}
        for viewer_id, role in ((sam, Role.PUPIL), (school.persons["O1"], Role.PARENT)):
            page = await timeline(session, viewer_id=viewer_id, viewer_role=role, pupil_id=sam)
            assert page is not None
            texts = {item.text for item in page.items}
            assert "Knap gedaan" in texts and "Geheim #zorg" not in texts
        # Someone else's child, another group's teacher, a pupil pretending to be a teacher.
        assert (
            await timeline(
                session,
                viewer_id=school.persons["O1"],
                viewer_role=Role.PARENT,
                pupil_id=school.persons["P2"],
            )
            is None
        )
        assert (
            await timeline(session, viewer_id=others["T2"], viewer_role=Role.TEACHER, pupil_id=sam)
            is None
        )
        assert (
            await timeline(session, viewer_id=sam, viewer_role=Role.TEACHER, pupil_id=sam) is None
        )
        assert await tags_of_pupil(
            session, viewer_id=teacher, viewer_role=Role.TEACHER, pupil_id=sam
        ) == ["zorg"]
        assert (
            await tags_of_pupil(
                session, viewer_id=school.persons["O1"], viewer_role=Role.PARENT, pupil_id=sam
            )
            == []
        )
        tagged = await timeline(
            session, viewer_id=teacher, viewer_role=Role.TEACHER, pupil_id=sam, tag="ZORG"
        )
        assert tagged is not None and [item.text for item in tagged.items] == ["Geheim #zorg"]
        assert [
            item.text
            for item in await search_observations(
                session, viewer_id=teacher, viewer_role=Role.TEACHER, word="geheim"
            )
        ] == ["Geheim #zorg"]
        assert (
            await search_observations(
                session, viewer_id=others["T2"], viewer_role=Role.TEACHER, word="geheim"
            )
            == []
        )
        assert (
            await search_observations(session, viewer_id=sam, viewer_role=Role.PUPIL, word="knap")
            == []
        )


async def test_unseen_pupils_of_the_teachers_groups(session_factory):
    school = await build_school(session_factory)
    await other_group(session_factory, school)
    teacher, sam = school.persons["T1"], school.persons["P1"]
    today = datetime.now(UTC).date()
    async with session_factory() as session, session.begin():
        days, pupils = await unseen_pupils(session, teacher_id=teacher, today=today)
        assert days == 10 and [p.name for p in pupils] == ["Noor Jansen", "Sam de Vries"]
        old = await create_observation(session, author_id=teacher, pupil_ids=[sam], text="Oud")
        old.created_at = datetime.now(UTC) - timedelta(days=30)
    async with session_factory() as session, session.begin():
        assert [
            p.name for p in (await unseen_pupils(session, teacher_id=teacher, today=today))[1]
        ] == [
            "Noor Jansen",
            "Sam de Vries",
        ]
        await create_observation(session, author_id=teacher, pupil_ids=[sam], text="Nieuw")
    async with session_factory() as session:
        _, pupils = await unseen_pupils(session, teacher_id=teacher, today=today)
        assert [p.name for p in pupils] == ["Noor Jansen"]


async def test_held_talks_with_their_agreements_are_in_the_timeline(session_factory):
    school = await build_school(session_factory)
    teacher, sam, parent = school.persons["T1"], school.persons["P1"], school.persons["O1"]
    held_at = datetime.now(UTC) - timedelta(days=1)
    async with session_factory() as session, session.begin():
        learning = Talk(
            kind=TalkKind.LEARNING,
            pupil_id=sam,
            organiser_id=teacher,
            scheduled_at=held_at,
            status=TalkStatus.HELD,
            agreements="Elke dag tien minuten lezen",
        )
        tripartite = Talk(
            kind=TalkKind.TRIPARTITE,
            pupil_id=sam,
            organiser_id=teacher,
            scheduled_at=held_at - timedelta(days=7),
            status=TalkStatus.HELD,
            agreements="Samen de planning bijhouden",
        )
        planned = Talk(
            kind=TalkKind.COACH,
            pupil_id=sam,
            organiser_id=teacher,
            scheduled_at=held_at + timedelta(days=7),
        )
        session.add_all([learning, tripartite, planned])
        await session.flush()
        session.add(TalkParticipant(talk_id=tripartite.id, person_id=parent))
    async with session_factory() as session:
        seen = await timeline(
            session, viewer_id=teacher, viewer_role=Role.TEACHER, pupil_id=sam, kinds=["talk"]
        )
        assert seen is not None
        assert [item.text for item in seen.items] == [
            "Elke dag tien minuten lezen",
            "Samen de planning bijhouden",
        ]
        # A parent reads the agreements of the talk they were in, not the others.
        theirs = await timeline(
            session, viewer_id=parent, viewer_role=Role.PARENT, pupil_id=sam, kinds=["talk"]
        )
        assert theirs is not None
        assert [item.text for item in theirs.items] == ["Samen de planning bijhouden"]


def test_holidays_do_not_count_in_the_window():
    thursday = date(2026, 11, 26)
    autumn_break = {date(2026, 11, 23), date(2026, 11, 24)}

    def is_school_day(day: date) -> bool:
        return day.weekday() < 5 and day not in autumn_break

    # Monday and Tuesday were free: five school days back reach Wednesday of last week.
    assert window_start(thursday, 5, is_school_day=is_school_day) == date(2026, 11, 18)


async def test_search_ignores_accents_and_case(session_factory):
    school = await build_school(session_factory)
    teacher, sam = school.persons["T1"], school.persons["P1"]
    async with session_factory() as session, session.begin():
        await create_observation(
            session, author_id=teacher, pupil_ids=[sam], text="Sam hielp Chloé met de Überschrift"
        )
    async with session_factory() as session:
        for word in ("chloe", "CHLOÉ", "uberschrift"):
            found = await search_observations(
                session, viewer_id=teacher, viewer_role=Role.TEACHER, word=word
            )
            assert [item.text for item in found] == ["Sam hielp Chloé met de Überschrift"], word


async def test_the_morning_list_covers_every_group_and_the_asked_list_the_active_one(
    session_factory,
):
    """A teacher of two groups: /nietgezien answers for the group in hand, the 07:45 nudge
    for all of them (a pupil of the other group is not forgotten for weeks)."""
    school = await build_school(session_factory)
    others = await other_group(session_factory, school)
    teacher = school.persons["T1"]
    today = datetime.now(UTC).date()
    async with session_factory() as session, session.begin():
        daan_group = await session.scalar(
            select(GroupMembership.group_id).where(GroupMembership.person_id == others["P3"])
        )
        session.add(GroupMembership(group_id=daan_group, person_id=teacher))
    async with session_factory() as session, session.begin():
        first_group = await session.scalar(
            select(GroupMembership.group_id).where(
                GroupMembership.person_id == school.persons["P1"]
            )
        )
        await set_active_group(session, teacher_id=teacher, group_id=first_group)
    i18n = load_i18n()
    async with session_factory() as session:
        with i18n.context(), i18n.use_locale("nl"):
            asked, _ = await unseen_message_for(session, teacher_id=teacher, today=today)
            nudge, _ = await unseen_message_for(
                session, teacher_id=teacher, today=today, all_groups=True
            )
    assert "Sam" in asked and "Noor" in asked and "Daan" not in asked
    assert "Sam" in nudge and "Noor" in nudge and "Daan" in nudge
