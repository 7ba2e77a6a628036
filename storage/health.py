"""What operations ask the database: is it there, is its schema one this code can run on, how
long is the reminder queue; and a lock so that replicas starting together migrate one at a time.
"""

from __future__ import annotations

import enum
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine
from storage.migrate import alembic_config, head_revision
from storage.models import Reminder, ReminderStatus

# Any fixed number: the key of the PostgreSQL advisory lock held while migrating.
_MIGRATION_LOCK_KEY = 7_263_114_905


class SchemaState(enum.StrEnum):
    EMPTY = "empty"  # no tables: `db upgrade` first
    BEHIND = "behind"  # older than the code: `db upgrade`
    CURRENT = "current"
    # Newer than the code: during a rolling upgrade the new version migrated first. Migrations
    # stay backward compatible for one version (docs/operations.md), so this code still runs.
    AHEAD = "ahead"


def _current(connection: Connection) -> str | None:
    # Read the version table directly: MigrationContext would log two lines on every
    # readiness probe.
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def classify(revision: str | None) -> SchemaState:
    if revision is None:
        return SchemaState.EMPTY
    if revision == head_revision():
        return SchemaState.CURRENT
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    known = {rev.revision for rev in script.walk_revisions()}
    return SchemaState.BEHIND if revision in known else SchemaState.AHEAD


async def schema_state(engine: AsyncEngine) -> tuple[SchemaState, str | None]:
    """The schema's state on an engine the caller owns (the app's, for /readyz)."""
    async with engine.connect() as connection:
        revision = await connection.run_sync(_current)
    return classify(revision), revision


def _sqlite_file_missing(url: str) -> bool:
    if not url.startswith("sqlite"):
        return False
    database = make_url(url).database
    return bool(database) and database != ":memory:" and not os.path.exists(str(database))


async def schema_state_of(url: str) -> tuple[SchemaState, str | None]:
    if _sqlite_file_missing(url):
        # Not yet created: say so without creating an empty file (or failing on a directory
        # that `db upgrade` is about to create).
        return SchemaState.EMPTY, None
    engine = create_engine(url)
    try:
        return await schema_state(engine)
    finally:
        await engine.dispose()


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


@asynccontextmanager
async def migration_lock(url: str) -> AsyncIterator[None]:
    """Held while migrating: a second replica starting at the same moment waits, then finds
    the schema current and changes nothing. SQLite needs none (one server, one writer)."""
    if not url.startswith("postgresql"):
        yield
        return
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f"SELECT pg_advisory_lock({_MIGRATION_LOCK_KEY})"))
            await connection.commit()
            try:
                yield
            finally:
                await connection.execute(text(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK_KEY})"))
                await connection.commit()
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class QueueDepth:
    due: int  # pending and due now: waiting for a sender
    claimed: int  # taken by a worker, being sent
    scheduled: int  # pending, due later
    oldest_due_at: datetime | None


async def reminder_queue(engine: AsyncEngine, *, now: datetime) -> QueueDepth:
    pending = Reminder.status == ReminderStatus.PENDING
    is_due = Reminder.due_at <= now
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(
                    func.count().filter(pending, is_due),
                    func.count().filter(Reminder.status == ReminderStatus.CLAIMED),
                    func.count().filter(pending, ~is_due),
                    func.min(Reminder.due_at).filter(pending, is_due),
                ).select_from(Reminder)
            )
        ).one()
    return QueueDepth(
        due=int(row[0]), claimed=int(row[1]), scheduled=int(row[2]), oldest_due_at=row[3]
    )
