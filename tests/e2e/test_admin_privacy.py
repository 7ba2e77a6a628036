"""The admin's privacy commands in the chat: /export, /wis with its confirmation, /audit, and
that an admin of another school (or anyone who is not an admin) can do none of it."""

from __future__ import annotations

import io
import json
import time
import zipfile
from datetime import timedelta

from sqlalchemy import select

from handlers.admin import EraseConfirm
from media.store import MediaStore
from storage.audit import ACTION_ERASE, ACTION_EXPORT, person_ref
from storage.evidence import NewEvidence, create_evidence
from storage.invites import issue_invite
from storage.models import (
    AuditEvent,
    EvidenceKind,
    Guardianship,
    Observation,
    Person,
    Role,
    School,
)
from storage.observations import create_observation
from tests.conftest import INVITE_SECRET
from tests.factories import DemoSchool
from tests.images import small_jpeg


async def joined(telegram, school: DemoSchool, key: str, name: str):
    user = await telegram.create_user(name)
    await user.send_text(f"/start {school.codes[key]}")
    await user.wait_for_reply()
    return user


async def with_work(session_factory, school: DemoSchool, settings) -> None:
    """A photo of Sam's work and two notes about him: one private, one shareable."""
    image = await MediaStore(settings.media_dir).store_image(small_jpeg((90, 60), "teal"))
    async with session_factory() as session, session.begin():
        await create_evidence(
            session,
            school_id=school.school_id,
            new=NewEvidence(
                pupil_id=school.persons["P1"],
                kind=EvidenceKind.PHOTO,
                files=[image],
                caption="Mijn tekening",
            ),
        )
        for text, private in (("Geheime notitie", True), ("Werkte heel geconcentreerd", False)):
            await create_observation(
                session,
                author_id=school.persons["T1"],
                pupil_ids=[school.persons["P1"]],
                text=text,
                is_private=private,
            )


async def other_school(session_factory) -> tuple[dict[str, int], str]:
    """De Klimop, with its own admin (joinable by code) and pupil."""
    async with session_factory() as session, session.begin():
        school = School(name="De Klimop")
        session.add(school)
        await session.flush()
        people = {}
        for external_id, role, name in (
            ("KA", Role.ADMIN, "Beheer Klimop"),
            ("K1", Role.PUPIL, "Kim Klimop"),
        ):
            person = Person(
                school_id=school.id, external_id=external_id, role=role, display_name=name
            )
            session.add(person)
            await session.flush()
            people[external_id] = person.id
        code = await issue_invite(
            session, person_id=people["KA"], valid_for=timedelta(days=1), secret=INVITE_SECRET
        )
        return people, code


async def test_admin_exports_a_pupil_as_a_zip(running_bot, telegram, school, session_factory):
    await with_work(session_factory, school, running_bot.settings)
    admin = await joined(telegram, school, "A1", "Beheer")

    await admin.send_text("/export sam")
    [sent] = await admin.wait_for_reply(timeout=10)

    assert sent["document"]["file_name"].startswith("portfolio-P1-")
    assert "Sam de Vries" in sent["caption"] and "index.html" in sent["caption"]
    archive = zipfile.ZipFile(io.BytesIO(await telegram.download(sent["document"]["file_id"])))
    html = archive.read("index.html").decode("utf-8")
    data = json.loads(archive.read("data.json"))
    assert "Portfolio van Sam de Vries" in html and "Mijn tekening" in html
    assert "Werkte heel geconcentreerd" in html and "Geheime notitie" not in html
    [item] = data["evidence"]
    assert item["files"][0]["path"] in archive.namelist()
    async with session_factory() as session:
        [event] = (await session.scalars(select(AuditEvent))).all()
    assert (event.action, event.actor_person_id, event.subject_ref) == (
        ACTION_EXPORT,
        school.persons["A1"],
        person_ref(school.persons["P1"]),
    )
    assert event.details["via"] == "chat"

    await admin.send_text("/audit")
    [log] = await admin.wait_for_reply()
    assert "Logboek" in log["text"] and "export" in log["text"] and "Sam de Vries" in log["text"]


async def test_lookups_say_what_is_wrong(running_bot, telegram, school):
    admin = await joined(telegram, school, "A1", "Beheer")

    await admin.send_text("/export")
    [reply] = await admin.wait_for_reply()
    assert "/export P12" in reply["text"]
    await admin.send_text("/export Femke")
    [reply] = await admin.wait_for_reply()
    assert "Geen leerling gevonden" in reply["text"]
    await admin.send_text("/wis de")  # Sam de Vries and Noor Jansen? only "de" in Sam's name
    [reply] = await admin.wait_for_reply()
    assert "Sam de Vries" in reply["text"]
    await admin.send_text("/export a")  # both names have an a
    [reply] = await admin.wait_for_reply()
    assert "Meer leerlingen passen" in reply["text"] and "P1" in reply["text"]


async def test_erasure_asks_first_and_then_removes_everything(
    running_bot, telegram, school, session_factory
):
    await with_work(session_factory, school, running_bot.settings)
    admin = await joined(telegram, school, "A1", "Beheer")
    sam = school.persons["P1"]

    await admin.send_text("/wis P1")
    [ask] = await admin.wait_for_reply()
    assert "alle gegevens van Sam de Vries (P1)" in ask["text"]
    assert "bewijsstukken: 1" in ask["text"] and "niet ongedaan" in ask["text"]
    await admin.press("Nee, niet wissen", message_id=ask["message_id"])
    edited = await admin.wait_for_edit(ask["message_id"])
    assert "Niet gewist" in edited["text"]
    async with session_factory() as session:
        assert await session.get(Person, sam) is not None

    # An old confirmation no longer works.
    await admin.send_text("/wis P1")
    [ask] = await admin.wait_for_reply()
    stale = EraseConfirm(pupil_id=sam, issued=int(time.time()) - 600, ok=True).pack()
    query = await admin.press_raw(ask["message_id"], stale)
    answer = await admin.wait_for_callback_answer(query["id"])
    assert answer["show_alert"] and "verlopen" in answer["text"]
    async with session_factory() as session:
        assert await session.get(Person, sam) is not None

    await admin.press("🗑 Ja, wis Sam de Vries definitief", message_id=ask["message_id"])
    done = await admin.wait_for_edit(ask["message_id"])
    assert "Gewist" in done["text"] and "P1" in done["text"] and "Sam" not in done["text"]
    async with session_factory() as session:
        assert await session.get(Person, sam) is None
        assert (await session.scalars(select(Observation))).all() == []
        assert (
            await session.scalars(select(Guardianship).where(Guardianship.pupil_id == sam))
        ).all() == []
        [event] = (await session.scalars(select(AuditEvent))).all()
        assert (event.action, event.actor_person_id) == (ACTION_ERASE, school.persons["A1"])
        assert "Sam" not in json.dumps(event.details)

    # Pressing again finds no one.
    query = await admin.press_raw(
        ask["message_id"], EraseConfirm(pupil_id=sam, issued=int(time.time()), ok=True).pack()
    )
    answer = await admin.wait_for_callback_answer(query["id"])
    assert "bestaat niet" in answer["text"]

    await admin.send_text("/audit")
    [log] = await admin.wait_for_reply()
    assert "gewist" in log["text"] and f"person:{sam}" in log["text"]


async def test_another_schools_admin_and_non_admins_can_do_nothing(
    running_bot, telegram, school, session_factory
):
    _people, code = await other_school(session_factory)
    stranger = await telegram.create_user("Klimop")
    await stranger.send_text(f"/start {code}")
    await stranger.wait_for_reply()
    sam = school.persons["P1"]

    await stranger.send_text("/export P1")
    [reply] = await stranger.wait_for_reply()
    assert "Geen leerling gevonden" in reply["text"] and "document" not in reply
    await stranger.send_text("/wis Sam")
    [reply] = await stranger.wait_for_reply()
    assert "Geen leerling gevonden" in reply["text"]
    # A forged confirmation for a pupil of another school erases nothing.
    await stranger.send_text("/wis K1")
    [ask] = await stranger.wait_for_reply()
    forged = EraseConfirm(pupil_id=sam, issued=int(time.time()), ok=True).pack()
    query = await stranger.press_raw(ask["message_id"], forged)
    answer = await stranger.wait_for_callback_answer(query["id"])
    assert answer["show_alert"] and "bestaat niet" in answer["text"]
    await stranger.send_text("/audit")
    [reply] = await stranger.wait_for_reply()
    assert "leeg" in reply["text"]

    pupil = await joined(telegram, school, "P1", "Sam")
    await pupil.send_text("/export P1")
    [reply] = await pupil.wait_for_reply()
    assert "alleen de beheerder" in reply["text"]
    query = await pupil.press_raw(reply["message_id"], forged)
    answer = await pupil.wait_for_callback_answer(query["id"])
    assert "alleen de beheerder" in answer["text"]

    async with session_factory() as session:
        assert await session.get(Person, sam) is not None
        assert (await session.scalars(select(AuditEvent))).all() == []
