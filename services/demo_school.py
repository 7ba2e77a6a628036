"""Seeding the demo school: the sample files of samples/ plus two weeks of life, so every screen
of the bot has something to show when someone tries it in the browser (`portfolio-bot demo`).

People and goal sets go through the real importers (services.importing), so the demo is
exactly what a school gets from the same files. What a school builds up by using the bot is
written by `storage.demo_school.write_two_weeks_of_use`; photos of pupils' work are drawn here
and stored as the bot stores a pupil's photo.

Seeding is idempotent: when the demo school exists, `seed_demo_school` changes nothing and
says so (`DemoSeed.created` is False). Nothing here commits.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from PIL import Image, ImageDraw
from sqlalchemy.ext.asyncio import AsyncSession

from media.store import MediaStore
from services.importing.goal_sets import import_goal_set
from services.importing.people import import_people
from storage.demo_school import (
    DEMO_SCHOOL_NAME,
    WorkPhoto,
    find_demo_school,
    write_two_weeks_of_use,
)
from storage.schools import create_school, current_school_year

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
PEOPLE_FILE = "school-demo.csv"
PHYSICS_FILE = "goalset-natuurkunde-vwo3-h1.csv"
SKILLS_FILE = "goalset-vaardigheden.csv"


@dataclass(frozen=True)
class _WorkPicture:
    pupil: str  # external id
    goal_code: str
    caption: str
    shared: bool
    colour: tuple[int, int, int]
    school_days_ago: int
    approved_by: str | None


# Two photos Sam shared with his parents this week (the teacher let them through), one he
# kept to himself, and one of Noor's that she shared and that still waits for the teacher's
# approval (/werk), so a parent's weekly summary has an album to show.
WORK_PICTURES = (
    _WorkPicture("P1", "1.1c", "Zo zwaar is mijn etui: 2 newton", True, (230, 120, 60), 1, "T1"),
    _WorkPicture("P1", "RN", "Mijn eigen weekplanning", True, (70, 140, 200), 2, "T1"),
    _WorkPicture("P1", "RN", "Kladje, nog niet af", False, (160, 160, 160), 2, None),
    _WorkPicture("P2", "SW", "Onze knikkerbaan", True, (90, 170, 110), 1, None),
)


class DemoSeedError(Exception):
    """The demo school cannot be seeded (a sample file is missing or broken)."""


@dataclass(frozen=True)
class DemoSeed:
    school_id: int
    created: bool
    # ISO weekdays the school is open, for the demo clock's "next school day".
    school_days: tuple[int, ...]
    # external id -> invite code, for the people who still need to link a Telegram account.
    codes: dict[str, str] = field(default_factory=dict)


async def seed_demo_school(
    session: AsyncSession,
    *,
    today: date,
    invite_secret: bytes,
    timezone: str = "Europe/Amsterdam",
    samples_dir: Path = SAMPLES_DIR,
    invite_valid_for: timedelta = timedelta(days=14),
    media_dir: Path | None = None,
) -> DemoSeed:
    """Create the demo school with two weeks of use behind it, unless it is already there.

    With `media_dir`, pupils' photos of work are drawn and stored there too (some shared with
    parents, one not), so a parent's weekly summary has an album to show."""
    existing = await find_demo_school(session)
    if existing is not None:
        return DemoSeed(
            school_id=existing.id, created=False, school_days=tuple(existing.school_days)
        )
    for name in (PEOPLE_FILE, PHYSICS_FILE, SKILLS_FILE):
        if not (samples_dir / name).is_file():
            raise DemoSeedError(f"sample file {samples_dir / name} is missing")

    school = await create_school(session, name=DEMO_SCHOOL_NAME, timezone=timezone, locale="nl")
    people = await import_people(
        session,
        school=school,
        path=samples_dir / PEOPLE_FILE,
        school_year=current_school_year(today),
        invite_valid_for=invite_valid_for,
        invite_secret=invite_secret,
    )
    physics = await import_goal_set(
        session, school=school, path=samples_dir / PHYSICS_FILE, name=None
    )
    skills = await import_goal_set(
        session, school=school, path=samples_dir / SKILLS_FILE, name=None
    )
    photos = await _store_work_photos(media_dir) if media_dir is not None else []
    await write_two_weeks_of_use(
        session,
        school=school,
        today=today,
        physics_id=physics.goal_set_id,
        skills_id=skills.goal_set_id,
        work_photos=photos,
    )
    return DemoSeed(
        school_id=school.id,
        created=True,
        school_days=tuple(school.school_days),
        codes={issued.external_id: issued.code for issued in people.codes},
    )


async def _store_work_photos(media_dir: Path) -> list[WorkPhoto]:
    """The work pictures drawn and written to the media store (before their rows, as every
    file is)."""
    store = MediaStore(media_dir)
    photos = []
    for picture in WORK_PICTURES:
        drawn = await asyncio.to_thread(_work_picture, picture.colour)
        photos.append(
            WorkPhoto(
                pupil=picture.pupil,
                goal_code=picture.goal_code,
                caption=picture.caption,
                shared=picture.shared,
                school_days_ago=picture.school_days_ago,
                image=await store.store_image(drawn),
                approved_by=picture.approved_by,
            )
        )
    return photos


def _work_picture(colour: tuple[int, int, int]) -> bytes:
    """A simple drawing standing in for a photo of a pupil's work (the caption travels with
    the evidence, not in the picture)."""
    image = Image.new("RGB", (800, 600), (250, 246, 236))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((60, 60, 740, 540), radius=30, outline=colour, width=12)
    for row in range(4):
        top = 150 + row * 90
        draw.rounded_rectangle((120, top, 120 + 130 * (row + 2), top + 50), radius=12, fill=colour)
    draw.ellipse((560, 110, 690, 240), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
