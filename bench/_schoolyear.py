"""A generated school year for one class: the data the class overview bench, the overview
picture's test and the docs picture are made from.

One group of `pupils` pupils with two teachers (mentor and co-teacher); both sample goal
sets; a six-week period at the end of the year with one goal per learning line for each
pupil (six lines) and a few proposals waiting; every school day a reflection per pupil; per
pupil each week three photos of work and two teacher's notes; self-assessments every two
weeks and a teacher's level every three. Deterministic for a seed. Written in bulk (an
INSERT per table, not per row), so a year of 30 pupils takes seconds, not minutes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.importing.goal_sets import import_goal_set
from storage.models import (
    Assessment,
    ChosenBy,
    Evidence,
    EvidenceGoal,
    EvidenceKind,
    Goal,
    GoalMode,
    Group,
    GroupMembership,
    Observation,
    ObservationPupil,
    ObservationTag,
    Period,
    Person,
    PupilGoal,
    PupilGoalStatus,
    Reflection,
    ReflectionGoal,
    Role,
    RubricLevel,
    School,
)

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
ZONE = ZoneInfo("Europe/Amsterdam")
FIRST_NAMES = [
    "Sam",
    "Noor",
    "Daan",
    "Emma",
    "Liam",
    "Zoë",
    "Mohammed",
    "Julia",
    "Lucas",
    "Sara",
    "Milan",
    "Fenna",
    "Bram",
    "Yara",
    "Finn",
    "Lotte",
    "Ayoub",
    "Tess",
    "Jesse",
    "Anna",
    "Kacper",
    "Elif",
    "Thijs",
    "Maud",
    "Ravi",
    "Nina",
    "Olivier",
    "Iris",
    "Sem",
    "Chloé",
]
LAST_NAMES = [
    "de Vries",
    "Jansen",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "El Amrani",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
    "de Wit",
    "Dijkstra",
    "Smits",
    "Nowak",
    "Yılmaz",
    "Kok",
    "Jacobs",
    "Sharma",
    "Vermeulen",
    "van den Berg",
    "Willems",
    "van Dijk",
    "Hoogendoorn",
]
# The lines each pupil has a goal on in the last period, by goal code prefix or code.
PERIOD_LINES = (
    ("1.1a", "1.1b", "1.1c"),
    ("1.2a", "1.2b", "1.2d"),
    ("RN",),
    ("SW",),
    ("RF",),
    ("LS",),
)
TAGS = ("samenwerken", "inzet", "rekenen", "lezen", "planning", "presenteren")
NOTES = (
    "Werkte geconcentreerd aan de opdracht",
    "Hielp een klasgenoot met uitleg",
    "Vond het lastig om te beginnen",
    "Stelde een goede vraag in de kring",
    "Presenteerde trots het werk",
)


@dataclass
class SchoolYear:
    school_id: int
    group_id: int
    teacher_id: int
    co_teacher_id: int
    pupil_ids: list[int]
    first_day: date
    last_day: date  # "today" for the overview: the last school day of the year
    rows: dict[str, int] = field(default_factory=dict)


def school_days(first: date, count: int) -> list[date]:
    days: list[date] = []
    day = first
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZONE).astimezone(UTC)


async def _insert(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Rows in one statement per chunk; their new ids in the order given."""
    ids: list[int] = []
    for start in range(0, len(rows), 2000):
        chunk = rows[start : start + 2000]
        result = await session.execute(
            insert(model).returning(model.id, sort_by_parameter_order=True), chunk
        )
        ids += [row[0] for row in result]
    return ids


async def _insert_plain(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 2000):
        await session.execute(insert(model), rows[start : start + 2000])


async def generate_school_year(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    pupils: int = 30,
    days: int = 200,
    photos_per_week: int = 3,
    notes_per_week: int = 2,
    first_day: date = date(2025, 9, 1),
    seed: int = 1,
) -> SchoolYear:
    rng = random.Random(seed)
    calendar = school_days(first_day, days)
    weeks = sorted({day - timedelta(days=day.weekday()) for day in calendar})
    async with session_factory() as session, session.begin():
        school = School(name="De Regenboog")
        session.add(school)
        await session.flush()
        for name in ("goalset-natuurkunde-vwo3-h1.csv", "goalset-vaardigheden.csv"):
            await import_goal_set(session, school=school, path=SAMPLES / name, name=None)
        group = Group(
            school_id=school.id,
            name="Groep 6a",
            school_year=f"{first_day.year}-{first_day.year + 1}",
            goal_mode=GoalMode.TEACHER_LED,
        )
        session.add(group)
        await session.flush()
        people = [
            {"external_id": "T1", "role": Role.TEACHER, "display_name": "Juf Anouk"},
            {"external_id": "T2", "role": Role.TEACHER, "display_name": "Meester Bram"},
        ] + [
            {
                "external_id": f"P{index + 1}",
                "role": Role.PUPIL,
                "display_name": f"{FIRST_NAMES[index % len(FIRST_NAMES)]} "
                f"{LAST_NAMES[(index * 7) % len(LAST_NAMES)]}"
                + (f" {index // len(FIRST_NAMES) + 1}" if index >= len(FIRST_NAMES) else ""),
            }
            for index in range(pupils)
        ]
        person_ids = await _insert(
            session, Person, [{**p, "school_id": school.id, "preferences": {}} for p in people]
        )
        teacher_id, co_teacher_id, *pupil_ids = person_ids
        await _insert_plain(
            session,
            GroupMembership,
            [
                {"group_id": group.id, "person_id": person_id, "is_mentor": person_id == teacher_id}
                for person_id in person_ids
            ],
        )
        goals = {
            code: (goal_id, line_id, goal_set_id)
            for code, goal_id, line_id, goal_set_id in await session.execute(
                select(Goal.code, Goal.id, Goal.learning_line_id, Goal.goal_set_id)
            )
        }
        rubric = {
            (goal_set_id, position): level_id
            for level_id, goal_set_id, position in await session.execute(
                select(RubricLevel.id, RubricLevel.goal_set_id, RubricLevel.position)
            )
        }
        period = Period(
            school_id=school.id,
            group_id=group.id,
            name="Periode 5",
            starts_on=calendar[-min(30, len(calendar))],
            ends_on=calendar[-1] + timedelta(days=14),
        )
        session.add(period)
        await session.flush()
        pupil_goal_rows = []
        chosen: dict[int, list[str]] = {}
        for pupil_id in pupil_ids:
            codes = [rng.choice(options) for options in PERIOD_LINES]
            chosen[pupil_id] = codes
            pupil_goal_rows += [
                {
                    "pupil_id": pupil_id,
                    "goal_id": goals[code][0],
                    "period_id": period.id,
                    "chosen_by": ChosenBy.PUPIL,
                    "status": PupilGoalStatus.ACTIVE,
                }
                for code in codes
            ]
        # A few pupils proposed a harder goal on the first line; it waits for a teacher.
        for pupil_id in rng.sample(pupil_ids, k=max(1, pupils // 10)):
            harder = next(code for code in PERIOD_LINES[0] if code not in chosen[pupil_id])
            pupil_goal_rows.append(
                {
                    "pupil_id": pupil_id,
                    "goal_id": goals[harder][0],
                    "period_id": period.id,
                    "chosen_by": ChosenBy.PUPIL,
                    "status": PupilGoalStatus.PROPOSED,
                }
            )
        await _insert_plain(session, PupilGoal, pupil_goal_rows)

        # Some pupils have had a hard few days lately: their wellbeing signal shows.
        struggling = set(rng.sample(pupil_ids, k=max(1, pupils // 10)))
        reflection_rows: list[dict[str, Any]] = []
        reflection_goals = []
        for pupil_id in pupil_ids:
            for index, day in enumerate(calendar):
                low = pupil_id in struggling and index >= len(calendar) - 3
                reflection_rows.append(
                    {
                        "pupil_id": pupil_id,
                        "on_date": day,
                        "how_it_went": rng.randint(1, 4),
                        "effort": rng.randint(2, 4),
                        "wellbeing": rng.randint(1, 2) if low else rng.choice((2, 3, 3, 4, 4)),
                        "text": "Ging goed vandaag" if rng.random() < 0.3 else None,
                        "next_step": "Morgen verder" if rng.random() < 0.5 else None,
                        "created_at": _at(day, 14, 30),
                    }
                )
                reflection_goals.append(rng.choice(chosen[pupil_id]))
        # This week, a few pupils have not reflected yet.
        skipped = set(rng.sample(pupil_ids, k=max(1, pupils // 6)))
        keep = [
            index
            for index, row in enumerate(reflection_rows)
            if not (row["pupil_id"] in skipped and row["on_date"] >= weeks[-1])
        ]
        reflection_rows = [reflection_rows[index] for index in keep]
        reflection_goals = [reflection_goals[index] for index in keep]
        reflection_ids = await _insert(session, Reflection, reflection_rows)
        await _insert_plain(
            session,
            ReflectionGoal,
            [
                {"reflection_id": reflection_id, "goal_id": goals[code][0]}
                for reflection_id, code in zip(reflection_ids, reflection_goals, strict=True)
            ],
        )

        evidence_rows = []
        evidence_goals = []
        note_rows = []
        note_meta = []
        for pupil_id in pupil_ids:
            for week in weeks:
                week_days = [day for day in calendar if week <= day < week + timedelta(days=7)]
                for _ in range(photos_per_week):
                    day = rng.choice(week_days)
                    evidence_rows.append(
                        {
                            "pupil_id": pupil_id,
                            "kind": EvidenceKind.PHOTO,
                            "caption": "Mijn werk" if rng.random() < 0.6 else None,
                            "shared_with_parents": rng.random() < 0.5,
                            "created_at": _at(day, rng.randint(9, 15), rng.randint(0, 59)),
                            "updated_at": _at(day, 15),
                        }
                    )
                    evidence_goals.append(rng.choice(chosen[pupil_id]))
                for _ in range(notes_per_week):
                    day = rng.choice(week_days)
                    code = rng.choice(chosen[pupil_id])
                    tag = rng.choice(TAGS)
                    note_rows.append(
                        {
                            "author_id": rng.choice((teacher_id, co_teacher_id)),
                            "goal_id": goals[code][0] if rng.random() < 0.5 else None,
                            "text": f"{rng.choice(NOTES)} #{tag}",
                            "is_private": rng.random() < 0.7,
                            "created_at": _at(day, rng.randint(8, 15), rng.randint(0, 59)),
                        }
                    )
                    note_meta.append((pupil_id, tag))
        evidence_ids = await _insert(session, Evidence, evidence_rows)
        await _insert_plain(
            session,
            EvidenceGoal,
            [
                {"evidence_id": evidence_id, "goal_id": goals[code][0]}
                for evidence_id, code in zip(evidence_ids, evidence_goals, strict=True)
            ],
        )
        note_ids = await _insert(session, Observation, note_rows)
        await _insert_plain(
            session,
            ObservationPupil,
            [
                {"observation_id": note_id, "pupil_id": pupil_id}
                for note_id, (pupil_id, _tag) in zip(note_ids, note_meta, strict=True)
            ],
        )
        await _insert_plain(
            session,
            ObservationTag,
            [
                {"observation_id": note_id, "tag": tag}
                for note_id, (_pupil, tag) in zip(note_ids, note_meta, strict=True)
            ],
        )

        assessment_rows = []
        period_days = [day for day in calendar if day >= period.starts_on]
        for pupil_id in pupil_ids:
            for code in chosen[pupil_id]:
                goal_id, _line_id, goal_set_id = goals[code]
                level = rng.randint(1, 2)
                for by_role, every in ((ChosenBy.PUPIL, 10), (ChosenBy.TEACHER, 15)):
                    if rng.random() < 0.2:
                        continue  # not every goal has every kind of level yet
                    for day in period_days[rng.randint(0, every - 1) :: every]:
                        level = min(4, level + (rng.random() < 0.15))
                        level_id = rubric.get((goal_set_id, level))
                        assessment_rows.append(
                            {
                                "pupil_id": pupil_id,
                                "goal_id": goal_id,
                                "rubric_level_id": level_id,
                                "level": None if level_id is not None else level,
                                "by_role": by_role,
                                "assessor_id": pupil_id
                                if by_role is ChosenBy.PUPIL
                                else teacher_id,
                                "assessed_at": _at(day, 11),
                            }
                        )
        await _insert_plain(session, Assessment, assessment_rows)
        return SchoolYear(
            school_id=school.id,
            group_id=group.id,
            teacher_id=teacher_id,
            co_teacher_id=co_teacher_id,
            pupil_ids=pupil_ids,
            first_day=calendar[0],
            last_day=calendar[-1],
            rows={
                "reflection": len(reflection_rows),
                "reflection_goal": len(reflection_rows),
                "evidence": len(evidence_rows),
                "observation": len(note_rows),
                "assessment": len(assessment_rows),
                "pupil_goal": len(pupil_goal_rows),
            },
        )
