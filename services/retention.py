"""Retention: pupils who left the school more than N months ago are erased, N being the
school's `retention_months`, else the RETENTION_MONTHS setting, else 24.

Run daily by the scheduler's housekeeping and on demand by `portfolio-bot retention`. Each
erasure writes its own audit entry (actor "retention"); running it twice erases nothing the
second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from services.erasure import ErasureResult, erase_pupil
from storage.audit import ACTOR_RETENTION
from storage.pupil_lookup import PupilMatch, pupils_who_left_before
from storage.schools import all_schools

# Months after leaving school before a pupil is erased, when neither the school nor the
# RETENTION_MONTHS setting says otherwise.
DEFAULT_RETENTION_MONTHS = 24


def months_before(day: date, months: int) -> date:
    """The same day `months` months earlier (the last day of a shorter month)."""
    total = day.year * 12 + (day.month - 1) - months
    year, month = divmod(total, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class RetentionCandidate:
    pupil: PupilMatch
    school: str
    months: int
    cutoff: date


async def retention_candidates(
    session: AsyncSession, *, today: date, default_months: int
) -> list[RetentionCandidate]:
    """Pupils who left more than N months before `today` (N: the school's retention_months,
    else `default_months`)."""
    found = []
    for school in await all_schools(session):
        months = school.retention_months or default_months
        cutoff = months_before(today, months)
        pupils = await pupils_who_left_before(session, school_id=school.id, cutoff=cutoff)
        found += [RetentionCandidate(pupil, school.name, months, cutoff) for pupil in pupils]
    return found


async def apply_retention(
    session: AsyncSession,
    *,
    today: date,
    media_dir: Path,
    default_months: int = DEFAULT_RETENTION_MONTHS,
) -> list[ErasureResult]:
    """Erase every pupil past the retention period, each with an audit entry (actor
    "retention"). `today` is the school's date; files go when the caller commits."""
    results = []
    for candidate in await retention_candidates(
        session, today=today, default_months=default_months
    ):
        results.append(
            await erase_pupil(
                session,
                pupil_id=candidate.pupil.id,
                media_dir=media_dir,
                actor_label=ACTOR_RETENTION,
                reason=f"retention:{candidate.months}",
            )
        )
    return results
