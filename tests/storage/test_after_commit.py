"""Work after a commit (removing the file of a deleted row) runs once the outermost
transaction commits, and never for a transaction or savepoint that rolled back."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from storage.after_commit import run_after_commit
from storage.media_files import StoredFile, record_media
from storage.models import MediaKind


async def _write(session: AsyncSession, digit: str = "a") -> None:
    # A write first: SQLite begins its transaction at the first write, and a SAVEPOINT taken
    # before that would not be part of one.
    stored = StoredFile(
        sha256=digit * 64,
        relative_path=f"{digit * 2}/{digit * 2}/{digit * 64}.pdf",
        kind=MediaKind.DOCUMENT,
        mime_type="application/pdf",
        size_bytes=1,
    )
    await record_media(session, stored=stored)


async def test_an_action_runs_once_the_transaction_commits(session: AsyncSession):
    done: list[str] = []
    await _write(session)
    run_after_commit(session, lambda: done.append("removed"))
    await session.flush()
    assert done == []

    await session.commit()
    assert done == ["removed"]

    await _write(session, "b")
    await session.commit()
    assert done == ["removed"]  # once, not again with the next transaction


async def test_a_rollback_forgets_the_actions(session: AsyncSession):
    done: list[str] = []
    await _write(session)
    run_after_commit(session, lambda: done.append("removed"))
    await session.rollback()

    await _write(session)
    await session.commit()
    assert done == []


async def test_a_rolled_back_savepoint_forgets_only_its_own_actions(session: AsyncSession):
    done: list[str] = []
    await _write(session)
    run_after_commit(session, lambda: done.append("outer"))
    savepoint = await session.begin_nested()
    run_after_commit(session, lambda: done.append("rolled back"))
    await savepoint.rollback()
    async with session.begin_nested():
        run_after_commit(session, lambda: done.append("released"))
    assert done == []  # a released savepoint is not a commit

    await session.commit()
    assert done == ["outer", "released"]


async def test_a_failing_action_neither_fails_the_commit_nor_stops_the_others(
    session: AsyncSession, caplog: pytest.LogCaptureFixture
):
    done: list[str] = []

    def fail() -> None:
        raise OSError("disk gone")

    await _write(session)
    run_after_commit(session, fail)
    run_after_commit(session, lambda: done.append("second"))
    with caplog.at_level(logging.ERROR, logger="storage.after_commit"):
        await session.commit()

    assert done == ["second"]
    assert "after a commit failed" in caplog.text
