"""A teacher's quick notes: the menu dialogue, /obs, the timeline, search and refusals."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from conversations.observation import NoteFor, NotePupil
from handlers.teacher import TimelineView
from storage.models import (
    Group,
    GroupMembership,
    Observation,
    ObservationPupil,
    ObservationTag,
    Person,
    Reflection,
    Role,
)
from tests.factories import DemoSchool, build_curriculum, give_goal


async def joined(telegram, school, key: str, name: str):
    user = await telegram.create_user(name)
    await user.send_text(f"/start {school.codes[key]}")
    await user.wait_for_reply()
    return user


async def daan_elsewhere(session_factory, school: DemoSchool) -> int:
    """A pupil of another group, whom Juf Anouk does not teach."""
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
        return daan.id


async def saved_notes(session_factory) -> list[tuple[Observation, list[int], list[str]]]:
    async with session_factory() as session:
        notes = (await session.scalars(select(Observation).order_by(Observation.id))).all()
        result = []
        for note in notes:
            pupils = (
                await session.scalars(
                    select(ObservationPupil.pupil_id)
                    .where(ObservationPupil.observation_id == note.id)
                    .order_by(ObservationPupil.pupil_id)
                )
            ).all()
            tags = (
                await session.scalars(
                    select(ObservationTag.tag)
                    .where(ObservationTag.observation_id == note.id)
                    .order_by(ObservationTag.tag)
                )
            ).all()
            result.append((note, list(pupils), list(tags)))
        return result


async def test_a_note_from_the_menu_with_two_pupils_and_a_goal(
    running_bot, telegram, school, session_factory
):
    curriculum = await build_curriculum(session_factory, school)
    goal_id = curriculum.goals["SW"]
    for pupil in ("P1", "P2"):
        await give_goal(
            session_factory,
            pupil_id=school.persons[pupil],
            period_id=curriculum.period_id,
            goal_id=goal_id,
        )
    daan = await daan_elsewhere(session_factory, school)
    teacher = await joined(telegram, school, "T1", "Anouk")
    await teacher.send_text("📝 Notitie")
    [card] = await teacher.wait_for_reply()
    assert "Over wie gaat je notitie" in card["text"]
    buttons = [b["text"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
    assert "Sam de Vries" in buttons and "Noor Jansen" in buttons
    assert not any("Daan" in text for text in buttons)  # another group's pupil is not offered

    # A forged pupil id is refused and changes nothing.
    query = await teacher.press_raw(card["message_id"], NotePupil(pupil_id=daan).pack())
    answer = await teacher.wait_for_callback_answer(query["id"])
    assert answer["show_alert"] and "ken ik niet" in answer["text"]

    await teacher.press("Sam de Vries", message_id=card["message_id"])
    await teacher.wait_for_edit(card["message_id"])
    await teacher.send_text("noo")  # part of a name ticks the one pupil it fits
    [card] = await teacher.wait_for_reply()
    assert "Gekozen: Sam de Vries en Noor Jansen" in card["text"]
    await teacher.press("Verder ➡️", message_id=card["message_id"])
    goal_step = await teacher.wait_for_edit(card["message_id"])
    assert "Bij welk doel" in goal_step["text"]
    await teacher.press("Ik werk samen met anderen aan een taak", message_id=card["message_id"])
    [ask_text] = await teacher.wait_for_reply()
    assert "Typ je notitie" in ask_text["text"]
    await teacher.send_text("Werkten goed samen aan de poster #Samenwerken #inzet")
    [visibility] = await teacher.wait_for_reply()
    assert "Notitie bij Sam de Vries en Noor Jansen" in visibility["text"]
    assert "#samenwerken, #inzet" in visibility["text"]
    await teacher.press("🔒 Alleen leerkrachten", message_id=visibility["message_id"])
    [saved] = await teacher.wait_for_reply()
    assert "Opgeslagen." in saved["text"] and "Iedereen is deze 2 weken gezien" in saved["text"]

    [(note, pupils, tags)] = await saved_notes(session_factory)
    assert note.is_private and note.goal_id == goal_id
    assert note.author_id == school.persons["T1"]
    assert note.text == "Werkten goed samen aan de poster #Samenwerken #inzet"
    assert pupils == sorted([school.persons["P1"], school.persons["P2"]])
    assert tags == ["inzet", "samenwerken"]


async def test_the_one_line_shortcut_and_the_unseen_list(
    running_bot, telegram, school, session_factory
):
    teacher = await joined(telegram, school, "T1", "Anouk")
    await teacher.send_text("/obs sam werkte geconcentreerd #Inzet")
    [ask] = await teacher.wait_for_reply()
    assert "Notitie bij Sam de Vries, tag #inzet." in ask["text"]
    await teacher.press("👪 Ook leerling en ouders", message_id=ask["message_id"])
    [saved] = await teacher.wait_for_reply()
    assert "Opgeslagen." in saved["text"]
    assert "Nog niet gezien deze 2 weken: Noor Jansen." in saved["text"]
    [(note, pupils, tags)] = await saved_notes(session_factory)
    assert not note.is_private and pupils == [school.persons["P1"]] and tags == ["inzet"]
    assert note.text == "werkte geconcentreerd #Inzet"

    # The button under the list starts a note about Noor; no goals, so the text is asked.
    await teacher.press("📝 Notitie bij Noor Jansen", message_id=saved["message_id"])
    [ask_text] = await teacher.wait_for_reply()
    assert "Typ je notitie" in ask_text["text"]
    await teacher.send_text("Hielp Sam #samenwerken")
    [ask] = await teacher.wait_for_reply()
    assert "Notitie bij Noor Jansen" in ask["text"]
    await teacher.press("🔒 Alleen leerkrachten", message_id=ask["message_id"])
    [saved] = await teacher.wait_for_reply()
    assert "Iedereen is deze 2 weken gezien" in saved["text"]

    await teacher.send_text("/obs Sam, Noor werkten goed samen #samenwerken")
    [ask] = await teacher.wait_for_reply()
    assert "Notitie bij Sam de Vries en Noor Jansen, tag #samenwerken." in ask["text"]
    await teacher.press("🔒 Alleen leerkrachten", message_id=ask["message_id"])
    await teacher.wait_for_reply()
    notes = await saved_notes(session_factory)
    assert len(notes) == 3
    assert notes[2][1] == sorted([school.persons["P1"], school.persons["P2"]])
    assert notes[2][0].text == "werkten goed samen #samenwerken"

    await teacher.send_text("👀 Nog niet gezien")
    [listed] = await teacher.wait_for_reply()
    assert "Iedereen is deze 2 weken gezien" in listed["text"]


async def test_an_unknown_name_is_asked_and_another_group_is_refused(
    running_bot, telegram, school, session_factory
):
    daan = await daan_elsewhere(session_factory, school)
    teacher = await joined(telegram, school, "T1", "Anouk")
    await teacher.send_text("/obs Daan, Noor waren druk")
    [card] = await teacher.wait_for_reply()
    assert "Ik ken geen leerling „Daan”" in card["text"]
    assert "Gekozen: Noor Jansen" in card["text"]
    # The note was kept: after Verder only the visibility is left.
    await teacher.press("Verder ➡️", message_id=card["message_id"])
    ask = await teacher.wait_for_edit(card["message_id"])
    assert "Notitie bij Noor Jansen." in ask["text"]

    query = await teacher.press_raw(ask["message_id"], NoteFor(pupil_id=daan).pack())
    answer = await teacher.wait_for_callback_answer(query["id"])
    assert answer["show_alert"]
    query = await teacher.press_raw(
        ask["message_id"], TimelineView(pupil_id=daan, kind="all", page=0, tag="").pack()
    )
    answer = await teacher.wait_for_callback_answer(query["id"])
    assert answer["show_alert"]
    await teacher.send_text("/annuleer")
    [stopped] = await teacher.wait_for_reply()
    assert "gestopt" in stopped["text"]
    assert await saved_notes(session_factory) == []


async def test_timeline_and_search_find_the_note(running_bot, telegram, school, session_factory):
    async with session_factory() as session, session.begin():
        session.add(
            Reflection(
                pupil_id=school.persons["P1"],
                on_date=date.today(),
                how_it_went=4,
                effort=3,
                wellbeing=4,
                text="Ik heb een poster gemaakt",
            )
        )
    teacher = await joined(telegram, school, "T1", "Anouk")
    await teacher.send_text("/obs Sam legde breuken uit met pizzapunten #uitleg")
    [ask] = await teacher.wait_for_reply()
    await teacher.press("🔒 Alleen leerkrachten", message_id=ask["message_id"])
    await teacher.wait_for_reply()

    await teacher.send_text("/tijdlijn sam")
    [shown] = await teacher.wait_for_reply()
    assert "Tijdlijn van" in shown["text"] and "Sam de Vries" in shown["text"]
    assert "pizzapunten" in shown["text"] and "🔒" in shown["text"]
    assert "Ik heb een poster gemaakt" in shown["text"]
    assert shown["text"].index("pizzapunten") < shown["text"].index("poster")  # newest first
    await teacher.press("✍️", message_id=shown["message_id"])
    only = await teacher.wait_for_edit(shown["message_id"])
    assert "poster" in only["text"] and "pizzapunten" not in only["text"]
    query = await teacher.press("• ✍️", message_id=shown["message_id"])  # the same view again
    assert not (await teacher.wait_for_callback_answer(query["id"])).get("show_alert")
    await teacher.press("Alles", message_id=shown["message_id"])
    await teacher.wait_for_edit(shown["message_id"])
    await teacher.press("#uitleg", message_id=shown["message_id"])
    by_tag = await teacher.wait_for_edit(shown["message_id"])
    assert "Alleen notities met #uitleg" in by_tag["text"]
    assert "pizzapunten" in by_tag["text"] and "poster" not in by_tag["text"]

    await teacher.send_text("/tijdlijn Sam #uitleg")
    [tagged] = await teacher.wait_for_reply()
    assert "pizzapunten" in tagged["text"] and "poster" not in tagged["text"]

    await teacher.send_text("🔎 Zoeken")
    [chooser] = await teacher.wait_for_reply()
    await teacher.press("Sam de Vries", message_id=chooser["message_id"])
    via_menu = await teacher.wait_for_edit(chooser["message_id"])
    assert "pizzapunten" in via_menu["text"]

    await teacher.send_text("/zoek PIZZA")
    [found] = await teacher.wait_for_reply()
    assert "pizzapunten" in found["text"] and "Sam de Vries" in found["text"]
    await teacher.send_text("/zoek xylofoon")
    [nothing] = await teacher.wait_for_reply()
    assert "Geen notities gevonden" in nothing["text"]


async def test_a_restart_mid_note_resumes(running_bot, telegram, school, session_factory):
    teacher = await joined(telegram, school, "T1", "Anouk")
    await teacher.send_text("/obs")
    [card] = await teacher.wait_for_reply()
    await teacher.press("Noor Jansen", message_id=card["message_id"])
    await teacher.wait_for_edit(card["message_id"])
    await teacher.press("Verder ➡️", message_id=card["message_id"])
    [ask_text] = await teacher.wait_for_reply()
    assert "Typ je notitie" in ask_text["text"]
    await running_bot.restart()
    await teacher.send_text("Was vandaag stil #welbevinden")
    [ask] = await teacher.wait_for_reply()
    assert "Notitie bij Noor Jansen, tag #welbevinden." in ask["text"]
    await teacher.press("🔒 Alleen leerkrachten", message_id=ask["message_id"])
    await teacher.wait_for_reply()
    [(note, pupils, tags)] = await saved_notes(session_factory)
    assert pupils == [school.persons["P2"]] and tags == ["welbevinden"] and note.is_private


async def test_a_pupil_cannot_write_notes(running_bot, telegram, school, session_factory):
    pupil = await joined(telegram, school, "P1", "Sam")
    await pupil.send_text("/obs Noor was druk")
    [refused] = await pupil.wait_for_reply()
    assert "alleen een leerkracht" in refused["text"]
    await pupil.send_text("/tijdlijn Noor")
    [refused] = await pupil.wait_for_reply()
    assert "alleen een leerkracht" in refused["text"]
    assert await saved_notes(session_factory) == []


async def test_a_spoken_note_and_a_photo_note(running_bot, telegram, school, session_factory):
    from tests.images import small_jpeg

    teacher = await joined(telegram, school, "T1", "Anouk")
    await teacher.send_text("/obs Noor")
    [ask_text] = await teacher.wait_for_reply()
    assert "Typ je notitie" in ask_text["text"]
    await teacher.send_voice(b"OggS\x00\x02" + bytes(22) + b"OpusHead" + bytes(200), duration=4)
    [ask] = await teacher.wait_for_reply()
    assert "Notitie bij Noor Jansen 🎤." in ask["text"]
    await teacher.press("🔒 Alleen leerkrachten", message_id=ask["message_id"])
    await teacher.wait_for_reply()

    await teacher.send_text("/obs Sam")
    await teacher.wait_for_reply()
    await teacher.send_photo(small_jpeg(), caption="Mooie tekening #Inzet")
    [ask] = await teacher.wait_for_reply()
    assert "Notitie bij Sam de Vries 📷, tag #inzet." in ask["text"]
    await teacher.press("🔒 Alleen leerkrachten", message_id=ask["message_id"])
    await teacher.wait_for_reply()

    [(spoken, _, _), (photo, pupils, tags)] = await saved_notes(session_factory)
    assert spoken.voice_file_id is not None and spoken.text is None
    assert photo.photo_file_id is not None and photo.text == "Mooie tekening #Inzet"
    assert pupils == [school.persons["P1"]] and tags == ["inzet"]

    await teacher.send_text("/tijdlijn Noor")
    [shown] = await teacher.wait_for_reply()
    assert "🎤" in shown["text"]
    # The spoken note is played back from the timeline.
    [play] = [
        button["text"]
        for row in shown["reply_markup"]["inline_keyboard"]
        for button in row
        if button["text"].startswith("🎤 ")
    ]
    await teacher.press(play, message_id=shown["message_id"])
    [voice] = await teacher.wait_for_reply()
    assert voice.get("voice") is not None


async def test_a_first_name_two_pupils_share_is_asked_with_buttons(
    running_bot, telegram, school, session_factory
):
    async with session_factory() as session, session.begin():
        other_sam = Person(
            school_id=school.school_id, external_id="P4", role=Role.PUPIL, display_name="Sam Bakker"
        )
        session.add(other_sam)
        await session.flush()
        session.add(GroupMembership(group_id=school.group_id, person_id=other_sam.id))
        other_sam_id = other_sam.id
    teacher = await joined(telegram, school, "T1", "Anouk")
    await teacher.send_text("/obs Sam, Noor lazen samen")
    [card] = await teacher.wait_for_reply()
    assert "Met „Sam” kan ik meerdere leerlingen bedoelen" in card["text"]
    buttons = [b["text"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
    assert {"Sam Bakker", "Sam de Vries", "✅ Noor Jansen"} <= set(buttons)
    await teacher.press("Sam Bakker", message_id=card["message_id"])
    await teacher.wait_for_edit(card["message_id"])
    await teacher.press("Verder ➡️", message_id=card["message_id"])
    ask = await teacher.wait_for_edit(card["message_id"])
    assert "Notitie bij Noor Jansen en Sam Bakker." in ask["text"]
    await teacher.press("🔒 Alleen leerkrachten", message_id=card["message_id"])
    await teacher.wait_for_reply()
    [(note, pupils, _)] = await saved_notes(session_factory)
    assert pupils == sorted([school.persons["P2"], other_sam_id])
    assert note.text == "lazen samen"
