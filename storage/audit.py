"""The audit log: who exported, erased or changed what (reads are not logged).

An entry names people by id only (`person_ref`), never by name or free text: the log outlives
the people it mentions, and once a person's row is gone their entries identify no one. Like
every storage function these never commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEvent, Person
from storage.subject_data_types import PupilData
from storage.types import utcnow

# Audit actions written by the product; a new one is a short dotted name.
ACTION_EXPORT = "pupil.export"
ACTION_ERASE = "pupil.erase"
ACTION_PEOPLE_IMPORT = "people.import"
ACTION_GOALS_IMPORT = "goals.import"
ACTION_INVITE = "invite.issue"
# A valid code was seen in a group chat and revoked (conversations.admin_notices).
ACTION_INVITE_SEEN_IN_GROUP = "invite.revoked_seen_in_group"
# A teacher made a period for a group, or set or cleared a prepared goal (storage.period_goals).
ACTION_PERIOD_CREATE = "period.create"
ACTION_PERIOD_GOAL = "period.goal"
# Who acted when no person did.
ACTOR_CLI = "cli"
ACTOR_RETENTION = "retention"
ACTOR_BOT = "bot"
SUBJECT_PERSON = "person"


def person_ref(person_id: int) -> str:
    """The subject reference of a person: an id, never a name, so it survives erasure
    without identifying anyone once the row is gone."""
    return f"{SUBJECT_PERSON}:{person_id}"


def _person_id_of(subject_ref: str | None) -> int | None:
    if subject_ref is None or not subject_ref.startswith(f"{SUBJECT_PERSON}:"):
        return None
    number = subject_ref.split(":", 1)[1]
    return int(number) if number.isdigit() else None


async def record_audit(
    session: AsyncSession,
    *,
    school_id: int | None,
    action: str,
    subject_kind: str,
    subject_ref: str | None,
    actor_person_id: int | None = None,
    actor_label: str | None = None,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Write one audit entry. The actor is a person (their role becomes the label unless one
    is given) or a label alone ("cli", "retention", "scheduler"). Put ids and counts in
    `details`, never names or free text: the log outlives the people it mentions."""
    label = actor_label
    if label is None and actor_person_id is not None:
        role = await session.scalar(select(Person.role).where(Person.id == actor_person_id))
        label = role.value if role is not None else None
    event = AuditEvent(
        at=at or utcnow(),
        school_id=school_id,
        actor_person_id=actor_person_id,
        actor_label=(label or "system")[:40],
        action=action[:60],
        subject_kind=subject_kind[:40],
        subject_ref=subject_ref[:64] if subject_ref is not None else None,
        details=dict(details or {}),
    )
    session.add(event)
    await session.flush()
    return event


async def record_export(
    session: AsyncSession,
    *,
    data: PupilData,
    actor_person_id: int | None = None,
    actor_label: str | None = None,
    via: str,
) -> AuditEvent:
    """The audit entry of an export: who, which pupil (by id), with or without private notes."""
    person = await session.get(Person, data.pupil.id)
    return await record_audit(
        session,
        school_id=person.school_id if person is not None else None,
        actor_person_id=actor_person_id,
        actor_label=actor_label,
        action=ACTION_EXPORT,
        subject_kind=SUBJECT_PERSON,
        subject_ref=person_ref(data.pupil.id),
        details={
            "via": via,
            "include_private_notes": data.include_private_notes,
            "files": len(data.files),
        },
    )


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor_name: str | None  # the acting person's name while they exist
    actor_label: str
    action: str
    subject_kind: str
    subject_ref: str | None
    subject_name: str | None  # the subject's name while they exist (same school only)
    details: dict[str, Any]


async def latest_audit(
    session: AsyncSession, *, school_id: int, limit: int = 20
) -> list[AuditEntry]:
    """The newest entries of one school, newest first."""
    events = (
        await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.school_id == school_id)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    ).all()
    person_ids = {event.actor_person_id for event in events if event.actor_person_id}
    person_ids |= {
        subject_id
        for event in events
        if (subject_id := _person_id_of(event.subject_ref)) is not None
    }
    names: dict[int, str] = {}
    if person_ids:
        names = dict(
            (
                await session.execute(
                    select(Person.id, Person.display_name).where(
                        Person.id.in_(person_ids), Person.school_id == school_id
                    )
                )
            ).all()
        )
    entries = []
    for event in events:
        subject_id = _person_id_of(event.subject_ref)
        entries.append(
            AuditEntry(
                id=event.id,
                at=event.at,
                actor_name=names.get(event.actor_person_id or 0),
                actor_label=event.actor_label,
                action=event.action,
                subject_kind=event.subject_kind,
                subject_ref=event.subject_ref,
                subject_name=names.get(subject_id) if subject_id is not None else None,
                details=dict(event.details or {}),
            )
        )
    return entries
