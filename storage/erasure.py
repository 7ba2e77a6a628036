"""The database side of erasing a pupil (the right to erasure, art. 17): what it would remove,
counted, and the deletes themselves.

Most rows go by ON DELETE CASCADE from the person row (SQLite's foreign keys are on, see
storage.db); `erase_pupil_rows` does what a cascade cannot know: notes about several pupils
keep their other pupils (without this pupil's name), reminders that name the pupil only in
their payload, the Telegram account and dialogue state. Files are not touched here: the
caller learns which media rows the pupil's rows referred to and lets the media store remove
what nothing else uses, after the commit (services.erasure). Irreversible by design: nothing
is kept aside. Like every storage function these never commit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Account,
    AccountPerson,
    Assessment,
    Evidence,
    EvidenceFile,
    Feedback,
    FsmRecord,
    Guardianship,
    InviteAttempt,
    LearningPlan,
    Observation,
    ObservationPupil,
    Person,
    PupilGoal,
    Reflection,
    Reminder,
    Talk,
    WeekPlan,
)
from storage.observations import normalise
from storage.pupil_lookup import require_pupil

# What replaces the erased pupil's name in notes that stay for other pupils.
REDACTED = "[…]"


@dataclass(frozen=True)
class ErasurePreview:
    """What erasing a pupil removes, counted (for the confirmation and the audit entry)."""

    counts: dict[str, int]


@dataclass(frozen=True)
class ErasedRows:
    """What `erase_pupil_rows` removed: the counts of the preview plus reminders and
    dialogues, and the media rows the pupil's rows referred to (each once, in the order met),
    some of which other rows may still use."""

    school_id: int
    external_id: str
    counts: dict[str, int]
    media_file_ids: list[int]


def _notes_of(pupil_id: int) -> Select[int]:
    return select(ObservationPupil.observation_id).where(ObservationPupil.pupil_id == pupil_id)


async def erasure_preview(session: AsyncSession, *, pupil_id: int) -> ErasurePreview:
    async def count(query: Any) -> int:
        return int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)

    own_notes = _notes_of(pupil_id)
    shared_notes = select(ObservationPupil.observation_id).where(
        ObservationPupil.observation_id.in_(own_notes),
        ObservationPupil.pupil_id != pupil_id,
    )
    counts = {
        "reflections": await count(select(Reflection.id).where(Reflection.pupil_id == pupil_id)),
        "evidence": await count(select(Evidence.id).where(Evidence.pupil_id == pupil_id)),
        "goals": await count(select(PupilGoal.id).where(PupilGoal.pupil_id == pupil_id)),
        "assessments": await count(select(Assessment.id).where(Assessment.pupil_id == pupil_id)),
        "week_plans": await count(select(WeekPlan.id).where(WeekPlan.pupil_id == pupil_id)),
        "learning_plans": await count(
            select(LearningPlan.id).where(LearningPlan.pupil_id == pupil_id)
        ),
        "feedback": await count(select(Feedback.id).where(Feedback.pupil_id == pupil_id)),
        "talks": await count(select(Talk.id).where(Talk.pupil_id == pupil_id)),
        "observations_removed": await count(
            select(Observation.id).where(
                Observation.id.in_(own_notes), Observation.id.not_in(shared_notes)
            )
        ),
        "observations_unlinked": await count(shared_notes.distinct()),
        "parent_links": await count(
            select(Guardianship.parent_id).where(Guardianship.pupil_id == pupil_id)
        ),
        "telegram_links": await count(
            select(AccountPerson.account_id).where(AccountPerson.person_id == pupil_id)
        ),
    }
    return ErasurePreview(counts)


async def erase_pupil_rows(session: AsyncSession, *, pupil_id: int) -> ErasedRows:
    """Delete the pupil's rows for good: their own, the parents' links, the Telegram link,
    reminders and dialogue state; notes about several pupils stay for the others, with this
    pupil's name taken out. PrivacyError when the id is not a pupil's."""
    person = await require_pupil(session, pupil_id=pupil_id)
    school_id, name, external_id = person.school_id, person.display_name, person.external_id
    counts = dict((await erasure_preview(session, pupil_id=pupil_id)).counts)

    # The files' rows are collected first and removed by the caller last: the rows referring
    # to them must be gone before anyone can see that nothing needs them any more.
    media_ids: list[int] = []
    for main, thumbnail in (
        await session.execute(
            select(EvidenceFile.media_file_id, EvidenceFile.thumbnail_file_id)
            .join(Evidence, Evidence.id == EvidenceFile.evidence_id)
            .where(Evidence.pupil_id == pupil_id)
        )
    ).all():
        media_ids += [main] + ([thumbnail] if thumbnail is not None else [])
    media_ids += [
        voice
        for voice in (
            await session.scalars(
                select(Reflection.voice_file_id).where(Reflection.pupil_id == pupil_id)
            )
        ).all()
        if voice is not None
    ]

    # Notes: a note about this pupil alone goes; a note about several stays for the others,
    # without this pupil's link and with their name taken out of its text.
    note_ids = list((await session.scalars(_notes_of(pupil_id))).all())
    shared = set(
        (
            await session.scalars(
                select(ObservationPupil.observation_id).where(
                    ObservationPupil.observation_id.in_(note_ids),
                    ObservationPupil.pupil_id != pupil_id,
                )
            )
        ).all()
    )
    for note in (
        await session.scalars(select(Observation).where(Observation.id.in_(note_ids)))
    ).all():
        if note.id in shared:
            if note.text:
                note.text = redact_name(note.text, name)
            continue
        media_ids += [m for m in (note.photo_file_id, note.voice_file_id) if m is not None]
    alone = [note_id for note_id in note_ids if note_id not in shared]
    if alone:
        await session.execute(delete(Observation).where(Observation.id.in_(alone)))

    # Reminders addressed to the pupil cascade; these are about the pupil, addressed to
    # others (a parent's weekly summary, a talk's invitation, a feedback notice).
    counts["reminders"] = await _delete_reminders(session, pupil_id)

    # The Telegram side: an account that held only this pupil goes entirely (its user id is
    # personal data too), with its dialogue state and code attempts.
    accounts = (
        await session.scalars(
            select(Account)
            .join(AccountPerson, AccountPerson.account_id == Account.id)
            .where(AccountPerson.person_id == pupil_id)
        )
    ).all()
    telegram_ids = [account.telegram_user_id for account in accounts]
    await session.execute(delete(AccountPerson).where(AccountPerson.person_id == pupil_id))
    for account in accounts:
        others = await session.scalar(
            select(func.count())
            .select_from(AccountPerson)
            .where(AccountPerson.account_id == account.id)
        )
        if not others:
            await session.execute(
                delete(InviteAttempt).where(
                    InviteAttempt.telegram_user_id == account.telegram_user_id
                )
            )
            await session.execute(delete(Account).where(Account.id == account.id))
    counts["dialogues"] = await _forget_dialogues(session, pupil_id, name, telegram_ids)

    # The person row: the cascade takes reflections, evidence (with files' rows, goals,
    # feedback), goals, assessments, week and learning plans, talks, invites, memberships,
    # guardianships and the remaining note links.
    await session.execute(delete(Person).where(Person.id == pupil_id))
    await session.flush()
    return ErasedRows(school_id, external_id, counts, list(dict.fromkeys(media_ids)))


def redact_name(text: str, name: str) -> str:
    """The pupil's full name and first name taken out of a text (whole words, case ignored)."""
    words = name.split()
    for variant in dict.fromkeys([name.strip(), *words[:1]]):
        if len(variant) < 2:
            continue
        pattern = re.compile(rf"(?<!\w){re.escape(variant)}(?!\w)", re.IGNORECASE)
        text = pattern.sub(REDACTED, text)
    return text


async def _delete_reminders(session: AsyncSession, pupil_id: int) -> int:
    payload = Reminder.payload
    conditions: list[ColumnElement[bool]] = [
        Reminder.person_id == pupil_id,
        payload["pupil_id"].as_integer() == pupil_id,
    ]
    for key, ids in (
        ("talk_id", select(Talk.id).where(Talk.pupil_id == pupil_id)),
        ("feedback_id", select(Feedback.id).where(Feedback.pupil_id == pupil_id)),
        ("plan_id", select(LearningPlan.id).where(LearningPlan.pupil_id == pupil_id)),
    ):
        conditions.append(payload[key].as_integer().in_(ids))
    reminder_ids = list((await session.scalars(select(Reminder.id).where(or_(*conditions)))).all())
    if reminder_ids:
        await session.execute(delete(Reminder).where(Reminder.id.in_(reminder_ids)))
    return len(reminder_ids)


async def _forget_dialogues(
    session: AsyncSession, pupil_id: int, name: str, telegram_ids: Sequence[int]
) -> int:
    """Dialogue state of the pupil's own chats, and of anyone's dialogue that holds the pupil
    (a teacher halfway through a note or a talk about them): it could not finish anyway."""
    users = {str(telegram_id) for telegram_id in telegram_ids}
    wanted = normalise(name)
    forgotten = 0
    for record in (await session.scalars(select(FsmRecord))).all():
        mine = bool(users & set(record.key.split(":")))
        named = bool(wanted) and wanted in normalise(_text_of(record.data))
        if mine or named or _mentions(record.data, pupil_id):
            await session.delete(record)
            forgotten += 1
    return forgotten


def _mentions(value: Any, pupil_id: int, key: str = "") -> bool:
    if isinstance(value, Mapping):
        return any(_mentions(item, pupil_id, str(name)) for name, item in value.items())
    if isinstance(value, list | tuple):
        return any(_mentions(item, pupil_id, key) for item in value)
    return "pupil" in key and value == pupil_id


def _text_of(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)
