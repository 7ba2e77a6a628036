"""Faults: Telegram erring, the database dropping its connections, the bot killed mid-dialogue.

In every case the pupil's reflection ends up written exactly once and complete, or not at all.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from storage.models import Reflection
from tests.conftest import TOKEN
from tests.factories import build_curriculum, give_goal

ROOT = Path(__file__).resolve().parents[2]
GOAL = "Je kunt soorten krachten herkennen"


@pytest.fixture
async def sam(telegram, school, session_factory):
    curriculum = await build_curriculum(session_factory, school)
    await give_goal(
        session_factory,
        pupil_id=school.persons["P1"],
        period_id=curriculum.period_id,
        goal_id=curriculum.goals["1.1a"],
    )
    return await telegram.create_user("Sam")


async def _join(user, school) -> None:
    await user.send_text(f"/start {school.codes['P1']}")
    await user.wait_for_reply(timeout=20)


async def _reflect(user, *, before_each=None) -> None:
    """The six taps of a reflection; `before_each(step)` may break something first."""
    await user.send_text("/reflectie")
    [card] = await user.wait_for_reply(timeout=20)
    for step, tap in enumerate((GOAL, "😀 Top", "💪💪💪", "🙂")):
        if before_each is not None:
            await before_each(step)
        await user.press(tap, message_id=card["message_id"])
        await user.wait_for_edit(card["message_id"], timeout=20)
    await user.press("Nee, klaar", message_id=card["message_id"])
    [next_step] = await user.wait_for_reply(timeout=20)
    await user.press("Weet ik nog niet", message_id=next_step["message_id"])
    [summary] = await user.wait_for_reply(timeout=20)
    assert "gewerkt" in summary["text"]


async def _reflections(session_factory) -> list[Reflection]:
    async with session_factory() as session:
        return list((await session.scalars(select(Reflection))).all())


async def test_telegram_errors_mid_dialogue_lose_nothing(
    running_bot, telegram, school, sam, session_factory
):
    await _join(sam, school)
    faults = [
        {"status": 500, "count": 2},
        {"status": "drop", "count": 1},
        {"status": "timeout", "delay": 0.3, "count": 1},
        {"status": 429, "retry_after": 1, "count": 2},
    ]

    async def break_telegram(step: int) -> None:
        fault = dict(faults[step])
        await telegram.inject_fault(
            "*",
            fault.pop("status"),
            fault.pop("count"),
            **fault,  # type: ignore[arg-type]
        )

    await _reflect(sam, before_each=break_telegram)
    [row] = await _reflections(session_factory)
    assert (row.how_it_went, row.effort, row.wellbeing) == (4, 3, 3)


async def test_the_database_dropping_every_connection_mid_dialogue_loses_nothing(
    running_bot, telegram, school, sam, session_factory, db_url
):
    if not db_url.startswith("postgresql"):
        pytest.skip("what a restart of PostgreSQL does to open connections")
    await _join(sam, school)
    database = make_url(db_url).database

    async def restart_database(step: int) -> None:
        if step != 2:
            return
        # What the bot sees when PostgreSQL restarts: every open connection is gone.
        admin = await asyncpg.connect(
            make_url(db_url)
            .set(drivername="postgresql", database="postgres")
            .render_as_string(hide_password=False)
        )
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        finally:
            await admin.close()

    await _reflect(sam, before_each=restart_database)
    [row] = await _reflections(session_factory)
    assert (row.how_it_went, row.effort, row.wellbeing) == (4, 3, 3)


def _start_bot(
    db_url: str, api_url: str, tmp_path: Path, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": api_url,
        "DATABASE_URL": db_url,
        "MEDIA_DIR": str(tmp_path / "media"),
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--no-migrate"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


async def _polling(telegram, since_id: int) -> int:
    """Wait until a (new) bot process asks for updates; a loaded machine starts slowly."""
    for _ in range(900):
        calls = await telegram.calls("getUpdates", since_id=since_id)
        if calls:
            return int(calls[-1]["id"])
        await asyncio.sleep(0.1)
    raise TimeoutError("the bot process did not start polling within 90 s")


async def test_a_bot_killed_mid_dialogue_resumes_where_the_pupil_was(
    sandbox, telegram, school, sam, session_factory, db_url, tmp_path
):
    log = (tmp_path / "bot.log").open("ab")
    bot = _start_bot(db_url, sandbox.base_url, tmp_path, log)
    try:
        await _polling(telegram, 0)
        await _join(sam, school)

        async def kill_and_restart(step: int) -> None:
            nonlocal bot
            if step != 2:
                return
            bot.send_signal(signal.SIGKILL)
            await asyncio.to_thread(bot.wait, 10)
            since = max(call["id"] for call in await telegram.calls())
            bot = _start_bot(db_url, sandbox.base_url, tmp_path, log)
            await _polling(telegram, since)

        await _reflect(sam, before_each=kill_and_restart)
        # The summary leaves just before the last step commits.
        for _ in range(100):
            if await _reflections(session_factory):
                break
            await asyncio.sleep(0.1)
    finally:
        bot.terminate()
        try:
            await asyncio.to_thread(bot.wait, 10)
        except subprocess.TimeoutExpired:
            bot.kill()
        log.close()
    [row] = await _reflections(session_factory)
    assert (row.how_it_went, row.effort, row.wellbeing) == (4, 3, 3)
