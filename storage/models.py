"""The whole data model of the portfolio, as SQLAlchemy 2 declarative models.

Conventions: every timestamp is aware UTC (`UTCDateTime`); dates that are school days
(`on_date`, `week_start`) are plain dates in the school's timezone. Choices are stored as short
strings with a CHECK constraint, so the database refuses values the code does not know.
Every schema change is an Alembic migration under storage/migrations/.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import UTCDateTime, folded, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


def _choice(enum_class: type[enum.StrEnum], name: str) -> Enum:
    """A portable enum column: VARCHAR plus a named CHECK constraint, no native type."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda members: [member.value for member in members],
    )


class Role(enum.StrEnum):
    PUPIL = "pupil"
    TEACHER = "teacher"
    PARENT = "parent"
    ADMIN = "admin"


class GoalMode(enum.StrEnum):
    TEACHER_LED = "teacher_led"
    PUPIL_LED = "pupil_led"


class ChosenBy(enum.StrEnum):
    PUPIL = "pupil"
    TEACHER = "teacher"


class PupilGoalStatus(enum.StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    ACHIEVED = "achieved"
    DROPPED = "dropped"
    REJECTED = "rejected"


class EvidenceKind(enum.StrEnum):
    PHOTO = "photo"
    DOCUMENT = "document"
    VOICE = "voice"
    VIDEO = "video"


class MediaKind(enum.StrEnum):
    IMAGE = "image"
    THUMBNAIL = "thumbnail"
    DOCUMENT = "document"
    VOICE = "voice"
    VIDEO = "video"


class Approval(enum.StrEnum):
    """Whether shared work waits for a teacher before parents see it (image consent)."""

    NOT_NEEDED = "not_needed"
    PENDING = "pending"
    APPROVED = "approved"
    PRIVATE = "private"


class FeedbackTarget(enum.StrEnum):
    EVIDENCE = "evidence"
    PLAN = "plan"
    GOAL = "goal"


class TalkKind(enum.StrEnum):
    LEARNING = "learning"
    COACH = "coach"
    TRIPARTITE = "tripartite"


class TalkStatus(enum.StrEnum):
    PLANNED = "planned"
    HELD = "held"
    CANCELLED = "cancelled"


class ReminderStatus(enum.StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    # Killed while the message was on its way: it may or may not have arrived. Not re-sent
    # (a duplicate is what a user notices), but kept visible for the operator.
    UNCERTAIN = "uncertain"
    FAILED = "failed"
    DROPPED = "dropped"
    CANCELLED = "cancelled"


# --- school and people -------------------------------------------------------------------


class School(Base):
    __tablename__ = "school"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Amsterdam")
    locale: Mapped[str] = mapped_column(String(8), default="nl")
    reflection_time: Mapped[time] = mapped_column(Time, default=time(14, 30))
    # ISO weekdays (1 = Monday) on which the school is open.
    school_days: Mapped[list[int]] = mapped_column(JSON, default=lambda: [1, 2, 3, 4, 5])
    quiet_hours_start: Mapped[time] = mapped_column(Time, default=time(20, 0))
    quiet_hours_end: Mapped[time] = mapped_column(Time, default=time(7, 30))
    # Schools differ in how they address parents ("je" or "u").
    parent_address_formal: Mapped[bool] = mapped_column(Boolean, default=False)
    evidence_shared_by_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # Other children may be in a photo and not every family allows images to be shared: with
    # this on, work a pupil shares waits for a teacher's approval before any parent sees it.
    shared_work_needs_approval: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    unobserved_days: Mapped[int] = mapped_column(SmallInteger, default=10)
    parent_summary_weekday: Mapped[int] = mapped_column(SmallInteger, default=5)
    parent_summary_time: Mapped[time] = mapped_column(Time, default=time(16, 0))
    retention_months: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    holidays: Mapped[list[Holiday]] = relationship(back_populates="school", cascade="all")


class Holiday(Base):
    __tablename__ = "holiday"
    __table_args__ = (CheckConstraint("ends_on >= starts_on", name="ordered"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)

    school: Mapped[School] = relationship(back_populates="holidays")


class Group(Base):
    """A class (stamgroep, klas, groep) in one school year."""

    __tablename__ = "school_group"
    __table_args__ = (UniqueConstraint("school_id", "name", "school_year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    school_year: Mapped[str] = mapped_column(String(9))
    goal_mode: Mapped[GoalMode] = mapped_column(
        _choice(GoalMode, "goal_mode"), default=GoalMode.TEACHER_LED
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Person(Base):
    """Someone the school knows: a pupil, teacher, parent or admin."""

    __tablename__ = "person"
    __table_args__ = (UniqueConstraint("school_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(_choice(Role, "role"))
    locale: Mapped[str | None] = mapped_column(String(8))
    preferences: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Set when Telegram says the user blocked the bot: no more prompts until they return.
    unreachable_since: Mapped[datetime | None]
    left_school_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Account(Base):
    """A Telegram user. It may hold several persons (a teacher who is also a parent)."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    active_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL")
    )
    # The language chosen with /taal before any person is linked.
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccountPerson(Base):
    __tablename__ = "account_person"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), primary_key=True
    )
    # A person belongs to one Telegram account at a time; a new invite moves it.
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True, unique=True
    )
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)


class Guardianship(Base):
    __tablename__ = "guardianship"

    parent_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    pupil_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class GroupMembership(Base):
    """A pupil or teacher in a group; memberships of earlier years are kept, ended."""

    __tablename__ = "group_membership"
    __table_args__ = (UniqueConstraint("group_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("school_group.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    is_mentor: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


# How invite.code_hash was made (storage.invites): "sha256" of the code, by versions before
# the invite secret; "hmac-sha256", keyed with the invite secret, since.
INVITE_SCHEME_SHA256 = "sha256"
INVITE_SCHEME_HMAC = "hmac-sha256"


class Invite(Base):
    """A single-use code that links a Telegram account to a person.

    Only a keyed hash of the code is stored: a copy of the database cannot be used to join,
    nor be searched for the codes without the invite secret, which is kept elsewhere.
    """

    __tablename__ = "invite"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The server default is the old scheme: during a rolling upgrade the previous version
    # still inserts plain hashes, without naming a scheme.
    code_scheme: Mapped[str] = mapped_column(
        String(16), default=INVITE_SCHEME_HMAC, server_default=INVITE_SCHEME_SHA256
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("account.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None]


class InviteAttempt(Base):
    """Every code a Telegram user typed, for the lockout after repeated wrong codes."""

    __tablename__ = "invite_attempt"
    __table_args__ = (Index("ix_invite_attempt_user_at", "telegram_user_id", "attempted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)


# --- goals ---------------------------------------------------------------------------------


class GoalSet(Base):
    __tablename__ = "goal_set"
    __table_args__ = (UniqueConstraint("school_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    has_rubric: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LearningLine(Base):
    __tablename__ = "learning_line"
    __table_args__ = (UniqueConstraint("goal_set_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    goal_set_id: Mapped[int] = mapped_column(ForeignKey("goal_set.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)


class Goal(Base):
    __tablename__ = "goal"
    __table_args__ = (UniqueConstraint("goal_set_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    goal_set_id: Mapped[int] = mapped_column(ForeignKey("goal_set.id", ondelete="CASCADE"))
    learning_line_id: Mapped[int] = mapped_column(
        ForeignKey("learning_line.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(String(500))
    position: Mapped[int] = mapped_column(Integer)


class GoalPrerequisite(Base):
    """Goal `goal_id` comes after `requires_goal_id` (lines need not be linear)."""

    __tablename__ = "goal_prerequisite"
    __table_args__ = (CheckConstraint("goal_id <> requires_goal_id", name="not_self"),)

    goal_id: Mapped[int] = mapped_column(
        ForeignKey("goal.id", ondelete="CASCADE"), primary_key=True
    )
    requires_goal_id: Mapped[int] = mapped_column(
        ForeignKey("goal.id", ondelete="CASCADE"), primary_key=True
    )


class RubricLevel(Base):
    """An ordered level of a goal set's rubric (beginner ... expert, or brons ... goud)."""

    __tablename__ = "rubric_level"
    __table_args__ = (UniqueConstraint("goal_set_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    goal_set_id: Mapped[int] = mapped_column(ForeignKey("goal_set.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(SmallInteger)
    name: Mapped[str] = mapped_column(String(64))


class RubricDescriptor(Base):
    """What a level looks like for one goal ("Ik plan mijn week zelf ...")."""

    __tablename__ = "rubric_descriptor"

    goal_id: Mapped[int] = mapped_column(
        ForeignKey("goal.id", ondelete="CASCADE"), primary_key=True
    )
    rubric_level_id: Mapped[int] = mapped_column(
        ForeignKey("rubric_level.id", ondelete="CASCADE"), primary_key=True
    )
    text: Mapped[str] = mapped_column(String(500))


class Period(Base):
    """The long cycle of 6-8 weeks."""

    __tablename__ = "period"
    __table_args__ = (CheckConstraint("ends_on > starts_on", name="ordered"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("school_group.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)


class PeriodGoal(Base):
    """A goal a teacher prepared for a group's period, at one of up to three tiers."""

    __tablename__ = "period_goal"
    __table_args__ = (
        UniqueConstraint("period_id", "group_id", "goal_id"),
        CheckConstraint("tier BETWEEN 1 AND 3", name="tier"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("period.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("school_group.id", ondelete="CASCADE"))
    goal_id: Mapped[int] = mapped_column(ForeignKey("goal.id", ondelete="CASCADE"))
    tier: Mapped[int] = mapped_column(SmallInteger, default=1)
    prepared_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))


class PupilGoal(Base):
    __tablename__ = "pupil_goal"
    __table_args__ = (UniqueConstraint("pupil_id", "goal_id", "period_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    goal_id: Mapped[int] = mapped_column(ForeignKey("goal.id", ondelete="CASCADE"))
    period_id: Mapped[int] = mapped_column(ForeignKey("period.id", ondelete="CASCADE"))
    level_aimed_id: Mapped[int | None] = mapped_column(
        ForeignKey("rubric_level.id", ondelete="SET NULL")
    )
    chosen_by: Mapped[ChosenBy] = mapped_column(_choice(ChosenBy, "chosen_by"))
    status: Mapped[PupilGoalStatus] = mapped_column(
        _choice(PupilGoalStatus, "pupil_goal_status"), default=PupilGoalStatus.ACTIVE
    )
    confirmed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL")
    )
    talk_id: Mapped[int | None] = mapped_column(ForeignKey("talk.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Activity(Base):
    """Work towards a goal: a teacher's offer for a group, or a pupil's own idea."""

    __tablename__ = "activity"

    id: Mapped[int] = mapped_column(primary_key=True)
    goal_id: Mapped[int] = mapped_column(ForeignKey("goal.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("school_group.id", ondelete="CASCADE"))
    pupil_goal_id: Mapped[int | None] = mapped_column(
        ForeignKey("pupil_goal.id", ondelete="CASCADE")
    )
    text: Mapped[str] = mapped_column(String(300))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WeekPlan(Base):
    __tablename__ = "week_plan"
    __table_args__ = (UniqueConstraint("pupil_id", "week_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    week_start: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WeekPlanItem(Base):
    __tablename__ = "week_plan_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    week_plan_id: Mapped[int] = mapped_column(
        ForeignKey("week_plan.id", ondelete="CASCADE"), index=True
    )
    pupil_goal_id: Mapped[int] = mapped_column(ForeignKey("pupil_goal.id", ondelete="CASCADE"))
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activity.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(String(300))
    done_at: Mapped[datetime | None]


# --- files ---------------------------------------------------------------------------------


class MediaFile(Base):
    """A stored file, addressed by the sha256 of its bytes, so duplicates cost nothing."""

    __tablename__ = "media_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[MediaKind] = mapped_column(_choice(MediaKind, "media_kind"))
    mime_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- the short cycle -------------------------------------------------------------------------


class Reflection(Base):
    """The daily reflection. Scales are 1 (low) to 4 (high)."""

    __tablename__ = "reflection"
    __table_args__ = (
        Index("ix_reflection_pupil_date", "pupil_id", "on_date"),
        CheckConstraint("how_it_went BETWEEN 1 AND 4", name="how_it_went"),
        CheckConstraint("effort BETWEEN 1 AND 4", name="effort"),
        CheckConstraint("wellbeing BETWEEN 1 AND 4", name="wellbeing"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    on_date: Mapped[date] = mapped_column(Date)
    how_it_went: Mapped[int | None] = mapped_column(SmallInteger)
    effort: Mapped[int | None] = mapped_column(SmallInteger)
    quality: Mapped[int | None] = mapped_column(SmallInteger)
    wellbeing: Mapped[int | None] = mapped_column(SmallInteger)
    motivation: Mapped[int | None] = mapped_column(SmallInteger)
    minutes: Mapped[int | None] = mapped_column(SmallInteger)
    other_work: Mapped[str | None] = mapped_column(String(300))
    text: Mapped[str | None] = mapped_column(Text)
    voice_file_id: Mapped[int | None] = mapped_column(
        ForeignKey("media_file.id", ondelete="SET NULL")
    )
    next_step: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReflectionGoal(Base):
    __tablename__ = "reflection_goal"

    reflection_id: Mapped[int] = mapped_column(
        ForeignKey("reflection.id", ondelete="CASCADE"), primary_key=True
    )
    goal_id: Mapped[int] = mapped_column(
        ForeignKey("goal.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Assessment(Base):
    """Where a pupil stands on a goal, by the pupil (self) or a teacher."""

    __tablename__ = "assessment"
    __table_args__ = (Index("ix_assessment_pupil_goal", "pupil_id", "goal_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    goal_id: Mapped[int] = mapped_column(ForeignKey("goal.id", ondelete="CASCADE"))
    rubric_level_id: Mapped[int | None] = mapped_column(
        ForeignKey("rubric_level.id", ondelete="SET NULL")
    )
    # For goal sets without a rubric: 1..4 on the school's default scale.
    level: Mapped[int | None] = mapped_column(SmallInteger)
    by_role: Mapped[ChosenBy] = mapped_column(_choice(ChosenBy, "assessed_by"))
    assessor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)
    assessed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Evidence(Base):
    """A piece of work (bewijsstuk). The pupil decides whether parents may see it."""

    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_pupil_created", "pupil_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    kind: Mapped[EvidenceKind] = mapped_column(_choice(EvidenceKind, "evidence_kind"))
    caption: Mapped[str | None] = mapped_column(String(1024))
    outside_school: Mapped[bool] = mapped_column(Boolean, default=False)
    shared_with_parents: Mapped[bool] = mapped_column(Boolean, default=False)
    # Parents see shared work only when this is not_needed or approved (storage.evidence).
    approval: Mapped[Approval] = mapped_column(
        _choice(Approval, "evidence_approval"),
        default=Approval.NOT_NEEDED,
        server_default=Approval.NOT_NEEDED.value,
    )
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    approval_decided_at: Mapped[datetime | None]
    # Telegram's album id, so the photos of one album become one item.
    media_group_id: Mapped[str | None] = mapped_column(String(64), index=True)
    reflection_id: Mapped[int | None] = mapped_column(
        ForeignKey("reflection.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EvidenceFile(Base):
    __tablename__ = "evidence_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    evidence_id: Mapped[int] = mapped_column(
        ForeignKey("evidence.id", ondelete="CASCADE"), index=True
    )
    media_file_id: Mapped[int] = mapped_column(ForeignKey("media_file.id"), index=True)
    thumbnail_file_id: Mapped[int | None] = mapped_column(ForeignKey("media_file.id"))
    original_name: Mapped[str | None] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(SmallInteger, default=0)


class EvidenceGoal(Base):
    __tablename__ = "evidence_goal"

    evidence_id: Mapped[int] = mapped_column(
        ForeignKey("evidence.id", ondelete="CASCADE"), primary_key=True
    )
    goal_id: Mapped[int] = mapped_column(
        ForeignKey("goal.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Observation(Base):
    """A teacher's note. Private (teachers only) unless the teacher chose otherwise."""

    __tablename__ = "observation"
    __table_args__ = (Index("ix_observation_author_created", "author_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    goal_id: Mapped[int | None] = mapped_column(ForeignKey("goal.id", ondelete="SET NULL"))
    text: Mapped[str | None] = mapped_column(Text)
    voice_file_id: Mapped[int | None] = mapped_column(
        ForeignKey("media_file.id", ondelete="SET NULL")
    )
    photo_file_id: Mapped[int | None] = mapped_column(
        ForeignKey("media_file.id", ondelete="SET NULL")
    )
    is_private: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # `text` folded (lower case, no accents) for search; kept in step by the listener below.
    search_text: Mapped[str | None] = mapped_column(Text)


@event.listens_for(Observation, "before_insert")
@event.listens_for(Observation, "before_update")
def _fold_for_search(_mapper: Any, _connection: Any, observation: Observation) -> None:
    observation.search_text = folded(observation.text) if observation.text else None


class ObservationPupil(Base):
    __tablename__ = "observation_pupil"

    observation_id: Mapped[int] = mapped_column(
        ForeignKey("observation.id", ondelete="CASCADE"), primary_key=True
    )
    pupil_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ObservationTag(Base):
    __tablename__ = "observation_tag"

    observation_id: Mapped[int] = mapped_column(
        ForeignKey("observation.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class Feedback(Base):
    """Tops & tips on evidence, a learning plan or a goal."""

    __tablename__ = "feedback"
    __table_args__ = (CheckConstraint("top IS NOT NULL OR tip IS NOT NULL", name="top_or_tip"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    author_role: Mapped[Role] = mapped_column(_choice(Role, "feedback_author_role"))
    target: Mapped[FeedbackTarget] = mapped_column(_choice(FeedbackTarget, "feedback_target"))
    pupil_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    evidence_id: Mapped[int | None] = mapped_column(ForeignKey("evidence.id", ondelete="CASCADE"))
    learning_plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("learning_plan.id", ondelete="CASCADE")
    )
    pupil_goal_id: Mapped[int | None] = mapped_column(
        ForeignKey("pupil_goal.id", ondelete="CASCADE")
    )
    top: Mapped[str | None] = mapped_column(Text)
    tip: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime | None]


# --- the long cycle ---------------------------------------------------------------------------


class LearningPlan(Base):
    """ "Mijn eigen plan": a pupil's own plan for a self-chosen goal."""

    __tablename__ = "learning_plan"

    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    pupil_goal_id: Mapped[int | None] = mapped_column(
        ForeignKey("pupil_goal.id", ondelete="SET NULL")
    )
    idea: Mapped[str] = mapped_column(Text)
    motivation: Mapped[str | None] = mapped_column(Text)
    prior_knowledge: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(Text)
    needs: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LearningPlanStep(Base):
    """One line of the plan's timeline (draaiboek): what, who, when."""

    __tablename__ = "learning_plan_step"

    id: Mapped[int] = mapped_column(primary_key=True)
    learning_plan_id: Mapped[int] = mapped_column(
        ForeignKey("learning_plan.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(SmallInteger)
    what: Mapped[str] = mapped_column(String(300))
    who: Mapped[str | None] = mapped_column(String(120))
    when_text: Mapped[str | None] = mapped_column(String(120))


class Talk(Base):
    """A leergesprek, coachgesprek or driehoeksgesprek."""

    __tablename__ = "talk"
    __table_args__ = (Index("ix_talk_pupil_scheduled", "pupil_id", "scheduled_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[TalkKind] = mapped_column(_choice(TalkKind, "talk_kind"))
    pupil_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    organiser_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    scheduled_at: Mapped[datetime]
    duration_minutes: Mapped[int] = mapped_column(SmallInteger, default=20)
    place: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[TalkStatus] = mapped_column(
        _choice(TalkStatus, "talk_status"), default=TalkStatus.PLANNED
    )
    # The pupil's answers to the preparation questions, keyed by question.
    preparation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notes: Mapped[str | None] = mapped_column(Text)
    agreements: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TalkParticipant(Base):
    __tablename__ = "talk_participant"

    talk_id: Mapped[int] = mapped_column(
        ForeignKey("talk.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class TalkEvidence(Base):
    """Work the pupil chose to show in the talk."""

    __tablename__ = "talk_evidence"

    talk_id: Mapped[int] = mapped_column(
        ForeignKey("talk.id", ondelete="CASCADE"), primary_key=True
    )
    evidence_id: Mapped[int] = mapped_column(
        ForeignKey("evidence.id", ondelete="CASCADE"), primary_key=True
    )


# --- machinery ---------------------------------------------------------------------------------


class Reminder(Base):
    """A message to send at a moment. The row, not the scheduler's memory, is the truth."""

    __tablename__ = "reminder"
    __table_args__ = (Index("ix_reminder_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    due_at: Mapped[datetime]
    # Past this moment the reminder is no longer useful and is dropped, not sent late.
    stale_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[ReminderStatus] = mapped_column(
        _choice(ReminderStatus, "reminder_status"), default=ReminderStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    claimed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    # Committed just before the message leaves: after a crash, a claimed row without it was
    # certainly not sent and can be sent again; one with it might have been.
    send_started_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    # The message that carried it, so a newer prompt of the same kind can replace it.
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessedUpdate(Base):
    """Update ids already handled, so a re-delivered update changes nothing twice."""

    __tablename__ = "processed_update"

    bot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class FsmRecord(Base):
    """Dialogue state (aiogram FSM) that survives a restart."""

    __tablename__ = "fsm_state"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuditEvent(Base):
    """Who exported, deleted or changed what. Survives erasure of the subject."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_school_at", "school_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id", ondelete="SET NULL"))
    actor_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL")
    )
    # "cli", "scheduler" or a role: who acted when no person did (or the person is gone).
    actor_label: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(60))
    subject_kind: Mapped[str] = mapped_column(String(40))
    subject_ref: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
