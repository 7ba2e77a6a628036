"""The admin commands of `portfolio-bot`: create a school, import people and goal sets, issue
a fresh invite code, and a pupil's rights: export, erasure, retention.

Each command checks that the database is migrated, does its work in one transaction and
commits only when everything succeeded. Invite codes are secrets (a code gives access to a
pupil's portfolio), so they go to a file when `--codes-out` is given and are never echoed then.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import SUPPORTED_LOCALES, Settings, invite_secret_of, with_invite_secret
from language.i18n import load_i18n
from services.erasure import ErasureResult, erase_pupil
from services.errors import UserError
from services.export import export_filename, export_locale, export_to_file
from services.importing.csv_reading import ImportFileError
from services.importing.goal_sets import GoalSetImportResult, import_goal_set
from services.importing.people import PeopleImportResult, import_people
from services.retention import RetentionCandidate, apply_retention, retention_candidates
from storage import migrate
from storage.audit import (
    ACTION_GOALS_IMPORT,
    ACTION_INVITE,
    ACTION_PEOPLE_IMPORT,
    ACTOR_CLI,
    SUBJECT_PERSON,
    person_ref,
    record_audit,
    record_export,
)
from storage.db import create_engine, create_sessionmaker
from storage.erasure import ErasurePreview, erasure_preview
from storage.models import School
from storage.pupil_lookup import PupilMatch, find_pupils
from storage.roster import IssuedCode
from storage.schools import (
    NoSchoolYetError,
    PersonInvite,
    SchoolAmbiguousError,
    SchoolError,
    create_school,
    current_school_year,
    find_school,
    invite_person,
    parse_school_year,
)
from storage.subject_data import collect_pupil_data
from storage.subject_data_types import PupilData


class Subcommands(Protocol):
    """What `ArgumentParser.add_subparsers()` returns, as far as `register` uses it (its class
    is private to argparse)."""

    def add_parser(self, name: str, **options: Any) -> argparse.ArgumentParser: ...


T = TypeVar("T")

CODES_COLUMNS = ("external_id", "name", "role", "code")
# Long lists (last year's leavers) would bury the summary; the rest is counted.
MAX_LISTED = 20


NEEDS_APPROVAL_HELP = (
    "work a pupil shares waits for a teacher's approval (/werk) before parents see it: "
    "for schools that record per child whether images may be shared"
)
_FORMAL_ON = 'Parents are written to with "u" in Dutch.'
FORMAL_ADDRESS_HELP = (
    'the bot writes to the school\'s parents in Dutch with "u" instead of "je" '
    '(pupils and teachers always get "je"; other languages are unaffected)'
)


def register(commands: Subcommands) -> None:
    school = commands.add_parser("school", help="create a school, or change its settings")
    school_commands = school.add_subparsers(dest="school_command", required=True, metavar="ACTION")
    create = school_commands.add_parser("create", help="create a school")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--timezone", help="time zone (default: the TIMEZONE setting)")
    create.add_argument(
        "--locale",
        choices=SUPPORTED_LOCALES,
        help="the bot's language for the school (default: the DEFAULT_LOCALE setting)",
    )
    create.add_argument(
        "--needs-approval",
        action=argparse.BooleanOptionalAction,
        default=False,
        help=NEEDS_APPROVAL_HELP + " (default: no)",
    )
    create.add_argument(
        "--parent-address-formal",
        action=argparse.BooleanOptionalAction,
        default=False,
        help=FORMAL_ADDRESS_HELP + " (default: no)",
    )
    create.set_defaults(handler=_school_create)
    change = school_commands.add_parser("set", help="change a school's settings")
    change.add_argument("--school", metavar="NAME", help="needed when there are several schools")
    change.add_argument(
        "--needs-approval", action=argparse.BooleanOptionalAction, help=NEEDS_APPROVAL_HELP
    )
    change.add_argument(
        "--parent-address-formal",
        action=argparse.BooleanOptionalAction,
        help=FORMAL_ADDRESS_HELP,
    )
    change.set_defaults(handler=_school_set)

    importing = commands.add_parser("import", help="import people or a goal set from CSV")
    import_commands = importing.add_subparsers(dest="import_command", required=True, metavar="WHAT")
    people = import_commands.add_parser(
        "people",
        help="import the whole school for one school year (all or nothing)",
        description="Columns: external_id,role,name,group,language,children. Re-importing "
        "changes only what differs; people missing from the file are kept without a group.",
    )
    people.add_argument("file", metavar="FILE", type=Path)
    people.add_argument("--school", metavar="NAME", help="needed when there are several schools")
    people.add_argument(
        "--school-year", metavar="YYYY-YYYY", help="default: the current school year"
    )
    people.add_argument(
        "--codes-out",
        metavar="FILE.csv",
        type=Path,
        help="write the invite codes issued to this file (external_id,name,role,code)",
    )
    people.add_argument("--force", action="store_true", help="overwrite an existing codes file")
    people.set_defaults(handler=_import_people)

    goals = import_commands.add_parser(
        "goals",
        help="import or update a goal set",
        description="Columns: learning_line,code,goal[,after] or, for a rubric, "
        "learning_line,code,goal,level,descriptor with one row per level.",
    )
    goals.add_argument("file", metavar="FILE", type=Path)
    goals.add_argument("--school", metavar="NAME", help="needed when there are several schools")
    goals.add_argument("--name", help="the goal set's name (default: from the file name)")
    goals.set_defaults(handler=_import_goals)

    invite = commands.add_parser(
        "invite", help="issue a fresh invite code for one person (earlier unused codes stop)"
    )
    invite.add_argument("external_id", metavar="EXTERNAL_ID")
    invite.add_argument("--school", metavar="NAME", help="needed when there are several schools")
    invite.set_defaults(handler=_invite)

    export = commands.add_parser(
        "export",
        help="one pupil's whole portfolio as a zip: HTML, the files and JSON (right of access)",
    )
    export.add_argument("pupil", metavar="PUPIL", help="the pupil's external id (or name)")
    export.add_argument("--school", metavar="NAME", help="needed when there are several schools")
    export.add_argument(
        "--out", metavar="FILE.zip", type=Path, help="default: portfolio-<id>-<date>.zip here"
    )
    export.add_argument("--force", action="store_true", help="overwrite an existing file")
    export.add_argument(
        "--include-private-notes",
        action="store_true",
        help="also teachers' private notes about the pupil (for a request that asks for them)",
    )
    export.add_argument(
        "--locale", choices=SUPPORTED_LOCALES, help="default: the pupil's, else the school's"
    )
    export.set_defaults(handler=_export)

    erase = commands.add_parser(
        "erase",
        help="erase one pupil and everything about them, for good (right to erasure)",
        description="Removes the pupil's rows and files, their parents' links and Telegram "
        "link. Cannot be undone; the audit log keeps only that it happened. Without --yes it "
        "only shows what would be erased.",
    )
    erase.add_argument("pupil", metavar="PUPIL", help="the pupil's external id (or name)")
    erase.add_argument("--school", metavar="NAME", help="needed when there are several schools")
    erase.add_argument("--yes", action="store_true", help="really erase")
    erase.set_defaults(handler=_erase)

    retention = commands.add_parser(
        "retention",
        help="erase pupils who left more than the retention period ago",
        description="Each school's retention_months, else the RETENTION_MONTHS setting. "
        "The bot also does this once a day.",
    )
    retention.add_argument("--dry-run", action="store_true", help="only list who would go")
    retention.set_defaults(handler=_retention)


# --- handlers --------------------------------------------------------------------------------


async def _school_create(settings: Settings, args: argparse.Namespace) -> int:
    timezone = args.timezone or settings.timezone
    locale = args.locale or settings.default_locale

    async def work(session: AsyncSession) -> School:
        school = await create_school(session, name=args.name, timezone=timezone, locale=locale)
        school.shared_work_needs_approval = args.needs_approval
        school.parent_address_formal = args.parent_address_formal
        return school

    school = await _in_transaction(settings, work)
    print(
        f'Created school "{school.name}" (time zone {school.timezone}, language {school.locale}).'
    )
    if school.shared_work_needs_approval:
        print("Shared work waits for a teacher's approval before parents see it.")
    if school.parent_address_formal:
        print(_FORMAL_ON)
    return 0


async def _school_set(settings: Settings, args: argparse.Namespace) -> int:
    if args.needs_approval is None and args.parent_address_formal is None:
        raise UserError(
            "nothing to change: give --needs-approval/--no-needs-approval or "
            "--parent-address-formal/--no-parent-address-formal"
        )

    async def work(session: AsyncSession) -> School:
        school = await _school(session, args.school)
        if args.needs_approval is not None:
            school.shared_work_needs_approval = args.needs_approval
        if args.parent_address_formal is not None:
            school.parent_address_formal = args.parent_address_formal
        return school

    school = await _in_transaction(settings, work)
    if args.needs_approval is not None:
        if school.shared_work_needs_approval:
            print(f"{school.name}: shared work now waits for a teacher's approval (/werk).")
        else:
            print(f"{school.name}: shared work reaches parents without approval.")
    if args.parent_address_formal is not None:
        if school.parent_address_formal:
            print(f"{school.name}: {_FORMAL_ON}")
        else:
            print(f'{school.name}: parents are written to with "je" in Dutch.')
    return 0


async def _import_people(settings: Settings, args: argparse.Namespace) -> int:
    codes_out: Path | None = args.codes_out
    if codes_out is not None:
        _check_codes_target(codes_out, force=args.force)
    school_year = _school_year_argument(args.school_year)
    invite_secret = invite_secret_of(with_invite_secret(settings))
    staged: Path | None = None

    async def work(session: AsyncSession) -> tuple[School, PeopleImportResult]:
        nonlocal staged
        school = await _school(session, args.school)
        result = await import_people(
            session,
            school=school,
            path=args.file,
            school_year=school_year or current_school_year(_now(school).date()),
            invite_valid_for=timedelta(days=settings.invite_valid_days),
            invite_secret=invite_secret,
        )
        if result.changed:
            await record_audit(
                session,
                school_id=school.id,
                actor_label=ACTOR_CLI,
                action=ACTION_PEOPLE_IMPORT,
                subject_kind="school",
                subject_ref=str(school.id),
                details={
                    "school_year": result.school_year,
                    "people_created": result.people.created,
                    "people_updated": result.people.updated,
                    "memberships_started": result.memberships_started,
                    "memberships_ended": result.memberships_ended,
                    "guardianships_created": result.guardianships_created,
                    "codes_issued": len(result.codes),
                },
            )
        if codes_out is not None and result.codes:
            # Written before the commit: if the codes cannot be saved, nothing is imported,
            # and no one ends up with codes that only exist as hashes.
            staged = _stage_codes(codes_out, result.codes)
        return school, result

    try:
        school, result = await _in_transaction(settings, work)
    except BaseException:
        if staged is not None:
            _discard(staged)
        raise
    if staged is not None and codes_out is not None:
        _publish(staged, codes_out)

    _print_people_summary(args.file, school, result, codes_out)
    if result.codes and codes_out is None:
        print(
            "warning: invite codes are secret: anyone with a code can sign in as that person. "
            "Use --codes-out FILE.csv to write them to a file instead.",
            file=sys.stderr,
        )
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(CODES_COLUMNS)
        writer.writerows(_code_rows(result.codes))
    return 0


async def _import_goals(settings: Settings, args: argparse.Namespace) -> int:
    async def work(session: AsyncSession) -> GoalSetImportResult:
        school = await _school(session, args.school)
        result = await import_goal_set(session, school=school, path=args.file, name=args.name)
        if result.changed:
            await record_audit(
                session,
                school_id=school.id,
                actor_label=ACTOR_CLI,
                action=ACTION_GOALS_IMPORT,
                subject_kind="goal_set",
                subject_ref=str(result.goal_set_id),
                details={
                    "created": result.created,
                    "goals_created": result.goals.created,
                    "goals_updated": result.goals.updated,
                },
            )
        return result

    result = await _in_transaction(settings, work)
    _print_goals_summary(args.file, result)
    return 0


async def _invite(settings: Settings, args: argparse.Namespace) -> int:
    invite_secret = invite_secret_of(with_invite_secret(settings))

    async def work(session: AsyncSession) -> tuple[School, PersonInvite]:
        school = await _school(session, args.school)
        issued = await invite_person(
            session,
            school=school,
            external_id=args.external_id,
            valid_for=timedelta(days=settings.invite_valid_days),
            invite_secret=invite_secret,
        )
        await record_audit(
            session,
            school_id=school.id,
            actor_label=ACTOR_CLI,
            action=ACTION_INVITE,
            subject_kind=SUBJECT_PERSON,
            subject_ref=person_ref(issued.person.id),
            details={"role": issued.person.role.value, "moves_account": issued.had_account},
        )
        return school, issued

    school, issued = await _in_transaction(settings, work)
    person = issued.person
    who = f"{person.display_name} ({person.role}, {person.external_id})"
    print(f"Invite code for {who}: {issued.code}")
    print(f"Valid until {_local(issued.expires_at, school)}. Earlier unused codes no longer work.")
    if issued.had_account:
        print(
            f"{person.display_name} already has a Telegram account linked; redeeming this code "
            "moves them to the account that redeems it."
        )
    return 0


async def _export(settings: Settings, args: argparse.Namespace) -> int:
    out: Path | None = args.out
    if out is not None:
        _check_target(out, force=args.force, what="the export")
    i18n = load_i18n(default_locale=settings.default_locale)

    async def work(session: AsyncSession) -> tuple[PupilData, Path, list[str]]:
        school = await _school(session, args.school)
        pupil = await _pupil(session, school, args.pupil)
        data = await collect_pupil_data(
            session, pupil_id=pupil.id, include_private_notes=args.include_private_notes
        )
        target = out or Path(export_filename(data))
        if out is None:
            _check_target(target, force=args.force, what="the export")
        # Logged in the same transaction: no file without its entry, no entry without file.
        await record_export(session, data=data, actor_label=ACTOR_CLI, via="cli")
        with i18n.context(), i18n.use_locale(args.locale or export_locale(data)):
            missing = await export_to_file(data, media_dir=settings.media_dir, target=target)
        return data, target, missing

    data, target, missing = await _in_transaction(settings, work)
    notes = "with" if data.include_private_notes else "without"
    print(
        f"Exported {data.pupil.external_id} to {target} ({len(data.reflections)} reflections, "
        f"{len(data.evidence)} evidence items, {len(data.observations)} notes {notes} private "
        f"notes, {len(data.talks)} talks, {len(data.files)} files)."
    )
    print("The file holds personal data: hand it over safely and delete your copy afterwards.")
    if missing:
        print(f"warning: {len(missing)} files were missing from MEDIA_DIR: {_listed(missing)}")
    return 0


async def _erase(settings: Settings, args: argparse.Namespace) -> int:
    async def work(session: AsyncSession) -> tuple[PupilMatch, ErasurePreview | ErasureResult]:
        school = await _school(session, args.school)
        pupil = await _pupil(session, school, args.pupil)
        if not args.yes:
            return pupil, await erasure_preview(session, pupil_id=pupil.id)
        return pupil, await erase_pupil(
            session, pupil_id=pupil.id, media_dir=settings.media_dir, actor_label=ACTOR_CLI
        )

    pupil, outcome = await _in_transaction(settings, work)
    counts = ", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in outcome.counts.items())
    if isinstance(outcome, ErasurePreview):
        print(f"Would erase {pupil.name} ({pupil.external_id}) for good: {counts}.")
        print("Nothing was changed. Add --yes to erase; it cannot be undone.")
        return 1
    print(f"Erased pupil {pupil.external_id} for good: {counts}.")
    print(f"The audit log keeps entry {outcome.audit_event_id} without the name.")
    return 0


async def _retention(settings: Settings, args: argparse.Namespace) -> int:
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    default = settings.retention_months

    async def work(session: AsyncSession) -> tuple[list[RetentionCandidate], int]:
        found = await retention_candidates(session, today=today, default_months=default)
        if args.dry_run:
            return found, 0
        erased = await apply_retention(
            session, today=today, media_dir=settings.media_dir, default_months=default
        )
        return found, len(erased)

    found, erased = await _in_transaction(settings, work)
    if not found:
        print("No pupil is past the retention period.")
        return 0
    listed = [
        f"{c.pupil.external_id} {c.pupil.name} ({c.school}, left {c.pupil.left_school_on})"
        if args.dry_run
        else f"{c.pupil.external_id} ({c.school}, left {c.pupil.left_school_on})"
        for c in found
    ]
    if args.dry_run:
        print(f"Would erase {len(found)} pupils: {_listed(listed)}. Nothing was changed.")
    else:
        print(f"Erased {erased} pupils past the retention period: {_listed(listed)}.")
    return 0


# --- helpers ---------------------------------------------------------------------------------


async def _pupil(session: AsyncSession, school: School, query: str) -> PupilMatch:
    found = await find_pupils(session, school_id=school.id, query=query)
    if not found:
        raise UserError(f'no pupil "{query}" in {school.name}')
    if len(found) > 1:
        names = [f"{pupil.external_id} {pupil.name}" for pupil in found]
        raise UserError(f'several pupils match "{query}" ({_listed(names)}); give the external id')
    return found[0]


def _check_target(path: Path, *, force: bool, what: str) -> None:
    if path.is_dir():
        raise UserError(f"{path} is a directory; give a file name for {what}")
    if path.exists() and not force:
        raise UserError(f"{path} already exists; use --force to overwrite it")
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: the directory {path.parent} does not exist")


async def _in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    # Alembic logs its set-up at INFO on every check, which buries the command's own output.
    alembic_logger = logging.getLogger("alembic")
    level = alembic_logger.level
    alembic_logger.setLevel(max(level, logging.WARNING))
    try:
        await migrate.ensure_current(settings.database_url)
    finally:
        alembic_logger.setLevel(level)
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            try:
                async with session.begin():
                    return await work(session)
            except (SchoolError, ImportFileError) as error:
                raise UserError(str(error)) from None
    finally:
        await engine.dispose()


async def _school(session: AsyncSession, name: str | None) -> School:
    try:
        return await find_school(session, name=name)
    except NoSchoolYetError as error:
        raise UserError(f"{error} with `portfolio-bot school create NAME`") from None
    except SchoolAmbiguousError as error:
        raise UserError(f"{error} with --school NAME") from None


def _school_year_argument(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return parse_school_year(value)
    except SchoolError as error:
        raise UserError(str(error)) from None


def _check_codes_target(path: Path, *, force: bool) -> None:
    """Refuse before importing: afterwards the codes would exist only as hashes."""
    if path.is_dir():
        raise UserError(f"{path} is a directory; give a file name for the codes")
    if path.exists() and not force:
        raise UserError(f"{path} already exists; use --force to overwrite it")
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: the directory {path.parent} does not exist")


def _stage_codes(target: Path, codes: Sequence[IssuedCode]) -> Path:
    """Write the codes next to `target` under a temporary name, readable by the owner only."""
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(CODES_COLUMNS)
            writer.writerows(_code_rows(codes))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return Path(name)


def _discard(staged: Path) -> None:
    staged.unlink(missing_ok=True)


def _publish(staged: Path, target: Path) -> None:
    try:
        staged.replace(target)
    except OSError as error:
        raise UserError(
            f"the import is saved, but {target} could not be written ({error.strerror}); "
            f"the codes are in {staged}"
        ) from None


def _code_rows(codes: Sequence[IssuedCode]) -> list[tuple[str, str, str, str]]:
    return [(code.external_id, code.name, code.role.value, code.code) for code in codes]


def _now(school: School) -> datetime:
    return datetime.now(ZoneInfo(school.timezone))


def _local(moment: datetime, school: School) -> str:
    return f"{moment.astimezone(ZoneInfo(school.timezone)):%Y-%m-%d %H:%M} ({school.timezone})"


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _print_people_summary(
    file: Path, school: School, result: PeopleImportResult, codes_out: Path | None
) -> None:
    print(f'Imported {file.name} into "{school.name}" for school year {result.school_year}.')
    if not result.changed:
        print("Nothing changed: the school already matches the file.")
    people = result.people
    print(
        f"People: {people.created} new, {people.updated} updated, {people.unchanged} unchanged. "
        f"Groups: {result.groups_created} new. Memberships: {result.memberships_started} "
        f"started, {result.memberships_ended} ended. "
        f"Guardianships: {result.guardianships_created} new."
    )
    if result.mentors_changed:
        print(f"Mentors changed: {result.mentors_changed}.")
    if result.codes and result.codes_expire_at is not None:
        until = _local(result.codes_expire_at, school)
        where = f"; written to {codes_out}" if codes_out is not None else ""
        print(f"Invite codes: {len(result.codes)} issued, valid until {until}{where}.")
    else:
        print("Invite codes: none issued (everyone has a linked account or a valid code).")
    if result.not_in_file:
        people_list = [f"{p.external_id} {p.name} ({p.role})" for p in result.not_in_file]
        print(f"Not in this file, kept without a group: {_listed(people_list)}.")
    if result.guardianships_not_in_file:
        pairs = [f"{parent} of {pupil}" for parent, pupil in result.guardianships_not_in_file]
        print(f"Guardianships not in this file, kept: {_listed(pairs)}.")


def _print_goals_summary(file: Path, result: GoalSetImportResult) -> None:
    state = "new" if result.created else "existing"
    kind = "rubric" if result.has_rubric else "goal list"
    print(f'Imported {file.name} into {state} goal set "{result.name}" ({kind}).')
    if not result.changed:
        print("Nothing changed: the goal set already matches the file.")
    goals, lines = result.goals, result.learning_lines
    print(
        f"Goals: {goals.created} new, {goals.updated} updated, {goals.unchanged} unchanged. "
        f"Learning lines: {lines.created} new, {lines.updated} updated, "
        f"{lines.unchanged} unchanged. Prerequisites: {result.prerequisites}."
    )
    if result.has_rubric:
        print(f"Rubric levels: {', '.join(result.levels)}.")
    if result.not_in_file:
        print(f"Goals not in this file, kept: {_listed(result.not_in_file)}.")
