"""`portfolio-bot backup DIR` and `portfolio-bot restore BACKUP` (docs/operations.md).

A backup is one directory, `DIR/portfolio-YYYYMMDD-HHMMSS/`:

* `database.sqlite` (SQLite, the online backup API: consistent while the bot runs) or
  `database.dump` (PostgreSQL, `pg_dump --format=custom`, restored with `pg_restore`);
* `media/`, the photos and files, as stored (content-addressed, so never changed in place);
* `manifest.json`: when, the schema revision, rows per table and every media file with its
  size, so that a restore can prove it got everything back.

The database is copied before the media: a file is always written before its row commits, so
every row in the copy finds its file among the media copied after it. A backup is written as
`….partial` and renamed when complete, so a half-finished one is never taken for a backup.

A backup holds every pupil's data: its folder is 0700 and every file in it 0600, whatever
the umask of the process that makes it.

Restore goes into an empty place only (a new database, an empty media directory): it never
mixes two schools' data, nor overwrites what a mistyped setting points at. It writes only
where the bot itself would: every media file the manifest names must be named as the media
store names its files (`ab/cd/<sha256>.<ext>`) and be a plain file of the backup, not a
symbolic link; otherwise nothing is restored at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from config.settings import Settings
from media.store import is_stored_path
from services.errors import UserError
from storage.backup import pg_snapshot, row_counts, sqlite_online_copy, sqlite_path, table_names
from storage.health import schema_state_of

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite"
PG_FILE = "database.dump"
MEDIA = "media"
PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    rows: int
    files: int
    size: int


def _kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI for pg_dump/pg_restore, with the password in the environment instead of on
    the command line (where `ps` would show it)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


async def _run_tool(arguments: list[str], env: dict[str, str]) -> None:
    tool = arguments[0]
    if shutil.which(tool) is None:
        raise UserError(
            f"`{tool}` is not installed; it comes with PostgreSQL's client tools "
            "(Debian: apt-get install postgresql-client, the same major version as the server)."
        )
    result = await asyncio.to_thread(
        subprocess.run, arguments, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise UserError(f"{tool} failed: {result.stderr.strip()[-800:]}")


def _media_files(root: Path) -> dict[str, int]:
    """Relative path -> size of every stored file: named as the media store names its files,
    so not the temporary ones being written, nor anything else someone put there."""
    if not root.is_dir():
        return {}
    files: dict[str, int] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if is_stored_path(relative) and path.is_file() and not path.is_symlink():
            files[relative] = path.stat().st_size
    return files


def _make_private(root: Path) -> None:
    """Folders 0700 and files 0600 under root, root included: pg_dump, SQLite and the copies
    make theirs as the umask says, which may let every user of the machine read them."""
    root.chmod(PRIVATE_FOLDER)
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        path.chmod(PRIVATE_FOLDER if path.is_dir() else PRIVATE_FILE)


def _new_private_folder(path: Path) -> None:
    """A new folder only its owner can enter, from the first moment (mkdir's mode is
    narrowed by the umask, never widened, so 0700 is what it gets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=PRIVATE_FOLDER)
    path.chmod(PRIVATE_FOLDER)


def _copy_media(source: Path, target: Path, files: dict[str, int]) -> None:
    for relative in files:
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / relative, destination)


async def backup(
    settings: Settings, directory: Path, *, now: datetime | None = None
) -> BackupSummary:
    url = settings.database_url
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    final = directory / f"portfolio-{stamp}"
    partial = directory / f"portfolio-{stamp}.partial"
    if final.exists() or partial.exists():
        raise UserError(f"{final} exists already; wait a second and try again.")
    _new_private_folder(partial)
    try:
        state, revision = await schema_state_of(url)
        if _kind(url) == "sqlite":
            if not sqlite_path(url).exists():
                raise UserError(f"There is no database at {sqlite_path(url)} to back up.")
            await sqlite_online_copy(url, partial / SQLITE_FILE)
            counts = await row_counts(f"sqlite+aiosqlite:///{partial / SQLITE_FILE}")
        else:
            target, env = _libpq(url)
            async with pg_snapshot(url) as (snapshot, counts):
                await _run_tool(
                    [
                        "pg_dump",
                        "--format=custom",
                        f"--snapshot={snapshot}",
                        f"--file={partial / PG_FILE}",
                        f"--dbname={target}",
                    ],
                    env,
                )
        files = await asyncio.to_thread(_media_files, settings.media_dir)
        await asyncio.to_thread(_copy_media, settings.media_dir, partial / MEDIA, files)
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": _kind(url),
            "schema_revision": revision,
            "schema_state": state.value,
            "tables": counts,
            "media": files,
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        await asyncio.to_thread(_make_private, partial)
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return BackupSummary(
        path=final, rows=sum(counts.values()), files=len(files), size=sum(files.values())
    )


def read_manifest(source: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise UserError(f"{source} is not a backup: it has no {MANIFEST}.") from None
    except ValueError:
        raise UserError(f"{source / MANIFEST} is damaged: not JSON.") from None
    if manifest.get("format") != FORMAT:
        raise UserError(f"{source} was made by a version of the bot this one cannot read.")
    return manifest


def check_backup_paths(source: Path, manifest: dict[str, Any]) -> None:
    """Everything the restore reads is inside the backup and lands inside MEDIA_DIR, or a
    UserError says what is not: a media name the media store does not give its files (an
    absolute path, `..`, any other name), or a symbolic link in the backup (which could
    point anywhere)."""
    media = manifest.get("media")
    if not isinstance(media, dict):
        raise UserError(f"{source / MANIFEST} is damaged: it has no list of media files.")
    database = source / (SQLITE_FILE if manifest.get("database") == "sqlite" else PG_FILE)
    if database.is_symlink():
        raise UserError(
            f"{database} is a symbolic link; a backup holds the database itself. "
            "Nothing was restored."
        )
    folder = source / MEDIA
    if folder.is_symlink() or (media and not folder.is_dir()):
        raise UserError(f"{folder} is not a folder of the backup; nothing was restored.")
    for name, size in media.items():
        if not isinstance(name, str) or not is_stored_path(name):
            raise UserError(
                f"{source / MANIFEST} names {name!r}, which is not a media file of the bot; "
                "nothing was restored."
            )
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise UserError(f"{source / MANIFEST} is damaged: the size of {name} is not a size.")
        shard, subshard, _ = name.split("/")
        for path in (folder / shard, folder / shard / subshard, folder / name):
            if path.is_symlink():
                raise UserError(
                    f"{path} is a symbolic link; a backup holds the files themselves. "
                    "Nothing was restored."
                )
        if not (folder / name).is_file():
            raise UserError(f"{folder / name} is missing from the backup; nothing was restored.")


async def restore(settings: Settings, source: Path) -> BackupSummary:
    manifest = read_manifest(source)
    await asyncio.to_thread(check_backup_paths, source, manifest)
    url = settings.database_url
    kind = _kind(url)
    if manifest["database"] != kind:
        raise UserError(
            f"This backup is of a {manifest['database']} database and DATABASE_URL is {kind}; "
            "restore into the same kind of database."
        )
    if kind == "postgresql" or sqlite_path(url).exists():
        existing = await table_names(url)
        if existing:
            raise UserError(
                "The database of DATABASE_URL is not empty; restore goes into a new, empty "
                "database only (it never mixes or overwrites data)."
            )
    media_dir = settings.media_dir
    if media_dir.exists() and any(media_dir.iterdir()):
        raise UserError(f"MEDIA_DIR {media_dir} is not empty; restore into an empty directory.")

    if kind == "sqlite":
        target = sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)  # an empty file SQLite may have left
        await asyncio.to_thread(shutil.copyfile, source / SQLITE_FILE, target)
    else:
        dbname, env = _libpq(url)
        await _run_tool(
            [
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={dbname}",
                str(source / PG_FILE),
            ],
            env,
        )
    files: dict[str, int] = manifest["media"]
    media_dir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(_copy_media, source / MEDIA, media_dir, files)
    await verify(settings, manifest)
    return BackupSummary(
        path=source,
        rows=sum(manifest["tables"].values()),
        files=len(files),
        size=sum(files.values()),
    )


async def verify(settings: Settings, manifest: dict[str, Any]) -> None:
    """Every row and every file of the manifest is back, or a UserError says what is not."""
    counts = await row_counts(settings.database_url)
    wrong = [
        f"{table}: {counts.get(table)} rows, the backup has {expected}"
        for table, expected in manifest["tables"].items()
        if counts.get(table) != expected
    ]
    present = await asyncio.to_thread(_media_files, settings.media_dir)
    missing = [name for name, size in manifest["media"].items() if present.get(name) != size]
    if wrong or missing:
        if missing:
            wrong.append(f"{len(missing)} media files missing or of the wrong size")
        details = "; ".join(wrong)
        raise UserError(f"The restore is incomplete: {details}.")
