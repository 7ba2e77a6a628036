"""Preparing a period in storage: the rules for periods, tiers and activities, and who may."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from storage.audit import ACTION_PERIOD_CREATE, ACTION_PERIOD_GOAL
from storage.models import (
    Activity,
    AuditEvent,
    ChosenBy,
    Goal,
    GoalSet,
    Group,
    GroupMembership,
    Holiday,
    LearningLine,
    Period,
    PeriodGoal,
    Person,
    PupilGoal,
    Role,
    School,
    WeekPlan,
    WeekPlanItem,
)
from storage.period_goals import (
    MAX_ACTIVITIES_PER_GOAL,
    ActivityOutcome,
    Workspace,
    activities_of,
    add_activity,
    clear_tier,
    create_period,
    line_preparation,
    period_choice,
    period_end,
    remove_activity,
    school_calendar_of_group,
    set_tier,
    start_options,
    workspace,
)
from tests.factories import Curriculum, DemoSchool, build_curriculum, build_school

# A Wednesday in a school week; the sample period runs from a week before to five weeks after.
TODAY = date(2026, 11, 25)


async def _setup(session_factory) -> tuple[DemoSchool, Curriculum]:
    school = await build_school(session_factory)
    curriculum = await build_curriculum(session_factory, school, today=TODAY)
    return school, curriculum


async def _place(session, school: DemoSchool, curriculum: Curriculum) -> Workspace:
    place = await workspace(
        session,
        teacher_id=school.persons["T1"],
        group_id=school.group_id,
        period_id=curriculum.period_id,
        today=TODAY,
    )
    assert place is not None
    return place


async def _tiers(session, period_id: int, line_name: str) -> dict[int, str]:
    rows = await session.execute(
        select(PeriodGoal.tier, Goal.code)
        .join(Goal, Goal.id == PeriodGoal.goal_id)
        .join(LearningLine, LearningLine.id == Goal.learning_line_id)
        .where(PeriodGoal.period_id == period_id, LearningLine.name == line_name)
        .order_by(PeriodGoal.tier)
    )
    return dict(rows.all())


async def test_only_a_teacher_of_the_group_works_on_its_period(session_factory):
    school, curriculum = await _setup(session_factory)
    async with session_factory() as session:
        for person in ("T1", "X1"):  # the mentor and a co-teacher
            assert await workspace(
                session,
                teacher_id=school.persons[person],
                group_id=school.group_id,
                period_id=curriculum.period_id,
                today=TODAY,
            )
        for person in ("P1", "O1", "A1"):
            assert (
                await workspace(
                    session,
                    teacher_id=school.persons[person],
                    group_id=school.group_id,
                    period_id=curriculum.period_id,
                    today=TODAY,
                )
                is None
            )
        # Once the period is over it is history, not something to prepare.
        assert (
            await workspace(
                session,
                teacher_id=school.persons["T1"],
                group_id=school.group_id,
                period_id=curriculum.period_id,
                today=TODAY + timedelta(days=60),
            )
            is None
        )


async def test_a_teacher_of_another_group_finds_nothing(session_factory):
    school, curriculum = await _setup(session_factory)
    async with session_factory() as session, session.begin():
        other_group = Group(school_id=school.school_id, name="Groep 8", school_year="2026-2027")
        stranger = Person(
            school_id=school.school_id,
            external_id="T8",
            role=Role.TEACHER,
            display_name="Meester Kees",
        )
        session.add_all([other_group, stranger])
        await session.flush()
        session.add(GroupMembership(group_id=other_group.id, person_id=stranger.id))
        await session.flush()
        stranger_id, other_group_id = stranger.id, other_group.id
    async with session_factory() as session:
        assert (
            await workspace(
                session,
                teacher_id=stranger_id,
                group_id=school.group_id,
                period_id=curriculum.period_id,
                today=TODAY,
            )
            is None
        )
        # Naming their own group with this group's period does not work either.
        assert (
            await workspace(
                session,
                teacher_id=stranger_id,
                group_id=other_group_id,
                period_id=curriculum.period_id,
                today=TODAY,
            )
            is None
        )
        assert (
            await period_choice(
                session, teacher_id=stranger_id, group_id=school.group_id, today=TODAY
            )
            is None
        )
        assert (
            await start_options(
                session, teacher_id=stranger_id, group_id=school.group_id, today=TODAY
            )
            == []
        )


async def test_tiers_are_one_to_three(session_factory):
    school, curriculum = await _setup(session_factory)
    async with session_factory() as session, session.begin():
        place = await _place(session, school, curriculum)
        for tier in (0, 4, -1, 4242):
            assert (
                await set_tier(
                    session,
                    place=place,
                    teacher_id=school.persons["T1"],
                    tier=tier,
                    goal_id=curriculum.goals["1.3a"],
                )
                is None
            )
            line = await session.scalar(select(Goal.learning_line_id).where(Goal.code == "1.3a"))
            assert line is not None
            assert (
                await clear_tier(
                    session, place=place, teacher_id=school.persons["T1"], line_id=line, tier=tier
                )
                is None
            )
        assert await _tiers(session, curriculum.period_id, "1.3 Krachten in het heelal") == {}


async def test_one_goal_per_tier_per_line(session_factory):
    school, curriculum = await _setup(session_factory)
    line_name = "1.1 Krachten om je heen"
    teacher = school.persons["T1"]
    async with session_factory() as session, session.begin():
        place = await _place(session, school, curriculum)
        assert await _tiers(session, curriculum.period_id, line_name) == {
            1: "1.1a",
            2: "1.1b",
            3: "1.1c",
        }
        # Replacing: the goal that was at tier 2 leaves the offer.
        change = await set_tier(
            session, place=place, teacher_id=teacher, tier=2, goal_id=curriculum.goals["1.1d"]
        )
        assert change is not None and change.goal is not None and change.goal.code == "1.1d"
        assert await _tiers(session, curriculum.period_id, line_name) == {
            1: "1.1a",
            2: "1.1d",
            3: "1.1c",
        }
        # A goal already on offer moves to the tier it is put at; it is never there twice.
        await set_tier(
            session, place=place, teacher_id=teacher, tier=1, goal_id=curriculum.goals["1.1c"]
        )
        assert await _tiers(session, curriculum.period_id, line_name) == {1: "1.1c", 2: "1.1d"}
        # Another line's tiers are untouched.
        assert await _tiers(session, curriculum.period_id, "1.2 Krachten in evenwicht") == {
            1: "1.2a",
            2: "1.2b",
            3: "1.2d",
        }
        line = await line_preparation(session, place=place, line_id=change.line_id)
        assert line is not None
        assert [(tier.tier, tier.goal.code) for tier in line.tiers] == [(1, "1.1c"), (2, "1.1d")]
        cleared = await clear_tier(
            session, place=place, teacher_id=teacher, line_id=change.line_id, tier=2
        )
        assert cleared is not None and cleared.goal is None
        assert await _tiers(session, curriculum.period_id, line_name) == {1: "1.1c"}
        # Clearing an empty tier changes nothing and says so.
        assert (
            await clear_tier(
                session, place=place, teacher_id=teacher, line_id=change.line_id, tier=2
            )
            is None
        )
        audited = (
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.action == ACTION_PERIOD_GOAL)
            )
        ).all()
        assert len(audited) == 3


async def test_a_replaced_goal_stays_with_the_pupils_who_chose_it(session_factory):
    school, curriculum = await _setup(session_factory)
    async with session_factory() as session, session.begin():
        session.add(
            PupilGoal(
                pupil_id=school.persons["P1"],
                goal_id=curriculum.goals["1.1b"],
                period_id=curriculum.period_id,
                chosen_by=ChosenBy.PUPIL,
            )
        )
        await session.flush()
        place = await _place(session, school, curriculum)
        change = await set_tier(
            session,
            place=place,
            teacher_id=school.persons["T1"],
            tier=2,
            goal_id=curriculum.goals["1.1d"],
        )
        assert change is not None and change.pupils_keeping == 1
        kept = await session.scalar(
            select(PupilGoal.status).where(PupilGoal.pupil_id == school.persons["P1"])
        )
        assert kept is not None and kept.value == "active"


async def test_a_goal_of_another_school_is_refused(session_factory):
    school, curriculum = await _setup(session_factory)
    async with session_factory() as session, session.begin():
        other = School(name="De Vlinder")
        session.add(other)
        await session.flush()
        goal_set = GoalSet(school_id=other.id, name="Rekenen")
        session.add(goal_set)
        await session.flush()
        line = LearningLine(goal_set_id=goal_set.id, name="Breuken", position=1)
        session.add(line)
        await session.flush()
        goal = Goal(
            goal_set_id=goal_set.id,
            learning_line_id=line.id,
            code="B1",
            text="Je kunt breuken vergelijken",
            position=1,
        )
        session.add(goal)
        await session.flush()
        place = await _place(session, school, curriculum)
        assert (
            await set_tier(
                session, place=place, teacher_id=school.persons["T1"], tier=1, goal_id=goal.id
            )
            is None
        )
        assert await line_preparation(session, place=place, line_id=line.id) is None
        assert (
            await session.scalar(select(PeriodGoal.id).where(PeriodGoal.goal_id == goal.id)) is None
        )


async def test_a_new_period_starts_on_a_school_day_and_ends_on_one(session_factory):
    school = await build_school(session_factory)
    teacher, group = school.persons["T1"], school.group_id
    async with session_factory() as session, session.begin():
        # The Christmas holiday: no school from 21 December to 1 January.
        session.add(
            Holiday(
                school_id=school.school_id,
                name="Kerstvakantie",
                starts_on=date(2026, 12, 19),
                ends_on=date(2027, 1, 3),
            )
        )
    saturday = date(2026, 12, 12)
    async with session_factory() as session, session.begin():
        choice = await period_choice(session, teacher_id=teacher, group_id=group, today=saturday)
        assert choice is not None and choice.current is None and choice.next is None
        days = await start_options(session, teacher_id=teacher, group_id=group, today=saturday)
        # Monday 14 Dec, then the holiday weeks are skipped.
        assert days == [date(2026, 12, 14), date(2027, 1, 4), date(2027, 1, 11), date(2027, 1, 18)]
        calendar = await school_calendar_of_group(session, teacher_id=teacher, group_id=group)
        assert calendar is not None
        # Six weeks from Monday 4 January end on Friday 12 February.
        assert period_end(calendar, date(2027, 1, 4), 6) == date(2027, 2, 12)
        assert period_end(calendar, date(2027, 1, 4), 5) is None
        for weeks, start in ((5, days[0]), (9, days[0]), (6, date(2026, 12, 13)), (6, date.min)):
            assert (
                await create_period(
                    session,
                    teacher_id=teacher,
                    group_id=group,
                    start=start,
                    weeks=weeks,
                    name="Periode 3",
                    today=saturday,
                )
                is None
            )
        place = await create_period(
            session,
            teacher_id=teacher,
            group_id=group,
            start=date(2027, 1, 4),
            weeks=8,
            name="Periode 3",
            today=saturday,
        )
        assert place is not None
        assert (place.period.starts_on, place.period.ends_on) == (
            date(2027, 1, 4),
            date(2027, 2, 26),
        )
        assert place.period.own and place.group.id == group
        # A second tap on the same button: the same period, not a refusal and not a second one.
        again = await create_period(
            session,
            teacher_id=teacher,
            group_id=group,
            start=date(2027, 1, 4),
            weeks=8,
            name="Periode 3",
            today=saturday,
        )
        assert again is not None and again.period.id == place.period.id
        # The next one can only start after it: periods of a group never overlap.
        later = await start_options(session, teacher_id=teacher, group_id=group, today=saturday)
        assert later[0] == date(2027, 3, 1)
        [audit] = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == ACTION_PERIOD_CREATE)
            )
        ).all()
        assert audit.actor_person_id == teacher
        assert audit.subject_ref == f"period:{place.period.id}"
    async with session_factory() as session:
        periods = (await session.scalars(select(Period))).all()
        assert [(p.group_id, p.starts_on) for p in periods] == [(group, date(2027, 1, 4))]
        # A pupil cannot make one.
        assert (
            await create_period(
                session,
                teacher_id=school.persons["P1"],
                group_id=group,
                start=date(2027, 3, 1),
                weeks=6,
                name="Periode 4",
                today=saturday,
            )
            is None
        )


async def test_current_and_next_period(session_factory):
    school, curriculum = await _setup(session_factory)
    async with session_factory() as session, session.begin():
        choice = await period_choice(
            session, teacher_id=school.persons["T1"], group_id=school.group_id, today=TODAY
        )
        assert choice is not None and choice.current is not None
        assert choice.current.id == curriculum.period_id and choice.next is None
        assert not choice.nearly_over(TODAY)
        assert choice.nearly_over(choice.current.ends_on - timedelta(days=3))
        session.add(
            Period(
                school_id=school.school_id,
                name="Periode 3",
                starts_on=choice.current.ends_on + timedelta(days=3),
                ends_on=choice.current.ends_on + timedelta(days=45),
            )
        )
    async with session_factory() as session:
        choice = await period_choice(
            session, teacher_id=school.persons["T1"], group_id=school.group_id, today=TODAY
        )
        assert choice is not None and choice.next is not None and choice.next.name == "Periode 3"
        assert not choice.next.own  # the school's period: prepared for this group all the same


async def test_activities_are_the_groups_own_and_never_twice(session_factory):
    school, curriculum = await _setup(session_factory)
    teacher = school.persons["T1"]
    goal_id = curriculum.goals["1.1a"]
    async with session_factory() as session, session.begin():
        place = await _place(session, school, curriculum)
        added = await add_activity(
            session, place=place, teacher_id=teacher, goal_id=goal_id, text="  Krachten   meten "
        )
        assert added is not None and added[0] is ActivityOutcome.ADDED
        assert added[1] is not None and added[1].text == "Krachten meten"
        again = await add_activity(
            session, place=place, teacher_id=teacher, goal_id=goal_id, text="krachten MeTen"
        )
        assert again is not None and again[0] is ActivityOutcome.DUPLICATE
        too_long = await add_activity(
            session, place=place, teacher_id=teacher, goal_id=goal_id, text="x" * 201
        )
        assert too_long == (ActivityOutcome.TOO_LONG, None)
        empty = await add_activity(
            session, place=place, teacher_id=teacher, goal_id=goal_id, text=" \n "
        )
        assert empty == (ActivityOutcome.EMPTY, None)
        # A goal that is not prepared for this period has no activity list here.
        assert (
            await add_activity(
                session,
                place=place,
                teacher_id=teacher,
                goal_id=curriculum.goals["1.5d"],
                text="Krik bekijken",
            )
            is None
        )
        listed = await activities_of(session, place=place, goal_id=goal_id)
        assert listed is not None
        assert [item.text for item in listed] == [
            "Oefenblad krachten",
            "Proefje met een veer",
            "Krachten meten",
        ]
        # A list pupils can still read on a phone: at most MAX_ACTIVITIES_PER_GOAL.
        for number in range(len(listed), MAX_ACTIVITIES_PER_GOAL):
            more = await add_activity(
                session, place=place, teacher_id=teacher, goal_id=goal_id, text=f"Opdracht {number}"
            )
            assert more is not None and more[0] is ActivityOutcome.ADDED
        full = await add_activity(
            session, place=place, teacher_id=teacher, goal_id=goal_id, text="Nog een opdracht"
        )
        assert full == (ActivityOutcome.FULL, None)


async def test_removing_an_activity_keeps_the_pupils_week_plan(session_factory):
    school, curriculum = await _setup(session_factory)
    activity_id = curriculum.activities["Proefje met een veer"]
    async with session_factory() as session, session.begin():
        pupil_goal = PupilGoal(
            pupil_id=school.persons["P1"],
            goal_id=curriculum.goals["1.1a"],
            period_id=curriculum.period_id,
            chosen_by=ChosenBy.PUPIL,
        )
        plan = WeekPlan(pupil_id=school.persons["P1"], week_start=date(2026, 11, 23))
        session.add_all([pupil_goal, plan])
        await session.flush()
        session.add(
            WeekPlanItem(
                week_plan_id=plan.id,
                pupil_goal_id=pupil_goal.id,
                activity_id=activity_id,
                text="Proefje met een veer",
            )
        )
        # A pupil's own idea for the same goal is not the teacher's to remove.
        own = Activity(
            goal_id=curriculum.goals["1.1a"], pupil_goal_id=pupil_goal.id, text="Mijn eigen idee"
        )
        session.add(own)
        await session.flush()
        place = await _place(session, school, curriculum)
        assert await remove_activity(session, place=place, activity_id=own.id) is None
        removed = await remove_activity(session, place=place, activity_id=activity_id)
        assert removed is not None and removed.in_plans == 1
    async with session_factory() as session:
        items = (await session.execute(select(WeekPlanItem.text, WeekPlanItem.activity_id))).all()
        assert items == [("Proefje met een veer", None)]
        assert await session.get(Activity, activity_id) is None


async def test_an_activity_of_another_group_is_refused(session_factory):
    school, curriculum = await _setup(session_factory)
    async with session_factory() as session, session.begin():
        other_group = Group(school_id=school.school_id, name="Groep 8", school_year="2026-2027")
        session.add(other_group)
        await session.flush()
        theirs = Activity(
            goal_id=curriculum.goals["1.1a"], group_id=other_group.id, text="Hun oefening"
        )
        session.add(theirs)
        await session.flush()
        place = await _place(session, school, curriculum)
        assert await remove_activity(session, place=place, activity_id=theirs.id) is None
        listed = await activities_of(session, place=place, goal_id=curriculum.goals["1.1a"])
        assert listed is not None and "Hun oefening" not in [item.text for item in listed]
    async with session_factory() as session:
        assert await session.get(Activity, theirs.id) is not None
