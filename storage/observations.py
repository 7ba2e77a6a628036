"""Teachers' observations (notes about pupils), a pupil's timeline, search and "not seen yet".

Who may see what is decided by `storage.policy`, never in the handlers: a teacher reads and
writes only about pupils of their own current groups; pupils and parents never get private
notes. Every function that returns notes takes the viewer's id and role, so a later pupil or
parent view cannot leak a private note by forgetting a filter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.goals import chosen_goals, pupil_context
from storage.models import (
    Assessment,
    Evidence,
    Goal,
    MediaFile,
    Observation,
    ObservationPupil,
    ObservationTag,
    Person,
    PupilGoal,
    Reflection,
    Role,
    RubricLevel,
    School,
    Talk,
    TalkStatus,
)
from storage.policy import (
    acts_as_teacher,
    is_teacher,
    may_see_pupil,
    note_visible_to,
    notes_visible_to,
    pupils_taught_by,
    talks_visible_to,
    teaches_pupil,
    work_visible_to,
)
from storage.schooltime import calendar_of
from storage.types import folded

MAX_TAG_LENGTH = 40
TAG_PATTERN = re.compile(r"#(\w+)")
# Names longer than this many words are not looked for at the start of a note.
MAX_NAME_WORDS = 4
# Monday to Friday: "not seen in N school days" counts these, holidays aside.
SCHOOL_WEEKDAYS = frozenset({0, 1, 2, 3, 4})
CONNECTIVES = frozenset({"en", "&", "and", "+"})


class ObservationRefusedError(Exception):
    """A pupil or goal the author may not write about: nothing was saved."""


@dataclass(frozen=True)
class PupilRef:
    id: int
    name: str


normalise = folded


def tags_in(text: str | None) -> list[str]:
    """The #words of a note, lower case, each once, in the order written."""
    tags: list[str] = []
    for match in TAG_PATTERN.finditer(text or ""):
        tag = match.group(1).casefold()[:MAX_TAG_LENGTH]
        if tag not in tags:
            tags.append(tag)
    return tags


async def pupils_of_teacher(
    session: AsyncSession, *, teacher_id: int, group_id: int | None = None
) -> list[PupilRef]:
    """The pupils of the teacher's current groups, by name; empty for anyone not a teacher.

    With `group_id`, only that group's pupils (the teacher's active group), and none when the
    teacher is not in that group.
    """
    if not await is_teacher(session, teacher_id):
        return []
    taught = pupils_taught_by(teacher_id, group_id=group_id)
    rows = (
        await session.execute(
            select(Person.id, Person.display_name)
            .where(Person.id.in_(taught))
            .order_by(Person.display_name, Person.id)
        )
    ).all()
    return [PupilRef(pupil_id, name) for pupil_id, name in rows]


# --- names in a one-line note ------------------------------------------------------------


@dataclass(frozen=True)
class ParsedNote:
    """What `/obs Sam, Noor werkten goed samen` says: who, and the note itself."""

    pupil_ids: tuple[int, ...]
    unknown: tuple[str, ...]  # names that match none of the teacher's pupils
    ambiguous: tuple[str, ...]  # names that match several
    text: str


def pupils_named(pupils: Sequence[PupilRef], name: str) -> list[PupilRef]:
    """Pupils whose first name or full name is `name` (case and accents ignored)."""
    wanted = normalise(name)
    if not wanted:
        return []
    return [
        pupil
        for pupil in pupils
        if normalise(pupil.name) == wanted or normalise(pupil.name).split()[0] == wanted
    ]


def pupils_matching(pupils: Sequence[PupilRef], fragment: str) -> list[PupilRef]:
    """Pupils with `fragment` anywhere in their name, for "type part of a name"."""
    wanted = normalise(fragment)
    return [pupil for pupil in pupils if wanted and wanted in normalise(pupil.name)]


def _leading_name(
    pupils: Sequence[PupilRef], words: list[str]
) -> tuple[int, list[PupilRef]] | None:
    """The longest run of first words that is a pupil's name: (number of words, matches)."""
    for count in range(min(len(words), MAX_NAME_WORDS), 0, -1):
        found = pupils_named(pupils, " ".join(words[:count]))
        if found:
            return count, found
    return None


def _looks_like_name(words: list[str]) -> bool:
    # Names are written with a capital; "goed gedaan" after a comma is part of the note.
    return 0 < len(words) <= 2 and all(word[:1].isupper() for word in words)


def parse_note(pupils: Sequence[PupilRef], text: str) -> ParsedNote:
    """Split "Sam, Noor werkten goed samen #samenwerken" into pupils and the note.

    The rule: comma-separated parts at the start are names as long as they are one (a whole
    part naming a pupil, or a short capitalised part naming nobody: an unknown name). The
    first part that is not a whole name starts the note; a pupil's name at its start ("Noor
    werkten ...", also "Sam en Noor werkten ...") still counts as a name. Text without any
    leading name has its first word taken as an unknown name, since /obs always starts with
    whom it is about.
    """
    found: list[int] = []
    unknown: list[str] = []
    ambiguous: list[str] = []

    def take(name: str, matches: list[PupilRef]) -> None:
        if len(matches) > 1:
            ambiguous.append(name)
        elif matches[0].id not in found:
            found.append(matches[0].id)

    parts = text.split(",")
    note = ""
    for index, part in enumerate(parts):
        words = part.split()
        more = index + 1 < len(parts)
        if not words:
            continue
        whole = pupils_named(pupils, part)
        if whole and more:
            take(part.strip(), whole)
            continue
        leading = _leading_name(pupils, words)
        if leading is not None:
            rest = words
            while leading is not None:
                count, matches = leading
                take(" ".join(rest[:count]), matches)
                rest = rest[count:]
                if len(rest) > 1 and rest[0].casefold() in CONNECTIVES:
                    leading = _leading_name(pupils, rest[1:])
                    if leading is not None:
                        rest = rest[1:]
                else:
                    leading = None
            note = ",".join([" ".join(rest), *parts[index + 1 :]])
            break
        if more and _looks_like_name(words):
            unknown.append(part.strip())
            continue
        if not found and not unknown and not ambiguous:
            unknown.append(words[0])
            note = ",".join([" ".join(words[1:]), *parts[index + 1 :]])
        else:
            note = ",".join(parts[index:])
        break
    return ParsedNote(tuple(found), tuple(unknown), tuple(ambiguous), note.strip(" ,"))


# --- writing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoalChoice:
    id: int
    text: str


async def current_goals_of(
    session: AsyncSession, *, teacher_id: int, pupil_ids: Iterable[int], today: date
) -> list[GoalChoice]:
    """The goals these pupils work on this period, each once (only pupils the teacher has)."""
    goals: dict[int, GoalChoice] = {}
    for pupil_id in pupil_ids:
        if not await teaches_pupil(session, teacher_id=teacher_id, pupil_id=pupil_id):
            continue
        context = await pupil_context(session, pupil_id=pupil_id, today=today)
        if context.period_id is None:
            continue
        for chosen in await chosen_goals(session, pupil_id=pupil_id, period_id=context.period_id):
            goals.setdefault(chosen.goal.id, GoalChoice(chosen.goal.id, chosen.goal.text))
    return list(goals.values())


async def create_observation(
    session: AsyncSession,
    *,
    author_id: int,
    pupil_ids: Sequence[int],
    text: str | None,
    goal_id: int | None = None,
    is_private: bool = True,
    voice_file_id: int | None = None,
    photo_file_id: int | None = None,
) -> Observation:
    """Save a note about pupils the author teaches now; anything else refuses the whole note."""
    pupils = sorted(set(pupil_ids))
    if not pupils or not await is_teacher(session, author_id):
        raise ObservationRefusedError
    for pupil_id in pupils:
        if not await teaches_pupil(session, teacher_id=author_id, pupil_id=pupil_id):
            raise ObservationRefusedError
    if goal_id is not None:
        # Only a goal one of these pupils has (had) may be linked: ids from buttons are forged
        # easily, and a goal of another school would show up in a pupil's timeline.
        linked = await session.scalar(
            select(PupilGoal.id).where(PupilGoal.goal_id == goal_id, PupilGoal.pupil_id.in_(pupils))
        )
        if linked is None:
            raise ObservationRefusedError
    observation = Observation(
        author_id=author_id,
        goal_id=goal_id,
        text=text,
        is_private=is_private,
        voice_file_id=voice_file_id,
        photo_file_id=photo_file_id,
    )
    session.add(observation)
    await session.flush()
    session.add_all(ObservationPupil(observation_id=observation.id, pupil_id=p) for p in pupils)
    session.add_all(ObservationTag(observation_id=observation.id, tag=t) for t in tags_in(text))
    await session.flush()
    return observation


# --- not seen yet ------------------------------------------------------------------------------


def window_start(
    today: date, school_days: int, *, is_school_day: Callable[[date], bool] | None = None
) -> date:
    """The first day of the last `school_days` school days up to and including today.

    Without a calendar, Monday to Friday; with the school's, its holidays do not count: after
    the autumn break a teacher is not told that nobody has been seen for two weeks.
    """
    counts = is_school_day or (lambda day: day.weekday() in SCHOOL_WEEKDAYS)
    day = today
    counted = 1 if counts(day) else 0
    # A bound on the walk back, for a calendar without school days.
    for _ in range(366):
        if counted >= school_days:
            break
        day -= timedelta(days=1)
        if counts(day):
            counted += 1
    return day


async def unseen_pupils(
    session: AsyncSession, *, teacher_id: int, today: date, group_id: int | None = None
) -> tuple[int, list[PupilRef]]:
    """Pupils of the teacher's groups (or of one of them) without any teacher's note in the
    school's window.

    Returns the window in school days (`School.unobserved_days`) and the pupils, by name.
    """
    if not await is_teacher(session, teacher_id):
        return 0, []
    teacher = await session.get(Person, teacher_id)
    assert teacher is not None
    school = await session.get(School, teacher.school_id)
    assert school is not None
    days = school.unobserved_days or 10
    calendar = await calendar_of(session, school_id=school.id)
    start = window_start(
        today, days, is_school_day=calendar.is_school_day if calendar is not None else None
    )
    since = datetime.combine(start, time.min, tzinfo=ZoneInfo(school.timezone))
    seen = (
        select(ObservationPupil.pupil_id)
        .join(Observation, Observation.id == ObservationPupil.observation_id)
        .where(Observation.created_at >= since)
    )
    seen_ids = set((await session.scalars(seen)).all())
    pupils = [
        pupil
        for pupil in await pupils_of_teacher(session, teacher_id=teacher_id, group_id=group_id)
        if pupil.id not in seen_ids
    ]
    return days, pupils


# --- reading -------------------------------------------------------------------------------


class ItemKind:
    OBSERVATION = "obs"
    REFLECTION = "refl"
    EVIDENCE = "work"
    ASSESSMENT = "level"
    TALK = "talk"
    ALL = ("obs", "refl", "work", "level", "talk")


@dataclass(frozen=True)
class TimelineItem:
    kind: str
    id: int
    at: datetime
    text: str
    author: str | None = None
    tags: tuple[str, ...] = ()
    is_private: bool = False
    pupils: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TimelinePage:
    pupil: PupilRef
    items: list[TimelineItem]
    page: int
    has_more: bool


async def _observation_items(
    session: AsyncSession,
    observations: Sequence[Observation],
) -> list[TimelineItem]:
    if not observations:
        return []
    ids = [observation.id for observation in observations]
    tags: dict[int, list[str]] = {}
    for observation_id, tag in await session.execute(
        select(ObservationTag.observation_id, ObservationTag.tag)
        .where(ObservationTag.observation_id.in_(ids))
        .order_by(ObservationTag.tag)
    ):
        tags.setdefault(observation_id, []).append(tag)
    names: dict[int, list[str]] = {}
    for observation_id, name in await session.execute(
        select(ObservationPupil.observation_id, Person.display_name)
        .join(Person, Person.id == ObservationPupil.pupil_id)
        .where(ObservationPupil.observation_id.in_(ids))
        .order_by(Person.display_name)
    ):
        names.setdefault(observation_id, []).append(name)
    authors = {
        person_id: name
        for person_id, name in await session.execute(
            select(Person.id, Person.display_name).where(
                Person.id.in_({o.author_id for o in observations if o.author_id})
            )
        )
    }
    goals = {
        goal_id: text
        for goal_id, text in await session.execute(
            select(Goal.id, Goal.text).where(
                Goal.id.in_({o.goal_id for o in observations if o.goal_id})
            )
        )
    }
    return [
        TimelineItem(
            kind=ItemKind.OBSERVATION,
            id=observation.id,
            at=observation.created_at,
            text=observation.text or "",
            author=authors.get(observation.author_id or 0),
            tags=tuple(tags.get(observation.id, ())),
            is_private=observation.is_private,
            pupils=tuple(names.get(observation.id, ())),
            details={
                "goal": goals.get(observation.goal_id or 0),
                "voice": observation.voice_file_id is not None,
                "photo": observation.photo_file_id is not None,
            },
        )
        for observation in observations
    ]


async def timeline(
    session: AsyncSession,
    *,
    viewer_id: int,
    viewer_role: Role,
    pupil_id: int,
    kinds: Sequence[str] = ItemKind.ALL,
    tag: str | None = None,
    page: int = 0,
    per_page: int = 5,
) -> TimelinePage | None:
    """A pupil's portfolio newest first, or None when the viewer may not see this pupil."""
    if not await may_see_pupil(
        session, viewer_id=viewer_id, viewer_role=viewer_role, pupil_id=pupil_id
    ):
        return None
    pupil = await session.get(Person, pupil_id)
    assert pupil is not None
    # Each source gives at most what the page could need; merging them sorts the page.
    wanted = (page + 1) * per_page + 1
    items: list[TimelineItem] = []
    if ItemKind.OBSERVATION in kinds:
        query = (
            select(Observation)
            .join(ObservationPupil, ObservationPupil.observation_id == Observation.id)
            .where(ObservationPupil.pupil_id == pupil_id, *notes_visible_to(viewer_role))
            .order_by(Observation.created_at.desc(), Observation.id.desc())
            .limit(wanted)
        )
        if tag:
            query = query.join(
                ObservationTag,
                and_(
                    ObservationTag.observation_id == Observation.id,
                    ObservationTag.tag == tag.casefold(),
                ),
            )
        items += await _observation_items(session, (await session.scalars(query)).all())
    if tag is None and ItemKind.REFLECTION in kinds:
        reflections = await session.scalars(
            select(Reflection)
            .where(Reflection.pupil_id == pupil_id)
            .order_by(Reflection.created_at.desc(), Reflection.id.desc())
            .limit(wanted)
        )
        items += [
            TimelineItem(
                kind=ItemKind.REFLECTION,
                id=reflection.id,
                at=reflection.created_at,
                text=reflection.text or reflection.other_work or "",
                details={
                    "how": reflection.how_it_went,
                    "effort": reflection.effort,
                    "wellbeing": reflection.wellbeing,
                    "next_step": reflection.next_step,
                },
            )
            for reflection in reflections
        ]
    if tag is None and ItemKind.EVIDENCE in kinds:
        query_evidence = select(Evidence).where(
            Evidence.pupil_id == pupil_id, *work_visible_to(viewer_role)
        )
        evidence = await session.scalars(
            query_evidence.order_by(Evidence.created_at.desc(), Evidence.id.desc()).limit(wanted)
        )
        items += [
            TimelineItem(
                kind=ItemKind.EVIDENCE,
                id=item.id,
                at=item.created_at,
                text=item.caption or "",
                details={"kind": item.kind.value},
            )
            for item in evidence
        ]
    if tag is None and ItemKind.ASSESSMENT in kinds:
        rows = await session.execute(
            select(Assessment, Goal.text, RubricLevel.name)
            .join(Goal, Goal.id == Assessment.goal_id)
            .outerjoin(RubricLevel, RubricLevel.id == Assessment.rubric_level_id)
            .where(Assessment.pupil_id == pupil_id)
            .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
            .limit(wanted)
        )
        items += [
            TimelineItem(
                kind=ItemKind.ASSESSMENT,
                id=assessment.id,
                at=assessment.assessed_at,
                text=goal_text,
                details={
                    "level": level_name or assessment.level,
                    "by": assessment.by_role.value,
                    "note": assessment.note,
                },
            )
            for assessment, goal_text, level_name in rows
        ]
    if tag is None and ItemKind.TALK in kinds:
        talks = select(Talk).where(
            Talk.pupil_id == pupil_id,
            Talk.status == TalkStatus.HELD,
            *talks_visible_to(viewer_id, viewer_role),
        )
        held = await session.scalars(
            talks.order_by(Talk.scheduled_at.desc(), Talk.id.desc()).limit(wanted)
        )
        items += [
            TimelineItem(
                kind=ItemKind.TALK,
                id=talk.id,
                at=talk.scheduled_at,
                text=talk.agreements or "",
                details={"kind": talk.kind.value},
            )
            for talk in held
        ]
    items.sort(key=lambda item: (item.at, item.id), reverse=True)
    start = page * per_page
    return TimelinePage(
        PupilRef(pupil.id, pupil.display_name),
        items[start : start + per_page],
        page,
        len(items) > start + per_page,
    )


async def tags_of_pupil(
    session: AsyncSession, *, viewer_id: int, viewer_role: Role, pupil_id: int, limit: int = 6
) -> list[str]:
    """The tags used most in notes about the pupil that the viewer may read, for filters."""
    if not await may_see_pupil(
        session, viewer_id=viewer_id, viewer_role=viewer_role, pupil_id=pupil_id
    ):
        return []
    rows = await session.execute(
        select(ObservationTag.tag, func.count().label("uses"))
        .join(Observation, Observation.id == ObservationTag.observation_id)
        .join(ObservationPupil, ObservationPupil.observation_id == Observation.id)
        .where(ObservationPupil.pupil_id == pupil_id, *notes_visible_to(viewer_role))
        .group_by(ObservationTag.tag)
        .order_by(func.count().desc(), ObservationTag.tag)
        .limit(limit)
    )
    return [tag for tag, _uses in rows]


async def search_observations(
    session: AsyncSession,
    *,
    viewer_id: int,
    viewer_role: Role,
    word: str,
    limit: int = 10,
) -> list[TimelineItem]:
    """Notes about pupils of the teacher's groups containing `word`, newest first.

    Only teachers search across pupils; for anyone else the answer is empty.
    """
    word = word.strip().lstrip("#")
    if not word or not await acts_as_teacher(session, person_id=viewer_id, role=viewer_role):
        return []
    word = folded(word)
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    about_my_pupils = select(ObservationPupil.observation_id).where(
        ObservationPupil.pupil_id.in_(pupils_taught_by(viewer_id))
    )
    observations = (
        await session.scalars(
            select(Observation)
            .where(
                Observation.id.in_(about_my_pupils),
                # The folded copy: "Chloe" finds "Chloé", "ELLA" finds "Ella".
                Observation.search_text.like(f"%{escaped}%", escape="\\"),
            )
            .order_by(Observation.created_at.desc(), Observation.id.desc())
            .limit(limit)
        )
    ).all()
    return await _observation_items(session, observations)


@dataclass(frozen=True)
class NoteMedia:
    voice: MediaFile | None
    photo: MediaFile | None


async def note_media(
    session: AsyncSession, *, viewer_id: int, viewer_role: Role, observation_id: int
) -> NoteMedia | None:
    """The voice message and photo of a note, for someone who may read that note; else None."""
    note = await session.get(Observation, observation_id)
    if note is None or not note_visible_to(viewer_role, note):
        return None
    pupils = (
        await session.scalars(
            select(ObservationPupil.pupil_id).where(ObservationPupil.observation_id == note.id)
        )
    ).all()
    for pupil_id in pupils:
        if await may_see_pupil(
            session, viewer_id=viewer_id, viewer_role=viewer_role, pupil_id=pupil_id
        ):
            break
    else:
        return None
    voice = await session.get(MediaFile, note.voice_file_id) if note.voice_file_id else None
    photo = await session.get(MediaFile, note.photo_file_id) if note.photo_file_id else None
    return NoteMedia(voice, photo)
