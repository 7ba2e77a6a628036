"""A school that writes to its parents with "u": the chat and the scheduled summary say "u"
to a Dutch-speaking parent, "je" to its pupils and teachers, and nothing changes elsewhere."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from conversations.parent_summary import summary_week
from services.clock import Clock
from storage.models import School
from storage.reminders import schedule_reminder
from tests.e2e.test_parents import family, join, today  # noqa: F401 (a fixture)

INFORMAL = re.compile(r"\b(?:je|jij|jou|jouw|jullie)\b", re.IGNORECASE)


async def address_parents_formally(session_factory, school, formal: bool = True) -> None:
    async with session_factory() as session, session.begin():
        row = await session.get(School, school.school_id)
        row.parent_address_formal = formal


async def help_text(user) -> str:
    await user.send_text("/help")
    [reply] = await user.wait_for_reply()
    return reply["text"]


async def friday_summary(running_bot, session_factory, settings, school, parent_key: str):
    """The parent's weekly summary as the real dispatcher sends it; its text message."""
    from scheduler.dispatcher import ReminderDispatcher
    from scheduler.sender import RateLimitedSender

    week = summary_week(today())
    parent_id = school.persons[parent_key]
    async with session_factory() as session, session.begin():
        await schedule_reminder(
            session,
            kind="parent_summary",
            person_id=parent_id,
            due_at=datetime.now(UTC) - timedelta(minutes=1),
            idempotency_key=f"parent_summary:{parent_id}:{school.persons['P1']}:{week}",
            payload={"pupil_id": school.persons["P1"], "week_start": week.isoformat()},
        )
        # The school's evening quiet hours must not hold the summary back whenever tests run.
        row = await session.get(School, school.school_id)
        row.quiet_hours_start = row.quiet_hours_end
    app = running_bot.app
    dispatcher = ReminderDispatcher(
        session_factory=app.session_factory,
        sender=RateLimitedSender(app.bot),
        composers=app.reminders.composers,
        i18n=app.i18n,
        clock=Clock(),
        worker_id="test",
    )
    report = await dispatcher.run_once()
    assert report.sent == 1


async def test_a_parent_of_a_formal_school_is_written_to_with_u(
    running_bot,
    telegram,
    family,  # noqa: F811 (the fixture imported above)
    session_factory,
    settings,
):
    await address_parents_formally(session_factory, family)
    marieke, welcome = await join_with_welcome(telegram, family, "O1", "Marieke")
    assert "U bent gekoppeld als ouder of verzorger" in welcome
    assert "wat uw kind leert" in welcome and not INFORMAL.search(welcome)

    help_reply = await help_text(marieke)
    assert "Hier ziet u hoe uw kind leert, en wat uw kind met u deelt." in help_reply
    assert not INFORMAL.search(help_reply)

    await marieke.send_text("/instellingen")
    [card] = await marieke.wait_for_reply()
    assert "Wat wilt u ontvangen?" in card["text"]

    await friday_summary(running_bot, session_factory, settings, family, "O1")
    [summary] = [m for m in await marieke.messages() if "Week " in (m.get("text") or "")]
    assert "van Sam de Vries" in summary["text"]
    assert "deelde deze week werk met u (hieronder)" in summary["text"]
    # The question for tonight is the parent's to ask the child: it keeps the child's "je".
    assert "Vraag Sam vanavond eens" in summary["text"]


async def test_the_same_parent_in_a_school_without_the_setting_gets_je(
    running_bot,
    telegram,
    family,  # noqa: F811 (the fixture imported above)
    session_factory,
    settings,
):
    marieke, welcome = await join_with_welcome(telegram, family, "O1", "Marieke")
    assert "Je bent gekoppeld als ouder of verzorger" in welcome
    help_reply = await help_text(marieke)
    assert "Hier zie je hoe je kind leert, en wat je kind met je deelt." in help_reply
    await friday_summary(running_bot, session_factory, settings, family, "O1")
    [summary] = [m for m in await marieke.messages() if "Week " in (m.get("text") or "")]
    assert "deelde deze week werk met je (hieronder)" in summary["text"]


async def test_pupils_teachers_and_english_speaking_parents_are_unaffected(
    running_bot, telegram, school, session_factory
):
    await address_parents_formally(session_factory, school)
    sam, welcome = await join_with_welcome(telegram, school, "P1", "Sam")
    assert "Je bent gekoppeld aan je portfolio" in welcome
    assert INFORMAL.search(await help_text(sam))
    anouk = await join(telegram, school, "T1", "Anouk")
    assert INFORMAL.search(await help_text(anouk))

    marieke = await join(telegram, school, "O1", "Marieke")
    await marieke.send_text("/taal")
    [choice] = await marieke.wait_for_reply()
    await marieke.press("lang:en", message_id=choice["message_id"])
    await marieke.wait_for_reply(count=1)
    assert "Here you see how your child learns" in await help_text(marieke)


async def test_a_teacher_who_is_also_a_parent_gets_u_only_as_the_parent(
    running_bot, telegram, school, session_factory
):
    await address_parents_formally(session_factory, school)
    bram = await join(telegram, school, "X1", "Bram")
    await bram.send_text(f"/start {school.codes['X2']}")
    await bram.wait_for_reply()
    assert "Hier ziet u hoe uw kind leert" in await help_text(bram)
    # Switching to the teacher: "je" again, in the switch's own confirmation already.
    await bram.send_text("/wissel")
    [choice] = await bram.wait_for_reply()
    teacher_button = next(
        button["callback_data"]
        for row in choice["reply_markup"]["inline_keyboard"]
        for button in row
        if "Meester Bram" in button["text"]
    )
    await bram.press(teacher_button, message_id=choice["message_id"])
    await bram.wait_for_reply(count=1)
    assert INFORMAL.search(await help_text(bram))
    assert "Hier ziet u" not in await help_text(bram)


async def join_with_welcome(telegram, school, external_id: str, name: str):
    user = await telegram.create_user(name)
    await user.send_text(f"/start {school.codes[external_id]}")
    [welcome] = await user.wait_for_reply()
    return user, welcome["text"]


def test_the_school_setting_from_the_command_line(db_url, monkeypatch, capsys, tmp_path):
    import asyncio

    from bot.cli import main
    from storage.db import create_engine, create_sessionmaker

    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)

    def formal() -> dict[str, bool]:
        async def read() -> dict[str, bool]:
            engine = create_engine(db_url)
            try:
                async with create_sessionmaker(engine)() as session:
                    rows = (await session.scalars(select(School))).all()
                    return {row.name: row.parent_address_formal for row in rows}
            finally:
                await engine.dispose()

        return asyncio.run(read())

    assert main(["school", "create", "De Regenboog"]) == 0
    assert main(["school", "create", "De Klimop", "--parent-address-formal"]) == 0
    assert formal() == {"De Regenboog": False, "De Klimop": True}
    assert 'written to with "u"' in capsys.readouterr().out
    assert main(["school", "set", "--school", "de regenboog", "--parent-address-formal"]) == 0
    assert main(["school", "set", "--school", "De Klimop", "--no-parent-address-formal"]) == 0
    assert formal() == {"De Regenboog": True, "De Klimop": False}
    capsys.readouterr()
    assert main(["school", "set", "--school", "De Klimop"]) == 1
    assert "--parent-address-formal" in capsys.readouterr().err
