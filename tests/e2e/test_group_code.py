"""An invite code posted in a group chat stops working at once, and the school's admins hear
of it in private; the group hears nothing about it."""

from __future__ import annotations

import asyncio
from datetime import time

from sqlalchemy import select

from conversations.admin_notices import codes_in
from sandbox import SandboxClient, SandboxUser
from storage.audit import latest_audit, person_ref
from storage.models import AccountPerson, Invite, School
from tests.e2e.conftest import RunningBot
from tests.factories import DemoSchool


async def joined(telegram: SandboxClient, school: DemoSchool, key: str, name: str) -> SandboxUser:
    user = await telegram.create_user(name)
    await user.send_text(f"/start {school.codes[key]}")
    await user.wait_for_reply()
    return user


async def delivered(telegram: SandboxClient, running_bot: RunningBot) -> None:
    """Until the bot has taken every queued update and committed what it did with them (a
    message the bot stays silent to gives nothing to wait for)."""
    for _ in range(200):
        if not await telegram.pending_updates():
            break
        await asyncio.sleep(0.05)
    assert not await telegram.pending_updates()
    await running_bot.settled()


async def no_quiet_hours(session_factory, school: DemoSchool) -> None:
    """The admin's notice goes out at once, whatever the time the test runs."""
    async with session_factory() as session, session.begin():
        row = await session.get(School, school.school_id)
        assert row is not None
        row.quiet_hours_start = row.quiet_hours_end = time(0, 0)


async def linked(session_factory, person_id: int) -> bool:
    async with session_factory() as session:
        return (
            await session.scalar(select(AccountPerson).where(AccountPerson.person_id == person_id))
            is not None
        )


async def revoked(session_factory, person_id: int) -> list[bool]:
    async with session_factory() as session:
        rows = await session.scalars(
            select(Invite.revoked_at).where(Invite.person_id == person_id).order_by(Invite.id)
        )
        return [revoked_at is not None for revoked_at in rows]


def bot_texts(messages: list[dict]) -> list[str]:
    return [
        message.get("text", "") for message in messages if message.get("from", {}).get("is_bot")
    ]


async def test_a_code_posted_in_a_group_is_revoked_and_the_admins_are_told(
    running_bot: RunningBot, telegram: SandboxClient, school: DemoSchool, session_factory
):
    await no_quiet_hours(session_factory, school)
    admin = await joined(telegram, school, "A1", "Beheer")
    mother = await telegram.create_user("Marieke")
    neighbour = await telegram.create_user("Kees")
    group_id = await telegram.create_group("Ouders groep 6a", [mother, neighbour])
    [pointer] = await mother.wait_for_reply(chat_id=group_id)  # on being added
    code = school.codes["O1"]

    # Typed sloppily, inside other text: still seen.
    sloppy = code.lower().replace("-", "")
    await mother.send_text(f"Gelukt! Mijn code was {sloppy}, handig hè", chat_id=group_id)
    await delivered(telegram, running_bot)
    assert await revoked(session_factory, school.persons["O1"]) == [True]

    # The group heard nothing: no name, no code, not even a pointer for ordinary talk.
    group_texts = bot_texts(await telegram.messages(group_id))
    assert group_texts == [pointer["text"]]

    # The neighbour tries it in private: the usual answer to a wrong code, nothing linked.
    await neighbour.send_text(f"/start {code}")
    [answer] = await neighbour.wait_for_reply()
    assert "ken ik niet" in answer["text"]
    assert not await linked(session_factory, school.persons["O1"])

    # The admin is told in private, through the reminder queue: whose code, and what to do.
    await running_bot.app.reminders.dispatch()
    [notice] = await admin.wait_for_reply()
    assert "Marieke de Vries" in notice["text"] and "groepsgesprek" in notice["text"]
    assert "portfolio-bot invite O1" in notice["text"]
    assert code not in notice["text"] and sloppy not in notice["text"].lower()
    await running_bot.app.reminders.dispatch()  # once only
    assert len(bot_texts(await admin.messages())) == 2  # the welcome and the notice

    async with session_factory() as session:
        [entry, *_older] = await latest_audit(session, school_id=school.school_id)
    assert entry.action == "invite.revoked_seen_in_group"
    assert entry.subject_ref == person_ref(school.persons["O1"])


async def test_a_start_command_with_a_code_gets_the_pointer_and_the_code_is_revoked(
    running_bot: RunningBot, telegram: SandboxClient, school: DemoSchool, session_factory
):
    pupil = await telegram.create_user("Sam")
    classmate = await telegram.create_user("Noor")
    group_id = await telegram.create_group("Groep 6a chat", [pupil, classmate])
    await pupil.wait_for_reply(chat_id=group_id)
    half, other_half = school.codes["P1"].split("-")
    await pupil.send_text(f"/start {half} {other_half}", chat_id=group_id)
    [reply] = await pupil.wait_for_reply(chat_id=group_id)
    assert "privégesprek" in reply["text"] and "Sam" not in reply["text"]
    assert await revoked(session_factory, school.persons["P1"]) == [True]

    # A code put in by editing a message counts too; a used code is left alone.
    await classmate.send_text(f"/start {school.codes['P2']}")
    await classmate.wait_for_reply()
    first_try = await pupil.send_text("mijn code: (volgt)", chat_id=group_id)
    await telegram.enqueue_raw_update(
        {
            "edited_message": {
                **first_try,
                "edit_date": first_try["date"] + 5,
                "text": f"mijn code: {school.codes['T1']}",
            }
        }
    )
    await pupil.send_text(f"en die van Noor: {school.codes['P2']}", chat_id=group_id)
    await delivered(telegram, running_bot)
    assert await revoked(session_factory, school.persons["T1"]) == [True]
    assert await revoked(session_factory, school.persons["P2"]) == [False]
    assert await linked(session_factory, school.persons["P2"])


def test_what_looks_like_a_code_in_a_text():
    assert codes_in("Mijn code: abcd-efgh!") == ["ABCDEFGH"]
    assert codes_in("abcd efgh en WXYZ–QRST") == ["ABCDEFGH", "WXYZQRST"]
    assert codes_in("t.me/portfoliobot?start=ABCDEFGH") == ["ABCDEFGH"]
    # Not the alphabet of codes (no 0/O, 1/I/L), or not eight characters: nothing.
    assert codes_in("Hallo allemaal, tot morgen") == []
    assert codes_in("ABCD-EFG1 AB-CDEFGH") == []
