"""`portfolio-bot backup` and `restore`: into an empty place, every row and every file back."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import stat
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot import cli
from config.settings import Settings
from media.store import relative_path_for, write_atomically
from services.backup import MANIFEST, backup, read_manifest, restore
from services.errors import UserError
from storage.backup import table_names
from storage.db import create_engine, create_sessionmaker
from storage.models import Base
from tests.conftest import PG_URL, _pg_execute
from tests.factories import build_curriculum, build_school
from tests.images import small_jpeg


async def table_rows(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order: what "everything came back" means."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = {}
            for table in Base.metadata.sorted_tables:
                result = await connection.execute(select(table).order_by(*table.primary_key))
                rows[table.name] = [tuple(row) for row in result.all()]
            return rows
    finally:
        await engine.dispose()


@pytest.fixture
def empty_url(db_url: str, tmp_path: Path):
    """A second database of the same kind, without any table."""
    if db_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'restored' / 'portfolio.db'}"
        return
    assert PG_URL is not None
    name = f"portfolio_restore_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_execute(PG_URL, f'CREATE DATABASE "{name}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_pg_execute(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_a_backup_restores_into_an_empty_place_with_every_row_and_file(
    db_url: str, empty_url: str, session_factory, tmp_path: Path
):
    school = await build_school(session_factory)
    await build_curriculum(session_factory, school)
    media = tmp_path / "media"
    files = {}
    for color in ("orange", "blue", "green"):
        data = small_jpeg(color=color)
        relative = relative_path_for(hashlib.sha256(data).hexdigest(), "image/jpeg")
        write_atomically(media, relative, data)
        files[relative] = data
    source = Settings(database_url=db_url, media_dir=media, _env_file=None)  # type: ignore[call-arg]

    summary = await backup(source, tmp_path / "backups")
    assert summary.path.parent == tmp_path / "backups" and summary.files == 3
    assert not list((tmp_path / "backups").glob("*.partial"))
    manifest = read_manifest(summary.path)
    assert manifest["tables"]["person"] == 7 and manifest["schema_revision"]

    target = Settings(
        database_url=empty_url,
        media_dir=tmp_path / "restored-media",
        _env_file=None,  # type: ignore[call-arg]
    )
    restored = await restore(target, summary.path)
    assert restored.rows == summary.rows and restored.files == 3

    assert await table_rows(empty_url) == await table_rows(db_url)
    for relative, data in files.items():
        assert (tmp_path / "restored-media" / relative).read_bytes() == data

    # Never into a place that holds data: the same restore again is refused.
    with pytest.raises(UserError, match="not empty"):
        await restore(target, summary.path)


async def test_the_commands_back_up_and_refuse_a_damaged_backup(
    db_url: str, tmp_path: Path, monkeypatch, capsys
):
    if not db_url.startswith("sqlite"):
        pytest.skip("the command line is the same for both; the functions are tested on both")
    # The command sets up the process's logging; give the test run its own back afterwards.
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", root.handlers[:])
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MEDIA_DIR", str(tmp_path / "media"))
    assert await asyncio.to_thread(cli.main, ["backup", str(tmp_path / "b")]) == 0
    assert "Backup written to" in capsys.readouterr().out
    [made] = (tmp_path / "b").iterdir()
    (made / MANIFEST).write_text("{broken")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    assert await asyncio.to_thread(cli.main, ["restore", str(made)]) == 1
    assert "damaged" in capsys.readouterr().err


async def one_file_backup(db_url: str, tmp_path: Path) -> Path:
    """A backup of a database with one school and one photo."""
    await build_school_at(db_url)
    data = small_jpeg(color="orange")
    write_atomically(
        tmp_path / "media", relative_path_for(hashlib.sha256(data).hexdigest(), "image/jpeg"), data
    )
    source = Settings(database_url=db_url, media_dir=tmp_path / "media", _env_file=None)  # type: ignore[call-arg]
    return (await backup(source, tmp_path / "backups")).path


async def build_school_at(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await build_school(create_sessionmaker(engine))
    finally:
        await engine.dispose()


async def test_a_backup_is_readable_by_its_owner_only_whatever_the_umask(
    db_url: str, tmp_path: Path
):
    previous = os.umask(0o022)  # the usual umask: files 0644, folders 0755
    try:
        made = await one_file_backup(db_url, tmp_path)
    finally:
        os.umask(previous)

    paths = [made, *made.rglob("*")]
    assert {path.name for path in paths} >= {MANIFEST, "media", made.name}
    assert any(path.name.startswith("database.") for path in paths)
    for path in paths:
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def everything_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


def point_outside(made: Path, outside: Path) -> None:
    """The manifest names a file outside the media folder, as a crafted backup would."""
    manifest = json.loads((made / MANIFEST).read_text())
    manifest["media"]["../../evil.txt"] = 4
    (made / MANIFEST).write_text(json.dumps(manifest))
    (made / "evil.txt").write_text("evil")


def absolute_name(made: Path, outside: Path) -> None:
    manifest = json.loads((made / MANIFEST).read_text())
    manifest["media"][str(outside / "evil.txt")] = 4
    (made / MANIFEST).write_text(json.dumps(manifest))


def a_name_the_store_never_gives(made: Path, outside: Path) -> None:
    manifest = json.loads((made / MANIFEST).read_text())
    manifest["media"]["ab/cd/notes.txt"] = 4
    (made / MANIFEST).write_text(json.dumps(manifest))
    (made / "media" / "ab" / "cd").mkdir(parents=True)
    (made / "media" / "ab" / "cd" / "notes.txt").write_text("evil")


def a_symlink_pointing_out(made: Path, outside: Path) -> None:
    """The file itself is named right, but is a link to a file elsewhere on the machine."""
    secret = outside / "secret.txt"
    secret.write_text("not the school's")
    [stored] = read_manifest(made)["media"]
    (made / "media" / stored).unlink()
    (made / "media" / stored).symlink_to(secret)


def a_symlinked_folder(made: Path, outside: Path) -> None:
    [stored] = read_manifest(made)["media"]
    shard = made / "media" / stored.split("/")[0]
    shutil.move(shard, outside / "shard")
    shard.symlink_to(outside / "shard", target_is_directory=True)


@pytest.mark.parametrize(
    "tamper",
    [
        point_outside,
        absolute_name,
        a_name_the_store_never_gives,
        a_symlink_pointing_out,
        a_symlinked_folder,
    ],
)
async def test_restore_writes_nothing_outside_its_target_and_nothing_at_all_when_asked_to(
    db_url: str, empty_url: str, tmp_path: Path, tamper
):
    made = await one_file_backup(db_url, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    tamper(made, outside)
    restored_media = tmp_path / "restore" / "media"
    target = Settings(database_url=empty_url, media_dir=restored_media, _env_file=None)  # type: ignore[call-arg]
    before = everything_under(tmp_path)

    with pytest.raises(UserError) as refused:
        await restore(target, made)

    assert "\n" not in str(refused.value) and "nothing was restored" in str(refused.value).lower()
    assert everything_under(tmp_path) == before
    if not empty_url.startswith("sqlite"):  # on SQLite, the file list above says it all
        assert await table_names(empty_url) == []
