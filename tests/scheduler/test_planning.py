"""Recurring prompts over simulated school weeks: a controllable clock, no sleeping.

The real app (planner, dispatcher, rate-limited sender, aiogram) sends to the sandbox; the
clock is stepped through the week and `tick()` plays the scheduler's jobs at each step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import App, build_app
from config.settings import Settings
from media.store import relative_path_for
from sandbox import SandboxClient, TelegramSandbox
from services.clock import Clock
from storage.models import (
    Account,
    AccountPerson,
    Holiday,
    Person,
    ProcessedUpdate,
    Reflection,
    School,
)
from storage.reminders import ReminderStatus, reminders_of, schedule_reminder
from tests.conftest import TOKEN
from tests.factories import DemoSchool, build_curriculum, build_school, give_goal

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


class SteppedClock(Clock):
    def __init__(self, start: datetime) -> None:
        self.moment = start
        super().__init__("Europe/Amsterdam", real_now=lambda: self.moment)

    def go(self, local: datetime) -> None:
        self.moment = local.replace(tzinfo=AMSTERDAM).astimezone(UTC)


@dataclass
class World:
    app: App
    clock: SteppedClock
    telegram: SandboxClient
    school: DemoSchool
    users: dict[str, int]  # external id -> telegram user id
    sessions: async_sessionmaker[AsyncSession]

    async def sent(self, external_id: str, method: str = "sendMessage") -> list[dict[str, Any]]:
        chat = self.users[external_id]
        return [
            call
            for call in await self.telegram.calls(method)
            if call["ok"] and str(call["params"].get("chat_id")) == str(chat)
        ]

    async def texts(self, external_id: str) -> list[str]:
        return [str(call["params"].get("text", "")) for call in await self.sent(external_id)]

    async def run(self, first: datetime, last: datetime, step: timedelta) -> None:
        """Step the clock from `first` to `last` (school time), ticking at every step."""
        moment = first
        while moment <= last:
            self.clock.go(moment)
            await self.app.reminders.tick()
            moment += step


@pytest.fixture
async def world(
    db_url: str,
    sandbox: TelegramSandbox,
    telegram: SandboxClient,
    session_factory: async_sessionmaker[AsyncSession],
    tmp_path,
) -> AsyncIterator[World]:
    school = await build_school(session_factory)
    users: dict[str, int] = {}
    async with session_factory() as session, session.begin():
        for external_id in ("P1", "P2", "T1"):
            user = await telegram.create_user(external_id)
            users[external_id] = user.id
            person_id = school.persons[external_id]
            account = Account(telegram_user_id=user.id, active_person_id=person_id)
            session.add(account)
            await session.flush()
            session.add(AccountPerson(account_id=account.id, person_id=person_id))
    settings = Settings(
        bot_token=None,
        database_url=db_url,
        telegram_api_url=sandbox.base_url,
        media_dir=tmp_path / "media",
        send_rate_per_second=1000,
        send_rate_per_chat=1000,
        _env_file=None,  # type: ignore[call-arg]
    )
    sandbox.limits.per_chat_rate = 0
    sandbox.limits.global_rate = 0
    clock = SteppedClock(datetime(2027, 3, 22, 0, 0, tzinfo=UTC))
    app = build_app(settings, token=TOKEN, clock=clock)
    yield World(app, clock, telegram, school, users, session_factory)
    await app.close()


def _local(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def _sent_at(world: World, external_id: str, kind: str) -> list[datetime]:
    """When the app's clock said each reminder of the kind was sent, in school time."""
    async with world.sessions() as session:
        rows = await reminders_of(
            session,
            person_id=world.school.persons[external_id],
            kinds=[kind],
            statuses=[ReminderStatus.SENT],
        )
    return [row.sent_at.astimezone(AMSTERDAM) for row in rows if row.sent_at is not None]


async def test_a_school_week_brings_exactly_the_expected_prompts(world: World):
    # Monday 22 March to Sunday 28 March 2027, every 15 minutes.
    await world.run(_local("2027-03-22T00:00"), _local("2027-03-28T23:45"), timedelta(minutes=15))

    pupil_texts = await world.texts("P1")
    reflection = [text for text in pupil_texts if "Hoe ging het vandaag" in text]
    week_plan = [text for text in pupil_texts if "nieuwe week" in text]
    assert len(reflection) == 5  # Monday to Friday, none at the weekend
    assert len(week_plan) == 1  # Monday only
    assert len(await world.texts("P2")) == 6
    teacher = [text for text in await world.texts("T1") if "Nog niet gezien" in text]
    assert len(teacher) == 5
    assert all("Sam" in text and "Noor" in text for text in teacher)

    # Unanswered prompts do not pile up: each new one removed the one before.
    chat = await world.telegram.messages(world.users["P1"])
    left = [m for m in chat if "Hoe ging het vandaag" in str(m.get("text", ""))]
    assert len(left) == 1

    async with world.sessions() as session:
        rows = await reminders_of(session, person_id=world.school.persons["P1"])
    assert {row.status for row in rows} == {ReminderStatus.SENT}
    assert len(rows) == 6


async def test_prompts_keep_school_time_across_both_daylight_saving_changes(world: World):
    # Spring: Sunday 28 March 2027 02:00 -> 03:00; autumn: Sunday 31 October 03:00 -> 02:00.
    for first, last in (("2027-03-26", "2027-03-29"), ("2027-10-29", "2027-11-01")):
        await world.run(_local(f"{first}T00:00"), _local(f"{last}T23:30"), timedelta(minutes=30))
    moments = await _sent_at(world, "P1", "reflection_prompt")
    assert [moment.date() for moment in moments] == [
        date(2027, 3, 26),
        date(2027, 3, 29),
        date(2027, 10, 29),
        date(2027, 11, 1),
    ]
    # Sent at the first step at or after 14:30 school time, winter time and summer time alike.
    assert all(moment.time().replace(second=0, microsecond=0) == time(14, 30) for moment in moments)
    assert {moment.utcoffset() for moment in moments} == {timedelta(hours=1), timedelta(hours=2)}


async def test_holidays_and_pupils_who_reflected_get_no_prompt(world: World):
    async with world.sessions() as session, session.begin():
        session.add(
            Holiday(
                school_id=world.school.school_id,
                name="Studiedag",
                starts_on=date(2027, 3, 24),
                ends_on=date(2027, 3, 24),
            )
        )
        # Sam reflects on Tuesday morning, before the prompt.
        session.add(Reflection(pupil_id=world.school.persons["P1"], on_date=date(2027, 3, 23)))
    await world.run(_local("2027-03-22T00:00"), _local("2027-03-26T23:00"), timedelta(hours=1))

    sam = [t for t in await world.texts("P1") if "Hoe ging het vandaag" in t]
    noor = [t for t in await world.texts("P2") if "Hoe ging het vandaag" in t]
    assert len(noor) == 4  # Wednesday is a holiday
    assert len(sam) == 3  # and on Tuesday Sam had already reflected


async def test_a_reflection_after_the_plan_cancels_the_prompt(world: World):
    await world.run(_local("2027-03-23T07:00"), _local("2027-03-23T08:00"), timedelta(hours=1))
    async with world.sessions() as session, session.begin():
        session.add(Reflection(pupil_id=world.school.persons["P1"], on_date=date(2027, 3, 23)))
    await world.run(_local("2027-03-23T14:30"), _local("2027-03-23T15:00"), timedelta(minutes=30))
    assert not [t for t in await world.texts("P1") if "Hoe ging het vandaag" in t]
    async with world.sessions() as session:
        rows = await reminders_of(
            session, person_id=world.school.persons["P1"], kinds=["reflection_prompt"]
        )
    assert [row.status for row in rows] == [ReminderStatus.CANCELLED]


async def test_after_downtime_useful_prompts_are_sent_and_stale_ones_dropped(world: World):
    # Tuesday: planned in the morning, then the bot is down until 16:00: still worth sending.
    await world.run(_local("2027-03-23T07:00"), _local("2027-03-23T07:00"), timedelta(hours=1))
    await world.run(_local("2027-03-23T16:00"), _local("2027-03-23T16:00"), timedelta(hours=1))
    # Wednesday: planned in the morning, down until 21:00: the prompt is stale by then.
    await world.run(_local("2027-03-24T07:00"), _local("2027-03-24T07:00"), timedelta(hours=1))
    await world.run(_local("2027-03-24T21:00"), _local("2027-03-24T21:00"), timedelta(hours=1))

    sent = await _sent_at(world, "P1", "reflection_prompt")
    assert [moment.date() for moment in sent] == [date(2027, 3, 23)]
    async with world.sessions() as session:
        rows = await reminders_of(
            session, person_id=world.school.persons["P1"], kinds=["reflection_prompt"]
        )
    assert [row.status for row in rows] == [ReminderStatus.SENT, ReminderStatus.DROPPED]


async def test_nothing_arrives_in_quiet_hours(world: World):
    async with world.sessions() as session, session.begin():
        await schedule_reminder(
            session,
            kind="reflection_prompt",
            person_id=world.school.persons["P2"],
            due_at=_local("2027-03-23T21:00").replace(tzinfo=AMSTERDAM),
            idempotency_key="late-one",
            payload={"date": "2027-03-23"},
        )
    await world.run(_local("2027-03-23T21:00"), _local("2027-03-24T07:15"), timedelta(hours=1))
    assert not await world.sent("P2")
    await world.run(_local("2027-03-24T07:30"), _local("2027-03-24T07:30"), timedelta(hours=1))
    assert len(await world.sent("P2")) == 1
    [moment] = await _sent_at(world, "P2", "reflection_prompt")
    assert moment.date() == date(2027, 3, 24) and moment.time() >= time(7, 30)


async def test_a_blocked_pupil_is_marked_unreachable_and_not_prompted_again(world: World):
    await world.telegram.set_blocked(world.users["P2"], True)
    await world.run(_local("2027-03-22T14:30"), _local("2027-03-23T15:00"), timedelta(hours=12))
    async with world.sessions() as session:
        noor = await session.get(Person, world.school.persons["P2"])
        assert noor is not None and noor.unreachable_since is not None
        rows = await reminders_of(session, person_id=world.school.persons["P2"])
    # One failed attempt on Monday; on Tuesday she is not planned at all.
    assert [row.status for row in rows if row.kind == "reflection_prompt"] == [
        ReminderStatus.FAILED
    ]


async def test_quiet_hours_of_the_school_stop_a_late_reflection_time(world: World):
    async with world.sessions() as session, session.begin():
        await session.execute(
            update(School)
            .where(School.id == world.school.school_id)
            .values(reflection_time=time(20, 30))
        )
    await world.run(_local("2027-03-22T00:00"), _local("2027-03-22T23:00"), timedelta(hours=1))
    assert not [t for t in await world.texts("P1") if "Hoe ging het" in t]


async def test_the_goal_review_comes_in_the_last_week_of_the_period(world: World):
    # The period ends on Friday 9 April 2027 (build_curriculum: five weeks after the 5th of
    # March); the review comes four school days earlier, on Monday 5 April. A holiday in the
    # week before (Monday 29 March) changes nothing there.
    async with world.sessions() as session, session.begin():
        session.add(
            Holiday(
                school_id=world.school.school_id,
                name="Tweede paasdag",
                starts_on=date(2027, 3, 29),
                ends_on=date(2027, 3, 29),
            )
        )
    curriculum = await build_curriculum(world.sessions, world.school, today=date(2027, 3, 5))
    await give_goal(
        world.sessions,
        pupil_id=world.school.persons["P1"],
        period_id=curriculum.period_id,
        goal_id=curriculum.goals["1.1a"],
    )
    await world.run(_local("2027-03-29T00:00"), _local("2027-04-09T23:00"), timedelta(hours=3))

    reviews = await _sent_at(world, "P1", "goal_review")
    assert [moment.date() for moment in reviews] == [date(2027, 4, 5)]
    [text] = [t for t in await world.texts("P1") if "bijna klaar" in t]
    assert "9 april" in text
    [teacher] = [t for t in await world.texts("T1") if "eindigt" in t]
    assert "Periode 2" in teacher and "1 leerling" in teacher


async def test_nightly_housekeeping_forgets_old_machinery_and_applies_retention(world: World):
    async with world.sessions() as session, session.begin():
        noor = await session.get(Person, world.school.persons["P2"])
        assert noor is not None
        noor.left_school_on = date(2024, 7, 12)  # left more than two years before "now"
        session.add(
            ProcessedUpdate(bot_id=1, update_id=1, processed_at=datetime(2027, 1, 1, tzinfo=UTC))
        )
    # A file written by a step that crashed before its row committed: nobody refers to it.
    media_dir = world.app.settings.media_dir
    orphan = media_dir / relative_path_for("ab" * 32, "image/jpeg")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left behind")
    world.clock.go(_local("2027-03-23T03:17"))
    await world.app.reminders.housekeeping()
    assert not orphan.exists()
    async with world.sessions() as session:
        assert await session.get(Person, world.school.persons["P2"]) is None
        assert await session.get(Person, world.school.persons["P1"]) is not None
        assert (await session.scalars(select(ProcessedUpdate))).all() == []
