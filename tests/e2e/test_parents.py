"""Parents end to end: the weekly summary (on request and as the Friday reminder), languages,
privacy, settings, and tops & tips."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from sqlalchemy import select

from chat_ui.keyboards import LANGUAGE_NAMES
from conversations.parent_summary import (
    GiveFeedback,
    compose_feedback_notice,
    compose_parent_summary,
    summary_week,
)
from language.i18n import load_i18n, use_locale
from media.store import MediaStore
from services.clock import Clock
from storage.accounts import Recipient
from storage.evidence import NewEvidence, create_evidence
from storage.goals import levels_for
from storage.models import (
    Assessment,
    ChosenBy,
    EvidenceKind,
    Feedback,
    FeedbackTarget,
    GroupMembership,
    Guardianship,
    LearningPlan,
    Person,
    Reminder,
    Role,
)
from storage.observations import create_observation
from storage.parents import ParentPreferences, in_quiet_hours, quiet_hours_of
from storage.reflections import ReflectionAnswers, save_reflection
from storage.reminders import DueReminder
from tests.conftest import INVITE_SECRET
from tests.factories import build_curriculum, give_goal
from tests.images import small_jpeg

ZONE = ZoneInfo("Europe/Amsterdam")
FORCES = "Je kunt soorten krachten herkennen"
TEAMWORK = "Ik werk samen met anderen aan een taak"
SHARED_CAPTION = "Mijn krachtenposter"
SECRET_CAPTION = "Geheim verjaardagscadeau"
SHAREABLE_NOTE = "Sam legde uit hoe een veer werkt."
PRIVATE_NOTE = "Sam was onrustig; even opletten."


def today() -> date:
    return datetime.now(ZONE).date()


def in_week(week_start: date, day: int, hour: int = 10) -> datetime:
    """A moment on a day of the summary's week (never in the future: the bot reads now)."""
    moment = datetime.combine(week_start + timedelta(days=day), time(hour), tzinfo=ZONE)
    return min(moment, datetime.now(ZONE) - timedelta(minutes=5)).astimezone(UTC)


async def _add_person(session, school, external_id: str, role: Role, name: str) -> int:
    person = Person(
        school_id=school.school_id, external_id=external_id, role=role, display_name=name
    )
    session.add(person)
    await session.flush()
    return person.id


@pytest.fixture
async def family(school, session_factory, settings):
    """Sam (P1) and Lotte, both children of Marieke (O1); Sam's second parent Kees. Sam had
    a week: reflections, a shared and an unshared photo, a shareable and a private note."""
    curriculum = await build_curriculum(session_factory, school)
    week = summary_week(today())
    async with session_factory() as session, session.begin():
        lotte = await _add_person(session, school, "P9", Role.PUPIL, "Lotte de Vries")
        kees = await _add_person(session, school, "O9", Role.PARENT, "Kees de Vries")
        session.add(GroupMembership(group_id=school.group_id, person_id=lotte))
        session.add(Guardianship(parent_id=school.persons["O1"], pupil_id=lotte))
        session.add(Guardianship(parent_id=kees, pupil_id=school.persons["P1"]))
        from storage.invites import issue_invite

        school.persons["P9"], school.persons["O9"] = lotte, kees
        school.codes["O9"] = await issue_invite(
            session, person_id=kees, valid_for=timedelta(days=14), secret=INVITE_SECRET
        )
    sam = school.persons["P1"]
    for code in ("1.1a", "RN"):
        await give_goal(
            session_factory,
            pupil_id=sam,
            period_id=curriculum.period_id,
            goal_id=curriculum.goals[code],
        )
    await give_goal(
        session_factory,
        pupil_id=school.persons["P9"],
        period_id=curriculum.period_id,
        goal_id=curriculum.goals["SW"],
    )
    store = MediaStore(settings.media_dir)
    async with session_factory() as session, session.begin():
        for offset, goal in ((0, "1.1a"), (1, "1.1a"), (2, "RN")):
            await save_reflection(
                session,
                pupil_id=sam,
                on_date=min(week + timedelta(days=offset), today()),
                answers=ReflectionAnswers((curriculum.goals[goal],), None, 4, 4, 4),
            )
        await save_reflection(
            session,
            pupil_id=school.persons["P9"],
            on_date=week,
            answers=ReflectionAnswers((curriculum.goals["SW"],), None, 3, 3, 3),
        )
        levels = await levels_for(session, goal_id=curriculum.goals["RN"])
        session.add(
            Assessment(
                pupil_id=sam,
                goal_id=curriculum.goals["RN"],
                rubric_level_id=levels[2].id,
                by_role=ChosenBy.TEACHER,
                assessor_id=school.persons["T1"],
            )
        )
        for caption, shared, colour in (
            (SHARED_CAPTION, True, "red"),
            (SECRET_CAPTION, False, "blue"),
        ):
            image = await store.store_image(small_jpeg((320, 240), colour))
            evidence = await create_evidence(
                session,
                school_id=school.school_id,
                new=NewEvidence(
                    pupil_id=sam,
                    kind=EvidenceKind.PHOTO,
                    files=[image],
                    goal_ids=[curriculum.goals["1.1a"]],
                    caption=caption,
                    shared_with_parents=shared,
                ),
            )
            evidence.created_at = in_week(week, 1)
        for text, private in ((SHAREABLE_NOTE, False), (PRIVATE_NOTE, True)):
            note = await create_observation(
                session,
                author_id=school.persons["T1"],
                pupil_ids=[sam],
                text=text,
                is_private=private,
            )
            note.created_at = in_week(week, 1)
    school.curriculum = curriculum
    return school


async def join(telegram, school, external_id: str, name: str):
    user = await telegram.create_user(name)
    await user.send_text(f"/start {school.codes[external_id]}")
    await user.wait_for_reply()
    return user


def texts(messages: list[dict]) -> str:
    return "\n".join((m.get("text") or m.get("caption") or "") for m in messages)


async def ask_summary(user, count: int) -> list[dict]:
    await user.send_text("/overzicht")
    return await user.wait_for_reply(count=count, timeout=10)


async def test_a_parent_of_two_children_gets_two_named_summaries(running_bot, telegram, family):
    marieke = await join(telegram, family, "O1", "Marieke")
    # Sam: text, the one shared photo, the progress picture; Lotte: text, picture.
    messages = await ask_summary(marieke, 5)
    summaries = [m for m in messages if "text" in m]
    assert len(summaries) == 2
    sam, lotte = sorted(summaries, key=lambda m: "Lotte" in m["text"])
    assert "van Sam de Vries" in sam["text"] and "van Lotte de Vries" in lotte["text"]
    assert "krachten herkennen (2×)" in sam["text"] and TEAMWORK not in sam["text"]
    assert "samen met anderen aan een taak (1×)" in lotte["text"]
    assert "Lotte" not in sam["text"] and "Sam" not in lotte["text"]
    # Effort and wellbeing in words, never as a number or average.
    assert "heel goed in" in sam["text"] and "4.0" not in sam["text"]
    assert "gevorderd" in sam["text"]  # the teacher's level on the rubric
    assert "Vraag Sam vanavond eens" in sam["text"]
    pictures = [m for m in messages if "Waar" in (m.get("caption") or "")]
    assert {m["caption"].split(",")[0] for m in pictures} == {
        "Waar Sam de Vries nu staat",
        "Waar Lotte de Vries nu staat",
    }
    # Tops & tips buttons sit under the last part, when there is something to give them on
    # (Sam shared work; Lotte shared nothing and has no plan).
    sam_picture = next(m for m in pictures if "Sam" in m["caption"])
    lotte_picture = next(m for m in pictures if "Lotte" in m["caption"])
    assert "reply_markup" not in lotte_picture
    labels = [b["text"] for row in sam_picture["reply_markup"]["inline_keyboard"] for b in row]
    assert "👍 Geef een top" in labels


async def test_only_the_shared_photo_and_shareable_note_reach_the_parent(
    running_bot, telegram, family
):
    marieke = await join(telegram, family, "O1", "Marieke")
    messages = await ask_summary(marieke, 5)
    everything = texts(messages)
    assert SHAREABLE_NOTE in everything and "Juf Anouk schreef" in everything
    assert PRIVATE_NOTE not in everything
    assert SECRET_CAPTION not in everything
    work = [m for m in messages if "photo" in m and "Waar" not in (m.get("caption") or "")]
    assert len(work) == 1 and work[0]["caption"].startswith(SHARED_CAPTION)
    assert "🎯 " + FORCES in work[0]["caption"]
    # The question for tonight is made from the child's own shared photo.
    assert f"naar de foto ‘{SHARED_CAPTION}’" in everything


async def test_an_empty_week_is_said_kindly(running_bot, telegram, school, session_factory):
    await build_curriculum(session_factory, school)
    parent = await join(telegram, school, "O1", "Marieke")
    [summary] = await ask_summary(parent, 1)
    assert "nog niets nieuws van Sam" in summary["text"] and "niet erg" in summary["text"]
    for alarming in ("lastig", "zorg", "niet fijn", "0×"):
        assert alarming not in summary["text"]
    assert "wat was het leukste van deze week?" in summary["text"]


# A known phrase of the summary per language: the greeting question for tonight.
PHRASES = {
    "nl": "Vraag Sam vanavond eens",
    "en": "Ask Sam tonight",
    "tr": "Bu akşam Sam ile",
    "ar": "اسأل Sam هذا المساء",
    "pl": "pytanie na dziś wieczór",
    "uk": "питання на сьогоднішній вечір",
}


@pytest.mark.parametrize("locale", list(PHRASES))
async def test_a_parent_gets_the_summary_in_their_language(running_bot, telegram, family, locale):
    marieke = await join(telegram, family, "O1", "Marieke")
    await marieke.send_text("/taal")
    [choice] = await marieke.wait_for_reply()
    await marieke.press(f"lang:{locale}", message_id=choice["message_id"])
    await marieke.wait_for_reply(count=1)
    messages = await ask_summary(marieke, 5)
    sam = next(
        m for m in messages if "text" in m and "Sam" in m["text"] and "Lotte" not in m["text"]
    )
    assert PHRASES[locale] in sam["text"]
    # Goal texts stay as the school wrote them; dates are in the parent's language.
    assert FORCES in sam["text"]
    week = summary_week(today())
    assert format_date(week, "d MMM", locale=locale) in sam["text"]


async def test_pupils_cannot_pick_a_parents_language(running_bot, telegram, school):
    pupil = await join(telegram, school, "P1", "Sam")
    await pupil.send_text("/taal")
    [choice] = await pupil.wait_for_reply()
    labels = [b["text"] for row in choice["reply_markup"]["inline_keyboard"] for b in row]
    assert LANGUAGE_NAMES["tr"] not in labels and any("English" in label for label in labels)
    parent = await join(telegram, school, "O1", "Marieke")
    await parent.send_text("/taal")
    [choice] = await parent.wait_for_reply()
    labels = [b["text"] for row in choice["reply_markup"]["inline_keyboard"] for b in row]
    assert all(name in " ".join(labels) for name in LANGUAGE_NAMES.values())


async def test_both_parents_of_a_child_get_the_friday_summary(
    running_bot, telegram, family, session_factory, settings
):
    await join(telegram, family, "O1", "Marieke")
    await join(telegram, family, "O9", "Kees")
    app = running_bot.app
    week = summary_week(today())
    sent_to = []
    for parent in ("O1", "O9"):
        async with session_factory() as session:
            person = await session.get(Person, family.persons[parent])
            from storage.accounts import recipient

            to = await recipient(session, person_id=person.id)
            assert to is not None
            reminder = DueReminder(
                id=1,
                kind="parent_summary",
                person_id=person.id,
                due_at=datetime.now(UTC),
                stale_at=None,
                payload={"pupil_id": family.persons["P1"], "week_start": week.isoformat()},
                attempts=0,
                idempotency_key=f"parent_summary:{person.id}",
            )
            with app.i18n.context(), use_locale("nl"):
                methods = await compose_parent_summary(
                    session, reminder, to, app.reminders.composers.context(datetime.now(UTC))
                )
        assert methods
        for method in methods:
            await app.bot(method)
        sent_to.append(to.telegram_user_id)
    for chat in sent_to:
        messages = await telegram.messages(chat)
        summaries = [m for m in messages if "Week " in (m.get("text") or "")]
        assert len(summaries) == 1 and "van Sam de Vries" in summaries[0]["text"]
        assert "Lotte" not in summaries[0]["text"]


async def test_the_friday_summary_is_not_sent_when_switched_off_or_not_their_child(
    running_bot, telegram, family, session_factory, settings
):
    await join(telegram, family, "O1", "Marieke")
    async with session_factory() as session, session.begin():
        stranger = await session.get(Person, family.persons["X2"])  # Noor's parent
        assert stranger is not None
    to = Recipient(family.persons["X2"], "Bram Jansen", 999, "nl")
    reminder = DueReminder(
        1,
        "parent_summary",
        family.persons["X2"],
        datetime.now(UTC),
        None,
        {"pupil_id": family.persons["P1"], "week_start": summary_week(today()).isoformat()},
        0,
        "k",
    )
    context = running_bot.app.reminders.composers.context(datetime.now(UTC))
    async with session_factory() as session:
        with running_bot.app.i18n.context(), use_locale("nl"):
            assert await compose_parent_summary(session, reminder, to, context) is None
    async with session_factory() as session, session.begin():
        marieke = await session.get(Person, family.persons["O1"])
        marieke.preferences = {"weekly_summary": False}
    own = DueReminder(
        2,
        "parent_summary",
        family.persons["O1"],
        datetime.now(UTC),
        None,
        {"pupil_id": family.persons["P1"], "week_start": summary_week(today()).isoformat()},
        0,
        "k2",
    )
    async with session_factory() as session:
        with running_bot.app.i18n.context(), use_locale("nl"):
            assert await compose_parent_summary(session, own, to, context) is None


async def test_a_forged_button_for_another_child_shows_nothing(
    running_bot, telegram, family, session_factory
):
    marieke = await join(telegram, family, "O1", "Marieke")
    [summary, *_rest] = await ask_summary(marieke, 5)
    noor = family.persons["P2"]
    query = await marieke.press_raw(
        summary["message_id"], GiveFeedback(pupil_id=noor, kind="top").pack()
    )
    answer = await marieke.wait_for_callback_answer(query["id"])
    assert "ken ik niet" in answer["text"]


async def test_settings_are_saved_under_the_shared_keys(
    running_bot, telegram, school, session_factory
):
    parent = await join(telegram, school, "O1", "Marieke")
    await parent.send_text("/instellingen")
    [card] = await parent.wait_for_reply()
    assert "vrijdag" in card["text"] and "16:00" in card["text"]
    await parent.press("📅 Andere dag", message_id=card["message_id"])
    await parent.wait_for_edit(card["message_id"])
    await parent.press("woensdag", message_id=card["message_id"])
    edited = await parent.wait_for_edit(card["message_id"])
    assert "woensdag" in edited["text"]
    await parent.press("🌙 Stille uren kiezen", message_id=card["message_id"])
    await parent.wait_for_edit(card["message_id"])
    await parent.press("21:00", message_id=card["message_id"])
    await parent.wait_for_edit(card["message_id"])
    await parent.press("07:00", message_id=card["message_id"])
    await parent.wait_for_edit(card["message_id"])
    await parent.press("Gesprekken: herinnering uitzetten", message_id=card["message_id"])
    edited = await parent.wait_for_edit(card["message_id"])
    assert "21:00 – 07:00" in edited["text"]
    async with session_factory() as session:
        person = await session.get(Person, school.persons["O1"])
    assert person.preferences["summary_weekday"] == 3
    assert person.preferences["quiet_start"] == "21:00"
    assert person.preferences["quiet_end"] == "07:00"
    assert person.preferences["talk_reminders"] is False
    assert person.preferences["weekly_summary"] is True


async def test_a_top_from_a_parent_reaches_the_child_and_the_mentor(
    running_bot, telegram, family, session_factory
):
    marieke = await join(telegram, family, "O1", "Marieke")
    await join(telegram, family, "P1", "Sam")
    await join(telegram, family, "T1", "Anouk")
    messages = await ask_summary(marieke, 5)
    picture = next(m for m in messages if "Waar Sam" in (m.get("caption") or ""))
    await marieke.press("👍 Geef een top", message_id=picture["message_id"])
    [question] = await marieke.wait_for_reply()
    assert "Waar gaat je top over?" in question["text"]
    await marieke.press("📷 " + SHARED_CAPTION, message_id=question["message_id"])
    await marieke.wait_for_edit(question["message_id"])
    await marieke.send_text("Wat een mooie, duidelijke poster!")
    [thanks] = await marieke.wait_for_reply()
    assert "Dank je wel" in thanks["text"]
    async with session_factory() as session:
        [feedback] = (await session.scalars(select(Feedback))).all()
        reminders = (
            await session.scalars(select(Reminder).where(Reminder.kind == "feedback_notice"))
        ).all()
    assert feedback.author_role is Role.PARENT and feedback.target is FeedbackTarget.EVIDENCE
    assert feedback.top == "Wat een mooie, duidelijke poster!" and feedback.tip is None
    assert {r.person_id for r in reminders} == {family.persons["P1"], family.persons["T1"]}
    # What the child is told.
    async with session_factory() as session:
        reminder = reminders[0]
        due = DueReminder(
            reminder.id,
            reminder.kind,
            reminder.person_id,
            reminder.due_at,
            None,
            reminder.payload,
            0,
            reminder.idempotency_key,
        )
        with running_bot.app.i18n.context(), use_locale("nl"):
            [method] = await compose_feedback_notice(
                session,
                due,
                Recipient(family.persons["P1"], "Sam", 1, "nl"),
                running_bot.app.reminders.composers.context(datetime.now(UTC)),
            )
    assert "Marieke de Vries gaf je feedback" in method.text
    assert "duidelijke poster" in method.text


async def test_a_tip_on_the_plan_the_pupil_asked_feedback_on(
    running_bot, telegram, family, session_factory
):
    async with session_factory() as session, session.begin():
        plan = LearningPlan(pupil_id=family.persons["P1"], idea="Een vogelhuisje bouwen")
        session.add(plan)
    marieke = await join(telegram, family, "O1", "Marieke")
    sam = await join(telegram, family, "P1", "Sam")
    await sam.send_text("/vraagfeedback")
    [choice] = await sam.wait_for_reply()
    await sam.press("📝 Een vogelhuisje bouwen", message_id=choice["message_id"])
    sent = await sam.wait_for_edit(choice["message_id"])
    assert "feedbackmoment 1 van 2" in sent["text"]
    async with session_factory() as session:
        [request] = (
            await session.scalars(select(Reminder).where(Reminder.kind == "plan_feedback_request"))
        ).all()
    assert request.person_id == family.persons["O1"]
    messages = await ask_summary(marieke, 5)
    text = next(m for m in messages if "text" in m and "Sam" in m["text"])
    assert text  # the plan is a target too
    picture = next(m for m in messages if "Waar Sam" in (m.get("caption") or ""))
    await marieke.press("💡 Geef een tip", message_id=picture["message_id"])
    [question] = await marieke.wait_for_reply()
    await marieke.press("📝 Het plan: Een vogelhuisje bouwen", message_id=question["message_id"])
    await marieke.wait_for_edit(question["message_id"])
    await marieke.send_text("Maak eerst een tekening met maten.")
    await marieke.wait_for_reply()
    async with session_factory() as session:
        [feedback] = (await session.scalars(select(Feedback))).all()
    assert feedback.target is FeedbackTarget.PLAN and feedback.tip.startswith("Maak eerst")

    # The request itself, as the dispatcher composes it for Marieke: the plan, two buttons.
    from conversations.parent_summary import compose_plan_feedback_request
    from storage.accounts import recipient

    async with session_factory() as session:
        to = await recipient(session, person_id=family.persons["O1"])
        due = DueReminder(
            request.id,
            request.kind,
            request.person_id,
            request.due_at,
            None,
            request.payload,
            0,
            request.idempotency_key,
        )
        with running_bot.app.i18n.context(), use_locale("nl"):
            methods = await compose_plan_feedback_request(
                session, due, to, running_bot.app.reminders.composers.context(datetime.now(UTC))
            )
    [method] = methods
    sent = await running_bot.app.bot(method)
    assert "moment 1 van 2" in method.text and "Een vogelhuisje bouwen" in method.text
    await marieke.press("👍 Geef een top", message_id=sent.message_id)
    [prompt] = await marieke.wait_for_reply()
    assert "Typ je top" in prompt["text"]
    await marieke.send_text("Goed idee, en je weet al wat je nodig hebt!")
    await marieke.wait_for_reply()
    async with session_factory() as session:
        tops = (await session.scalars(select(Feedback).where(Feedback.top.is_not(None)))).all()
    assert [top.learning_plan_id for top in tops] == [feedback.learning_plan_id]


def test_quiet_hours_default_to_the_school_and_may_run_past_midnight():
    from storage.models import School

    school = School(
        name="x",
        timezone="Europe/Amsterdam",
        quiet_hours_start=time(20, 0),
        quiet_hours_end=time(7, 30),
        parent_summary_weekday=5,
        parent_summary_time=time(16, 0),
    )
    parent = Person(preferences={}, display_name="p", role=Role.PARENT, external_id="p")
    preferences = ParentPreferences.from_person(parent, school)
    assert quiet_hours_of(preferences, school) == (time(20, 0), time(7, 30))
    assert preferences.summary_weekday == 5 and preferences.weekly_summary is True
    parent.preferences = {"quiet_start": "22:00", "quiet_end": "06:00", "summary_weekday": 9}
    preferences = ParentPreferences.from_person(parent, school)
    assert quiet_hours_of(preferences, school) == (time(22, 0), time(6, 0))
    assert preferences.summary_weekday == 5  # a broken value falls back to the school's
    late = datetime(2026, 11, 27, 23, 30, tzinfo=ZONE)
    early = datetime(2026, 11, 27, 5, 59, tzinfo=ZONE)
    evening = datetime(2026, 11, 27, 21, 0, tzinfo=ZONE)
    assert in_quiet_hours(late, preferences, school) and in_quiet_hours(early, preferences, school)
    assert not in_quiet_hours(evening, preferences, school)


def _hhmm(moment: datetime) -> str:
    return moment.astimezone(ZONE).strftime("%H:%M")


async def test_the_dispatcher_sends_the_summary_to_both_parents_outside_their_quiet_hours(
    running_bot, telegram, family, session_factory, settings
):
    """The reminder machinery end to end: rows for both parents of Sam, the real dispatcher
    and sender, the composer. Kees is in his own quiet hours now: his summary waits."""
    from scheduler.dispatcher import ReminderDispatcher
    from scheduler.sender import RateLimitedSender
    from storage.reminders import schedule_reminder

    marieke = await join(telegram, family, "O1", "Marieke")
    kees = await join(telegram, family, "O9", "Kees")
    now = datetime.now(UTC)
    week = summary_week(today())
    async with session_factory() as session, session.begin():
        for parent, quiet in (
            ("O1", (now + timedelta(hours=3), now + timedelta(hours=4))),
            ("O9", (now - timedelta(hours=1), now + timedelta(hours=1))),
        ):
            person = await session.get(Person, family.persons[parent])
            person.preferences = {"quiet_start": _hhmm(quiet[0]), "quiet_end": _hhmm(quiet[1])}
            await schedule_reminder(
                session,
                kind="parent_summary",
                person_id=person.id,
                due_at=now - timedelta(minutes=1),
                idempotency_key=f"parent_summary:{person.id}:{family.persons['P1']}:{week}",
                payload={"pupil_id": family.persons["P1"], "week_start": week.isoformat()},
            )
    app = running_bot.app
    clock = Clock()
    dispatcher = ReminderDispatcher(
        session_factory=app.session_factory,
        sender=RateLimitedSender(app.bot),
        composers=app.reminders.composers,
        i18n=app.i18n,
        clock=clock,
        worker_id="test",
    )
    report = await dispatcher.run_once()
    assert report.sent == 1 and report.deferred == 1
    [summary] = [m for m in await marieke.messages() if "Week " in (m.get("text") or "")]
    assert "van Sam de Vries" in summary["text"]
    assert not [m for m in await kees.messages() if "Week " in (m.get("text") or "")]
    # After his quiet hours it arrives.
    clock.set_now(clock.now() + timedelta(hours=1, minutes=2))
    report = await dispatcher.run_once()
    assert report.sent == 1
    [summary] = [m for m in await kees.messages() if "Week " in (m.get("text") or "")]
    assert "van Sam de Vries" in summary["text"]
    photos = [m for m in await kees.messages() if "photo" in m]
    assert len(photos) == 2  # the shared work and the progress picture, nothing unshared


def test_a_week_full_of_long_texts_stays_within_telegrams_limit():
    from conversations.parent_summary import summary_text
    from storage.summaries import ChildWeek, GoalLevel, GoalWeek, SharedNote, SharedPhoto

    long = "lang " * 120
    week = ChildWeek(
        pupil_id=1,
        pupil_name="Sam de Vries",
        first_name="Sam",
        school_timezone="Europe/Amsterdam",
        parent_address_formal=False,
        week_start=date(2026, 11, 23),
        week_end=date(2026, 11, 29),
        period_name="Periode 2",
        reflections=9,
        goals_worked=tuple(GoalWeek(n, long, 2) for n in range(12)),
        effort=(1, 2, 1),
        wellbeing=(1, 2, 2),
        levels=tuple(GoalLevel(n, long, "Lijn", 1, 2, "brons", 3, True) for n in range(12)),
        photos=(SharedPhoto(1, "a" * 64, "image/jpeg", long, (long,)),),
        other_shared=3,
        notes=tuple(SharedNote("Juf Anouk", long * 4, datetime.now(UTC)) for _ in range(3)),
        talks=(),
        has_plan=True,
    )
    i18n = load_i18n()
    for locale in ("nl", "ar", "uk"):
        with i18n.context(), use_locale(locale):
            text = summary_text(week, datetime.now(UTC))
        assert len(text) < 4096
    # Low effort and wellbeing are said gently, never as alarm or numbers.
    with i18n.context(), use_locale("nl"):
        text = summary_text(week, datetime.now(UTC))
    assert "soms lastig om aan de slag te gaan" in text and "rustig over te praten" in text
    assert "1.3" not in text and "1,3" not in text


async def test_on_friday_afternoon_the_app_plans_and_sends_each_parent_their_summary(
    running_bot, telegram, family
):
    """The app's own reminder service: the planner makes a row per parent and child on the
    school's summary day and time, the dispatcher sends it through the summary composer."""
    marieke = await join(telegram, family, "O1", "Marieke")
    kees = await join(telegram, family, "O9", "Kees")
    app = running_bot.app
    app.clock.move("next friday 16:05")
    await app.reminders.tick()
    marieke_weeks = [m for m in await marieke.messages() if "Week " in (m.get("text") or "")]
    kees_weeks = [m for m in await kees.messages() if "Week " in (m.get("text") or "")]
    # Marieke: one for Sam and one for Lotte; Kees (Sam's other parent): Sam's.
    assert sorted("Lotte" in m["text"] for m in marieke_weeks) == [False, True]
    assert len(kees_weeks) == 1 and "van Sam de Vries" in kees_weeks[0]["text"]
    await app.reminders.tick()  # planning again changes nothing: no second summary
    assert len([m for m in await kees.messages() if "Week " in (m.get("text") or "")]) == 1
