"""Shared fixtures: a freshly migrated database per test, on SQLite and (when
TEST_DATABASE_URL is set) on PostgreSQL; the Telegram sandbox and its control client.

Migrations run once per backend per test session into a template; each test gets a copy
(a file copy on SQLite, `CREATE DATABASE ... TEMPLATE` on PostgreSQL), so every test starts
from the schema the migrations build, never from `create_all`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sandbox import SandboxClient, TelegramSandbox
from storage import migrate
from storage.db import create_engine, create_sessionmaker

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"]
# The bot token the tests use against the sandbox (any digits:secret works there).
TOKEN = "4242:e2e-test-token-not-a-secret"
# One fixed invite secret for the whole run: every Settings (also in the processes tests start)
# reads it from the environment, and tests calling storage.invites pass the same bytes.
os.environ["INVITE_SECRET"] = "tests-invite-secret-0123456789abcdef0123456789"
INVITE_SECRET = os.environ["INVITE_SECRET"].encode()


def _pg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_execute(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(_pg_dsn(url))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(migrate.upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    assert PG_URL is not None
    name = f"portfolio_tmpl_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_execute(PG_URL, f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(migrate.upgrade(url))
    yield name
    asyncio.run(_pg_execute(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty, fully migrated database of its own."""
    if request.param == "sqlite":
        path = tmp_path / "portfolio.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    if PG_URL is None:
        pytest.skip("TEST_DATABASE_URL is not set")
    template = request.getfixturevalue("pg_template")
    name = f"portfolio_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_execute(PG_URL, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_pg_execute(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
async def session(session_factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with session_factory() as session:
        yield session


@pytest.fixture
async def sandbox() -> AsyncIterator[TelegramSandbox]:
    sandbox = TelegramSandbox()
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
async def telegram(sandbox: TelegramSandbox) -> AsyncIterator[SandboxClient]:
    """The sandbox's control API for the tests' bot token: play users, inspect calls."""
    async with SandboxClient(sandbox.base_url, TOKEN) as client:
        yield client
