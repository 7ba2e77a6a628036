"""The authorisation matrix, generated from the routers: every button and every command, as
every role that must NOT reach a pupil of another group, aimed at that pupil's things.

The victim, Daan (group 7b), and everything of his (reflection, note, work, talk, goal,
plan, week plan item, group) share one id, 4242, so a single forged button with every number
set to 4242 points at all of them at once. A new handler needs no new line here: its
CallbackData class or Command is picked up from the routers and joins the matrix.

For each case the test demands: the tap is answered (no endless spinner), nothing of Daan's
appears in any message to the actor, and at the end nothing of Daan's has changed and nothing
was written about him.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args

import pytest
from aiogram import Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData, CallbackQueryFilter
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import get_routers
from sandbox import SandboxClient, TelegramSandbox
from storage.invites import issue_invite
from storage.models import (
    Evidence,
    EvidenceKind,
    Feedback,
    FeedbackTarget,
    Group,
    GroupMembership,
    LearningPlan,
    Observation,
    ObservationPupil,
    Person,
    PupilGoal,
    Reflection,
    Role,
    School,
    Talk,
    TalkKind,
    WeekPlan,
    WeekPlanItem,
)
from tests.conftest import INVITE_SECRET
from tests.factories import DemoSchool, build_curriculum

VICTIM = 4242
# What the actors never type themselves: his full name carries "GEHEIM" and "Bakker".
SECRETS = ("GEHEIM", "Bakker", "Meester Kees")
# Tables whose rows are about people: none may grow or change while the matrix runs.
CONTENT_TABLES = (
    "reflection",
    "observation",
    "observation_pupil",
    "evidence",
    "evidence_goal",
    "feedback",
    "talk",
    "talk_participant",
    "talk_evidence",
    "pupil_goal",
    "assessment",
    "learning_plan",
    "learning_plan_step",
    "week_plan",
    "week_plan_item",
    "guardianship",
    "group_membership",
    "person",
    "audit_event",
)


def _walk(router: Router) -> Iterator[Router]:
    yield router
    for sub in router.sub_routers:
        yield from _walk(sub)


def registered_buttons() -> list[type[CallbackData]]:
    found: dict[str, type[CallbackData]] = {}
    for root in get_routers():
        for router in _walk(root):
            for handler in router.callback_query.handlers:
                for flt in handler.filters or []:
                    if isinstance(flt.callback, CallbackQueryFilter):
                        cls = flt.callback.callback_data
                        found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[name] for name in sorted(found)]


def registered_commands() -> list[str]:
    names: set[str] = set()
    for root in get_routers():
        for router in _walk(root):
            for handler in router.message.handlers:
                for flt in handler.filters or []:
                    if isinstance(flt.callback, Command):
                        names.update(c for c in flt.callback.commands if isinstance(c, str))
    return sorted(names)


def forged(cls: type[CallbackData]) -> str:
    """The button's data with every number aimed at the victim's things."""
    values: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        kind = field.annotation
        if kind is bool:
            values[name] = True
        elif kind is int:
            values[name] = VICTIM
        elif isinstance(kind, type) and issubclass(kind, enum.Enum):
            values[name] = next(iter(kind))
        elif kind is str or str in get_args(kind):
            values[name] = str(VICTIM)
        else:
            values[name] = VICTIM
    return cls(**values).pack()


def test_every_button_prefix_is_unique():
    """Two classes with one prefix would let one handler receive the other's data."""
    by_prefix: dict[str, list[str]] = {}
    for cls in registered_buttons():
        by_prefix.setdefault(cls.__prefix__, []).append(cls.__qualname__)
    assert {p: names for p, names in by_prefix.items() if len(names) > 1} == {}


@dataclass
class Victim:
    person_id: int
    name: str


async def _plant_victim(session: AsyncSession, school: DemoSchool, goal_id: int, period_id: int):
    """Daan of group 7b, his teacher Meester Kees, and one of each of his things, all id 4242."""
    group = Group(id=VICTIM, school_id=school.school_id, name="Groep 7b", school_year="2026-2027")
    daan = Person(
        id=VICTIM,
        school_id=school.school_id,
        external_id="P9",
        role=Role.PUPIL,
        display_name="Daan GEHEIM Bakker",
    )
    kees = Person(
        school_id=school.school_id, external_id="T9", role=Role.TEACHER, display_name="Meester Kees"
    )
    session.add_all([group, daan, kees])
    await session.flush()
    session.add_all(
        [
            GroupMembership(group_id=VICTIM, person_id=VICTIM),
            GroupMembership(group_id=VICTIM, person_id=kees.id, is_mentor=True),
        ]
    )
    session.add(
        Reflection(
            id=VICTIM, pupil_id=VICTIM, on_date=date.today(), how_it_went=1, text="GEHEIM dagboek"
        )
    )
    session.add(
        Observation(id=VICTIM, author_id=kees.id, text="GEHEIM zorgnotitie", is_private=True)
    )
    await session.flush()
    session.add(ObservationPupil(observation_id=VICTIM, pupil_id=VICTIM))
    session.add(
        Evidence(
            id=VICTIM,
            pupil_id=VICTIM,
            kind=EvidenceKind.PHOTO,
            caption="GEHEIM tekening",
            shared_with_parents=True,
        )
    )
    pupil_goal = PupilGoal(
        id=VICTIM, pupil_id=VICTIM, goal_id=goal_id, period_id=period_id, chosen_by="pupil"
    )
    session.add(pupil_goal)
    await session.flush()
    session.add(
        Talk(
            id=VICTIM,
            kind=TalkKind.TRIPARTITE,
            pupil_id=VICTIM,
            organiser_id=kees.id,
            scheduled_at=datetime.now(UTC) + timedelta(days=3),
            place="GEHEIM lokaal",
        )
    )
    session.add(LearningPlan(id=VICTIM, pupil_id=VICTIM, idea="GEHEIM plan"))
    week_plan = WeekPlan(id=VICTIM, pupil_id=VICTIM, week_start=date.today())
    session.add(week_plan)
    await session.flush()
    session.add(
        WeekPlanItem(id=VICTIM, week_plan_id=VICTIM, pupil_goal_id=VICTIM, text="GEHEIM oefenen")
    )
    session.add(
        Feedback(
            id=VICTIM,
            author_role=Role.TEACHER,
            target=FeedbackTarget.EVIDENCE,
            pupil_id=VICTIM,
            evidence_id=VICTIM,
            top="GEHEIM top",
        )
    )


async def _other_school_admin(session: AsyncSession) -> str:
    school = School(name="De Vlinder")
    session.add(school)
    await session.flush()
    admin = Person(
        school_id=school.id, external_id="A9", role=Role.ADMIN, display_name="Beheer De Vlinder"
    )
    session.add(admin)
    await session.flush()
    return await issue_invite(
        session, person_id=admin.id, valid_for=timedelta(days=14), secret=INVITE_SECRET
    )


async def _fingerprint(session: AsyncSession) -> dict[str, Any]:
    counts = {}
    for table in CONTENT_TABLES:
        counts[table] = await session.scalar(select(func.count()).select_from(text(table)))
    victim_rows = []
    for table in ("reflection", "observation", "evidence", "talk", "pupil_goal", "learning_plan"):
        row = (await session.execute(text(f"SELECT * FROM {table} WHERE id = {VICTIM}"))).one()
        victim_rows.append([str(value) for value in row])
    digest = hashlib.sha256(json.dumps(victim_rows).encode()).hexdigest()
    return {"counts": counts, "victim": digest}


@pytest.fixture
async def world(
    running_bot, telegram: SandboxClient, sandbox: TelegramSandbox, school, session_factory
):
    # The matrix is about who may see what, not about Telegram's pace.
    sandbox.limits.per_chat_rate = 0
    sandbox.limits.global_rate = 0
    curriculum = await build_curriculum(session_factory, school)
    async with session_factory() as session, session.begin():
        await _plant_victim(session, school, curriculum.goals["1.1a"], curriculum.period_id)
        other_admin_code = await _other_school_admin(session)
    actors = {}
    codes = {
        "pupil of another group": school.codes["P1"],
        "parent of another pupil": school.codes["O1"],
        "teacher of another group": school.codes["T1"],
        "admin of another school": other_admin_code,
        "unknown account": None,
    }
    for role, code in codes.items():
        user = await telegram.create_user(role.split()[0].title())
        await user.send_text(f"/start {code}" if code else "/start")
        await user.wait_for_reply()
        actors[role] = user
    return actors


def _leaks(messages: list[dict[str, Any]]) -> list[str]:
    found = []
    for message in messages:
        if not (message.get("from") or {}).get("is_bot"):
            continue  # the actor's own typing
        shown = json.dumps(
            {k: message.get(k) for k in ("text", "caption", "reply_markup")}, ensure_ascii=False
        )
        found += [secret for secret in SECRETS if secret in shown]
    return found


async def test_no_role_reaches_a_pupil_of_another_group_by_any_button_or_command(
    world, telegram: SandboxClient, running_bot, session_factory
):
    async with session_factory() as session:
        before = await _fingerprint(session)
    buttons = registered_buttons()
    commands = registered_commands()
    problems: list[str] = []
    cases = 0
    for role, user in world.items():
        for cls in buttons:
            cases += 1
            await user.refresh()  # a handler may have deleted the message tapped before
            query = await user.press_raw(user.last_bot_message()["message_id"], forged(cls))
            try:
                await user.wait_for_callback_answer(query["id"], timeout=10)
            except TimeoutError:
                problems.append(f"{role}: {cls.__qualname__} left the tap unanswered")
        for command in commands:
            for argument in ("Daan", str(VICTIM)):
                cases += 1
                await user.send_text(f"/{command} {argument}")
                await running_bot.settled()
            await user.send_text("/annuleer")
        await user.send_text("/help")  # the last reply: everything before it has arrived
        await user.wait_for_reply(timeout=20)
        await running_bot.settled()
        for message in await user.messages():
            leaks = _leaks([message])
            if leaks:
                problems.append(f"{role} was shown {leaks}: {message.get('text')!r}")
    async with session_factory() as session:
        after = await _fingerprint(session)
    assert problems == [], "\n".join(problems)
    assert after == before, "something of (or about) Daan was written or changed"
    # Five roles x (buttons + two forms of each command): reported in the closing note.
    print(f"authorisation matrix: {cases} cases, {len(buttons)} buttons, {len(commands)} commands")
    assert cases == len(world) * (len(buttons) + 2 * len(commands))
