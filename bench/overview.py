"""The teacher's class overview and a pupil's timeline on a generated school year.

Generates one class for a whole year (`bench/_schoolyear.py`: 30 pupils x 200 school days of
reflections, 3 photos and 2 teacher's notes per pupil a week, self and teacher levels), then
times, each on a fresh session as a handler gets it:
  - `storage.overview.class_overview` (the queries behind /klas: levels per line, not
    reflected this week, wellbeing signals, open proposals),
  - the same plus drawing the pictures (what /klas does before sending),
  - `storage.observations.timeline` for a teacher: the first page and page 20, all kinds,
    and the first page of notes with a tag.
Prints p50/p95 ms per query, the rows per table and the size of the database. Asserts nothing.

`--database-url` takes a PostgreSQL server URL: the bench creates a database of its own
there and drops it afterwards. Without it, a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench._schoolyear import SchoolYear, generate_school_year
from conversations.class_overview import picture_texts
from language.i18n import load_i18n
from services.pictures.class_overview import draw_class_overview_pages
from storage import migrate
from storage.db import create_engine, create_sessionmaker
from storage.models import (
    Assessment,
    Evidence,
    Observation,
    ObservationPupil,
    ObservationTag,
    PupilGoal,
    Reflection,
    ReflectionGoal,
    Role,
)
from storage.observations import ItemKind, timeline
from storage.overview import class_overview


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(server_url: str | None) -> AsyncIterator[tuple[str, str]]:
    """(url, label) of an empty, migrated database; PostgreSQL: created here, dropped after."""
    if server_url is None:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
            await migrate.upgrade(url)
            yield url, "SQLite (a temporary file)"
        return
    name = f"bench_overview_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        await migrate.upgrade(url)
        yield url, f"PostgreSQL (database {name}, dropped afterwards)"
    finally:
        admin = await asyncpg.connect(_dsn(server_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


class StatementCounter:
    """SQL statements sent to the database: a figure that does not depend on the machine's
    load, unlike the times (round trips are what a slow network makes expensive)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1


async def statements_of(
    factory: async_sessionmaker[AsyncSession],
    counter: StatementCounter,
    work: Callable[[AsyncSession], Awaitable[Any]],
) -> int:
    async with factory() as session:
        before = counter.count
        await work(session)
        return counter.count - before


async def timed(
    factory: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[Any]],
    runs: int,
    warmup: int,
) -> list[float]:
    """Seconds per call, each call on a session of its own (as a handler gets one)."""
    times = []
    for index in range(warmup + runs):
        async with factory() as session:
            started = time.perf_counter()
            await work(session)
            elapsed = time.perf_counter() - started
        if index >= warmup:
            times.append(elapsed)
    return times


def report(label: str, times: list[float], extra: str = "") -> None:
    p50, p95 = percentile(times, 0.5) * 1000, percentile(times, 0.95) * 1000
    print(f"  {label:44} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   {extra}")


async def database_size(session: AsyncSession, url: str) -> int:
    if url.startswith("sqlite"):
        database = make_url(url).database
        assert database is not None
        # Fresh rows sit in the write-ahead log until a checkpoint: count both files.
        files = [Path(database), Path(database + "-wal")]
        return sum(await asyncio.to_thread(lambda: [f.stat().st_size for f in files if f.exists()]))
    return int(await session.scalar(text("SELECT pg_database_size(current_database())")) or 0)


async def run(args: argparse.Namespace) -> None:
    print(f"python    {platform.python_version()}, {os.cpu_count()} cores, {platform.platform()}")
    async with fresh_database(args.database_url) as (url, label):
        engine = create_engine(url)
        factory = create_sessionmaker(engine)
        counter = StatementCounter(engine)
        try:
            started = time.perf_counter()
            year = await generate_school_year(factory, pupils=args.pupils, days=args.days)
            generated = time.perf_counter() - started
            if url.startswith("postgresql"):
                async with engine.connect() as connection:
                    await connection.execute(text("ANALYZE"))
            print(f"database  {label}")
            print(
                f"year      {args.pupils} pupils x {args.days} school days "
                f"({year.first_day} .. {year.last_day}), generated in {generated:.1f} s"
            )
            await report_rows(factory, url)
            print(f"\ntimings   {args.runs} runs after {args.warmup} warm-up, one at a time")
            await bench_overview(factory, counter, year, args)
            await bench_timeline(factory, counter, year, args)
        finally:
            await engine.dispose()


async def report_rows(factory: async_sessionmaker[AsyncSession], url: str) -> None:
    async with factory() as session:
        counts = []
        for model in (
            Reflection,
            ReflectionGoal,
            Evidence,
            Observation,
            ObservationPupil,
            ObservationTag,
            Assessment,
            PupilGoal,
        ):
            count = await session.scalar(select(func.count()).select_from(model))
            counts.append(f"{model.__tablename__} {count}")
        print("rows      " + ", ".join(counts))
        print(f"db size   {await database_size(session, url) / 1024 / 1024:.1f} MiB")


async def bench_overview(
    factory: async_sessionmaker[AsyncSession],
    counter: StatementCounter,
    year: SchoolYear,
    args: argparse.Namespace,
) -> None:
    async def overview(session: AsyncSession) -> Any:
        return await class_overview(
            session, teacher_id=year.teacher_id, group_id=year.group_id, today=year.last_day
        )

    async with factory() as session:
        result = await overview(session)
    assert result is not None
    shape = (
        f"{len(result.pupils)} pupils x {len(result.lines)} lines, "
        f"{len(result.not_reflected)} not reflected, {len(result.wellbeing)} wellbeing, "
        f"{len(result.proposals)} proposals, "
        f"{await statements_of(factory, counter, overview)} SQL statements"
    )
    report(
        "class overview (storage)", await timed(factory, overview, args.runs, args.warmup), shape
    )

    i18n = load_i18n()

    async def with_pictures(session: AsyncSession) -> Any:
        found = await overview(session)
        assert found is not None
        with i18n.context(), i18n.use_locale("nl"):
            pages = draw_class_overview_pages(
                found.lines, found.pupils, picture_texts(found, str(year.last_day))
            )
        return pages

    async with factory() as session:
        pages = await with_pictures(session)
    size = sum(len(page.png) for page in pages)
    report(
        "class overview + pictures",
        await timed(factory, with_pictures, args.runs, args.warmup),
        f"{len(pages)} PNG pages, {size / 1024:.0f} KiB",
    )


async def bench_timeline(
    factory: async_sessionmaker[AsyncSession],
    counter: StatementCounter,
    year: SchoolYear,
    args: argparse.Namespace,
) -> None:
    pupil_id = year.pupil_ids[len(year.pupil_ids) // 2]

    def page_of(page: int, kinds: tuple[str, ...] = ItemKind.ALL, tag: str | None = None):  # type: ignore[no-untyped-def]
        async def work(session: AsyncSession) -> Any:
            found = await timeline(
                session,
                viewer_id=year.teacher_id,
                viewer_role=Role.TEACHER,
                pupil_id=pupil_id,
                kinds=kinds,
                tag=tag,
                page=page,
                per_page=5,
            )
            assert found is not None and found.items
            return found

        return work

    for label, work in (
        ("timeline, first page (all kinds)", page_of(0)),
        ("timeline, page 20 (all kinds)", page_of(20)),
        ("timeline, notes with #inzet, first page", page_of(0, (ItemKind.OBSERVATION,), "inzet")),
    ):
        statements = await statements_of(factory, counter, work)
        report(
            label,
            await timed(factory, work, args.runs, args.warmup),
            f"{statements} SQL statements",
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench overview", description=__doc__)
    parser.add_argument("--database-url", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--pupils", type=int, default=30)
    parser.add_argument("--days", type=int, default=200)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    asyncio.run(run(parser.parse_args()))
