"""The teacher's class overview, giving a level, deciding proposals, switching groups, and
that no button (nor forged button data) reaches a pupil of another group."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from PIL import Image
from sqlalchemy import select

from conversations.assessment import AssessGoal, AssessLevel, AssessPupil
from conversations.class_overview import AdjustProposal, AdjustTo, AssessFrom, GroupChoice
from conversations.goals import Decide
from conversations.observation import NoteFor, NotePupil
from handlers.teacher import TimelineView
from storage.models import (
    Assessment,
    ChosenBy,
    Group,
    GroupMembership,
    Person,
    PupilGoal,
    PupilGoalStatus,
    Reflection,
    Role,
)
from tests.conftest import INVITE_SECRET
from tests.factories import DemoSchool, build_curriculum, give_goal


def school_today() -> date:
    return datetime.now(ZoneInfo("Europe/Amsterdam")).date()


async def joined(telegram, school: DemoSchool, key: str, name: str):
    user = await telegram.create_user(name)
    await user.send_text(f"/start {school.codes[key]}")
    await user.wait_for_reply()
    return user


async def second_group(session_factory, school: DemoSchool, *, teacher: str | None = None) -> dict:
    """Groep 7b with Daan, who has a goal, a proposal and low wellbeing; optionally a teacher
    of 6a teaches 7b too."""
    async with session_factory() as session, session.begin():
        group = Group(school_id=school.school_id, name="Groep 7b", school_year="2026-2027")
        daan = Person(
            school_id=school.school_id,
            external_id="P3",
            role=Role.PUPIL,
            display_name="Daan Bakker",
        )
        session.add_all([group, daan])
        await session.flush()
        session.add(GroupMembership(group_id=group.id, person_id=daan.id))
        if teacher is not None:
            session.add(GroupMembership(group_id=group.id, person_id=school.persons[teacher]))
        return {"group_id": group.id, "daan": daan.id}


async def add_reflections(session_factory, pupil_id: int, wellbeing: list[int]) -> None:
    """One reflection a day, the last one today, with these wellbeing answers (oldest first)."""
    today = school_today()
    async with session_factory() as session, session.begin():
        for offset, answer in enumerate(reversed(wellbeing)):
            session.add(
                Reflection(
                    pupil_id=pupil_id,
                    on_date=today - timedelta(days=offset),
                    how_it_went=3,
                    effort=3,
                    wellbeing=answer,
                )
            )


async def assess(session_factory, *, pupil_id: int, goal_id: int, level: int, by: ChosenBy):
    async with session_factory() as session, session.begin():
        session.add(
            Assessment(
                pupil_id=pupil_id,
                goal_id=goal_id,
                level=level,
                by_role=by,
                assessor_id=pupil_id if by is ChosenBy.PUPIL else None,
                assessed_at=datetime.now(UTC) - timedelta(hours=1),
            )
        )


def buttons(message: dict) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def class_with_goals(session_factory, school: DemoSchool):
    """Sam: 1.1a (teacher level 2) and Samenwerken (own level 3), no reflection this week.
    Noor: 1.1b without a level, three low wellbeing answers, and a proposal for 1.2c."""
    curriculum = await build_curriculum(session_factory, school)
    sam, noor = school.persons["P1"], school.persons["P2"]
    goals = curriculum.goals
    period = curriculum.period_id
    await give_goal(session_factory, pupil_id=sam, period_id=period, goal_id=goals["1.1a"])
    await give_goal(session_factory, pupil_id=sam, period_id=period, goal_id=goals["SW"])
    await give_goal(session_factory, pupil_id=noor, period_id=period, goal_id=goals["1.1b"])
    proposal = await give_goal(
        session_factory,
        pupil_id=noor,
        period_id=period,
        goal_id=goals["1.2c"],
        status=PupilGoalStatus.PROPOSED,
    )
    await assess(session_factory, pupil_id=sam, goal_id=goals["1.1a"], level=2, by=ChosenBy.TEACHER)
    await assess(session_factory, pupil_id=sam, goal_id=goals["SW"], level=3, by=ChosenBy.PUPIL)
    await add_reflections(session_factory, noor, [2, 1, 2])
    return curriculum, proposal


async def test_the_overview_shows_levels_reflections_wellbeing_and_proposals(
    running_bot, telegram, school, session_factory
):
    _curriculum, proposal = await class_with_goals(session_factory, school)
    teacher = await joined(telegram, school, "T1", "Anouk")
    await teacher.send_text("📊 Klas")
    picture, table = await teacher.wait_for_reply(count=2)

    # The picture: Telegram keeps it whole (at most 1280 px), a phone's width.
    largest = max(picture["photo"], key=lambda size: size["width"] * size["height"])
    assert largest["width"] == 1080 and largest["height"] <= 1280
    with Image.open(io.BytesIO(await telegram.download(largest["file_id"]))) as image:
        assert image.width == 1080
    assert "Groep 6a: waar staat iedereen?" in picture["caption"]

    text = table["text"]
    assert "Groep 6a · Periode 2" in text
    # Lines across in the order of the goal sets: 1.1, then Samenwerken; the teacher's level
    # plain, the pupil's own level starred, a goal without a level a dash.
    assert "1 = 1.1 Krachten om je heen" in text and "2 = Samenwerken" in text
    assert "Noor Jansen   –  ·" in text
    assert "Sam de Vries  2  3*" in text
    assert "Nog geen reflectie deze week: Sam de Vries." in text
    assert "Voelde zich de laatste drie keer niet zo goed (alleen voor jou)" in text
    assert "Noor Jansen (😐 😟 😐" in text
    assert "Noor Jansen: 1.2c" in text
    assert "📝 Notitie bij Noor Jansen" in buttons(table)
    assert "👥 Andere groep" not in buttons(table)  # one group only

    # A proposal is decided from the overview.
    await teacher.press("✅ Noor: 1.2c", message_id=table["message_id"])
    decided = await teacher.wait_for_edit(table["message_id"])
    assert "Goedgekeurd" in decided["text"]
    async with session_factory() as session:
        row = await session.get(PupilGoal, proposal)
        assert row is not None and row.status is PupilGoalStatus.ACTIVE
        assert row.confirmed_by_id == school.persons["T1"]


async def test_a_teacher_sets_another_goal_instead_of_a_proposal(
    running_bot, telegram, school, session_factory
):
    curriculum, proposal = await class_with_goals(session_factory, school)
    noor = await joined(telegram, school, "P2", "Noor")
    teacher = await joined(telegram, school, "T1", "Anouk")
    await teacher.send_text("/klas")
    _picture, table = await teacher.wait_for_reply(count=2)
    await teacher.press("🔁 Ander doel", message_id=table["message_id"])
    [choice] = await teacher.wait_for_reply()
    assert "Noor Jansen stelde voor: 1.2c" in choice["text"]
    assert "1.2 Krachten in evenwicht" in choice["text"]
    offered = buttons(choice)
    assert offered and all(label.startswith("1.2") for label in offered)
    assert not any(label.startswith("1.2c") for label in offered)
    # A goal of another line, forged into the button, is refused.
    query = await teacher.press_raw(
        choice["message_id"],
        AdjustTo(pupil_goal_id=proposal, goal_id=curriculum.goals["SW"]).pack(),
    )
    answer = await teacher.wait_for_callback_answer(query["id"])
    assert answer["show_alert"]
    await teacher.press(
        next(b for b in offered if b.startswith("1.2b")), message_id=choice["message_id"]
    )
    done = await teacher.wait_for_edit(choice["message_id"])
    assert "Noor Jansen werkt nu aan 1.2b" in done["text"]
    [told] = await noor.wait_for_reply()
    assert "koos in plaats van" in told["text"]

    async with session_factory() as session:
        declined = await session.get(PupilGoal, proposal)
        assert declined is not None and declined.status is PupilGoalStatus.REJECTED
        [instead] = (
            await session.scalars(
                select(PupilGoal).where(
                    PupilGoal.pupil_id == school.persons["P2"],
                    PupilGoal.goal_id == curriculum.goals["1.2b"],
                )
            )
        ).all()
        assert instead.status is PupilGoalStatus.ACTIVE and instead.chosen_by is ChosenBy.TEACHER
        assert instead.confirmed_by_id == school.persons["T1"]
    # A second tap changes nothing.
    query = await teacher.press_raw(
        choice["message_id"],
        AdjustTo(pupil_goal_id=proposal, goal_id=curriculum.goals["1.2a"]).pack(),
    )
    answer = await teacher.wait_for_callback_answer(query["id"])
    assert answer["show_alert"] and "al beoordeeld" in answer["text"]


async def test_a_teacher_gives_a_level_with_a_note(running_bot, telegram, school, session_factory):
    curriculum, _ = await class_with_goals(session_factory, school)
    teacher = await joined(telegram, school, "T1", "Anouk")
    await teacher.send_text("/klas")
    _picture, table = await teacher.wait_for_reply(count=2)
    await teacher.press("📊 Niveau geven", message_id=table["message_id"])
    [choice] = await teacher.wait_for_reply()
    assert "Wie wil je een niveau geven?" in choice["text"]
    assert buttons(choice) == ["Noor Jansen", "Sam de Vries"]
    await teacher.press("Sam de Vries", message_id=choice["message_id"])
    goals = await teacher.wait_for_edit(choice["message_id"])
    assert "leerling zelf: gevorderd · leerkracht: –" in goals["text"]  # Samenwerken
    assert "leerling zelf: – · leerkracht: in ontwikkeling" in goals["text"]  # 1.1a
    await teacher.press("SW Ik werk samen met anderen aan een ta…", message_id=choice["message_id"])
    levels = await teacher.wait_for_edit(choice["message_id"])
    assert "Waar staat Sam de Vries op dit doel?" in levels["text"]
    assert "Ik" in levels["text"]  # the rubric's descriptors are shown
    await teacher.press("🟢🟢🟢🟢 expert", message_id=choice["message_id"])
    saved = await teacher.wait_for_edit(choice["message_id"])
    assert "Bewaard: Sam de Vries staat op expert" in saved["text"]
    await teacher.send_text("Legt het groepje uit hoe ze de taken verdelen.")
    [thanks] = await teacher.wait_for_reply()
    assert "Toelichting bewaard" in thanks["text"]

    async with session_factory() as session:
        [given] = (
            await session.scalars(
                select(Assessment).where(
                    Assessment.by_role == ChosenBy.TEACHER,
                    Assessment.goal_id == curriculum.goals["SW"],
                )
            )
        ).all()
        assert given.pupil_id == school.persons["P1"]
        assert given.assessor_id == school.persons["T1"]
        assert given.rubric_level_id is not None and given.level is None
        assert given.note == "Legt het groepje uit hoe ze de taken verdelen."

    # The overview now shows the teacher's level (4, unstarred) where Sam's own 3* was.
    await teacher.send_text("/klas")
    _picture, table = await teacher.wait_for_reply(count=2)
    assert "Sam de Vries  2  4" in table["text"]
    # The explanation is found again in Sam's timeline, under the level.
    await teacher.send_text("/tijdlijn Sam")
    [timeline] = await teacher.wait_for_reply()
    assert "niveau expert (leerkracht)" in timeline["text"]
    assert "💬 Legt het groepje uit hoe ze de taken verdelen." in timeline["text"]

    # From a pupil's timeline: the same dialogue for that pupil, by /niveau with a name too.
    await teacher.send_text("/tijdlijn Noor")
    [timeline] = await teacher.wait_for_reply()
    await teacher.press("📊 Niveau geven", message_id=timeline["message_id"])
    [noor_goals] = await teacher.wait_for_reply()
    assert "Bij welk doel geef je Noor Jansen een niveau?" in noor_goals["text"]
    await teacher.send_text("/niveau sam")
    [sam_goals] = await teacher.wait_for_reply()
    assert "Bij welk doel geef je Sam de Vries een niveau?" in sam_goals["text"]


async def test_co_teachers_see_the_same_class_and_a_teacher_switches_group(
    running_bot, telegram, school, session_factory
):
    await class_with_goals(session_factory, school)
    other = await second_group(session_factory, school, teacher="T1")
    anouk = await joined(telegram, school, "T1", "Anouk")
    bram = await joined(telegram, school, "X1", "Bram")  # co-teacher of Groep 6a only

    await bram.send_text("/klas")
    _picture, bram_table = await bram.wait_for_reply(count=2)
    await anouk.send_text("/klas")
    _picture, anouk_table = await anouk.wait_for_reply(count=2)
    for text in (bram_table["text"], anouk_table["text"]):
        assert "Groep 6a" in text and "Sam de Vries" in text and "Noor Jansen" in text
        assert "Daan" not in text
    assert "👥 Andere groep" in buttons(anouk_table)
    assert "Een andere groep bekijken: /groep" in anouk_table["text"]

    await anouk.send_text("/groep")
    [choice] = await anouk.wait_for_reply()
    assert "Je kijkt nu naar Groep 6a" in choice["text"]
    assert buttons(choice) == ["✅ Groep 6a", "Groep 7b"]
    await anouk.press("Groep 7b", message_id=choice["message_id"])
    switched = await anouk.wait_for_edit(choice["message_id"])
    assert "Je kijkt nu naar Groep 7b" in switched["text"]
    async with session_factory() as session:
        person = await session.get(Person, school.persons["T1"])
        assert person is not None and person.preferences["active_group_id"] == other["group_id"]

    await anouk.send_text("/klas")
    [table] = await anouk.wait_for_reply()  # no goals in 7b this period: no picture
    assert (
        "Groep 7b" in table["text"]
        and "Nog geen reflectie deze week: Daan Bakker." in table["text"]
    )
    assert "Sam" not in table["text"]
    # The pupil lists follow the active group: the note picker and "not seen".
    await anouk.send_text("📝 Notitie")
    [card] = await anouk.wait_for_reply()
    assert [b for b in buttons(card) if "Daan" in b or "Sam" in b or "Noor" in b] == ["Daan Bakker"]
    await anouk.send_text("/annuleer")
    await anouk.wait_for_reply()
    await anouk.send_text("👀 Nog niet gezien")
    [unseen] = await anouk.wait_for_reply()
    assert "Daan Bakker" in unseen["text"] and "Sam" not in unseen["text"]
    # Bram's view did not change: the active group is per teacher. He has one group only.
    await bram.send_text("/klas")
    _picture, bram_table = await bram.wait_for_reply(count=2)
    assert "Groep 6a" in bram_table["text"]
    await bram.send_text("/groep")
    [only] = await bram.wait_for_reply()
    assert "Je hebt één groep: Groep 6a." in only["text"]

    # Back with the overview's button, which shows the overview of the chosen group at once.
    await anouk.press("👥 Andere groep", message_id=table["message_id"])
    [choice] = await anouk.wait_for_reply()
    await anouk.press("Groep 6a", message_id=choice["message_id"])
    await anouk.wait_for_edit(choice["message_id"])
    _picture, table = await anouk.wait_for_reply(count=2)
    assert "Groep 6a" in table["text"]


async def test_no_button_reaches_a_pupil_of_another_group(
    running_bot, telegram, school, session_factory
):
    curriculum, _ = await class_with_goals(session_factory, school)
    other = await second_group(session_factory, school)
    daan = other["daan"]
    daan_goal = await give_goal(
        session_factory,
        pupil_id=daan,
        period_id=curriculum.period_id,
        goal_id=curriculum.goals["RN"],
    )
    daan_proposal = await give_goal(
        session_factory,
        pupil_id=daan,
        period_id=curriculum.period_id,
        goal_id=curriculum.goals["1.1c"],
        status=PupilGoalStatus.PROPOSED,
    )
    await add_reflections(session_factory, daan, [1, 1, 1])
    teacher = await joined(telegram, school, "T1", "Anouk")
    await teacher.send_text("/klas")
    _picture, table = await teacher.wait_for_reply(count=2)
    assert "Daan" not in table["text"] and not any("Daan" in b for b in buttons(table))

    forged = [
        AssessPupil(pupil_id=daan),
        AssessFrom(pupil_id=daan),
        AssessGoal(pupil_goal_id=daan_goal),
        AssessLevel(pupil_goal_id=daan_goal, position=4),
        GroupChoice(group_id=other["group_id"], show=True),
        NoteFor(pupil_id=daan),
        TimelineView(pupil_id=daan, kind="all", page=0, tag=""),
        Decide(pupil_goal_id=daan_proposal, approve=True),
        AdjustProposal(pupil_goal_id=daan_proposal),
        AdjustTo(pupil_goal_id=daan_proposal, goal_id=curriculum.goals["1.1a"]),
    ]
    for data in forged:
        query = await teacher.press_raw(table["message_id"], data.pack())
        answer = await teacher.wait_for_callback_answer(query["id"])
        assert answer["show_alert"], data
        assert "ken ik niet" in answer["text"] or "niet van jouw leerling" in answer["text"], data
    # A pupil outside the note dialogue's offer is refused there too.
    await teacher.send_text("📝 Notitie")
    [card] = await teacher.wait_for_reply()
    query = await teacher.press_raw(card["message_id"], NotePupil(pupil_id=daan).pack())
    answer = await teacher.wait_for_callback_answer(query["id"])
    assert answer["show_alert"] and "ken ik niet" in answer["text"]
    await teacher.send_text("/annuleer")
    await teacher.wait_for_reply()
    # Typing the name finds nobody.
    await teacher.send_text("/niveau Daan")
    replies = await teacher.wait_for_reply(count=2)
    assert "Ik vind geen leerling met „Daan”" in replies[0]["text"]
    assert "Daan" not in " ".join(buttons(replies[1]))

    async with session_factory() as session:
        assert (
            await session.scalars(select(Assessment).where(Assessment.pupil_id == daan))
        ).all() == []
        proposal = await session.get(PupilGoal, daan_proposal)
        assert proposal is not None and proposal.status is PupilGoalStatus.PROPOSED
        person = await session.get(Person, school.persons["T1"])
        assert person is not None and "active_group_id" not in (person.preferences or {})

    # Wellbeing signals are for teachers: a pupil asking for the overview gets a kind no.
    pupil = await joined(telegram, school, "P2", "Noor")
    await pupil.send_text("/klas")
    [refused] = await pupil.wait_for_reply()
    assert "Dat kan alleen een leerkracht" in refused["text"]


async def test_a_class_of_30_gets_an_album_of_two_pages(running_bot, telegram, session_factory):
    """A year of a class of 30 (the bench's data), the overview on its last school day."""
    from bench._schoolyear import generate_school_year, school_days
    from storage.invites import issue_invite

    today = school_today()
    first_day = today - timedelta(days=21)
    days = len([day for day in school_days(first_day, 40) if day <= today])
    year = await generate_school_year(session_factory, pupils=30, days=days, first_day=first_day)
    async with session_factory() as session, session.begin():
        code = await issue_invite(
            session, person_id=year.teacher_id, valid_for=timedelta(days=1), secret=INVITE_SECRET
        )
    teacher = await telegram.create_user("Anouk")
    await teacher.send_text(f"/start {code}")
    await teacher.wait_for_reply()

    await teacher.send_text("/klas")
    first, second, table = await teacher.wait_for_reply(count=3, timeout=15)
    assert first["caption"] == "Groep 6a: waar staat iedereen?" and "caption" not in second
    for page in (first, second):
        largest = max(page["photo"], key=lambda size: size["width"])
        assert largest["width"] == 1080 and largest["height"] <= 1280
    assert len(table["text"]) <= 4096
    async with session_factory() as session:
        names = (
            await session.scalars(select(Person.display_name).where(Person.role == Role.PUPIL))
        ).all()
    assert len(names) == 30
    for name in names:
        shown = name if len(name) <= 12 else name[:11]
        assert shown in table["text"]
