"""The Telegram sandbox, exercised by the real aiogram Bot over HTTP."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator

import httpx
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from PIL import Image

from sandbox import SandboxClient, SandboxUser, TelegramSandbox

TOKEN = "123456:sandbox-test-token-not-a-secret"


def jpeg_with_exif(size: tuple[int, int] = (2400, 1200)) -> bytes:
    """A landscape JPEG whose EXIF says "rotate 90°" and carries GPS coordinates."""
    image = Image.new("RGB", size, "teal")
    exif = Image.Exif()
    exif[0x010F] = "SandboxCam"
    exif[0x0112] = 6
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 5.0, 0.0), 3: "E", 4: (4.0, 53.0, 0.0)})
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


class PlainHttpSession(AiohttpSession):
    """aiogram's close() sleeps 250 ms for TLS shutdown; the sandbox speaks plain HTTP."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def session_for(sandbox: TelegramSandbox, **kwargs) -> AiohttpSession:
    return PlainHttpSession(api=TelegramAPIServer.from_base(sandbox.base_url), **kwargs)


def inline(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d) for t, d in buttons]]
    )


@pytest.fixture
async def sandbox() -> AsyncIterator[TelegramSandbox]:
    async with TelegramSandbox() as running:
        yield running


@pytest.fixture
async def bot(sandbox: TelegramSandbox) -> AsyncIterator[Bot]:
    session = session_for(sandbox)
    real_bot = Bot(TOKEN, session=session)
    yield real_bot
    await session.close()


@pytest.fixture
async def control(sandbox: TelegramSandbox) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(sandbox.base_url, TOKEN) as client:
        yield client


@pytest.fixture
async def user(control: SandboxClient) -> SandboxUser:
    return await control.create_user("Sanne", "de Vries", username="sanne")


@pytest.fixture
async def echo_bot(bot: Bot) -> AsyncIterator[Bot]:
    """A real Dispatcher polling the sandbox: echoes text, answers and edits on presses."""
    router = Router()

    @router.message(F.text == "menu")
    async def menu(message: Message) -> None:
        keyboard = ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text="Doelen")], [KeyboardButton(text="Hulp")]]
        )
        await message.answer("Kies maar", reply_markup=keyboard)
        await message.answer("Ja of nee?", reply_markup=inline(("Ja", "yes"), ("Nee", "no")))

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(message.text or "", reply_markup=ReplyKeyboardRemove())

    @router.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer(f"gekozen: {query.data}", show_alert=True)
        assert isinstance(query.message, Message)
        await query.message.edit_text(f"Je koos {query.data}")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot, handle_signals=False, close_bot_session=False, polling_timeout=1
        )
    )
    yield bot
    await dispatcher.stop_polling()
    await polling


async def test_text_reaches_the_bot_and_the_echo_comes_back(echo_bot, user: SandboxUser):
    sent = await user.send_text("hallo bot")
    [reply] = await user.wait_for_reply()
    assert reply["text"] == "hallo bot"
    assert reply["from"]["is_bot"] is True
    assert reply["chat"] == {
        "id": user.id,
        "type": "private",
        "first_name": "Sanne",
        "last_name": "de Vries",
        "username": "sanne",
    }
    assert reply["message_id"] > sent["message_id"]
    assert user.last_bot_message()["text"] == "hallo bot"
    texts = [(m["sandbox"]["from_bot"], m.get("text")) for m in await user.messages()]
    assert texts == [(False, "hallo bot"), (True, "hallo bot")]


async def test_button_press_is_a_callback_query_whose_answer_is_recorded(
    echo_bot, user: SandboxUser
):
    await user.send_text("menu")
    keyboard_message, question = await user.wait_for_reply(count=2)
    assert keyboard_message["text"] == "Kies maar"
    assert user.reply_keyboard() == [["Doelen"], ["Hulp"]]

    query = await user.press("Ja")
    assert query["data"] == "yes" and query["message"]["message_id"] == question["message_id"]
    answer = await user.wait_for_callback_answer(query["id"])
    assert answer["text"] == "gekozen: yes" and answer["show_alert"] is True
    edited = await user.wait_for_edit(question["message_id"])
    assert edited["text"] == "Je koos yes" and "reply_markup" not in edited

    with pytest.raises(AssertionError, match="'Ja'"):
        await user.press("Ja")  # the edit removed the keyboard

    # A reply keyboard stays until the bot removes it.
    await user.send_text("iets anders")
    await user.wait_for_reply()
    assert user.reply_keyboard() is None


async def test_forged_callback_data_reaches_the_bot(bot: Bot, user: SandboxUser):
    sent = await bot.send_message(user.id, "Kies", reply_markup=inline(("A", "a")))
    with pytest.raises(AssertionError, match=r"'A' \('a'\)"):
        await user.press("B")
    query = await user.press_raw(sent.message_id, "admin:delete_everything")
    [update] = await bot.get_updates(timeout=0)
    assert update.callback_query is not None
    assert update.callback_query.data == "admin:delete_everything"
    assert update.callback_query.id == query["id"]
    assert update.callback_query.message.message_id == sent.message_id


async def test_text_limits_count_after_html_parsing(bot: Bot, user: SandboxUser):
    await bot.send_message(user.id, "x" * 4096)
    await bot.send_message(user.id, "<b>" + "x" * 4094 + "</b>&amp;", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(user.id, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(user.id, "😀" * 2049)  # 4098 UTF-16 code units
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(user.id, "regel 1<br>regel 2", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(user.id, "<b> </b>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_document(user.id, BufferedInputFile(b"data", "a.txt"), caption="c" * 1025)


async def test_callback_data_is_limited_to_64_bytes(bot: Bot, user: SandboxUser):
    await bot.send_message(user.id, "ok", reply_markup=inline(("a", "x" * 64)))
    for data in ("x" * 65, "é" * 33):
        with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
            await bot.send_message(user.id, "te lang", reply_markup=inline(("a", data)))


async def test_flooding_a_chat_gives_retry_after(
    bot: Bot, user: SandboxUser, control: SandboxClient
):
    await control.set_limits(per_chat_burst=3, per_chat_rate=0.5)
    for index in range(3):
        await bot.send_message(user.id, f"bericht {index}")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(user.id, "een te veel")
    assert caught.value.retry_after == 2
    assert "retry after 2" in caught.value.message


async def test_photo_is_reencoded_without_exif_and_document_kept_byte_for_byte(
    bot: Bot, user: SandboxUser
):
    original = jpeg_with_exif()
    await user.send_photo(original, caption="mijn werkstuk")
    await user.send_document(original, "scan.jpg", "image/jpeg")
    photo_update, document_update = await bot.get_updates(timeout=0)

    photo_message = photo_update.message
    assert photo_message is not None and photo_message.photo is not None
    assert photo_message.caption == "mijn werkstuk"
    sizes = photo_message.photo
    assert max(sizes[0].width, sizes[0].height) == 90
    largest = sizes[-1]
    # EXIF orientation is applied before the metadata is thrown away.
    assert (largest.width, largest.height) == (640, 1280)
    downloaded = await bot.download(largest.file_id)
    assert downloaded is not None
    data = downloaded.read()
    assert len(data) == largest.file_size
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.size == (640, 1280)
    assert not image.getexif() and b"Exif" not in data and b"SandboxCam" not in data

    document = document_update.message.document
    assert document is not None
    assert (document.file_name, document.mime_type) == ("scan.jpg", "image/jpeg")
    kept = await bot.download(document.file_id)
    assert kept is not None and kept.read() == original


async def test_an_undecodable_photo_is_refused(user: SandboxUser):
    with pytest.raises(Exception, match="IMAGE_PROCESS_FAILED"):
        await user.send_photo(b"not an image at all")


async def test_get_file_over_20_mb_is_refused(bot: Bot, user: SandboxUser):
    big = os.urandom(1024) * (20 * 1024 + 1)
    await user.send_document(big, "video.mov", "video/quicktime")
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None and update.message.document is not None
    assert update.message.document.file_size == len(big)
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(update.message.document.file_id)


async def test_album_is_separate_updates_sharing_a_media_group_id(bot: Bot, user: SandboxUser):
    pictures = [jpeg_with_exif((320, 240)) for _ in range(3)]
    await user.send_album(pictures, caption="uitstapje")
    updates = await bot.get_updates(timeout=0)
    messages = [update.message for update in updates]
    assert len(messages) == 3
    group_ids = {message.media_group_id for message in messages if message is not None}
    assert len(group_ids) == 1 and None not in group_ids
    assert [message.caption for message in messages if message is not None] == [
        "uitstapje",
        None,
        None,
    ]


async def test_bot_sends_photos_documents_and_albums(bot: Bot, user: SandboxUser):
    picture = jpeg_with_exif((300, 200))
    photo = await bot.send_photo(
        user.id, BufferedInputFile(picture, "p.jpg"), caption="<i>hi</i>", parse_mode="HTML"
    )
    assert photo.caption == "hi" and photo.photo is not None
    again = await bot.send_photo(user.id, photo.photo[-1].file_id)
    assert again.photo == photo.photo
    document = await bot.send_document(user.id, BufferedInputFile(b"%PDF-1.4 ...", "rapport.pdf"))
    assert document.document is not None and document.document.mime_type == "application/pdf"
    album = await bot.send_media_group(
        user.id,
        [InputMediaPhoto(media=BufferedInputFile(picture, f"{n}.jpg")) for n in range(2)],
    )
    assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id
    with pytest.raises(TelegramBadRequest, match="type of file mismatch"):
        await bot.send_document(user.id, photo.photo[-1].file_id)


async def test_webhook_delivers_with_the_secret_header_and_retries(
    bot: Bot, user: SandboxUser, control: SandboxClient
):
    received: list[tuple[dict, str | None]] = []
    failures = [500]

    async def hook(request: web.Request) -> web.Response:
        if failures:
            return web.Response(status=failures.pop())
        received.append(
            (await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        )
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="geheim-123")
        info = await bot.get_webhook_info()
        assert info.url.endswith("/hook")
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates(timeout=0)

        await user.send_text("eerste")
        await user.send_text("tweede")
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.02)
        assert [update["message"]["text"] for update, _ in received] == ["eerste", "tweede"]
        assert {secret for _, secret in received} == {"geheim-123"}
        info = await bot.get_webhook_info()
        assert info.pending_update_count == 0
        assert info.last_error_message is not None and "500" in info.last_error_message

        await bot.delete_webhook()
        assert await bot.get_updates(timeout=0) == []
    finally:
        await runner.cleanup()


async def test_injected_faults(sandbox: TelegramSandbox, control: SandboxClient, user):
    session = session_for(sandbox, timeout=0.5)
    bot = Bot(TOKEN, session=session)
    try:
        await control.inject_fault("sendMessage", 500)
        with pytest.raises(TelegramServerError):
            await bot.send_message(user.id, "eerste poging")
        await bot.send_message(user.id, "tweede poging")
        calls = await control.calls(method="sendMessage")
        assert [call["status"] for call in calls] == [500, 200]
        assert calls[1]["params"]["text"] == "tweede poging"

        await control.inject_fault("*", 429, retry_after=7)
        with pytest.raises(TelegramRetryAfter) as caught:
            await bot.send_message(user.id, "x")
        assert caught.value.retry_after == 7

        await control.inject_fault("sendMessage", "drop")
        with pytest.raises(TelegramNetworkError):
            await bot.send_message(user.id, "x")

        await control.inject_fault("sendMessage", "timeout", delay=1.0)
        with pytest.raises(TelegramNetworkError, match="timeout"):
            await bot.send_message(user.id, "x")
        assert await bot.send_message(user.id, "weer goed")
    finally:
        await session.close()


async def test_concurrent_get_updates_conflict(bot: Bot, user: SandboxUser):
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(bot.get_updates(timeout=5))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await first
    await user.send_text("hoi")
    [update] = await second
    assert update.message is not None and update.message.text == "hoi"


async def test_errors_look_like_telegram(
    sandbox: TelegramSandbox, bot: Bot, control: SandboxClient
):
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999, "hallo")

    blocked = await control.create_user("Blok")
    await blocked.block()
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(blocked.id, "hallo")
    [update] = await bot.get_updates(timeout=0, allowed_updates=["my_chat_member", "message"])
    assert update.my_chat_member is not None
    assert update.my_chat_member.new_chat_member.status == "kicked"

    stranger = await control.create_user("Vreemde", started=False)
    with pytest.raises(TelegramForbiddenError, match="can't initiate conversation"):
        await bot.send_message(stranger.id, "hallo")

    base = f"{sandbox.base_url}/bot{TOKEN}"
    async with httpx.AsyncClient() as http:
        unknown = await http.post(f"{base}/sendTelepathy", json={})
        assert unknown.status_code == 404
        assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        missing = await http.post(f"{base}/sendMessage", json={"chat_id": blocked.id})
        assert missing.status_code == 400
        assert missing.json()["description"] == "Bad Request: message text is empty"
        # Method names are case-insensitive; urlencoded bodies work too.
        ok = await http.post(f"{base}/GETME", data={})
        assert ok.json()["result"]["username"] == "leerling_portfolio_bot"
        broken_markup = await http.post(
            f"{base}/sendMessage",
            data={"chat_id": str(blocked.id), "text": "x", "reply_markup": '{"keyboard": 5}'},
        )
        assert broken_markup.status_code == 400


async def test_edit_delete_and_not_modified(bot: Bot, user: SandboxUser):
    sent = await bot.send_message(user.id, "Versie 1", reply_markup=inline(("Verder", "next")))
    edited = await bot.edit_message_text(
        chat_id=user.id,
        message_id=sent.message_id,
        text="Versie 2",
        reply_markup=inline(("Verder", "next")),
    )
    assert isinstance(edited, Message) and edited.edit_date is not None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            chat_id=user.id,
            message_id=sent.message_id,
            text="Versie 2",
            reply_markup=inline(("Verder", "next")),
        )
    await bot.edit_message_reply_markup(chat_id=user.id, message_id=sent.message_id)
    latest = await user.wait_for_edit(sent.message_id)
    assert latest["text"] == "Versie 2"
    assert "reply_markup" not in (await user.messages())[-1]
    with pytest.raises(TelegramBadRequest, match="there is no caption"):
        await bot.edit_message_caption(chat_id=user.id, message_id=sent.message_id, caption="c")
    assert await bot.delete_message(user.id, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(chat_id=user.id, message_id=sent.message_id, text="weg")
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(user.id, sent.message_id)
    assert await user.messages() == []


async def test_groups_commands_and_raw_updates(bot: Bot, control: SandboxClient):
    teacher = await control.create_user("Anouk")
    pupil = await control.create_user("Sam")
    group_id = await control.create_group("Groep 6a", [teacher, pupil])
    assert group_id < 0
    await pupil.send_text("goedemorgen", chat_id=group_id)
    await control.enqueue_raw_update(
        {
            "edited_message": {
                "message_id": 1,
                "date": 1_700_000_000,
                "edit_date": 1_700_000_100,
                "chat": {"id": group_id, "type": "group", "title": "Groep 6a"},
                "from": {"id": pupil.id, "is_bot": False, "first_name": "Sam"},
                "text": "goedemiddag",
            }
        }
    )
    updates = await bot.get_updates(
        timeout=0, allowed_updates=["message", "edited_message", "my_chat_member"]
    )
    joined, message, edit = updates
    assert joined.my_chat_member is not None and joined.my_chat_member.chat.id == group_id
    assert joined.my_chat_member.new_chat_member.status == "member"
    assert message.message is not None and message.message.chat.type == "group"
    assert message.message.chat.title == "Groep 6a"
    assert edit.edited_message is not None and edit.edited_message.text == "goedemiddag"
    assert [u.update_id for u in updates] == sorted({u.update_id for u in updates})

    reply = await bot.send_message(group_id, "Hallo groep")
    assert reply.chat.type == "group"
    [seen] = await pupil.wait_for_reply(chat_id=group_id)
    assert seen["text"] == "Hallo groep"
    copied = await bot.copy_message(teacher.id, group_id, reply.message_id)
    messages = await teacher.wait_until(
        lambda ms: any(m["message_id"] == copied.message_id for m in ms)
    )
    assert messages[-1]["text"] == "Hallo groep" and "forward_origin" not in messages[-1]

    # With privacy mode on, the bot only hears commands and replies to itself.
    await control.set_limits(group_privacy=True)
    await pupil.send_text("gewoon praten", chat_id=group_id)
    await pupil.send_text("/help", chat_id=group_id)
    await pupil.send_text("antwoord", chat_id=group_id, reply_to_message_id=reply.message_id)
    heard = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    assert [u.message.text for u in heard if u.message] == ["/help", "antwoord"]
    chat = await bot.get_chat(group_id)
    assert chat.title == "Groep 6a"
    owner = await bot.get_chat_member(group_id, teacher.id)
    assert owner.status == "creator"

    commands = [BotCommand(command="start", description="Begin")]
    assert await bot.set_my_commands(commands, language_code="nl")
    stored = await bot.get_my_commands(language_code="nl")
    assert [c.model_dump() for c in stored] == [c.model_dump() for c in commands]
    assert await bot.get_my_commands() == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Start Nu", description="x")])


async def test_default_parse_mode_and_wait_timeout_message(
    sandbox: TelegramSandbox, control: SandboxClient
):
    session = session_for(sandbox)
    bot = Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode="HTML"))
    try:
        user = await control.create_user("Daan")
        await user.send_text("hoi")
        with pytest.raises(TimeoutError, match="user message #1 'hoi'"):
            await user.wait_for_reply(timeout=0.1)
        sent = await bot.send_message(user.id, "Welkom <b>Daan</b> &lt;3")
        assert sent.text == "Welkom Daan <3" and sent.html_text == "Welkom <b>Daan</b> &lt;3"
        [reply] = await user.wait_for_reply(timeout=0.1)
        assert reply["entities"] == [{"type": "bold", "offset": 7, "length": 4}]
    finally:
        await session.close()


async def test_a_method_returned_in_the_webhook_response_is_executed(
    sandbox: TelegramSandbox, bot: Bot, user: SandboxUser
):
    router = Router()

    @router.message(F.text)
    async def pong(message: Message):
        return message.answer(f"pong: {message.text}")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    app = web.Application()
    SimpleRequestHandler(
        dispatcher=dispatcher, bot=bot, secret_token="s3", handle_in_background=False
    ).register(app, path="/tg")
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/tg", secret_token="s3")
        await user.send_text("ping")
        [reply] = await user.wait_for_reply()
        assert reply["text"] == "pong: ping"
    finally:
        await runner.cleanup()


async def test_start_again_moves_the_listener_and_keeps_state(sandbox: TelegramSandbox):
    async with SandboxClient(sandbox.base_url, TOKEN) as before:
        pupil = await before.create_user("Noor")
    first_url = sandbox.base_url
    await sandbox.start(port=0)
    assert sandbox.base_url != first_url
    async with SandboxClient(sandbox.base_url, TOKEN) as after:
        users = await after._call("GET", "/users")
    assert [u["id"] for u in users] == [pupil.id]
