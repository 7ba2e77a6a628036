"""The demo school's rows: two weeks of a class using the bot, and what the demo page asks.

`services.demo_school` seeds the demo school: people and goal sets through the real importers,
then `write_two_weeks_of_use` writes what a school builds up by using the bot (a period with
prepared goals, chosen goals, reflections, a week plan, assessments, a few observations, tops
& tips and, when the seeding stored them, photos of work), dated relative to `today`.

Nothing here links Telegram accounts: the demo does that through the bot itself (every person
sends `/start CODE` as a sandbox user), so onboarding runs for real; see `bot.demo`. Like all
of storage/, nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.evidence import NewEvidence, create_evidence
from storage.invites import issue_invite
from storage.media_files import StoredImage
from storage.models import (
    Account,
    AccountPerson,
    Activity,
    Approval,
    Assessment,
    ChosenBy,
    EvidenceKind,
    Feedback,
    FeedbackTarget,
    Goal,
    GoalSet,
    Group,
    GroupMembership,
    Guardianship,
    Observation,
    ObservationPupil,
    ObservationTag,
    Period,
    PeriodGoal,
    Person,
    ProcessedUpdate,
    PupilGoal,
    PupilGoalStatus,
    Reflection,
    ReflectionGoal,
    Role,
    RubricLevel,
    School,
    WeekPlan,
    WeekPlanItem,
)

DEMO_SCHOOL_NAME = "De Regenboog"
PERIOD_STARTED_DAYS_AGO = 14
PERIOD_WEEKS = 6
REFLECTION_DAYS = 6

# Teacher-prepared goals of the period: (goal code, tier). Tier 1 is for everyone, 2 and 3
# are steps up, as teachers layer a period's goals.
SKILLS_PREPARED = [("RF", 1), ("SW", 1), ("RN", 2), ("LS", 3)]
PHYSICS_PREPARED = [("1.1a", 1), ("1.1b", 1), ("1.1c", 2), ("1.2a", 2), ("1.1d", 3)]

# Per pupil: (goal code, level aimed at for rubric goals, status, chosen by). Kacper (P8) has
# chosen nothing yet, so the "choose your goals" screen has someone to show it to.
PUPIL_GOALS: dict[str, list[tuple[str, str | None, PupilGoalStatus, ChosenBy]]] = {
    "P1": [
        ("RN", "gevorderd", PupilGoalStatus.ACTIVE, ChosenBy.PUPIL),
        ("1.1c", None, PupilGoalStatus.ACTIVE, ChosenBy.PUPIL),
    ],
    "P2": [
        ("SW", "expert", PupilGoalStatus.ACTIVE, ChosenBy.PUPIL),
        ("1.1a", None, PupilGoalStatus.ACTIVE, ChosenBy.PUPIL),
    ],
    "P3": [("RF", "in ontwikkeling", PupilGoalStatus.ACTIVE, ChosenBy.PUPIL)],
    "P4": [
        ("LS", "gevorderd", PupilGoalStatus.ACTIVE, ChosenBy.PUPIL),
        ("1.1d", None, PupilGoalStatus.ACTIVE, ChosenBy.PUPIL),
    ],
    "P5": [("SW", "in ontwikkeling", PupilGoalStatus.ACTIVE, ChosenBy.TEACHER)],
    "P6": [("RN", "in ontwikkeling", PupilGoalStatus.PROPOSED, ChosenBy.PUPIL)],
    "P7": [
        ("RF", "gevorderd", PupilGoalStatus.ACTIVE, ChosenBy.PUPIL),
        ("1.2a", None, PupilGoalStatus.ACTIVE, ChosenBy.PUPIL),
    ],
}

# (how it went, effort, wellbeing) per school day, oldest first; None means no reflection
# that day (a real class skips days). Varied on purpose, so charts and summaries have shape.
REFLECTION_SCORES: dict[str, list[tuple[int, int, int] | None]] = {
    "P1": [(3, 3, 4), (2, 3, 3), (4, 4, 4), None, (3, 4, 3), (4, 3, 4)],
    "P2": [(4, 4, 4), (3, 4, 4), (3, 3, 2), (2, 2, 2), (3, 3, 3), (4, 4, 3)],
    "P3": [None, (2, 2, 3), (1, 2, 2), (2, 3, 3), None, (3, 3, 3)],
    "P4": [(4, 3, 4), None, (4, 4, 4), (3, 4, 4), (4, 4, 3), None],
    "P5": [(2, 3, 2), (3, 3, 3), None, (2, 2, 1), (3, 4, 3), (3, 3, 4)],
    "P6": [None, None, (3, 2, 4), (2, 2, 3), (3, 3, 3), (2, 3, 3)],
    "P7": [None, None, None, None, (3, 3, 2), (4, 3, 3)],
}
REFLECTION_TEXTS = [
    "Ik heb aan mijn planning gewerkt en alles van maandag afgekregen.",
    "Het ging lastig, ik had hulp nodig bij de som met zwaartekracht.",
    "Samen met Noor een proefje gedaan met veren. Leuk!",
    "Ik was moe, maar ik heb toch doorgewerkt.",
    "Vandaag snapte ik eindelijk hoe je krachten tekent.",
    "We hebben afspraken gemaakt over wie wat doet in ons groepje.",
    "Ik heb een andere manier geprobeerd om de woorden te leren: met kaartjes.",
]
NEXT_STEPS = [
    "Morgen eerst de moeilijke taak doen.",
    "Vragen of juf het nog een keer uitlegt.",
    "Mijn planning voor vrijdag afmaken.",
]


@dataclass(frozen=True)
class DemoPerson:
    """Someone of the demo school, for the page's "who are you?" picker."""

    person_id: int
    external_id: str
    name: str
    role: Role
    locale: str | None
    telegram_user_id: int | None
    # "Groep 6a", "mentor van Groep 6a", "ouder van Sam de Vries".
    detail: str


async def find_demo_school(session: AsyncSession) -> School | None:
    return await session.scalar(select(School).where(School.name == DEMO_SCHOOL_NAME))


@dataclass(frozen=True)
class WorkPhoto:
    """A photo of a pupil's work, already in the media store, to become an evidence item."""

    pupil: str  # external id
    goal_code: str
    caption: str
    shared: bool  # with the parents
    school_days_ago: int
    image: StoredImage
    approved_by: str | None = None  # external id of the teacher who let it through to parents


async def write_two_weeks_of_use(
    session: AsyncSession,
    *,
    school: School,
    today: date,
    physics_id: int,
    skills_id: int,
    work_photos: Sequence[WorkPhoto] = (),
) -> None:
    """Two weeks of a class using the bot, for a school whose people and goal sets (the
    physics and the skills set) are in place. With work photos, the school asks a teacher to
    approve shared work, as the photos' approvals show."""
    life = _Life(session, school, today, physics_id, skills_id)
    await life.build()
    if work_photos:
        await life.work_photos(work_photos)
    await session.flush()


class _Life:
    """Two weeks of a class using the bot, written in one go."""

    def __init__(
        self, session: AsyncSession, school: School, today: date, physics_id: int, skills_id: int
    ) -> None:
        self.session = session
        self.school = school
        self.today = today
        self.zone = ZoneInfo(school.timezone)
        self.physics_id = physics_id
        self.skills_id = skills_id
        self.period_start = today - timedelta(days=PERIOD_STARTED_DAYS_AGO)

    async def build(self) -> None:
        self.persons = {
            person.external_id: person
            for person in await self.session.scalars(
                select(Person).where(Person.school_id == self.school.id)
            )
        }
        group = await self.session.scalar(select(Group).where(Group.school_id == self.school.id))
        assert group is not None  # the people file has one group
        self.group = group
        self.goals = {
            goal.code: goal
            for goal in await self.session.scalars(
                select(Goal).where(Goal.goal_set_id.in_([self.physics_id, self.skills_id]))
            )
        }
        self.levels = {
            level.name: level
            for level in await self.session.scalars(
                select(RubricLevel).where(RubricLevel.goal_set_id == self.skills_id)
            )
        }
        period = await self._period()
        await self._prepared_goals(period)
        activities = await self._activities()
        pupil_goals = await self._pupil_goals(period)
        await self._reflections(pupil_goals)
        await self._week_plans(pupil_goals, activities)
        await self._assessments()
        await self._observations()
        await self._feedback(pupil_goals)

    def _at(self, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), tzinfo=self.zone).astimezone(UTC)

    def _id(self, external_id: str) -> int:
        return self.persons[external_id].id

    async def _period(self) -> Period:
        starts = self.period_start
        period = Period(
            school_id=self.school.id,
            group_id=self.group.id,
            name="Periode 3: krachten en samenwerken",
            starts_on=starts,
            ends_on=starts + timedelta(weeks=PERIOD_WEEKS),
        )
        self.session.add(period)
        await self.session.flush()
        return period

    async def _prepared_goals(self, period: Period) -> None:
        for prepared, teacher in ((SKILLS_PREPARED, "T1"), (PHYSICS_PREPARED, "T2")):
            for code, tier in prepared:
                self.session.add(
                    PeriodGoal(
                        period_id=period.id,
                        group_id=self.group.id,
                        goal_id=self.goals[code].id,
                        tier=tier,
                        prepared_by_id=self._id(teacher),
                    )
                )

    async def _activities(self) -> dict[str, Activity]:
        offers = {
            "SW": "Bouw in een groepje van drie een knikkerbaan; verdeel eerst de taken.",
            "RN": "Kies elke ochtend zelf je eerste taak uit je weekplanning.",
            "1.1c": "Weeg vijf voorwerpen en reken uit hoe groot de zwaartekracht is.",
        }
        activities = {}
        for code, text in offers.items():
            activity = Activity(
                goal_id=self.goals[code].id,
                group_id=self.group.id,
                text=text,
                created_by_id=self._id("T1"),
                created_at=self._at(self.period_start, 9),
            )
            self.session.add(activity)
            activities[code] = activity
        await self.session.flush()
        return activities

    async def _pupil_goals(self, period: Period) -> dict[str, list[PupilGoal]]:
        chosen: dict[str, list[PupilGoal]] = {}
        for external_id, goals in PUPIL_GOALS.items():
            for code, level, status, chosen_by in goals:
                confirmed = status is PupilGoalStatus.ACTIVE
                pupil_goal = PupilGoal(
                    pupil_id=self._id(external_id),
                    goal_id=self.goals[code].id,
                    period_id=period.id,
                    level_aimed_id=self.levels[level].id if level else None,
                    chosen_by=chosen_by,
                    status=status,
                    confirmed_by_id=self._id("T1") if confirmed else None,
                    created_at=self._at(self.period_start + timedelta(days=1), 10),
                )
                self.session.add(pupil_goal)
                chosen.setdefault(external_id, []).append(pupil_goal)
        await self.session.flush()
        return chosen

    def _school_days_before_today(self, count: int) -> list[date]:
        days: list[date] = []
        day = self.today - timedelta(days=1)
        while len(days) < count and day >= self.period_start:
            if day.isoweekday() in self.school.school_days:
                days.append(day)
            day -= timedelta(days=1)
        return list(reversed(days))

    async def _reflections(self, pupil_goals: dict[str, list[PupilGoal]]) -> None:
        days = self._school_days_before_today(REFLECTION_DAYS)
        # Too few school days (a test pinned to an odd date) means the most recent scores.
        offset = REFLECTION_DAYS - len(days)
        written = 0
        for external_id, scores in REFLECTION_SCORES.items():
            goals = [goal for goal in pupil_goals.get(external_id, []) if goal.goal_id]
            for index, day in enumerate(days):
                score = scores[index + offset]
                if score is None:
                    continue
                how_it_went, effort, wellbeing = score
                reflection = Reflection(
                    pupil_id=self._id(external_id),
                    on_date=day,
                    how_it_went=how_it_went,
                    effort=effort,
                    wellbeing=wellbeing,
                    minutes=20 + 10 * ((written + index) % 4),
                    text=REFLECTION_TEXTS[written % len(REFLECTION_TEXTS)],
                    next_step=NEXT_STEPS[written % len(NEXT_STEPS)] if written % 3 == 0 else None,
                    created_at=self._at(day, 14, 35 + index % 20),
                )
                self.session.add(reflection)
                await self.session.flush()
                # One goal a day, taking turns, the way pupils pick "what I worked on".
                if goals:
                    goal = goals[index % len(goals)]
                    self.session.add(
                        ReflectionGoal(reflection_id=reflection.id, goal_id=goal.goal_id)
                    )
                written += 1

    async def _week_plans(
        self, pupil_goals: dict[str, list[PupilGoal]], activities: dict[str, Activity]
    ) -> None:
        week_start = self.today - timedelta(days=self.today.weekday())
        plans = {
            "P1": [
                (0, "RN", "Maandag zelf mijn eerste taak kiezen", True),
                (1, "1.1c", "Zwaartekracht berekenen van vijf voorwerpen", True),
                (0, None, "Vrijdag terugkijken: wat is af?", False),
            ],
            "P2": [
                (0, "SW", "Met Yusuf en Emma de knikkerbaan bouwen", False),
                (1, None, "Oefenen: soorten krachten herkennen (blz. 12)", True),
            ],
        }
        for external_id, items in plans.items():
            plan = WeekPlan(
                pupil_id=self._id(external_id),
                week_start=week_start,
                created_at=self._at(week_start, 8, 45),
            )
            self.session.add(plan)
            await self.session.flush()
            for goal_index, activity_code, text, done in items:
                pupil_goal = pupil_goals[external_id][goal_index]
                activity = activities.get(activity_code) if activity_code else None
                self.session.add(
                    WeekPlanItem(
                        week_plan_id=plan.id,
                        pupil_goal_id=pupil_goal.id,
                        activity_id=activity.id if activity else None,
                        text=text,
                        done_at=self._at(week_start, 13) if done else None,
                    )
                )

    async def _assessments(self) -> None:
        assessed = self._at(self.today - timedelta(days=3), 15)
        rows = [
            # (pupil, goal, rubric level or None, 1-4 level or None, by, assessor, note)
            ("P1", "RN", "in ontwikkeling", None, ChosenBy.PUPIL, "P1", None),
            ("P1", "RN", "in ontwikkeling", None, ChosenBy.TEACHER, "T1", "Kiest al vaak zelf."),
            ("P1", "1.1c", None, 2, ChosenBy.PUPIL, "P1", None),
            ("P1", "1.1c", None, 3, ChosenBy.TEACHER, "T2", "Rekent netjes met eenheden."),
            ("P2", "SW", "gevorderd", None, ChosenBy.PUPIL, "P2", None),
            ("P3", "RF", "beginner", None, ChosenBy.TEACHER, "T1", None),
            ("P4", "LS", "gevorderd", None, ChosenBy.PUPIL, "P4", "Kaartjes werken voor mij."),
        ]
        for pupil, code, level, number, by, assessor, note in rows:
            self.session.add(
                Assessment(
                    pupil_id=self._id(pupil),
                    goal_id=self.goals[code].id,
                    rubric_level_id=self.levels[level].id if level else None,
                    level=number,
                    by_role=by,
                    assessor_id=self._id(assessor),
                    note=note,
                    assessed_at=assessed,
                )
            )

    async def _observations(self) -> None:
        # (author, goal, pupils, text, tags, private): the notes for parents too are the ones a
        # teacher would share; the one about wellbeing stays with the teachers.
        notes = [
            (
                "T1",
                "SW",
                ["P2", "P5"],
                "Noor en Yusuf verdeelden zelf de taken. Mooi!",
                ["samen"],
                False,
            ),
            (
                "T2",
                "1.1d",
                ["P4"],
                "Emma legde de formule voor druk uit aan haar buurman.",
                [],
                True,
            ),
            (
                "T1",
                None,
                ["P3"],
                "Daan was stil vandaag; even naar vragen morgen.",
                ["welzijn"],
                True,
            ),
            (
                "T2",
                "1.1c",
                ["P1"],
                "Sam woog zelf vijf voorwerpen en rekende netjes met newton.",
                [],
                False,
            ),
        ]
        for index, (author, code, pupils, text, tags, private) in enumerate(notes):
            observation = Observation(
                author_id=self._id(author),
                goal_id=self.goals[code].id if code else None,
                text=text,
                is_private=private,
                # Sam's note is from this week, so his parents' summary has one to show.
                created_at=self._at(
                    self.today - timedelta(days=1 if "P1" in pupils else index + 1), 11
                ),
            )
            self.session.add(observation)
            await self.session.flush()
            for pupil in pupils:
                self.session.add(
                    ObservationPupil(observation_id=observation.id, pupil_id=self._id(pupil))
                )
            for tag in tags:
                self.session.add(ObservationTag(observation_id=observation.id, tag=tag))

    async def _feedback(self, pupil_goals: dict[str, list[PupilGoal]]) -> None:
        self.session.add(
            Feedback(
                author_id=self._id("T1"),
                author_role=Role.TEACHER,
                target=FeedbackTarget.GOAL,
                pupil_id=self._id("P1"),
                pupil_goal_id=pupil_goals["P1"][0].id,
                top="Je begint elke ochtend zelf, zonder dat ik het zeg.",
                tip="Schrijf op je planning ook wanneer iets af moet zijn.",
                created_at=self._at(self.today - timedelta(days=2), 15, 30),
            )
        )

    async def work_photos(self, photos: Sequence[WorkPhoto]) -> None:
        # The demo school asks a teacher to approve shared photos (image consent).
        self.school.shared_work_needs_approval = True
        for photo in photos:
            day = self._recent_school_day(photo.school_days_ago)
            evidence = await create_evidence(
                self.session,
                school_id=self.school.id,
                new=NewEvidence(
                    pupil_id=self._id(photo.pupil),
                    kind=EvidenceKind.PHOTO,
                    files=[photo.image],
                    goal_ids=[self.goals[photo.goal_code].id],
                    caption=photo.caption,
                    shared_with_parents=photo.shared,
                ),
            )
            evidence.created_at = self._at(day, 11, 15)
            if photo.approved_by is not None:
                evidence.approval = Approval.APPROVED
                evidence.approved_by_id = self._id(photo.approved_by)
                evidence.approval_decided_at = self._at(day, 15, 0)

    def _recent_school_day(self, back: int) -> date:
        """A school day `back` school days before today (the week's work), else today."""
        days = self._school_days_before_today(back)
        return days[0] if days else self.today


async def demo_people(session: AsyncSession, *, school_id: int) -> list[DemoPerson]:
    """Everyone of the school, pupils first, with the Telegram user each is linked to (if any)."""
    rows = (
        await session.execute(
            select(Person, Account.telegram_user_id)
            .outerjoin(AccountPerson, AccountPerson.person_id == Person.id)
            .outerjoin(Account, Account.id == AccountPerson.account_id)
            .where(Person.school_id == school_id, Person.left_school_on.is_(None))
        )
    ).all()
    groups: dict[int, list[tuple[str, bool]]] = {}
    for person_id, group_name, is_mentor in await session.execute(
        select(GroupMembership.person_id, Group.name, GroupMembership.is_mentor)
        .join(Group, Group.id == GroupMembership.group_id)
        .where(Group.school_id == school_id, GroupMembership.ended_at.is_(None))
        .order_by(Group.name)
    ):
        groups.setdefault(person_id, []).append((group_name, is_mentor))
    names = {person.id: person.display_name for person, _ in rows}
    children: dict[int, list[str]] = {}
    for parent_id, pupil_id in await session.execute(
        select(Guardianship.parent_id, Guardianship.pupil_id).where(
            Guardianship.parent_id.in_(names)
        )
    ):
        children.setdefault(parent_id, []).append(names.get(pupil_id, "?"))

    def detail(person: Person) -> str:
        if person.role is Role.PARENT:
            return "ouder van " + ", ".join(sorted(children.get(person.id, [])))
        if person.role is Role.ADMIN:
            return "beheer"
        parts = [
            (f"mentor {name}" if mentor else name) for name, mentor in groups.get(person.id, [])
        ]
        return ", ".join(parts)

    order = {Role.PUPIL: 0, Role.TEACHER: 1, Role.PARENT: 2, Role.ADMIN: 3}
    people = [
        DemoPerson(
            person_id=person.id,
            external_id=person.external_id,
            name=person.display_name,
            role=person.role,
            locale=person.locale,
            telegram_user_id=telegram_user_id,
            detail=detail(person),
        )
        for person, telegram_user_id in rows
    ]
    return sorted(people, key=lambda item: (order[item.role], item.external_id))


async def fresh_demo_codes(
    session: AsyncSession,
    *,
    person_ids: list[int],
    invite_secret: bytes,
    valid_for: timedelta = timedelta(days=14),
) -> dict[int, str]:
    """New invite codes for demo people without a Telegram account (a demo that stopped
    half-way through linking); codes are stored hashed, so old ones cannot be read back."""
    return {
        person_id: await issue_invite(
            session, person_id=person_id, valid_for=valid_for, secret=invite_secret
        )
        for person_id in person_ids
    }


async def last_update_id(session: AsyncSession, *, bot_id: int) -> int:
    """The newest update id the bot handled: a restarted sandbox must continue after it, or
    the bot would skip its updates as already handled."""
    newest = await session.scalar(
        select(func.max(ProcessedUpdate.update_id)).where(ProcessedUpdate.bot_id == bot_id)
    )
    return int(newest or 0)


async def demo_counts(session: AsyncSession, *, school_id: int) -> dict[str, int]:
    """Row counts per kind of demo data, for tests and the demo's start-up line."""
    pupils = select(Person.id).where(Person.school_id == school_id, Person.role == Role.PUPIL)
    counts: dict[str, int] = {}
    for role in Role:
        counts[f"{role.value}s"] = int(
            await session.scalar(
                select(func.count())
                .select_from(Person)
                .where(Person.school_id == school_id, Person.role == role)
            )
            or 0
        )
    per_pupil = {
        "pupil_goals": PupilGoal.pupil_id,
        "reflections": Reflection.pupil_id,
        "week_plans": WeekPlan.pupil_id,
        "assessments": Assessment.pupil_id,
    }
    for name, column in per_pupil.items():
        counts[name] = int(
            await session.scalar(select(func.count(column)).where(column.in_(pupils))) or 0
        )
    counts["goal_sets"] = int(
        await session.scalar(
            select(func.count()).select_from(GoalSet).where(GoalSet.school_id == school_id)
        )
        or 0
    )
    counts["periods"] = int(
        await session.scalar(
            select(func.count()).select_from(Period).where(Period.school_id == school_id)
        )
        or 0
    )
    return counts
