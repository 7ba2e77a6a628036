"""Shared driving code of the load bench: a fresh database, N seeded pupils, and the pupils
themselves, played inside the sandbox's own process.

The pupils act on the sandbox's state directly (the same code paths as its control API's
"send" and "press" endpoints, without the HTTP round trip): at 5,000 pupils the control API's
own requests would cost more CPU than the bot under test, and the harness must never be the
bound it measures. The bot's side is untouched: it talks to the sandbox over real HTTP
(getUpdates or webhook deliveries, sendMessage, editMessageText, answerCallbackQuery).
"""

from __future__ import annotations

import asyncio
import os
import platform
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from sandbox import TelegramSandbox
from sandbox.botapi import new_callback_id
from sandbox.state import BotState, CallbackRecord, ChatState, UserRecord
from services.importing.goal_sets import import_goal_set
from storage import migrate
from storage.db import create_engine, create_sessionmaker
from storage.models import (
    Account,
    AccountPerson,
    ChosenBy,
    Goal,
    Group,
    GroupMembership,
    Period,
    Person,
    PupilGoal,
    PupilGoalStatus,
    Reflection,
    ReflectionGoal,
    Role,
    School,
)

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
GROUP_SIZE = 28
# The goals every pupil has this period: the first is the one the script taps.
PUPIL_GOAL_CODES = ("1.1a", "RN")
FIRST_USER_ID = 5_000_000_001
CHUNK = 2000

# ------------------------------------------------------------------------ the database


@asynccontextmanager
async def database(kind: str, postgres_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database of the bench's own, removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-load-") as directory:
            url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
            await migrate.upgrade(url)
            yield url
        return
    server = make_url(postgres_url)
    name = f"bench_load_{uuid.uuid4().hex[:10]}"
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        await migrate.upgrade(url)
        yield url
    finally:
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


def school_days_before(today: date, count: int) -> list[date]:
    days: list[date] = []
    day = today
    while len(days) < count:
        day -= timedelta(days=1)
        if day.isoweekday() <= 5:
            days.append(day)
    return days


async def seed(url: str, pupils: int, *, history_days: int) -> list[int]:
    """A school of `pupils` pupils in groups of 28 (a mentor each), both sample goal sets, a
    period running today, two goals per pupil and `history_days` school days of earlier
    reflections, so the queries run on tables of a school in use. Every pupil is linked to
    a Telegram account (ids from FIRST_USER_ID) directly: onboarding is not what is measured.
    Returns the Telegram user ids."""
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    today = datetime.now(ZoneInfo("Europe/Amsterdam")).date()
    user_ids = list(range(FIRST_USER_ID, FIRST_USER_ID + pupils))
    try:
        async with sessions() as session, session.begin():
            school = School(name="Bench")
            session.add(school)
            await session.flush()
            for name in ("goalset-natuurkunde-vwo3-h1.csv", "goalset-vaardigheden.csv"):
                await import_goal_set(session, school=school, path=SAMPLES / name, name=None)
            goals = dict((await session.execute(select(Goal.code, Goal.id))).tuples().all())
            goal_ids = [goals[code] for code in PUPIL_GOAL_CODES]
            period = Period(
                school_id=school.id,
                name="Periode 2",
                starts_on=today - timedelta(days=21),
                ends_on=today + timedelta(days=21),
            )
            session.add(period)
            group_count = -(-pupils // GROUP_SIZE)
            groups = (
                await session.scalars(
                    insert(Group).returning(Group.id, sort_by_parameter_order=True),
                    [
                        {"school_id": school.id, "name": f"Groep {n + 1}", "school_year": "2026"}
                        for n in range(group_count)
                    ],
                )
            ).all()
            mentors = await _insert_persons(session, school.id, Role.TEACHER, "T", group_count)
            await session.execute(
                insert(GroupMembership),
                [
                    {"group_id": group_id, "person_id": mentor_id, "is_mentor": True}
                    for group_id, mentor_id in zip(groups, mentors, strict=True)
                ],
            )
            await session.flush()
            history = school_days_before(today, history_days)
            for start in range(0, pupils, CHUNK):
                count = min(CHUNK, pupils - start)
                chunk_ids = user_ids[start : start + count]
                person_ids = await _insert_persons(
                    session, school.id, Role.PUPIL, "P", count, offset=start
                )
                await _link_accounts(session, chunk_ids, person_ids)
                await session.execute(
                    insert(GroupMembership),
                    [
                        {"group_id": groups[(start + n) // GROUP_SIZE], "person_id": person_id}
                        for n, person_id in enumerate(person_ids)
                    ],
                )
                await session.execute(
                    insert(PupilGoal),
                    [
                        {
                            "pupil_id": person_id,
                            "goal_id": goal_id,
                            "period_id": period.id,
                            "chosen_by": ChosenBy.TEACHER,
                            "status": PupilGoalStatus.ACTIVE,
                        }
                        for person_id in person_ids
                        for goal_id in goal_ids
                    ],
                )
                await _insert_history(session, person_ids, history, goal_ids[0])
    finally:
        await engine.dispose()
    return user_ids


async def _insert_persons(
    session: Any, school_id: int, role: Role, prefix: str, count: int, *, offset: int = 0
) -> list[int]:
    rows = [
        {
            "school_id": school_id,
            "external_id": f"{prefix}{offset + n}",
            "display_name": f"{'Leerling' if role is Role.PUPIL else 'Juf'} {offset + n} Bench",
            "role": role,
            "preferences": {},
        }
        for n in range(count)
    ]
    result = await session.scalars(
        insert(Person).returning(Person.id, sort_by_parameter_order=True), rows
    )
    return list(result.all())


async def _link_accounts(session: Any, user_ids: Sequence[int], person_ids: Sequence[int]) -> None:
    account_ids = (
        await session.scalars(
            insert(Account).returning(Account.id, sort_by_parameter_order=True),
            [
                {"telegram_user_id": user_id, "active_person_id": person_id}
                for user_id, person_id in zip(user_ids, person_ids, strict=True)
            ],
        )
    ).all()
    await session.execute(
        insert(AccountPerson),
        [
            {"account_id": account_id, "person_id": person_id}
            for account_id, person_id in zip(account_ids, person_ids, strict=True)
        ],
    )


async def _insert_history(
    session: Any, person_ids: Sequence[int], days: Sequence[date], goal_id: int
) -> None:
    if not days:
        return
    rows = [
        {
            "pupil_id": person_id,
            "on_date": day,
            "how_it_went": 1 + (person_id + n) % 4,
            "effort": 1 + (person_id + 2 * n) % 4,
            "wellbeing": 1 + (person_id + 3 * n) % 4,
            "text": "Ik heb aan mijn planning gewerkt." if n % 3 == 0 else None,
        }
        for person_id in person_ids
        for n, day in enumerate(days)
    ]
    reflection_ids = (
        await session.scalars(
            insert(Reflection).returning(Reflection.id, sort_by_parameter_order=True), rows
        )
    ).all()
    await session.execute(
        insert(ReflectionGoal),
        [{"reflection_id": rid, "goal_id": goal_id} for rid in reflection_ids],
    )


async def reflections_saved_today(url: str) -> int:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            today = datetime.now(ZoneInfo("Europe/Amsterdam")).date()
            count = await session.scalar(
                select(func.count()).select_from(Reflection).where(Reflection.on_date == today)
            )
            return int(count or 0)
    finally:
        await engine.dispose()


async def database_size(url: str) -> int | None:
    """Bytes on disk after the run (SQLite file with its WAL, or pg_database_size)."""
    if url.startswith("sqlite"):
        path = Path(make_url(url).database or "")
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()) or None
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        size: int = await connection.fetchval("SELECT pg_database_size(current_database())")
        return size
    finally:
        await connection.close()


# ------------------------------------------------------------------------- the script

# What a pupil does, step by step: (step name, what to send or which button to tap). The
# button taps of the full reflection in six taps (tests/e2e/test_reflection.py): the first
# goal on the card, how it went, effort, how I feel, nothing to add, no next step yet.
FIRST_GOAL = object()
SCRIPT: tuple[tuple[str, object], ...] = (
    ("start", "/reflectie"),
    ("goal", FIRST_GOAL),
    ("how", "😀 Top"),
    ("effort", "💪💪💪"),
    ("wellbeing", "🙂"),
    ("extra", "Nee, klaar"),
    ("next_step", "Weet ik nog niet"),
)
STEPS = tuple(name for name, _ in SCRIPT)

# For the bare echo bot, which shows no buttons: the same updates, with the callback data
# the portfolio bot's buttons carry (same sizes, same parsing work for aiogram).
ECHO_DATA = {
    "goal": "rg:1",
    "how": "rsc:how:4",
    "effort": "rsc:effort:3",
    "wellbeing": "rsc:wellbeing:3",
    "extra": "rx:none",
    "next_step": "rsk:next_step",
}


# -------------------------------------------------------------------------- the pupils


class PupilStuckError(Exception):
    """The bot did not answer a step in time (or showed no such button)."""


@dataclass
class StepTiming:
    step: str
    sent: float  # sandbox clock (time.time()) of the pupil's message or tap
    answered: float  # of the bot's first message or edit after it


@dataclass
class Pupil:
    """One Telegram user in the sandbox, acting as its control API would make them act."""

    sandbox: TelegramSandbox
    state: BotState
    user: UserRecord
    chat: ChatState
    timings: list[StepTiming] = field(default_factory=list)

    def send_text(self, text: str) -> dict[str, Any]:
        self.sandbox.control.post_user_message(self.state, self.user, self.chat, {"text": text})
        # post_user_message awaits nothing: the newest event is this very message.
        return self.chat.events[-1]

    def press(self, message: dict[str, Any], data: str) -> dict[str, Any]:
        """A tap on a button of `message` carrying `data`: what ControlApi.press does."""
        query_id = new_callback_id()
        # The message as Telegram stores it (not the control API's view of it), as a snapshot.
        stored = self.chat.messages[message["message_id"]]
        query = {
            "id": query_id,
            "from": self.user.as_user(),
            "message": dict(stored),
            "chat_instance": self.chat.chat_instance,
            "data": data,
        }
        self.state.callbacks[query_id] = CallbackRecord(
            id=query_id,
            user_id=self.user.id,
            chat_id=self.chat.id,
            message_id=message["message_id"],
            data=data,
            created=time.time(),
        )
        event = self.chat.add_event(
            "callback_query",
            from_bot=False,
            message_id=message["message_id"],
            callback_query=query,
        )
        self.sandbox.enqueue_update(self.state, {"callback_query": query}, self.chat)
        return event

    async def answer_after(self, seq: int, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        """The bot's first message or edit in this chat after event `seq`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for event in self.chat.events[seq:]:
                if event["from_bot"] and event["type"] in ("message", "edit"):
                    return event
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise PupilStuckError(f"no answer from the bot within {timeout:g} s")
            await self.chat.signal.wait(remaining)

    async def reflect(self, *, echo: bool, timeout: float) -> None:  # noqa: ASYNC109
        """The whole script, each step as soon as the bot answered the one before."""
        last: dict[str, Any] | None = None
        for step, action in SCRIPT:
            if isinstance(action, str) and step == "start":
                sent = self.send_text(action)
            else:
                assert last is not None
                message = last["message"]
                data = ECHO_DATA[step] if echo else _button_data(message, action)
                sent = self.press(message, data)
            last = await self.answer_after(sent["seq"], timeout)
            self.timings.append(StepTiming(step, sent["time"], last["time"]))


def _button_data(message: dict[str, Any], wanted: object) -> str:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    buttons = [button for row in rows for button in row if "callback_data" in button]
    for button in buttons:
        if wanted is FIRST_GOAL or button.get("text") == wanted:
            return str(button["callback_data"])
    shown = ", ".join(repr(button.get("text")) for button in buttons) or "no buttons"
    raise PupilStuckError(f"no button {wanted!r} on the bot's message; it shows {shown}")


def make_pupils(sandbox: TelegramSandbox, token: str, user_ids: Sequence[int]) -> list[Pupil]:
    """Telegram users with the given ids (as ControlApi.create_user makes them), who have
    opened the bot before."""
    state = sandbox.state(token)
    pupils = []
    for n, user_id in enumerate(user_ids):
        sandbox.claim_user_id(user_id)
        user = UserRecord(id=user_id, first_name=f"Leerling{n}", language_code="nl", started=True)
        chat = ChatState(user_id, "private", user=user)
        state.users[user_id] = user
        state.chats[user_id] = chat
        pupils.append(Pupil(sandbox, state, user, chat))
    return pupils


# --------------------------------------------------------------------------- reporting


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    import aiogram
    import sqlalchemy

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count() or "?"),
        "ram": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "aiogram": aiogram.__version__,
        "sqlalchemy": sqlalchemy.__version__,
    }
