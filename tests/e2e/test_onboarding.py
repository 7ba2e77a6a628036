"""Joining with an invite code, end to end: sandbox (HTTP) -> aiogram -> database -> sandbox."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from bot.app import rewrap_invite_codes
from sandbox import SandboxClient
from storage.invites import issue_invite, normalise_code
from storage.models import INVITE_SCHEME_SHA256, AccountPerson, Invite, InviteAttempt
from storage.types import utcnow
from tests.conftest import INVITE_SECRET
from tests.factories import DemoSchool

PUPIL_MENU = [
    ["✍️ Reflectie", "📅 Weekplan"],
    ["🎯 Mijn doelen", "🔙 Terugkijken"],
    ["👥 Mijn groep", "📝 Mijn plan", "🗂 Portfolio"],
    ["❓ Hulp", "🌐 Taal"],
]
TEACHER_MENU = [
    ["📝 Notitie", "👀 Nog niet gezien"],
    ["👥 Mijn groepen", "🔎 Zoeken"],
    ["📊 Klas", "🎯 Doelen klaarzetten"],
    ["📥 Werk", "🗣 Gesprekken"],
    ["❓ Hulp", "🌐 Taal"],
]
PARENT_MENU = [
    ["📬 Overzicht", "👨‍👩‍👧 Mijn kinderen"],
    ["⚙️ Instellingen"],
    ["❓ Hulp", "🌐 Taal"],
]


async def linked_person_ids(session_factory, telegram_user_id: int) -> list[int]:
    from storage.models import Account

    async with session_factory() as session:
        return list(
            (
                await session.scalars(
                    select(AccountPerson.person_id)
                    .join(Account, Account.id == AccountPerson.account_id)
                    .where(Account.telegram_user_id == telegram_user_id)
                )
            ).all()
        )


async def test_teacher_pupil_and_parent_join_and_see_their_own_menu(
    running_bot, telegram: SandboxClient, school: DemoSchool, session_factory
):
    teacher = await telegram.create_user("Anouk")
    await teacher.send_text(f"/start {school.codes['T1']}")
    [welcome] = await teacher.wait_for_reply()
    assert "Juf Anouk" in welcome["text"] and "Groep 6a" in welcome["text"]
    assert teacher.reply_keyboard() == TEACHER_MENU

    pupil = await telegram.create_user("Sam")
    await pupil.send_text("/start")
    [ask] = await pupil.wait_for_reply()
    assert "ABCD-EFGH" in ask["text"]
    await pupil.send_text(school.codes["P1"].lower().replace("-", " "))  # typed sloppily
    [welcome] = await pupil.wait_for_reply()
    assert "Sam de Vries" in welcome["text"]
    assert pupil.reply_keyboard() == PUPIL_MENU

    parent = await telegram.create_user("Marieke")
    await parent.send_text(f"/start {school.codes['O1']}")
    [welcome] = await parent.wait_for_reply()
    assert "Sam de Vries" in welcome["text"] and "Noor" not in welcome["text"]
    assert parent.reply_keyboard() == PARENT_MENU

    await parent.send_text("👨‍👩‍👧 Mijn kinderen")
    [children] = await parent.wait_for_reply()
    assert "Sam de Vries" in children["text"] and "Noor" not in children["text"]

    await pupil.send_text("👥 Mijn groep")
    [group] = await pupil.wait_for_reply()
    assert "Groep 6a" in group["text"] and "Juf Anouk" in group["text"]

    assert await linked_person_ids(session_factory, pupil.id) == [school.persons["P1"]]


async def test_a_menu_button_of_another_role_does_nothing_personal(
    running_bot, telegram: SandboxClient, school: DemoSchool
):
    pupil = await telegram.create_user("Sam")
    await pupil.send_text(f"/start {school.codes['P1']}")
    await pupil.wait_for_reply()
    await pupil.send_text("👨‍👩‍👧 Mijn kinderen")
    [reply] = await pupil.wait_for_reply()
    assert "Noor" not in reply["text"] and "Marieke" not in reply["text"]
    assert "menu" in reply["text"]


async def test_wrong_used_and_expired_codes_get_a_friendly_answer(
    running_bot, telegram: SandboxClient, school: DemoSchool, session_factory
):
    first = await telegram.create_user("Sam")
    await first.send_text(f"/start {school.codes['P1']}")
    await first.wait_for_reply()

    other = await telegram.create_user("Someone")
    await other.send_text(f"/start {school.codes['P1']}")
    [used] = await other.wait_for_reply()
    assert "al gebruikt" in used["text"]

    await other.send_text("/start ZZZZ-ZZZZ")
    [wrong] = await other.wait_for_reply()
    assert "ken ik niet" in wrong["text"]

    async with session_factory() as session, session.begin():
        expired_code = await issue_invite(
            session,
            person_id=school.persons["P2"],
            valid_for=timedelta(seconds=-1),
            secret=INVITE_SECRET,
        )
    await other.send_text(f"/start {expired_code}")
    [expired] = await other.wait_for_reply()
    assert "verlopen" in expired["text"]
    assert await linked_person_ids(session_factory, other.id) == []


async def test_five_wrong_codes_lock_the_account_for_fifteen_minutes(
    running_bot, telegram: SandboxClient, school: DemoSchool, session_factory
):
    guesser = await telegram.create_user("Guesser")
    await guesser.send_text("/start")
    await guesser.wait_for_reply()
    for guess in ("AAAA-AAAA", "BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD"):
        await guesser.send_text(guess)
        [reply] = await guesser.wait_for_reply()
        assert "ken ik niet" in reply["text"]
    await guesser.send_text("EEEE-EEEE")
    [locked] = await guesser.wait_for_reply()
    assert "te veel" in locked["text"]

    # Even the right code is not looked at while locked.
    await guesser.send_text(school.codes["P2"])
    [still_locked] = await guesser.wait_for_reply()
    assert "te veel" in still_locked["text"]
    assert await linked_person_ids(session_factory, guesser.id) == []

    async with session_factory() as session, session.begin():
        await session.execute(
            update(InviteAttempt)
            .where(InviteAttempt.telegram_user_id == guesser.id)
            .values(attempted_at=datetime.now(UTC) - timedelta(minutes=16))
        )
    await guesser.send_text(school.codes["P2"])
    [welcome] = await guesser.wait_for_reply()
    assert "Noor Jansen" in welcome["text"]


async def test_a_restart_in_the_middle_of_onboarding_resumes_where_it_was(
    running_bot, telegram: SandboxClient, school: DemoSchool, session_factory
):
    pupil = await telegram.create_user("Noor")
    await pupil.send_text("/start")
    await pupil.wait_for_reply()

    await running_bot.restart()

    # Still waiting for the code: non-code text gets the code hint, not a fresh welcome.
    await pupil.send_text("hallo")
    [hint] = await pupil.wait_for_reply()
    assert "lijkt niet op een code" in hint["text"]
    await pupil.send_text(school.codes["P2"])
    [welcome] = await pupil.wait_for_reply()
    assert "Noor Jansen" in welcome["text"]


async def test_cancel_stops_onboarding(running_bot, telegram: SandboxClient, school: DemoSchool):
    user = await telegram.create_user("Daan")
    await user.send_text("/start")
    await user.wait_for_reply()
    await user.send_text("/annuleer")
    [stopped] = await user.wait_for_reply()
    assert "gestopt" in stopped["text"].lower()
    await user.send_text("/annuleer")
    [nothing] = await user.wait_for_reply()
    assert "niets" in nothing["text"]


async def test_a_photo_instead_of_the_code_is_answered(
    running_bot, telegram: SandboxClient, school: DemoSchool
):
    from tests.images import small_jpeg

    user = await telegram.create_user("Emma")
    await user.send_text("/start")
    await user.wait_for_reply()
    await user.send_photo(small_jpeg())
    [reply] = await user.wait_for_reply()
    assert "als tekst" in reply["text"]


async def test_a_message_in_a_group_chat_reveals_nothing(
    running_bot, telegram: SandboxClient, school: DemoSchool, session_factory
):
    pupil = await telegram.create_user("Sam")
    await pupil.send_text(f"/start {school.codes['P1']}")
    await pupil.wait_for_reply()
    classmate = await telegram.create_user("Noor")

    group_id = await telegram.create_group("Groep 6a chat", [pupil, classmate])
    # One answer at a time: the bot may answer before the next message is sent.
    replies = await pupil.wait_for_reply(chat_id=group_id)  # on being added
    await pupil.send_text("/start", chat_id=group_id)
    replies += await pupil.wait_for_reply(chat_id=group_id)
    await pupil.send_text(f"/start {school.codes['P2']}", chat_id=group_id)
    replies += await pupil.wait_for_reply(chat_id=group_id)
    for reply in replies:
        assert "privégesprek" in reply["text"]
        for name in ("Sam", "Noor", "Groep 6a", "Anouk"):
            assert name not in reply["text"]
    # The code posted in the group was not used.
    assert await linked_person_ids(session_factory, classmate.id) == []
    assert await linked_person_ids(session_factory, pupil.id) == [school.persons["P1"]]


async def test_a_teacher_who_is_also_a_parent_switches_between_roles(
    running_bot, telegram: SandboxClient, school: DemoSchool
):
    bram = await telegram.create_user("Bram")
    await bram.send_text(f"/start {school.codes['X1']}")
    await bram.wait_for_reply()
    await bram.send_text(f"/start {school.codes['X2']}")
    [welcome] = await bram.wait_for_reply()
    assert "Noor Jansen" in welcome["text"]
    assert ["📬 Overzicht", "👨‍👩‍👧 Mijn kinderen"] in bram.reply_keyboard()
    assert "🔁 Wissel van rol" in bram.reply_keyboard()[-1]

    await bram.send_text("🔁 Wissel van rol")
    [choice] = await bram.wait_for_reply()
    await bram.press("Meester Bram (leerkracht)", message_id=choice["message_id"])
    await bram.wait_for_edit(choice["message_id"])
    await bram.wait_for_reply()
    assert ["👥 Mijn groepen", "🔎 Zoeken"] in bram.reply_keyboard()

    # Forged button data naming someone else's person id is refused.
    query = await bram.press_raw(choice["message_id"], f"as:{school.persons['P1']}")
    answer = await bram.wait_for_callback_answer(query["id"])
    assert answer["show_alert"] and "ken ik niet" in answer["text"]
    await bram.send_text("👥 Mijn groepen")
    [groups] = await bram.wait_for_reply()
    assert "Groep 6a" in groups["text"]


async def test_language_can_be_switched_to_english(
    running_bot, telegram: SandboxClient, school: DemoSchool
):
    pupil = await telegram.create_user("Sam")
    await pupil.send_text(f"/start {school.codes['P1']}")
    await pupil.wait_for_reply()
    await pupil.send_text("🌐 Taal")
    [choice] = await pupil.wait_for_reply()
    await pupil.press("🇬🇧 English", message_id=choice["message_id"])
    await pupil.wait_for_reply()
    assert pupil.reply_keyboard() == [
        ["✍️ Reflection", "📅 Week plan"],
        ["🎯 My goals", "🔙 Look back"],
        ["👥 My group", "📝 My plan", "🗂 Portfolio"],
        ["❓ Help", "🌐 Language"],
    ]
    await pupil.send_text("👥 My group")
    [group] = await pupil.wait_for_reply()
    assert "You are in" in group["text"]


async def test_an_english_telegram_app_gets_english_before_joining(
    running_bot, telegram: SandboxClient, school: DemoSchool
):
    parent = await telegram.create_user("Peter", language_code="en")
    await parent.send_text("/start")
    [ask] = await parent.wait_for_reply()
    assert "invitation code" in ask["text"]


async def test_the_command_menu_follows_the_role_and_language(running_bot, telegram, school):
    from aiogram.types import BotCommandScopeChat

    pupil = await telegram.create_user("Sam")
    await pupil.send_text(f"/start {school.codes['P1']}")
    await pupil.wait_for_reply()
    await running_bot.settled()
    bot = running_bot.app.bot
    commands = await bot.get_my_commands(scope=BotCommandScopeChat(chat_id=pupil.chat_id))
    names = [command.command for command in commands]
    assert names[0] == "reflectie" and "obs" not in names and "taal" in names

    teacher = await telegram.create_user("Anouk")
    await teacher.send_text(f"/start {school.codes['T1']}")
    await teacher.wait_for_reply()
    await running_bot.settled()
    commands = await bot.get_my_commands(scope=BotCommandScopeChat(chat_id=teacher.chat_id))
    assert commands[0].command == "obs"

    await pupil.send_text("/taal")
    [choice] = await pupil.wait_for_reply()
    await pupil.press("🇬🇧 English", message_id=choice["message_id"])
    await pupil.wait_for_reply()
    await running_bot.settled()
    commands = await bot.get_my_commands(scope=BotCommandScopeChat(chat_id=pupil.chat_id))
    assert commands[0].description == "Tell how today went"


async def test_a_code_from_before_the_invite_secret_links_after_the_start_up_rewrap(
    running_bot, telegram: SandboxClient, school: DemoSchool, session_factory
):
    # A code as the release before the invite secret stored it (a plain sha256, marked so by
    # the migration), for a person whose code from the factory is then no longer valid.
    code = "KMNP-QRST"
    async with session_factory() as session, session.begin():
        await session.execute(
            update(Invite)
            .where(Invite.person_id == school.persons["P2"])
            .values(revoked_at=utcnow())
        )
        session.add(
            Invite(
                person_id=school.persons["P2"],
                code_hash=hashlib.sha256(normalise_code(code).encode()).hexdigest(),
                code_scheme=INVITE_SCHEME_SHA256,
                expires_at=utcnow() + timedelta(days=3),
            )
        )

    await rewrap_invite_codes(running_bot.app)  # what `portfolio-bot run` does at start-up

    async with session_factory() as session:
        stored = await session.scalar(
            select(Invite.code_hash).where(Invite.code_scheme == INVITE_SCHEME_SHA256)
        )
    assert stored is None
    noor = await telegram.create_user("Noor")
    await noor.send_text(f"/start {code}")
    [welcome] = await noor.wait_for_reply()
    assert "Noor" in welcome["text"]
    assert await linked_person_ids(session_factory, noor.id) == [school.persons["P2"]]
