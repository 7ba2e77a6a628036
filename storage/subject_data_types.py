"""Everything the bot keeps about one pupil, as plain frozen data: what the export (the right
of access, art. 15) is made of. `storage.subject_data.collect_pupil_data` fills it in; the
field names are those of the export's data.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class StoredFileRef:
    """A file of the pupil in the media directory (images are already metadata-free); its
    place there follows from `sha256` and `mime_type`, as the media store names files."""

    media_file_id: int
    sha256: str
    kind: str
    mime_type: str
    size_bytes: int
    width: int | None
    height: int | None


@dataclass(frozen=True)
class GoalRef:
    id: int
    code: str
    text: str


@dataclass(frozen=True)
class PupilInfo:
    id: int
    external_id: str
    name: str
    school: str
    locale: str | None
    groups: tuple[str, ...]
    parents: tuple[str, ...]
    has_telegram_account: bool
    left_school_on: date | None
    created_at: datetime


@dataclass(frozen=True)
class PupilGoalItem:
    id: int
    goal: GoalRef
    learning_line: str
    goal_set: str
    period: str
    period_starts_on: date
    period_ends_on: date
    status: str
    chosen_by: str
    level_aimed: str | None
    activities: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class AssessmentItem:
    id: int
    goal: GoalRef
    level: str | None
    by: str
    assessor: str | None
    note: str | None
    assessed_at: datetime


@dataclass(frozen=True)
class WeekPlanEntry:
    id: int
    goal: GoalRef
    text: str
    done_at: datetime | None


@dataclass(frozen=True)
class WeekPlanItemData:
    id: int
    week_start: date
    items: tuple[WeekPlanEntry, ...]


@dataclass(frozen=True)
class ReflectionItem:
    id: int
    on_date: date
    how_it_went: int | None
    effort: int | None
    quality: int | None
    wellbeing: int | None
    motivation: int | None
    minutes: int | None
    other_work: str | None
    text: str | None
    next_step: str | None
    goals: tuple[GoalRef, ...]
    voice: StoredFileRef | None
    created_at: datetime


@dataclass(frozen=True)
class FeedbackItem:
    id: int
    author_role: str
    target: str
    target_id: int | None  # the evidence, plan or pupil goal
    top: str | None
    tip: str | None
    created_at: datetime


@dataclass(frozen=True)
class EvidenceItem:
    id: int
    kind: str
    caption: str | None
    outside_school: bool
    shared_with_parents: bool
    goals: tuple[GoalRef, ...]
    files: tuple[StoredFileRef, ...]
    original_names: tuple[str | None, ...]
    created_at: datetime


@dataclass(frozen=True)
class ObservationItem:
    id: int
    author: str | None
    goal: GoalRef | None
    text: str | None
    tags: tuple[str, ...]
    is_private: bool
    photo: StoredFileRef | None
    voice: StoredFileRef | None
    created_at: datetime


@dataclass(frozen=True)
class PlanStepItem:
    position: int
    what: str
    who: str | None
    when: str | None


@dataclass(frozen=True)
class LearningPlanItem:
    id: int
    idea: str
    motivation: str | None
    prior_knowledge: str | None
    outcome: str | None
    needs: str | None
    goal: GoalRef | None
    steps: tuple[PlanStepItem, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class TalkItem:
    id: int
    kind: str
    status: str
    scheduled_at: datetime
    duration_minutes: int
    place: str | None
    organiser: str | None
    participants: tuple[str, ...]
    preparation: dict[str, Any]
    notes: str | None
    agreements: str | None
    evidence_ids: tuple[int, ...]
    created_at: datetime


@dataclass(frozen=True)
class PupilData:
    """Everything about one pupil, in the order the export shows it."""

    pupil: PupilInfo
    school_locale: str
    school_timezone: str
    include_private_notes: bool
    exported_at: datetime
    goals: tuple[PupilGoalItem, ...]
    assessments: tuple[AssessmentItem, ...]
    week_plans: tuple[WeekPlanItemData, ...]
    reflections: tuple[ReflectionItem, ...]
    evidence: tuple[EvidenceItem, ...]
    feedback: tuple[FeedbackItem, ...]
    learning_plans: tuple[LearningPlanItem, ...]
    observations: tuple[ObservationItem, ...]
    talks: tuple[TalkItem, ...]
    files: tuple[StoredFileRef, ...] = field(default=())  # every file referred to above, once
