"""Durable reminders reach each person exactly once, across a crash and with two workers.

The workers are real OS processes (`tests/scheduler/sender_process.py`) running the real
dispatcher and sender against the sandbox, which runs in this test process and counts what
arrives: every message's text is its reminder's idempotency key.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from sandbox import SandboxClient, TelegramSandbox
from storage.models import Account, AccountPerson, Person, ReminderStatus, Role, School
from storage.reminders import reminders_of, schedule_reminder
from tests.conftest import TOKEN
from tests.scheduler.sender_process import KIND

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# A worker process spends most of its start importing aiogram's types, which on a busy CI
# machine can take tens of seconds.
WORKER_TIMEOUT = 180.0
pytestmark = pytest.mark.timeout(400)


async def populate(session_factory, telegram: SandboxClient, count: int) -> dict[str, int]:
    """`count` pupils with Telegram accounts (sandbox users too), each with one due reminder;
    returns idempotency key -> chat id."""
    users = [await telegram.create_user(f"Leerling {n}") for n in range(count)]
    async with session_factory() as session, session.begin():
        # Quiet hours from 00:00 to 00:00: none, whatever time the test runs.
        school = School(name="De Regenboog", quiet_hours_start=time(0), quiet_hours_end=time(0))
        session.add(school)
        await session.flush()
        person_ids = (
            await session.scalars(
                insert(Person).returning(Person.id, sort_by_parameter_order=True),
                [
                    {
                        "school_id": school.id,
                        "external_id": f"L{n}",
                        "display_name": f"Leerling {n}",
                        "role": Role.PUPIL,
                        "preferences": {},
                    }
                    for n in range(count)
                ],
            )
        ).all()
        account_ids = (
            await session.scalars(
                insert(Account).returning(Account.id, sort_by_parameter_order=True),
                [
                    {"telegram_user_id": user.id, "active_person_id": person_id}
                    for user, person_id in zip(users, person_ids, strict=True)
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
        due = datetime.now(UTC) - timedelta(minutes=1)
        keys: dict[str, int] = {}
        for n, (user, person_id) in enumerate(zip(users, person_ids, strict=True)):
            key = f"{KIND}:{n:04d}"
            await schedule_reminder(
                session, kind=KIND, person_id=person_id, due_at=due, idempotency_key=key
            )
            keys[key] = user.id
    return keys


async def start_worker(db_url: str, sandbox: TelegramSandbox, name: str, **options):
    arguments = [
        "--database-url",
        db_url,
        "--api-url",
        sandbox.base_url,
        "--token",
        TOKEN,
        "--worker-id",
        name,
    ]
    for option, value in options.items():
        arguments += [f"--{option.replace('_', '-')}", str(value)]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.scheduler.sender_process",
        *arguments,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finished(worker) -> dict:
    stdout, stderr = await asyncio.wait_for(worker.communicate(), WORKER_TIMEOUT)
    assert worker.returncode == 0, stderr.decode()[-3000:]
    return json.loads(stdout.decode().strip().splitlines()[-1])


def delivered_sends(sandbox: TelegramSandbox) -> int:
    return sum(
        1
        for call in sandbox.state(TOKEN).calls
        if call["method"] == "sendMessage" and call["status"] == 200
    )


async def deliveries(telegram: SandboxClient, keys: dict[str, int]) -> Counter[str]:
    """How often each reminder's text arrived, over all the chats."""
    counted: Counter[str] = Counter()
    for chat_id in set(keys.values()):
        for message in await telegram.messages(chat_id):
            counted[message.get("text", "")] += 1
    return counted


async def test_a_killed_worker_sends_nothing_twice_and_its_successor_finishes(
    db_url, session_factory, sandbox: TelegramSandbox, telegram: SandboxClient
):
    # A claim of 60 and a sender admitting 20 a second: at the kill the worker holds rows it
    # has sent, rows on their way and rows it had not started on.
    count, batch_size, rate = 150, 60, 20
    keys = await populate(session_factory, telegram, count)

    first = await start_worker(db_url, sandbox, "worker-1", rate=rate, batch_size=batch_size)
    # Kill it once the sandbox has seen part of the first batch.
    for _ in range(int(WORKER_TIMEOUT / 0.005)):
        if delivered_sends(sandbox) >= 30 or first.returncode is not None:
            break
        await asyncio.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    assert first.returncode == -signal.SIGKILL
    at_kill = delivered_sends(sandbox)
    assert 30 <= at_kill < batch_size, "the kill did not land in the middle of the batch"

    report = await finished(
        await start_worker(db_url, sandbox, "worker-2", rate=rate, lease=1, batch_size=batch_size)
    )

    counted = await deliveries(telegram, keys)
    async with session_factory() as session:
        rows = await reminders_of(session, kinds=[KIND])
    status = {row.idempotency_key: row.status for row in rows}
    assert len(rows) == count
    assert set(counted) <= set(keys)
    assert [key for key, times in counted.items() if times > 1] == []
    uncertain = [key for key, value in status.items() if value is ReminderStatus.UNCERTAIN]
    assert {value for key, value in status.items() if key not in uncertain} == {ReminderStatus.SENT}
    # Every reminder arrived, except at most those that were on their way at the kill: the
    # database says of each of those that it may not have.
    assert [key for key in keys if counted[key] == 0 and key not in uncertain] == []
    assert len(uncertain) <= batch_size
    assert report["uncertain"] == len(uncertain)
    # The rows the dead worker had claimed but not started on went out again after the lease.
    assert report["released"] > 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_workers_at_once_share_the_due_reminders(
    db_url, session_factory, sandbox: TelegramSandbox, telegram: SandboxClient
):
    count = 400
    keys = await populate(session_factory, telegram, count)
    await telegram.set_limits(global_rate=200, global_burst=200)

    workers = [
        await start_worker(db_url, sandbox, f"replica-{n}", rate=40, batch_size=20) for n in (1, 2)
    ]
    reports = await asyncio.gather(*(finished(worker) for worker in workers))

    counted = await deliveries(telegram, keys)
    assert [key for key, times in counted.items() if times > 1] == []
    assert sorted(counted) == sorted(keys)
    async with session_factory() as session:
        rows = await reminders_of(session, kinds=[KIND])
    assert {row.status for row in rows} == {ReminderStatus.SENT}
    assert sum(report["sent"] for report in reports) == count
    # Both took part: the rows were shared, not taken by whichever started first.
    assert all(report["sent"] > 0 for report in reports)
