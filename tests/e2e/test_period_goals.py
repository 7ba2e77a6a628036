"""A teacher prepares a period from the chat: the period, the levels per learning line, the
activities; pupils see exactly that in /doelen and their week plan; nobody else may touch it."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from conversations.goals import OfferPick
from conversations.period_goals import (
    AddActivity,
    ClearTier,
    NewPeriodLength,
    NewPeriodStart,
    PickPeriod,
    PickTierGoal,
    PrepActivities,
    PrepLine,
    RemoveActivity,
    SetTier,
)
from services.importing.goal_sets import import_goal_set
from storage.invites import issue_invite
from storage.models import (
    Activity,
    AuditEvent,
    Goal,
    Group,
    GroupMembership,
    LearningLine,
    Period,
    PeriodGoal,
    Person,
    Role,
    School,
    WeekPlanItem,
)
from tests.conftest import INVITE_SECRET
from tests.factories import SAMPLES, Curriculum, build_curriculum

LINE = "1.1 Krachten om je heen"


def school_today() -> date:
    return datetime.now(ZoneInfo("Europe/Amsterdam")).date()


async def joined(telegram, code: str, name: str):
    user = await telegram.create_user(name)
    await user.send_text(f"/start {code}")
    await user.wait_for_reply()
    return user


async def goal_sets_without_a_period(session_factory, school) -> dict[str, int]:
    """The school's goal sets, and a school open every day, so that a period made today
    is the one pupils are in today, whatever day the test runs."""
    async with session_factory() as session, session.begin():
        school_row = await session.get(School, school.school_id)
        assert school_row is not None
        school_row.school_days = [1, 2, 3, 4, 5, 6, 7]
        for name in ("goalset-natuurkunde-vwo3-h1.csv", "goalset-vaardigheden.csv"):
            await import_goal_set(session, school=school_row, path=SAMPLES / name, name=None)
        rows = await session.execute(select(Goal.code, Goal.id))
        return dict(rows.all())


async def prepared(session_factory, period_id: int) -> dict[int, str]:
    async with session_factory() as session:
        rows = await session.execute(
            select(PeriodGoal.tier, Goal.code)
            .join(Goal, Goal.id == PeriodGoal.goal_id)
            .join(LearningLine, LearningLine.id == Goal.learning_line_id)
            .where(PeriodGoal.period_id == period_id, LearningLine.name == LINE)
        )
        return dict(rows.all())


async def line_id_of(session_factory, name: str) -> int:
    async with session_factory() as session:
        found = await session.scalar(select(LearningLine.id).where(LearningLine.name == name))
        assert found is not None
        return found


async def activity_texts(session_factory, goal_id: int) -> list[str]:
    async with session_factory() as session:
        return list(
            (
                await session.scalars(
                    select(Activity.text).where(Activity.goal_id == goal_id).order_by(Activity.id)
                )
            ).all()
        )


async def test_a_teacher_prepares_a_new_period_and_pupils_choose_from_it(
    running_bot, telegram, school, session_factory
):
    goals = await goal_sets_without_a_period(session_factory, school)
    group = school.group_id
    teacher = await joined(telegram, school.codes["T1"], "Anouk")
    assert ["📊 Klas", "🎯 Doelen klaarzetten"] in (teacher.reply_keyboard() or [])

    # No period yet: the start day, then the length.
    await teacher.send_text("🎯 Doelen klaarzetten")
    [card] = await teacher.wait_for_reply()
    assert "nog geen nieuwe periode" in card["text"]
    today = school_today()
    await teacher.press(
        NewPeriodStart(group_id=group, day=today.toordinal()).pack(),
        message_id=card["message_id"],
    )
    lengths = await teacher.wait_for_edit(card["message_id"])
    assert "Hoe lang" in lengths["text"] and "6 weken" in str(lengths["reply_markup"])
    await teacher.press(
        NewPeriodLength(group_id=group, day=today.toordinal(), weeks=6).pack(),
        message_id=card["message_id"],
    )
    lines = await teacher.wait_for_edit(card["message_id"])
    assert LINE in lines["text"] and "nog leeg" in lines["text"]
    async with session_factory() as session:
        period = await session.scalar(select(Period))
        assert period is not None
        assert (period.group_id, period.starts_on) == (group, today)
        assert period.ends_on == today + timedelta(weeks=6, days=-1)
        assert await session.scalar(
            select(AuditEvent.id).where(AuditEvent.action == "period.create")
        )
    period_id = period.id

    # Tier 1 and 2 of a line, tier 2 replaced, tier 3 set and cleared again.
    line_id = await line_id_of(session_factory, LINE)
    await teacher.press(
        PrepLine(group_id=group, period_id=period_id, line_id=line_id).pack(),
        message_id=card["message_id"],
    )
    await teacher.wait_for_edit(card["message_id"])
    for tier, code in ((1, "1.1a"), (2, "1.1b"), (2, "1.1c"), (3, "1.1d")):
        await teacher.press(
            PickTierGoal(
                group_id=group, period_id=period_id, line_id=line_id, tier=tier, page=0
            ).pack(),
            message_id=card["message_id"],
        )
        picker = await teacher.wait_for_edit(card["message_id"])
        assert "Welk doel zet je klaar" in picker["text"] and code in picker["text"]
        await teacher.press(
            SetTier(group_id=group, period_id=period_id, tier=tier, goal_id=goals[code]).pack(),
            message_id=card["message_id"],
        )
        line = await teacher.wait_for_edit(card["message_id"])
        assert code in line["text"]
    assert "vectoren" not in line["text"]  # 1.1b was replaced
    await teacher.press(
        ClearTier(group_id=group, period_id=period_id, line_id=line_id, tier=3).pack(),
        message_id=card["message_id"],
    )
    line = await teacher.wait_for_edit(card["message_id"])
    assert "⭐⭐⭐ nog leeg" in line["text"]
    assert await prepared(session_factory, period_id) == {1: "1.1a", 2: "1.1c"}

    # A pupil of the group sees exactly those levels.
    pupil = await joined(telegram, school.codes["P1"], "Sam")
    await pupil.send_text("/doelen")
    [offer] = await pupil.wait_for_reply()
    assert "Leerlijn 1 van 1" in offer["text"]
    assert "⭐ Je kunt soorten krachten herkennen" in offer["text"]
    assert "⭐⭐ Je kunt rekenen met zwaartekracht" in offer["text"]
    assert "⭐⭐⭐" not in offer["text"]
    assert "vectoren" not in offer["text"] and "druk" not in offer["text"]
    await pupil.press(
        OfferPick(goal_id=goals["1.1a"], index=0).pack(), message_id=offer["message_id"]
    )
    await pupil.wait_for_edit(offer["message_id"])

    # Two activities; the same name again is refused kindly.
    await teacher.press(
        PrepActivities(group_id=group, period_id=period_id, goal_id=goals["1.1a"]).pack(),
        message_id=card["message_id"],
    )
    empty = await teacher.wait_for_edit(card["message_id"])
    assert "Nog geen activiteiten" in empty["text"]
    await teacher.press("➕ Activiteit toevoegen", message_id=card["message_id"])
    asked = await teacher.wait_for_edit(card["message_id"])
    assert "Typ de naam" in asked["text"]
    await teacher.send_text("Oefenblad krachten")
    [first] = await teacher.wait_for_reply()
    assert "Toegevoegd" in first["text"]
    await teacher.send_text("Proefje met een veer")
    await teacher.wait_for_reply()
    await teacher.send_text("oefenblad   KRACHTEN")
    [duplicate] = await teacher.wait_for_reply()
    assert "staat er al" in duplicate["text"]
    await teacher.press("✅ Klaar", message_id=duplicate["message_id"])
    await teacher.wait_for_edit(duplicate["message_id"])
    assert await activity_texts(session_factory, goals["1.1a"]) == [
        "Oefenblad krachten",
        "Proefje met een veer",
    ]

    # The pupil plans one, then the teacher removes it: the plan keeps it.
    await pupil.send_text("/weekplan")
    [choose] = await pupil.wait_for_reply()
    assert "Proefje met een veer" in str(choose["reply_markup"])
    await pupil.press("Proefje met een veer", message_id=choose["message_id"])
    await pupil.wait_for_edit(choose["message_id"])
    async with session_factory() as session:
        proefje = await session.scalar(
            select(Activity.id).where(Activity.text == "Proefje met een veer")
        )
    assert proefje is not None
    await teacher.press(
        RemoveActivity(group_id=group, period_id=period_id, activity_id=proefje).pack(),
        message_id=duplicate["message_id"],
    )
    removed = await teacher.wait_for_edit(duplicate["message_id"])
    assert "Weggehaald" in removed["text"] and "1 weekplan" in removed["text"]
    assert await activity_texts(session_factory, goals["1.1a"]) == ["Oefenblad krachten"]

    await pupil.send_text("/weekplan")
    [plan] = await pupil.wait_for_reply()
    assert "⬜ Proefje met een veer" in plan["text"]  # nothing of the pupil's plan is lost
    await pupil.press("➕ Plannen", message_id=plan["message_id"])
    offered = await pupil.wait_for_edit(plan["message_id"])
    buttons = [b["text"] for row in offered["reply_markup"]["inline_keyboard"] for b in row]
    assert "Oefenblad krachten" in buttons
    assert not any("Proefje" in text for text in buttons)
    async with session_factory() as session:
        items = (await session.scalars(select(WeekPlanItem.text))).all()
    assert items == ["Proefje met een veer"]


async def _other_teacher(session_factory, school) -> tuple[str, int]:
    """Meester Kees teaches groep 8 of the same school; his invite code and group id."""
    async with session_factory() as session, session.begin():
        group = Group(school_id=school.school_id, name="Groep 8", school_year="2026-2027")
        kees = Person(
            school_id=school.school_id,
            external_id="T8",
            role=Role.TEACHER,
            display_name="Meester Kees",
        )
        session.add_all([group, kees])
        await session.flush()
        session.add(GroupMembership(group_id=group.id, person_id=kees.id, is_mentor=True))
        code = await issue_invite(
            session, person_id=kees.id, valid_for=timedelta(days=14), secret=INVITE_SECRET
        )
        return code, group.id


async def test_a_teacher_of_another_group_cannot_touch_this_period(
    running_bot, telegram, school, session_factory
):
    curriculum: Curriculum = await build_curriculum(session_factory, school)
    code, own_group = await _other_teacher(session_factory, school)
    kees = await joined(telegram, code, "Kees")
    await kees.send_text("/voorbereiden")
    [card] = await kees.wait_for_reply()
    assert "Groep 8" in card["text"] and "Groep 6a" not in card["text"]
    line_id = await line_id_of(session_factory, LINE)
    period, group = curriculum.period_id, school.group_id
    activity = curriculum.activities["Oefenblad krachten"]
    goal = curriculum.goals["1.1a"]
    forged = []
    # This group's ids, and his own group with this group's period.
    for group_id in (group, own_group):
        forged += [
            PickPeriod(group_id=group_id, period_id=period),
            PrepLine(group_id=group_id, period_id=period, line_id=line_id),
            SetTier(group_id=group_id, period_id=period, tier=1, goal_id=curriculum.goals["1.1d"]),
            ClearTier(group_id=group_id, period_id=period, line_id=line_id, tier=1),
            PrepActivities(group_id=group_id, period_id=period, goal_id=goal),
            AddActivity(group_id=group_id, period_id=period, goal_id=goal),
            RemoveActivity(group_id=group_id, period_id=period, activity_id=activity),
        ]
    forged.append(
        NewPeriodLength(
            group_id=group, day=(school_today() + timedelta(days=60)).toordinal(), weeks=6
        )
    )
    for data in forged:
        query = await kees.press_raw(card["message_id"], data.pack())
        answer = await kees.wait_for_callback_answer(query["id"])
        assert answer["show_alert"] and "ken ik niet" in answer["text"], data
    # He was not put in a typing step either: his words are no activity of theirs.
    await kees.send_text("Gestolen activiteit")
    await kees.wait_for_reply()
    assert await prepared(session_factory, period) == {1: "1.1a", 2: "1.1b", 3: "1.1c"}
    assert await activity_texts(session_factory, goal) == [
        "Oefenblad krachten",
        "Proefje met een veer",
    ]
    async with session_factory() as session:
        assert len((await session.scalars(select(Period))).all()) == 1
        assert (await session.scalars(select(AuditEvent))).all() == []


async def test_a_co_teacher_sees_the_same_prepared_goals(
    running_bot, telegram, school, session_factory
):
    curriculum = await build_curriculum(session_factory, school)
    mentor = await joined(telegram, school.codes["T1"], "Anouk")
    await mentor.send_text("/voorbereiden")
    [card] = await mentor.wait_for_reply()
    assert "Periode 2" in card["text"]
    await mentor.press(f"{LINE} (3/3)", message_id=card["message_id"])
    await mentor.wait_for_edit(card["message_id"])
    await mentor.press("⭐⭐⭐ Ander doel", message_id=card["message_id"])
    await mentor.wait_for_edit(card["message_id"])
    await mentor.press(
        SetTier(
            group_id=school.group_id,
            period_id=curriculum.period_id,
            tier=3,
            goal_id=curriculum.goals["1.1d"],
        ).pack(),
        message_id=card["message_id"],
    )
    await mentor.wait_for_edit(card["message_id"])

    co_teacher = await joined(telegram, school.codes["X1"], "Bram")
    await co_teacher.send_text("/voorbereiden")
    [seen] = await co_teacher.wait_for_reply()
    assert "⭐ 1.1a Je kunt soorten krachten herkennen" in seen["text"]
    assert "⭐⭐⭐ 1.1d Je kunt rekenen met druk" in seen["text"]
    assert "⭐⭐⭐ 1.1c" not in seen["text"]


async def test_the_teacher_chooses_between_the_current_and_the_next_period(
    running_bot, telegram, school, session_factory
):
    curriculum = await build_curriculum(session_factory, school)
    async with session_factory() as session, session.begin():
        current = await session.get(Period, curriculum.period_id)
        assert current is not None
        upcoming = Period(
            school_id=school.school_id,
            name="Periode 3",
            starts_on=current.ends_on + timedelta(days=1),
            ends_on=current.ends_on + timedelta(weeks=7),
        )
        session.add(upcoming)
        await session.flush()
        upcoming_id = upcoming.id
    teacher = await joined(telegram, school.codes["T1"], "Anouk")
    await teacher.send_text("/voorbereiden")
    [choice] = await teacher.wait_for_reply()
    assert "Welke periode" in choice["text"]
    assert "Periode 2" in str(choice["reply_markup"]) and "Periode 3" in str(choice["reply_markup"])
    await teacher.press(
        PickPeriod(group_id=school.group_id, period_id=upcoming_id).pack(),
        message_id=choice["message_id"],
    )
    lines = await teacher.wait_for_edit(choice["message_id"])
    assert "Periode 3" in lines["text"] and "1.1a" not in lines["text"]


async def test_adding_activities_resumes_after_a_restart(
    running_bot, telegram, school, session_factory
):
    curriculum = await build_curriculum(session_factory, school)
    teacher = await joined(telegram, school.codes["T1"], "Anouk")
    await teacher.send_text("/voorbereiden")
    [card] = await teacher.wait_for_reply()
    goal = curriculum.goals["1.2a"]
    await teacher.press("1.2 Krachten in evenwicht (3/3)", message_id=card["message_id"])
    await teacher.wait_for_edit(card["message_id"])
    await teacher.press(
        PrepActivities(
            group_id=school.group_id, period_id=curriculum.period_id, goal_id=goal
        ).pack(),
        message_id=card["message_id"],
    )
    await teacher.wait_for_edit(card["message_id"])
    await teacher.press("➕ Activiteit toevoegen", message_id=card["message_id"])
    asked = await teacher.wait_for_edit(card["message_id"])
    assert "Typ de naam" in asked["text"]

    await running_bot.restart()
    await teacher.send_text("Weegschaal in balans brengen")
    [added] = await teacher.wait_for_reply(timeout=10)
    assert "Toegevoegd" in added["text"]
    # Back to the line ends the typing: a later message is no activity.
    await teacher.press("⬅️ Terug", message_id=added["message_id"])
    await teacher.wait_for_edit(added["message_id"])
    await teacher.send_text("Boodschappen doen")
    [other] = await teacher.wait_for_reply()
    assert "Toegevoegd" not in other["text"]
    assert await activity_texts(session_factory, goal) == ["Weegschaal in balans brengen"]


async def test_pupils_and_parents_are_told_it_is_for_teachers(
    running_bot, telegram, school, session_factory
):
    await build_curriculum(session_factory, school)
    for key, name in (("P1", "Sam"), ("O1", "Marieke")):
        user = await joined(telegram, school.codes[key], name)
        await user.send_text("/voorbereiden")
        [reply] = await user.wait_for_reply()
        assert "alleen een leerkracht" in reply["text"]
    async with session_factory() as session:
        assert len((await session.scalars(select(Period))).all()) == 1
