"""The bot-facing half of the sandbox: Bot API methods as aiogram calls them.

Each ``m_<lowercased method>`` receives the request already validated by aiogram's own method
model and returns plain JSON that aiogram must be able to parse back (the sandbox checks that
with aiogram's return-type adapters when ``validate_responses`` is on). Error texts copy
Telegram's, because bots match on them (``"message is not modified"``, ``"bot was blocked"``).
"""

from __future__ import annotations

import asyncio
import copy
import json
import mimetypes
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiogram.client.default import Default
from aiogram.methods import (
    AnswerCallbackQuery,
    CopyMessage,
    DeleteMessage,
    DeleteMessages,
    DeleteMyCommands,
    DeleteWebhook,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    ForwardMessage,
    GetChat,
    GetChatAdministrators,
    GetChatMember,
    GetChatMemberCount,
    GetChatMenuButton,
    GetFile,
    GetMyCommands,
    GetUpdates,
    LeaveChat,
    SendAudio,
    SendChatAction,
    SendDocument,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SendVideo,
    SendVideoNote,
    SendVoice,
    SetChatMenuButton,
    SetMyCommands,
    SetWebhook,
)
from aiogram.methods.base import TelegramMethod
from aiogram.types import (
    ForceReply,
    InlineKeyboardMarkup,
    InputMediaAudio,
    InputMediaDocument,
    InputMediaPhoto,
    InputMediaVideo,
    MessageEntity,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from pydantic import ValidationError

from .formatting import FormatError, parse_text, utf16_len
from .limits import SandboxLimits, TokenBucket, retry_after_seconds
from .media import (
    MediaError,
    StoredFile,
    folder_for,
    new_file_id,
    photo_sizes,
    thumbnail_jpeg,
    unique_id_for,
)
from .params import (
    ApiError,
    Upload,
    bad_request,
    decode_params,
    link_uploads,
    method_registry,
    result_adapter,
    validate,
)
from .state import BotState, ChatState, MessageMeta, WebhookConfig

if TYPE_CHECKING:
    from .server import TelegramSandbox

Handler = Callable[[BotState, Any, dict[str, Upload]], Awaitable[Any]]

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
CONTENT_KEYS = (
    "text",
    "entities",
    "photo",
    "document",
    "voice",
    "video",
    "video_note",
    "audio",
    "caption",
)
MEDIA_KEYS = ("photo", "document", "voice", "video", "video_note", "audio", "animation")
_MARKUP_TYPES: dict[str, type[Any]] = {
    "inline_keyboard": InlineKeyboardMarkup,
    "keyboard": ReplyKeyboardMarkup,
    "remove_keyboard": ReplyKeyboardRemove,
    "force_reply": ForceReply,
}
_BUTTON_DECORATION = frozenset({"text", "icon_custom_emoji_id", "style", "disabled"})
_BUTTON_URL = re.compile(r"^(?:https?|tg)://\S+$")
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def unset(value: Any) -> Any:
    """aiogram leaves ``Default(...)`` placeholders for parameters the caller did not pass."""
    return None if isinstance(value, Default) else value


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json", exclude_none=True)


def store_media(
    state: BotState,
    kind: str,
    data: bytes,
    *,
    file_name: str | None = None,
    mime_type: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Store non-photo bytes unchanged and return the object a Message embeds for them."""
    extension = "bin"
    if file_name and "." in file_name:
        candidate = file_name.rsplit(".", 1)[1].lower()
        if candidate.isalnum() and len(candidate) <= 8:
            extension = candidate
    elif kind == "voice":
        extension = "oga"
    elif kind in {"video", "video_note"}:
        extension = "mp4"
    if mime_type in {None, "", "application/octet-stream"} and file_name:
        mime_type = mimetypes.guess_type(file_name)[0] or mime_type
    stored = StoredFile(
        file_id=new_file_id(kind),
        file_unique_id=unique_id_for(data),
        data=data,
        file_path=state.next_file_path(folder_for(kind), extension),
        kind=kind,
        mime_type=mime_type or None,
        file_name=file_name,
    )
    media: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
    if file_name and kind in {"document", "video", "audio", "animation"}:
        media["file_name"] = file_name
    if stored.mime_type:
        media["mime_type"] = stored.mime_type
    media.update({key: value for key, value in fields.items() if value is not None})
    media["file_size"] = stored.size
    stored.media = media
    state.store_file(stored)
    return media


async def store_photo(state: BotState, data: bytes, max_pixels: int) -> list[dict[str, Any]]:
    """Re-encode like Telegram does and store every size as its own downloadable file."""
    try:
        # Decoding and re-encoding a camera photo takes a noticeable fraction of a second;
        # a worker thread keeps the event loop (and every other simulated chat) responsive.
        sizes = await asyncio.to_thread(photo_sizes, data, max_pixels)
    except MediaError as exc:
        raise ApiError(400, str(exc)) from exc
    result: list[dict[str, Any]] = []
    stored_sizes: list[StoredFile] = []
    for jpeg, width, height in sizes:
        stored = StoredFile(
            file_id=new_file_id("photo"),
            file_unique_id=unique_id_for(jpeg),
            data=jpeg,
            file_path=state.next_file_path("photos", "jpg"),
            kind="photo",
            mime_type="image/jpeg",
        )
        stored_sizes.append(stored)
        result.append(
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": stored.size,
                "width": width,
                "height": height,
            }
        )
    for stored in stored_sizes:
        stored.media = result
        state.store_file(stored)
    return result


async def store_thumbnail(state: BotState, data: bytes, max_pixels: int) -> dict[str, Any]:
    """A video's (or file's) thumbnail: a small JPEG the bot can download, as a PhotoSize."""
    try:
        jpeg, width, height = await asyncio.to_thread(thumbnail_jpeg, data, max_pixels)
    except MediaError as exc:
        raise ApiError(400, str(exc)) from exc
    stored = StoredFile(
        file_id=new_file_id("thumbnail"),
        file_unique_id=unique_id_for(jpeg),
        data=jpeg,
        file_path=state.next_file_path("thumbnails", "jpg"),
        kind="thumbnail",
        mime_type="image/jpeg",
    )
    size = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
        "width": width,
        "height": height,
    }
    stored.media = size
    state.store_file(stored)
    return size


class BotApi:
    def __init__(self, sandbox: TelegramSandbox) -> None:
        self.sandbox = sandbox
        self._handlers: dict[str, Handler] = {
            name[2:]: getattr(self, name) for name in dir(self) if name.startswith("m_")
        }

    @property
    def limits(self) -> SandboxLimits:
        return self.sandbox.limits

    async def call(
        self, state: BotState, method: str, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> tuple[str, Any]:
        """Run one Bot API call; returns (canonical method name, JSON result)."""
        cls = method_registry().get(method.lower())
        if cls is None:
            raise ApiError(404, "Not Found")
        link_uploads(cls, params, uploads)
        decoded = decode_params(cls, params)
        _pin_markup_type(decoded)
        model = validate(cls, decoded)
        name = cls.__api_method__
        handler = self._handlers.get(name.lower())
        if handler is not None:
            result = await handler(state, model, uploads)
        elif cls.__returning__ is bool:
            # Settings-style methods (setMyDescription, pinChatMessage, ...) have no observable
            # effect in the sandbox, so accepting them keeps bots' startup code working.
            result = True
        else:
            raise ApiError(501, f"Not Implemented: the sandbox does not simulate {name}")
        # getUpdates hands over what was queued as it was given (a raw update included): a
        # bot must cope with an update its library cannot read, as it must with Telegram.
        if self.sandbox.validate_responses and cls is not GetUpdates:
            _check_result(cls, result)
        return name, result

    # ----------------------------------------------------------------- helpers

    def chat(self, state: BotState, chat_id: int | str | None) -> ChatState:
        if chat_id is None:
            raise bad_request("chat_id is empty")
        if isinstance(chat_id, str):
            try:
                chat_id = int(chat_id)
            except ValueError:
                raise bad_request("chat not found") from None
        chat = state.chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def check_can_send(self, chat: ChatState) -> None:
        if chat.type == "private" and chat.user is not None:
            if chat.user.blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if not chat.user.started:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        elif not chat.bot_member:
            raise ApiError(403, "Forbidden: bot is not a member of the group chat")

    def throttle(self, state: BotState, chat: ChatState, count: int) -> None:
        limits = self.limits
        if state.global_bucket is None:
            state.global_bucket = TokenBucket(limits.global_burst)
        chat_bucket = state.chat_buckets.get(chat.id)
        if chat_bucket is None:
            chat_bucket = state.chat_buckets[chat.id] = TokenBucket(limits.per_chat_burst)
        wait = max(
            chat_bucket.wait_time(count, limits.per_chat_rate, limits.per_chat_burst),
            state.global_bucket.wait_time(count, limits.global_rate, limits.global_burst),
        )
        if wait > 0:
            seconds = retry_after_seconds(wait)
            raise ApiError(
                429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds}
            )
        chat_bucket.take(count, limits.per_chat_rate, limits.per_chat_burst)
        state.global_bucket.take(count, limits.global_rate, limits.global_burst)

    def format_text(
        self,
        text: str,
        parse_mode: str | None,
        entities: list[MessageEntity] | None,
        *,
        caption: bool,
    ) -> tuple[str, list[dict[str, Any]]]:
        if entities:
            plain, parsed = text, [_dump(entity) for entity in entities]
        else:
            try:
                plain, parsed = parse_text(text, parse_mode)
            except FormatError as exc:
                raise bad_request(f"can't parse entities: {exc}") from exc
        if caption:
            if utf16_len(plain) > self.limits.max_caption:
                raise bad_request("message caption is too long")
        else:
            if not plain.strip():
                raise bad_request("message text is empty")
            if utf16_len(plain) > self.limits.max_text:
                raise bad_request("message is too long")
        return plain, parsed

    def caption_content(self, model: Any) -> dict[str, Any]:
        caption = getattr(model, "caption", None)
        if caption is None:
            return {}
        plain, entities = self.format_text(
            caption, unset(model.parse_mode), model.caption_entities, caption=True
        )
        content: dict[str, Any] = {}
        if plain:
            content["caption"] = plain
        if entities:
            content["caption_entities"] = entities
        return content

    def markup(self, markup: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Split reply_markup into (inline markup for the Message, keyboard kept aside)."""
        if markup is None:
            return None, None
        data = _dump(markup)
        if isinstance(markup, InlineKeyboardMarkup):
            self._check_inline(markup)
            return data, None
        if isinstance(markup, ReplyKeyboardMarkup):
            for row in markup.keyboard:
                for button in row:
                    if not button.text:
                        raise bad_request("BUTTON_TEXT_INVALID")
        return None, data

    def _check_inline(self, markup: InlineKeyboardMarkup) -> None:
        for row in markup.inline_keyboard:
            for button in row:
                if not button.text:
                    raise bad_request("BUTTON_TEXT_INVALID")
                actions = set(_dump(button)) - _BUTTON_DECORATION
                if not actions:
                    raise bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the "
                        "inline keyboard"
                    )
                if button.callback_data is not None:
                    size = len(button.callback_data.encode("utf-8"))
                    if size == 0 or size > self.limits.max_callback_data:
                        raise bad_request("BUTTON_DATA_INVALID")
                if button.url is not None and not _BUTTON_URL.match(button.url):
                    raise bad_request("BUTTON_URL_INVALID")

    def reply_target(self, chat: ChatState, model: Any) -> dict[str, Any] | None:
        params = getattr(model, "reply_parameters", None)
        message_id = params.message_id if params else getattr(model, "reply_to_message_id", None)
        if message_id is None:
            return None
        target = chat.messages.get(message_id)
        if target is None or chat.meta[message_id].deleted:
            allow = bool(getattr(model, "allow_sending_without_reply", None)) or bool(
                params and params.allow_sending_without_reply
            )
            if allow:
                return None
            raise bad_request("message to be replied not found")
        # Telegram does not nest replies more than one level deep.
        return {key: value for key, value in target.items() if key != "reply_to_message"}

    def deliver(
        self,
        state: BotState,
        chat: ChatState,
        content: dict[str, Any],
        *,
        inline: dict[str, Any] | None = None,
        keyboard: dict[str, Any] | None = None,
        reply_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": chat.allocate_message_id(),
            "from": state.bot_user,
            "chat": chat.chat_object(),
            "date": int(time.time()),
        }
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        message.update(content)
        if inline is not None:
            message["reply_markup"] = inline
        meta = MessageMeta(from_bot=True, keyboard=keyboard)
        chat.store(message, meta)
        if keyboard is not None:
            if "keyboard" in keyboard:
                chat.reply_keyboard = keyboard
            elif "remove_keyboard" in keyboard:
                chat.reply_keyboard = None
        chat.add_event(
            "message",
            from_bot=True,
            message_id=message["message_id"],
            message=self.sandbox.control_view(message, meta),
        )
        return message

    def resolve_file(self, state: BotState, value: Any, uploads: dict[str, Upload]) -> Any:
        """Turn ``attach://x`` / file_id / URL into an :class:`Upload` or a :class:`StoredFile`."""
        if not isinstance(value, str) or not value:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if value.startswith("attach://"):
            upload = uploads.get(value[len("attach://") :])
            if upload is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
            if not upload.data:
                raise bad_request("file must be non-empty")
            if len(upload.data) > self.limits.max_upload_bytes:
                raise ApiError(413, "Request Entity Too Large")
            return upload
        if value.startswith(("http://", "https://")):
            # The sandbox never fetches the internet; tests must upload bytes instead.
            raise bad_request("failed to get HTTP URL content")
        stored = state.files.get(value)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        return stored

    async def photo_from(
        self, state: BotState, value: Any, uploads: dict[str, Upload]
    ) -> list[Any]:
        source = self.resolve_file(state, value, uploads)
        if isinstance(source, StoredFile):
            if source.kind != "photo":
                raise bad_request("type of file mismatch")
            return list(source.media)
        if len(source.data) > self.limits.max_photo_upload_bytes:
            raise bad_request("PHOTO_SAVE_FILE_INVALID")
        return await store_photo(state, source.data, self.limits.max_image_pixels)

    def file_from(
        self,
        state: BotState,
        kind: str,
        value: Any,
        uploads: dict[str, Upload],
        **fields: Any,
    ) -> dict[str, Any]:
        source = self.resolve_file(state, value, uploads)
        if isinstance(source, StoredFile):
            if source.kind == "photo":
                raise bad_request("type of file mismatch")
            return dict(source.media)
        return store_media(
            state,
            kind,
            source.data,
            file_name=source.filename,
            mime_type=source.content_type,
            **fields,
        )

    async def _send_media(
        self, state: BotState, model: Any, content: dict[str, Any]
    ) -> dict[str, Any]:
        chat = self.chat(state, model.chat_id)
        content.update(self.caption_content(model))
        if getattr(model, "has_spoiler", None):
            content["has_media_spoiler"] = True
        inline, keyboard = self.markup(model.reply_markup)
        reply_to = self.reply_target(chat, model)
        self.check_can_send(chat)
        self.throttle(state, chat, 1)
        return self.deliver(
            state, chat, content, inline=inline, keyboard=keyboard, reply_to=reply_to
        )

    def editable(self, state: BotState, model: Any) -> tuple[ChatState, dict[str, Any]]:
        if getattr(model, "inline_message_id", None):
            raise bad_request("inline messages are not simulated by the sandbox")
        chat = self.chat(state, model.chat_id)
        if model.message_id is None:
            raise bad_request("message identifier is not specified")
        message = chat.messages.get(model.message_id)
        if message is None or chat.meta[model.message_id].deleted:
            raise bad_request("message to edit not found")
        if not chat.meta[model.message_id].from_bot:
            raise bad_request("message can't be edited")
        return chat, message

    def apply_edit(
        self, chat: ChatState, message: dict[str, Any], changes: dict[str, Any | None]
    ) -> dict[str, Any]:
        if all(message.get(key) == value for key, value in changes.items()):
            raise bad_request(NOT_MODIFIED)
        for key, value in changes.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = int(time.time())
        meta = chat.meta[message["message_id"]]
        chat.add_event(
            "edit",
            from_bot=True,
            message_id=message["message_id"],
            message=self.sandbox.control_view(message, meta),
        )
        return message

    # ------------------------------------------------------------- bot & updates

    async def m_getme(self, state: BotState, model: Any, uploads: dict[str, Upload]) -> Any:
        return {
            **state.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": not self.limits.group_privacy,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def m_logout(self, state: BotState, model: Any, uploads: dict[str, Upload]) -> Any:
        return True

    async def m_close(self, state: BotState, model: Any, uploads: dict[str, Upload]) -> Any:
        return True

    async def m_getupdates(
        self, state: BotState, model: GetUpdates, uploads: dict[str, Upload]
    ) -> Any:
        if state.webhook is not None:
            raise _webhook_conflict()
        state.poll_generation += 1
        generation = state.poll_generation
        # Wakes an earlier long poll so it can answer 409, as Telegram does.
        state.updates_signal.notify()
        if model.allowed_updates is not None:
            state.allowed_updates = list(model.allowed_updates)
        _confirm(state, model.offset)
        limit = min(max(model.limit or 100, 1), 100)
        timeout = min(max(float(model.timeout or 0), 0.0), self.limits.max_poll_timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            batch = _pending(state, limit)
            if batch or self.sandbox.closing:
                return batch
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            await state.updates_signal.wait(remaining)
            if state.poll_generation != generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one "
                    "bot instance is running",
                )
            if state.webhook is not None:
                raise _webhook_conflict()

    async def m_setwebhook(
        self, state: BotState, model: SetWebhook, uploads: dict[str, Upload]
    ) -> Any:
        if not model.url:
            await self.sandbox.delete_webhook(state, drop_pending=bool(model.drop_pending_updates))
            return True
        if not model.url.startswith(("http://", "https://")):
            raise bad_request(
                "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
            )
        if model.secret_token is not None and not _SECRET_TOKEN.match(model.secret_token):
            raise bad_request("secret token contains unallowed characters")
        max_connections = model.max_connections or 40
        if not 1 <= max_connections <= 100:
            raise bad_request("bad max_connections")
        if model.allowed_updates is not None:
            state.allowed_updates = list(model.allowed_updates)
        config = WebhookConfig(
            url=model.url,
            secret_token=model.secret_token,
            max_connections=max_connections,
            allowed_updates=state.allowed_updates,
            ip_address=model.ip_address,
        )
        await self.sandbox.set_webhook(state, config, drop_pending=bool(model.drop_pending_updates))
        return True

    async def m_deletewebhook(
        self, state: BotState, model: DeleteWebhook, uploads: dict[str, Upload]
    ) -> Any:
        await self.sandbox.delete_webhook(state, drop_pending=bool(model.drop_pending_updates))
        return True

    async def m_getwebhookinfo(
        self, state: BotState, model: Any, uploads: dict[str, Upload]
    ) -> Any:
        return self.sandbox.webhook_info(state)

    # ---------------------------------------------------------------- sending

    async def m_sendmessage(
        self, state: BotState, model: SendMessage, uploads: dict[str, Upload]
    ) -> Any:
        chat = self.chat(state, model.chat_id)
        text, entities = self.format_text(
            model.text, unset(model.parse_mode), model.entities, caption=False
        )
        inline, keyboard = self.markup(model.reply_markup)
        reply_to = self.reply_target(chat, model)
        self.check_can_send(chat)
        self.throttle(state, chat, 1)
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        preview = unset(model.link_preview_options)
        if preview is not None:
            content["link_preview_options"] = _dump(preview)
        return self.deliver(
            state, chat, content, inline=inline, keyboard=keyboard, reply_to=reply_to
        )

    async def m_sendphoto(
        self, state: BotState, model: SendPhoto, uploads: dict[str, Upload]
    ) -> Any:
        self.chat(state, model.chat_id)
        photo = await self.photo_from(state, model.photo, uploads)
        return await self._send_media(state, model, {"photo": photo})

    async def m_senddocument(
        self, state: BotState, model: SendDocument, uploads: dict[str, Upload]
    ) -> Any:
        self.chat(state, model.chat_id)
        document = self.file_from(state, "document", model.document, uploads)
        return await self._send_media(state, model, {"document": document})

    async def m_sendvoice(
        self, state: BotState, model: SendVoice, uploads: dict[str, Upload]
    ) -> Any:
        self.chat(state, model.chat_id)
        voice = self.file_from(state, "voice", model.voice, uploads, duration=model.duration or 0)
        voice.setdefault("duration", model.duration or 0)
        voice.setdefault("mime_type", "audio/ogg")
        voice.pop("file_name", None)
        return await self._send_media(state, model, {"voice": voice})

    async def m_sendvideo(
        self, state: BotState, model: SendVideo, uploads: dict[str, Upload]
    ) -> Any:
        self.chat(state, model.chat_id)
        video = self.file_from(
            state,
            "video",
            model.video,
            uploads,
            width=model.width or 0,
            height=model.height or 0,
            duration=model.duration or 0,
        )
        for key in ("width", "height", "duration"):
            video.setdefault(key, 0)
        return await self._send_media(state, model, {"video": video})

    async def m_sendvideonote(
        self, state: BotState, model: SendVideoNote, uploads: dict[str, Upload]
    ) -> Any:
        self.chat(state, model.chat_id)
        note = self.file_from(
            state,
            "video_note",
            model.video_note,
            uploads,
            duration=model.duration or 0,
            length=model.length or 0,
        )
        for key in ("duration", "length"):
            note.setdefault(key, 0)
        # A round video message has neither a name nor a MIME type in the Bot API.
        note.pop("file_name", None)
        note.pop("mime_type", None)
        return await self._send_media(state, model, {"video_note": note})

    async def m_sendaudio(
        self, state: BotState, model: SendAudio, uploads: dict[str, Upload]
    ) -> Any:
        self.chat(state, model.chat_id)
        audio = self.file_from(
            state,
            "audio",
            model.audio,
            uploads,
            duration=model.duration or 0,
            title=model.title,
            performer=model.performer,
        )
        audio.setdefault("duration", 0)
        return await self._send_media(state, model, {"audio": audio})

    async def m_sendmediagroup(
        self, state: BotState, model: SendMediaGroup, uploads: dict[str, Upload]
    ) -> Any:
        chat = self.chat(state, model.chat_id)
        items = list(model.media)
        if not 2 <= len(items) <= 10:
            raise bad_request("MEDIA_GROUP_INVALID: a media group must contain 2-10 items")
        kinds = {type(item) for item in items}
        for single in (InputMediaDocument, InputMediaAudio):
            if single in kinds and len(kinds) > 1:
                raise bad_request("MEDIA_GROUP_INVALID: documents and audio can't be mixed")
        reply_to = self.reply_target(chat, model)
        contents: list[dict[str, Any]] = []
        for item in items:
            content = self.caption_content(item)
            if isinstance(item, InputMediaPhoto):
                content["photo"] = await self.photo_from(state, item.media, uploads)
            elif isinstance(item, InputMediaVideo):
                content["video"] = self.file_from(
                    state,
                    "video",
                    item.media,
                    uploads,
                    width=item.width or 0,
                    height=item.height or 0,
                    duration=item.duration or 0,
                )
            elif isinstance(item, InputMediaDocument):
                content["document"] = self.file_from(state, "document", item.media, uploads)
            elif isinstance(item, InputMediaAudio):
                content["audio"] = self.file_from(
                    state, "audio", item.media, uploads, duration=item.duration or 0
                )
            else:
                raise bad_request(f"media of type {type(item).__name__} is not simulated")
            contents.append(content)
        self.check_can_send(chat)
        self.throttle(state, chat, len(items))
        group_id = str(next(state.media_group_counter))
        return [
            self.deliver(state, chat, {"media_group_id": group_id, **content}, reply_to=reply_to)
            for content in contents
        ]

    def _source(self, state: BotState, chat_id: int | str, message_id: int) -> dict[str, Any]:
        chat = self.chat(state, chat_id)
        message = chat.messages.get(message_id)
        if message is None or chat.meta[message_id].deleted:
            raise bad_request("message to copy not found")
        return message

    async def m_copymessage(
        self, state: BotState, model: CopyMessage, uploads: dict[str, Upload]
    ) -> Any:
        source = self._source(state, model.from_chat_id, model.message_id)
        content = {key: copy.deepcopy(source[key]) for key in CONTENT_KEYS if key in source}
        if "caption_entities" in source:
            content["caption_entities"] = copy.deepcopy(source["caption_entities"])
        if not any(key in content for key in ("text", *MEDIA_KEYS)):
            raise bad_request("message can't be copied")
        if model.caption is not None:
            if "text" in content:
                raise bad_request("message can't be copied with a new caption")
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(self.caption_content(model))
        chat = self.chat(state, model.chat_id)
        inline, keyboard = self.markup(model.reply_markup)
        reply_to = self.reply_target(chat, model)
        self.check_can_send(chat)
        self.throttle(state, chat, 1)
        message = self.deliver(
            state, chat, content, inline=inline, keyboard=keyboard, reply_to=reply_to
        )
        return {"message_id": message["message_id"]}

    async def m_forwardmessage(
        self, state: BotState, model: ForwardMessage, uploads: dict[str, Upload]
    ) -> Any:
        source = self._source(state, model.from_chat_id, model.message_id)
        content = {key: copy.deepcopy(source[key]) for key in CONTENT_KEYS if key in source}
        if "caption_entities" in source:
            content["caption_entities"] = copy.deepcopy(source["caption_entities"])
        content["forward_origin"] = {
            "type": "user",
            "date": source["date"],
            "sender_user": source["from"],
        }
        chat = self.chat(state, model.chat_id)
        self.check_can_send(chat)
        self.throttle(state, chat, 1)
        return self.deliver(state, chat, content)

    async def m_sendchataction(
        self, state: BotState, model: SendChatAction, uploads: dict[str, Upload]
    ) -> Any:
        chat = self.chat(state, model.chat_id)
        self.check_can_send(chat)
        chat.add_event("chat_action", from_bot=True, action=model.action)
        return True

    # ---------------------------------------------------------------- editing

    async def m_editmessagetext(
        self, state: BotState, model: EditMessageText, uploads: dict[str, Upload]
    ) -> Any:
        chat, message = self.editable(state, model)
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        text, entities = self.format_text(
            model.text or "", unset(model.parse_mode), model.entities, caption=False
        )
        inline, _ = self.markup(model.reply_markup)
        return self.apply_edit(
            chat, message, {"text": text, "entities": entities or None, "reply_markup": inline}
        )

    async def m_editmessagecaption(
        self, state: BotState, model: EditMessageCaption, uploads: dict[str, Upload]
    ) -> Any:
        chat, message = self.editable(state, model)
        if not any(key in message for key in MEDIA_KEYS):
            raise bad_request("there is no caption in the message to edit")
        content = self.caption_content(model)
        inline, _ = self.markup(model.reply_markup)
        return self.apply_edit(
            chat,
            message,
            {
                "caption": content.get("caption"),
                "caption_entities": content.get("caption_entities"),
                "reply_markup": inline,
            },
        )

    async def m_editmessagereplymarkup(
        self, state: BotState, model: EditMessageReplyMarkup, uploads: dict[str, Upload]
    ) -> Any:
        chat, message = self.editable(state, model)
        inline, _ = self.markup(model.reply_markup)
        return self.apply_edit(chat, message, {"reply_markup": inline})

    async def m_deletemessage(
        self, state: BotState, model: DeleteMessage, uploads: dict[str, Upload]
    ) -> Any:
        chat = self.chat(state, model.chat_id)
        if not self._delete(chat, model.message_id):
            raise bad_request("message to delete not found")
        return True

    async def m_deletemessages(
        self, state: BotState, model: DeleteMessages, uploads: dict[str, Upload]
    ) -> Any:
        chat = self.chat(state, model.chat_id)
        deleted = [self._delete(chat, message_id) for message_id in model.message_ids]
        if not any(deleted):
            raise bad_request("message to delete not found")
        return True

    def _delete(self, chat: ChatState, message_id: int) -> bool:
        meta = chat.meta.get(message_id)
        if meta is None or meta.deleted:
            return False
        meta.deleted = True
        chat.add_event("delete", from_bot=True, message_id=message_id)
        return True

    async def m_answercallbackquery(
        self, state: BotState, model: AnswerCallbackQuery, uploads: dict[str, Upload]
    ) -> Any:
        record = state.callbacks.get(model.callback_query_id)
        if record is None or record.answer is not None:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        if model.text is not None and len(model.text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        record.answer = {
            "text": model.text,
            "show_alert": bool(model.show_alert),
            "url": model.url,
            "cache_time": model.cache_time,
        }
        chat = state.chats.get(record.chat_id) if record.chat_id is not None else None
        if chat is not None:
            chat.add_event(
                "callback_answer",
                from_bot=True,
                message_id=record.message_id,
                callback_query_id=record.id,
                answer=record.answer,
            )
        return True

    # ------------------------------------------------------- commands & menus

    async def m_setmycommands(
        self, state: BotState, model: SetMyCommands, uploads: dict[str, Upload]
    ) -> Any:
        if len(model.commands) > 100:
            raise bad_request("too many commands")
        for command in model.commands:
            if not _COMMAND_NAME.match(command.command):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(command.description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = _commands_key(model.scope, model.language_code)
        state.commands[key] = [_dump(command) for command in model.commands]
        return True

    async def m_getmycommands(
        self, state: BotState, model: GetMyCommands, uploads: dict[str, Upload]
    ) -> Any:
        return state.commands.get(_commands_key(model.scope, model.language_code), [])

    async def m_deletemycommands(
        self, state: BotState, model: DeleteMyCommands, uploads: dict[str, Upload]
    ) -> Any:
        state.commands.pop(_commands_key(model.scope, model.language_code), None)
        return True

    async def m_setchatmenubutton(
        self, state: BotState, model: SetChatMenuButton, uploads: dict[str, Upload]
    ) -> Any:
        button = _dump(model.menu_button) if model.menu_button else {"type": "default"}
        if model.chat_id is None:
            state.default_menu_button = button
        else:
            self.chat(state, model.chat_id).menu_button = button
        return True

    async def m_getchatmenubutton(
        self, state: BotState, model: GetChatMenuButton, uploads: dict[str, Upload]
    ) -> Any:
        if model.chat_id is None:
            return state.default_menu_button
        return self.chat(state, model.chat_id).menu_button or state.default_menu_button

    # ------------------------------------------------------------------ chats

    async def m_getchat(self, state: BotState, model: GetChat, uploads: dict[str, Upload]) -> Any:
        chat = self.chat(state, model.chat_id)
        info = chat.chat_object()
        info.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        return info

    def _member(self, state: BotState, chat: ChatState, user_id: int) -> dict[str, Any]:
        if user_id == state.bot_id:
            status = "member" if chat.bot_member else "left"
            return {"status": status, "user": state.bot_user}
        user = state.users.get(user_id)
        if user is None:
            raise bad_request("PARTICIPANT_ID_INVALID")
        if chat.type == "private":
            status = "member" if chat.id == user_id else "left"
        elif chat.members and chat.members[0] == user_id:
            return {"status": "creator", "user": user.as_user(), "is_anonymous": False}
        else:
            status = "member" if user_id in chat.members else "left"
        return {"status": status, "user": user.as_user()}

    async def m_getchatmember(
        self, state: BotState, model: GetChatMember, uploads: dict[str, Upload]
    ) -> Any:
        return self._member(state, self.chat(state, model.chat_id), model.user_id)

    async def m_getchatadministrators(
        self, state: BotState, model: GetChatAdministrators, uploads: dict[str, Upload]
    ) -> Any:
        chat = self.chat(state, model.chat_id)
        if chat.type == "private" or not chat.members:
            return []
        return [self._member(state, chat, chat.members[0])]

    async def m_getchatmembercount(
        self, state: BotState, model: GetChatMemberCount, uploads: dict[str, Upload]
    ) -> Any:
        chat = self.chat(state, model.chat_id)
        if chat.type == "private":
            return 2
        return len(chat.members) + (1 if chat.bot_member else 0)

    async def m_leavechat(
        self, state: BotState, model: LeaveChat, uploads: dict[str, Upload]
    ) -> Any:
        chat = self.chat(state, model.chat_id)
        if chat.type == "private":
            raise bad_request("chat member status can't be changed in private chats")
        chat.bot_member = False
        return True

    # ------------------------------------------------------------------ files

    async def m_getfile(self, state: BotState, model: GetFile, uploads: dict[str, Upload]) -> Any:
        stored = state.files.get(model.file_id)
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.size > self.limits.max_download_bytes:
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }


def _webhook_conflict() -> ApiError:
    return ApiError(
        409,
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
        "delete the webhook first",
    )


def _confirm(state: BotState, offset: int | None) -> None:
    if offset is None or offset == 0:
        return
    if offset < 0:
        keep = list(state.updates)[offset:]
        for update_id in list(state.updates):
            if update_id not in keep:
                del state.updates[update_id]
        return
    for update_id in [uid for uid in state.updates if uid < offset]:
        del state.updates[update_id]


def _pending(state: BotState, limit: int) -> list[dict[str, Any]]:
    batch: list[dict[str, Any]] = []
    unwanted: list[int] = []
    for update_id, (update, _chat) in state.updates.items():
        if not state.is_allowed(update):
            # Telegram does not create updates the bot did not ask for.
            unwanted.append(update_id)
            continue
        batch.append(update)
        if len(batch) >= limit:
            break
    for update_id in unwanted:
        del state.updates[update_id]
    return batch


def _commands_key(scope: Any, language_code: str | None) -> str:
    scope_data = _dump(scope) if scope is not None else {"type": "default"}
    return json.dumps(scope_data, sort_keys=True) + "|" + (language_code or "")


def _pin_markup_type(params: dict[str, Any]) -> None:
    """Pick the reply_markup class from its keys before validation.

    aiogram's models allow extra fields, so a broken inline keyboard would otherwise validate
    as a ``ReplyKeyboardRemove`` with extras instead of being refused as Telegram does.
    """
    markup = params.get("reply_markup")
    if markup is None or not isinstance(markup, dict):
        if isinstance(markup, str):
            raise bad_request("can't parse reply keyboard markup JSON object")
        return
    for key, cls in _MARKUP_TYPES.items():
        if key in markup:
            try:
                params["reply_markup"] = cls.model_validate(markup)
            except ValidationError as exc:
                raise bad_request("can't parse reply keyboard markup JSON object") from exc
            return
    raise bad_request("can't parse reply keyboard markup JSON object")


def _check_result(cls: type[TelegramMethod[Any]], result: Any) -> None:
    try:
        result_adapter(cls).validate_python(result)
    except ValidationError as exc:
        raise ApiError(
            500,
            f"Internal Server Error: sandbox produced an invalid {cls.__api_method__} result: "
            f"{exc.errors()[0]}",
        ) from exc


def new_callback_id() -> str:
    return str(secrets.randbits(63))
