"""Scale-out: two `portfolio-bot run --webhook` replicas behind nginx, sharing PostgreSQL and
Redis; one is killed (SIGKILL) halfway through a pupil's reflection and a reminder batch.

What must hold: every update is handled exactly once (the replicas' own update log lines and
the processed_update rows), the reflection is complete, every reminder reaches its pupil
exactly once (counted at the sandbox), and none is left pending or claimed.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as redis
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import make_url

from sandbox import SandboxClient, TelegramSandbox
from storage.db import create_engine, create_sessionmaker
from storage.models import (
    Account,
    AccountPerson,
    Person,
    ProcessedUpdate,
    Reflection,
    Reminder,
    ReminderStatus,
    Role,
    School,
)
from storage.reminders import schedule_reminder
from tests.conftest import PG_URL, TOKEN, _pg_execute
from tests.factories import build_curriculum, build_school, give_goal
from tests.ops.conftest import (
    REDIS_URL,
    free_port,
    json_lines,
    nginx_binary,
    start_bot_process,
    start_nginx,
    stop,
    wait_ready,
)

REDIS_DB = 13
REMINDERS = 10
# Slow sending, so that the batch is still going when a replica is killed: one message every
# half second per replica.
SEND_RATE = "2"
LEASE_SECONDS = "3"
SECRET = "a-shared-secret-of-both-replicas"


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    if PG_URL is None or not PG_URL.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL database: set TEST_DATABASE_URL")
    template = request.getfixturevalue("pg_template")
    name = f"portfolio_replicas_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_execute(PG_URL, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    request.addfinalizer(
        lambda: asyncio.run(_pg_execute(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    )
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
async def redis_url() -> str:
    # A database number of its own, flushed before and after.
    base = urlsplit(REDIS_URL)
    url = f"redis://{base.netloc or '127.0.0.1:6379'}/{REDIS_DB}"
    client = redis.from_url(url)
    try:
        await client.ping()
    except (OSError, redis.ConnectionError):
        await client.aclose()
        pytest.skip(f"no Redis at {url}")
    await client.flushdb()
    yield url
    await client.flushdb()
    await client.aclose()


async def reminder_pupils(session_factory, telegram: SandboxClient, school_id: int) -> dict:
    """Pupils with a Telegram account each: person id -> chat id."""
    users = [await telegram.create_user(f"Leerling{n}") for n in range(REMINDERS)]
    async with session_factory() as session, session.begin():
        chats = {}
        for n, user in enumerate(users):
            person_id = await session.scalar(
                insert(Person)
                .values(
                    school_id=school_id,
                    external_id=f"R{n}",
                    display_name=f"Leerling{n} Zonderachternaam",
                    role=Role.PUPIL,
                    preferences={},
                )
                .returning(Person.id)
            )
            account_id = await session.scalar(
                insert(Account)
                .values(telegram_user_id=user.id, active_person_id=person_id)
                .returning(Account.id)
            )
            await session.execute(
                insert(AccountPerson).values(account_id=account_id, person_id=person_id)
            )
            chats[person_id] = user.id
    return chats


async def wait_until(predicate, *, seconds: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def reminder_sends(sandbox: TelegramSandbox, chats: set[int]) -> Counter:
    """Messages that reached these chats (the sandbox logs parameters as they came: text)."""
    sent = (
        int(call["params"].get("chat_id", 0))
        for call in sandbox.state(TOKEN).calls
        if call["method"] == "sendMessage" and call["status"] == 200
    )
    return Counter(chat for chat in sent if chat in chats)


async def test_two_replicas_behind_nginx_survive_a_kill(
    pg_url: str,
    redis_url: str,
    sandbox: TelegramSandbox,
    telegram: SandboxClient,
    tmp_path: Path,
):
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    engine = create_engine(pg_url)
    session_factory = create_sessionmaker(engine)
    processes: list = []
    try:
        school = await build_school(session_factory)
        curriculum = await build_curriculum(session_factory, school)
        for code in ("1.1a", "RN"):
            await give_goal(
                session_factory,
                pupil_id=school.persons["P1"],
                period_id=curriculum.period_id,
                goal_id=curriculum.goals[code],
            )
        async with session_factory() as session, session.begin():
            # No quiet hours, whatever time the test runs; and nothing for the planners to
            # plan (their day ends at the start of the quiet hours).
            await session.execute(
                update(School)
                .where(School.id == school.school_id)
                .values(quiet_hours_start=clock_time(0), quiet_hours_end=clock_time(0))
            )
        chats = await reminder_pupils(session_factory, telegram, school.school_id)

        proxy_port, ports = free_port(), [free_port(), free_port()]
        processes.append(await start_nginx(tmp_path / "nginx", port=proxy_port, upstreams=ports))
        logs = [tmp_path / f"replica-{n}.log" for n in range(2)]
        replicas = []
        for port, log in zip(ports, logs, strict=True):
            env = {
                "BOT_TOKEN": TOKEN,
                "TELEGRAM_API_URL": sandbox.base_url,
                "DATABASE_URL": pg_url,
                "REDIS_URL": redis_url,
                "WEBHOOK_URL": f"http://127.0.0.1:{proxy_port}",
                "WEBHOOK_SECRET": SECRET,
                "WEBHOOK_HOST": "127.0.0.1",
                "WEBHOOK_PORT": str(port),
                "MEDIA_DIR": str(tmp_path / "media"),
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "INFO",
                "SEND_RATE_PER_SECOND": SEND_RATE,
                "REMINDER_LEASE_SECONDS": LEASE_SECONDS,
            }
            replica = await start_bot_process(env, cwd=tmp_path, log=log)
            processes.append(replica)
            replicas.append(replica)
        for port, replica, log in zip(ports, replicas, logs, strict=True):
            ready = await wait_ready(port, process=replica, log=log)
            assert ready["checks"] == {
                "database": "ok",
                "schema": ready["checks"]["schema"],
                "redis": "ok",
            }
            assert ready["checks"]["schema"].startswith("current")
        webhook = sandbox.state(TOKEN).webhook
        assert webhook is not None and webhook.url.startswith(f"http://127.0.0.1:{proxy_port}/")

        # A pupil joins and answers the first two questions of the reflection.
        pupil = await telegram.create_user("Sam")
        await pupil.send_text(f"/start {school.codes['P1']}")
        await pupil.wait_for_reply(timeout=15)
        await pupil.send_text("✍️ Reflectie")
        [card] = await pupil.wait_for_reply(timeout=15)
        taps = [
            "Je kunt soorten krachten herkennen",
            "😀 Top",
            "💪💪💪",
            "🙂",
            "Nee, klaar",
            "Weet ik nog niet",
        ]
        for tap in taps[:2]:
            await pupil.press(tap, message_id=card["message_id"])
            await pupil.wait_for_edit(card["message_id"], timeout=15)

        async def delivered() -> bool:
            # The webhook's answer comes after the commit: nothing pending = all committed.
            return not await telegram.pending_updates()

        await wait_until(delivered, seconds=15, what="the updates to be confirmed")

        # A batch of reminders, due now. One replica claims it and sends slowly.
        today = datetime.now(ZoneInfo("Europe/Amsterdam")).date().isoformat()
        async with session_factory() as session, session.begin():
            for person_id in chats:
                await schedule_reminder(
                    session,
                    kind="reflection_prompt",
                    person_id=person_id,
                    due_at=datetime.now(UTC) - timedelta(seconds=1),
                    idempotency_key=f"reflection:{person_id}:{today}",
                    payload={"date": today},
                )

        async def some_sent() -> bool:
            return sum(reminder_sends(sandbox, set(chats.values())).values()) >= 3

        try:
            await wait_until(some_sent, seconds=30, what="the first reminders")
        except AssertionError:
            async with session_factory() as session:
                rows = (await session.execute(select(Reminder.status, Reminder.last_error))).all()
            raise AssertionError(f"reminders not sent: {rows}") from None
        # Between two sends of the claiming replica (one every 0.5 s): not in the middle of one.
        await asyncio.sleep(0.15)
        async with session_factory() as session:
            claimers = set(
                (
                    await session.scalars(
                        select(Reminder.claimed_by).where(Reminder.status == ReminderStatus.CLAIMED)
                    )
                ).all()
            )
        assert len(claimers) == 1, claimers
        victim_pid = int(next(iter(claimers)).rsplit(":", 1)[1])
        [victim] = [replica for replica in replicas if replica.pid == victim_pid]
        victim.kill()  # SIGKILL: no clean-up of any kind
        await victim.wait()
        survivor_port = ports[1 - replicas.index(victim)]

        # The pupil goes on as if nothing happened; nginx sends everything to the survivor.
        for tap in taps[2:4]:
            await pupil.press(tap, message_id=card["message_id"])
            await pupil.wait_for_edit(card["message_id"], timeout=15)
        await pupil.press(taps[4], message_id=card["message_id"])
        [next_step] = await pupil.wait_for_reply(timeout=15)
        await pupil.press(taps[5], message_id=next_step["message_id"])
        [summary] = await pupil.wait_for_reply(timeout=15)
        assert "hard gewerkt" in summary["text"]

        # The survivor takes over the dead replica's reminders once the lease ran out.
        async def all_finished() -> bool:
            async with session_factory() as session:
                open_rows = await session.scalar(
                    select(func.count())
                    .select_from(Reminder)
                    .where(Reminder.status.in_([ReminderStatus.PENDING, ReminderStatus.CLAIMED]))
                )
            return open_rows == 0

        await wait_until(all_finished, seconds=40, what="every reminder to be sent", every=0.2)
        await wait_until(delivered, seconds=15, what="the last updates to be confirmed")

        # Every reminder reached its pupil exactly once.
        sends = reminder_sends(sandbox, set(chats.values()))
        assert sends == Counter(dict.fromkeys(chats.values(), 1))
        async with session_factory() as session:
            statuses = Counter((await session.scalars(select(Reminder.status))).all())
            assert statuses == {ReminderStatus.SENT: REMINDERS}
            [reflection] = (await session.scalars(select(Reflection))).all()
            assert (reflection.how_it_went, reflection.effort, reflection.wellbeing) == (4, 3, 3)
            processed = set((await session.scalars(select(ProcessedUpdate.update_id))).all())

        # Every update handled exactly once, by one replica or the other: /start, the menu
        # button, six presses.
        lines = [
            line
            for log in logs
            for line in json_lines(log)
            if line.get("logger") == "bot.updates" and "outcome" in line
        ]
        handled = Counter(line["update_id"] for line in lines if line["outcome"] == "handled")
        assert len(handled) == 8 and set(handled.values()) == {1}, handled
        assert set(handled) == processed
        by_replica = [
            {line["update_id"] for line in json_lines(log) if line.get("outcome") == "handled"}
            for log in logs
        ]
        assert all(by_replica), "nginx spread the updates over both replicas"
        text = "".join(log.read_text() for log in logs)
        assert "Vries" not in text and "Leerling" not in text and "Zonderachternaam" not in text

        survivor_ready = await wait_ready(
            survivor_port, process=replicas[1 - replicas.index(victim)], log=logs[0]
        )
        assert survivor_ready["status"] == "ready"
    finally:
        for process in reversed(processes):
            await stop(process, signal_number=signal.SIGTERM)
        await engine.dispose()
