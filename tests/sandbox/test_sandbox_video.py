"""Videos in the sandbox: a user's video and round video message arrive as Telegram sends
them (with a downloadable file and thumbnail), and a bot can send both back."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.types import BufferedInputFile
from PIL import Image

from sandbox import SandboxClient, SandboxUser, TelegramSandbox
from tests.images import small_jpeg
from tests.sandbox.test_sandbox import TOKEN, session_for
from tests.videos import phone_mp4


@pytest.fixture
async def sandbox() -> AsyncIterator[TelegramSandbox]:
    async with TelegramSandbox() as running:
        yield running


@pytest.fixture
async def bot(sandbox: TelegramSandbox) -> AsyncIterator[Bot]:
    session = session_for(sandbox)
    yield Bot(TOKEN, session=session)
    await session.close()


@pytest.fixture
async def user(sandbox: TelegramSandbox) -> AsyncIterator[SandboxUser]:
    async with SandboxClient(sandbox.base_url, TOKEN) as control:
        yield await control.create_user("Sanne")


async def download(bot: Bot, file_id: str) -> bytes:
    telegram_file = await bot.get_file(file_id)
    assert telegram_file.file_path is not None
    buffer = io.BytesIO()
    await bot.download_file(telegram_file.file_path, destination=buffer)
    return buffer.getvalue()


async def test_a_users_video_arrives_with_its_file_and_thumbnail(bot: Bot, user: SandboxUser):
    video = phone_mp4()
    await user.send_video(
        video,
        duration=7,
        width=640,
        height=360,
        file_name="proef.mp4",
        thumbnail=small_jpeg((1280, 720)),
        caption="Mijn proef",
    )
    [update] = await bot.get_updates(timeout=0)
    message = update.message
    assert message is not None and message.video is not None
    assert (message.video.duration, message.video.width, message.video.height) == (7, 640, 360)
    assert message.video.mime_type == "video/mp4" and message.video.file_name == "proef.mp4"
    assert message.caption == "Mijn proef" and message.video.file_size == len(video)
    assert await download(bot, message.video.file_id) == video
    thumbnail = message.video.thumbnail
    assert thumbnail is not None and max(thumbnail.width, thumbnail.height) == 320
    with Image.open(io.BytesIO(await download(bot, thumbnail.file_id))) as picture:
        assert picture.format == "JPEG" and picture.size == (thumbnail.width, thumbnail.height)


async def test_a_users_round_video_message_arrives_square_and_downloadable(
    bot: Bot, user: SandboxUser
):
    note = phone_mp4(seconds=12)
    await user.send_video_note(note, duration=12, length=240)
    [update] = await bot.get_updates(timeout=0)
    message = update.message
    assert message is not None and message.video_note is not None
    assert (message.video_note.duration, message.video_note.length) == (12, 240)
    assert message.video_note.thumbnail is None
    assert await download(bot, message.video_note.file_id) == note


async def test_a_bot_sends_a_video_and_a_round_video_message(bot: Bot, user: SandboxUser):
    await user.send_text("hoi")  # a bot may only write to someone who wrote first
    video = await bot.send_video(
        user.id, BufferedInputFile(phone_mp4(), "proef.mp4"), duration=7, caption="Je proef"
    )
    assert video.video is not None and video.video.duration == 7
    assert video.caption == "Je proef"
    note = await bot.send_video_note(
        user.id, BufferedInputFile(phone_mp4(), "rondje.mp4"), duration=5, length=240
    )
    assert note.video_note is not None and note.video_note.length == 240
    again = await bot.send_video_note(user.id, note.video_note.file_id)
    assert again.video_note is not None and again.video_note.file_id == note.video_note.file_id
    [last] = (await user.messages())[-1:]
    assert "video_note" in last
