"""The admin commands end to end, through `bot.cli.main`, against a migrated database."""

from __future__ import annotations

import asyncio
import csv
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.cli import main
from storage.db import create_engine, create_sessionmaker
from storage.invites import RedeemOutcome, redeem_invite
from storage.models import GoalSet, Person, School
from tests.conftest import INVITE_SECRET

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
DEMO = SAMPLES / "school-demo.csv"
CODE = re.compile(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}\b")

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> Run:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)  # no stray .env; relative --codes-out paths land here

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def in_database(db_url: str, work: Callable[[Any], Any]) -> Any:
    async def go() -> Any:
        engine = create_engine(db_url)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def count(db_url: str, model: Any) -> int:
    async def work(session: Any) -> int:
        return int(await session.scalar(select(func.count()).select_from(model)))

    return in_database(db_url, work)


def redeem(db_url: str, telegram_user_id: int, code: str) -> RedeemOutcome:
    async def work(session: Any) -> RedeemOutcome:
        result = await redeem_invite(
            session, telegram_user_id=telegram_user_id, typed_code=code, secret=INVITE_SECRET
        )
        return result.outcome

    return in_database(db_url, work)


def read_codes(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames == ["external_id", "name", "role", "code"]
        return list(reader)


def test_import_people_writes_codes_file_and_keeps_codes_off_stdout(run, db_url, tmp_path):
    assert run("school", "create", "De Regenboog")[0] == 0

    code, out, err = run(
        "import", "people", str(DEMO), "--school-year", "2026-2027", "--codes-out", "codes.csv"
    )

    assert (code, err) == (0, "")
    rows = read_codes(tmp_path / "codes.csv")
    assert len(rows) == 18
    assert {row["role"] for row in rows} == {"teacher", "pupil", "parent"}
    sam = next(row for row in rows if row["external_id"] == "P1")
    assert (sam["name"], CODE.fullmatch(sam["code"]) is not None) == ("Sam de Vries", True)
    assert CODE.search(out) is None
    assert "18 new" in out and "codes.csv" in out
    assert count(db_url, Person) == 18
    assert redeem(db_url, 301, sam["code"]) is RedeemOutcome.LINKED


def test_existing_codes_file_is_not_overwritten_without_force(run, db_url, tmp_path):
    run("school", "create", "De Regenboog")
    codes = tmp_path / "codes.csv"
    codes.write_text("keep me\n", encoding="utf-8")

    code, _, err = run("import", "people", str(DEMO), "--codes-out", "codes.csv")

    assert code == 1 and "already exists" in err and "--force" in err
    assert codes.read_text(encoding="utf-8") == "keep me\n"
    assert count(db_url, Person) == 0

    assert run("import", "people", str(DEMO), "--codes-out", "codes.csv", "--force")[0] == 0
    assert len(read_codes(codes)) == 18


def test_reimport_issues_no_codes_and_leaves_the_codes_file_alone(run, tmp_path):
    run("school", "create", "De Regenboog")
    run("import", "people", str(DEMO), "--codes-out", "codes.csv")
    before = (tmp_path / "codes.csv").read_text(encoding="utf-8")

    code, out, _ = run("import", "people", str(DEMO), "--codes-out", "codes.csv", "--force")

    assert code == 0 and "Nothing changed" in out and "none issued" in out
    assert (tmp_path / "codes.csv").read_text(encoding="utf-8") == before


def test_without_codes_out_codes_are_printed_with_a_warning(run):
    run("school", "create", "De Regenboog")

    code, out, err = run("import", "people", str(DEMO))

    assert code == 0
    assert "secret" in err and "--codes-out" in err
    assert len(CODE.findall(out)) == 18
    assert "external_id,name,role,code" in out


def test_wrong_file_exits_1_with_one_line_and_imports_nothing(run, db_url, tmp_path):
    run("school", "create", "De Regenboog")
    bad = tmp_path / "school.csv"
    bad.write_text(
        "external_id,role,name,group,language,children\nP1,pupil,Sam,6a,nl,\nP2,pupill,Noor,6a,,\n",
        encoding="utf-8",
    )

    code, out, err = run("import", "people", str(bad), "--codes-out", "codes.csv")

    assert code == 1
    assert err.strip().splitlines() == [
        'portfolio-bot: school.csv line 3, column role: unknown role "pupill" '
        "(pupil, teacher, parent, admin)"
    ]
    assert out == ""
    assert count(db_url, Person) == 0
    assert not (tmp_path / "codes.csv").exists()
    assert list(tmp_path.glob(".codes.csv.*")) == []


def test_import_goals_both_formats(run, db_url):
    run("school", "create", "De Regenboog")

    code, out, _ = run("import", "goals", str(SAMPLES / "goalset-natuurkunde-vwo3-h1.csv"))
    assert code == 0 and '"Natuurkunde vwo3 h1"' in out and "Goals: 19 new" in out

    code, out, _ = run(
        "import", "goals", str(SAMPLES / "goalset-vaardigheden.csv"), "--name", "Vaardigheden"
    )
    assert code == 0 and "Goals: 4 new" in out
    assert "beginner, in ontwikkeling, gevorderd, expert" in out
    assert count(db_url, GoalSet) == 2


def test_invite_prints_a_fresh_code_and_the_old_one_stops_working(run, db_url, tmp_path):
    run("school", "create", "De Regenboog")
    run("import", "people", str(DEMO), "--codes-out", "codes.csv")
    old = next(
        row["code"] for row in read_codes(tmp_path / "codes.csv") if row["external_id"] == "O6"
    )

    code, out, _ = run("invite", "O6")

    assert code == 0
    assert "Ayşe Yılmaz" in out and "parent" in out and "Valid until" in out
    [fresh] = CODE.findall(out)
    assert fresh != old
    assert redeem(db_url, 401, old) is RedeemOutcome.WRONG
    assert redeem(db_url, 401, fresh) is RedeemOutcome.LINKED


def test_several_schools_need_the_school_option(run, db_url):
    run("school", "create", "De Regenboog")
    run("school", "create", "De Klimop", "--timezone", "Europe/Brussels", "--locale", "en")

    code, _, err = run("import", "people", str(DEMO))
    assert code == 1 and "--school" in err

    assert run("import", "people", str(DEMO), "--school", "de klimop")[0] == 0

    async def school_of_p1(session: Any) -> tuple[str, str]:
        school = await session.scalar(
            select(School)
            .join(Person, Person.school_id == School.id)
            .where(Person.external_id == "P1")
        )
        return school.name, school.timezone

    assert in_database(db_url, school_of_p1) == ("De Klimop", "Europe/Brussels")


def test_user_mistakes_are_one_line(run):
    assert run("school", "create", "De Regenboog")[0] == 0

    for argv, expected in [
        (("school", "create", "de regenboog"), "already exists"),
        (("invite", "P1"), 'no person with external id "P1"'),
        (("import", "people", str(DEMO), "--school-year", "2026"), "not a school year"),
        (("import", "people", "missing.csv"), "missing.csv: cannot read the file"),
        (("import", "people", str(DEMO), "--school", "Het Anker"), 'no school named "Het Anker"'),
    ]:
        code, _, err = run(*argv)
        assert code == 1, argv
        [line] = err.strip().splitlines()
        assert line.startswith("portfolio-bot: ") and expected in line


def test_unmigrated_database_is_refused(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.chdir(tmp_path)

    assert main(["school", "create", "De Regenboog"]) == 1
    assert "db upgrade" in capsys.readouterr().err
