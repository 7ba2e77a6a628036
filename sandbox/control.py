"""The control API of the sandbox: play users, inspect chats, inject faults.

Every endpoint answers JSON ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": "..."}`` (plus ``"error_type"`` for errors a
client wants to tell apart). ``{token}`` is the bot token whose state is meant.

==========================================  =================================================
``GET  /sandbox/health``                     liveness
``GET  /sandbox/{token}``                    overview: bot user, chats, pending updates, webhook
``GET|POST /sandbox/{token}/limits``         read / change :class:`SandboxLimits` fields
                                             (shared by all tokens of this sandbox)
``GET|POST /sandbox/{token}/users``          list / create users ``{first_name, last_name?,
                                             username?, language_code?, started?, id?}``
``POST /sandbox/{token}/users/{id}/block``   ``{"blocked": bool}``; emits ``my_chat_member``
``POST /sandbox/{token}/groups``             ``{title, member_ids, with_bot=true}``; the first
                                             member is the creator; emits ``my_chat_member``
``POST /sandbox/{token}/groups/{id}/bot``    ``{"member": bool, "by_user_id"?}`` add/remove bot
``POST /sandbox/{token}/messages``           a user sends a message (see below)
``POST /sandbox/{token}/callback``           a user presses an inline button (see below)
``GET  /sandbox/{token}/callbacks/{id}``     the bot's answerCallbackQuery for a press
``GET  /sandbox/{token}/chats``              all chats
``GET  /sandbox/{token}/chats/{id}``         chat, members, current reply keyboard, last seq
``GET  /sandbox/{token}/chats/{id}/messages`` every live message, edits applied
``GET  /sandbox/{token}/chats/{id}/wait``    long-poll the chat's event log (see below)
``GET|DELETE /sandbox/{token}/calls``        log of Bot API calls (``?method=&since_id=``)
``GET|POST|DELETE /sandbox/{token}/faults``  injected failures (see below)
``POST /sandbox/{token}/updates/raw``        enqueue any update dict (see below)
``GET  /sandbox/{token}/updates``            updates not yet confirmed by the bot
``GET  /sandbox/{token}/files/{file_id}``    raw bytes of any stored file (also bot uploads)
==========================================  =================================================

**Sending** (``POST messages``): a JSON object ``{"user_id", "chat_id"?, "reply_to_message_id"?}``
plus exactly one of ``"text"``; ``"photo"`` (+``"caption"``); ``"document"`` (+``"file_name"``,
``"mime_type"``, ``"caption"``); ``"voice"`` (+``"duration"``); ``"video"`` (+``"duration"``,
``"width"``, ``"height"``, ``"file_name"``, ``"mime_type"``, ``"thumbnail"``, ``"caption"``);
``"video_note"`` (+``"duration"``, ``"length"``, ``"thumbnail"``); ``"album"``: a list of
``{"type": "photo"|"document", "media", "caption"?, "file_name"?, "mime_type"?}``. A video's
``"thumbnail"`` is a still picture standing in for the one Telegram cuts from the video (the
sandbox cannot decode video); it is stored as a small JPEG the bot can download. Binary values
are base64 strings, or ``"attach://<part>"`` when the request is ``multipart/form-data`` with
the JSON in a form field named ``payload`` and the bytes in file parts. ``chat_id`` defaults to
the user's private chat. The result holds the stored ``messages``, their ``update_ids`` and the
chat ``seq`` after sending.

**Pressing** (``POST callback``): ``{"user_id", "chat_id"?, "message_id"?, "button"}`` finds the
newest bot message (or ``message_id``) with an inline button whose text, or else
callback_data, equals ``button``; ``{"user_id", "message_id", "data"}`` sends any data, even
forged. Unknown buttons answer 400 with ``error_type: "button_not_found"`` and the list of
buttons that do exist.

**Waiting** (``GET chats/{id}/wait``): ``after`` (seq, default 0), ``timeout`` (s, default 0),
``count`` (default 1), optional filters ``type`` (comma list of ``message``, ``edit``,
``delete``, ``callback_query``, ``callback_answer``, ``chat_action``), ``from_bot`` and
``message_id``. Returns ``{"events", "seq", "timed_out"}`` as soon as ``count`` matching events
exist after ``after``, or when the timeout passes.

**Raw updates** (``POST updates/raw``): the body is an update as the Bot API documents it,
delivered as given (even one aiogram cannot read). Its ``update_id`` is replaced by the next
in sequence unless ``?keep_update_id=true``; ``?predating_allowed_updates=true`` delivers it
even if its type is not in the bot's ``allowed_updates``, as Telegram does with updates
created before that setting. A ``callback_query`` can be answered like a press.

**Faults** (``POST faults``): ``{"method": "sendMessage" | "*", "status": 500 | 429 | 4xx/5xx
| "timeout" | "drop", "count": 1, "retry_after": 1, "delay": 70, "description"?}``. The next
``count`` calls of that method fail that way (``"*"`` means any method except getUpdates);
``"timeout"`` holds the request for ``delay`` seconds, ``"drop"`` closes the connection.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .botapi import new_callback_id, store_media, store_photo, store_thumbnail
from .formatting import detect_entities
from .params import ApiError, Upload, read_request
from .state import BotState, CallbackRecord, ChatState, Fault, MessageMeta, UserRecord

if TYPE_CHECKING:
    from .server import TelegramSandbox

# What a user can send; exactly one per message.
SENDABLE = ("text", "photo", "document", "voice", "video", "video_note", "album")
EVENT_TYPES = frozenset(
    {"message", "edit", "delete", "callback_query", "callback_answer", "chat_action"}
)
MAX_WAIT = 120.0


class ControlError(Exception):
    def __init__(self, status: int, description: str, error_type: str | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.error_type = error_type


def _ok(result: Any) -> web.Response:
    return web.Response(
        text=json.dumps({"ok": True, "result": result}, ensure_ascii=False),
        content_type="application/json",
    )


def _error(status: int, description: str, error_type: str | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if error_type:
        body["error_type"] = error_type
    return web.Response(
        text=json.dumps(body, ensure_ascii=False), status=status, content_type="application/json"
    )


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ControlError(400, f"{name} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ControlError(400, f"{name} must be an integer") from None


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in {"1", "true", "yes"}


def _float(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ControlError(400, f"{name} must be a number") from None


class ControlApi:
    def __init__(self, sandbox: TelegramSandbox) -> None:
        self.sandbox = sandbox

    def add_routes(self, app: web.Application) -> None:
        routes = [
            ("GET", "/sandbox/health", self.health),
            ("GET", "/sandbox/{token}", self.overview),
            ("GET", "/sandbox/{token}/limits", self.get_limits),
            ("POST", "/sandbox/{token}/limits", self.set_limits),
            ("GET", "/sandbox/{token}/users", self.list_users),
            ("POST", "/sandbox/{token}/users", self.create_user),
            ("POST", "/sandbox/{token}/users/{user_id}/block", self.block_user),
            ("POST", "/sandbox/{token}/groups", self.create_group),
            ("POST", "/sandbox/{token}/groups/{chat_id}/bot", self.group_bot),
            ("POST", "/sandbox/{token}/messages", self.send_message),
            ("POST", "/sandbox/{token}/callback", self.press),
            ("GET", "/sandbox/{token}/callbacks/{query_id}", self.callback_answer),
            ("GET", "/sandbox/{token}/chats", self.list_chats),
            ("GET", "/sandbox/{token}/chats/{chat_id}", self.chat_info),
            ("GET", "/sandbox/{token}/chats/{chat_id}/messages", self.chat_messages),
            ("GET", "/sandbox/{token}/chats/{chat_id}/wait", self.wait),
            ("GET", "/sandbox/{token}/calls", self.calls),
            ("DELETE", "/sandbox/{token}/calls", self.clear_calls),
            ("GET", "/sandbox/{token}/faults", self.list_faults),
            ("POST", "/sandbox/{token}/faults", self.add_fault),
            ("DELETE", "/sandbox/{token}/faults", self.clear_faults),
            ("POST", "/sandbox/{token}/updates/raw", self.raw_update),
            ("GET", "/sandbox/{token}/updates", self.pending_updates),
            ("GET", "/sandbox/{token}/files/{file_id}", self.file_bytes),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, self._wrap(handler))

    def _wrap(self, handler: Any) -> Any:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                result: web.StreamResponse = await handler(request)
                return result
            except ControlError as exc:
                return _error(exc.status, exc.description, exc.error_type)
            except ApiError as exc:
                return _error(exc.status, exc.description)

        return wrapped

    # ---------------------------------------------------------------- helpers

    def _state(self, request: web.Request) -> BotState:
        try:
            return self.sandbox.state(request.match_info["token"])
        except ValueError:
            raise ControlError(401, "Unauthorized: malformed bot token") from None

    async def _body(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
        if request.content_type == "multipart/form-data":
            params, uploads = await read_request(request)
            raw = params.get("payload", "{}")
            try:
                body = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                raise ControlError(400, "payload is not valid JSON") from None
        else:
            uploads = {}
            raw_bytes = await request.read()
            try:
                body = json.loads(raw_bytes) if raw_bytes.strip() else {}
            except ValueError:
                raise ControlError(400, "body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ControlError(400, "body must be a JSON object")
        return body, uploads

    def _binary(self, value: Any, uploads: dict[str, Upload], name: str) -> bytes:
        if not isinstance(value, str) or not value:
            raise ControlError(400, f"{name} must be base64 or attach://<part>")
        if value.startswith("attach://"):
            upload = uploads.get(value[len("attach://") :])
            if upload is None:
                raise ControlError(400, f"{name}: no multipart part {value!r}")
            return upload.data
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ControlError(400, f"{name} is not valid base64") from None

    def _user(self, state: BotState, user_id: Any) -> UserRecord:
        user = state.users.get(_int(user_id, "user_id"))
        if user is None:
            raise ControlError(404, f"unknown user {user_id}")
        return user

    def _chat(self, state: BotState, chat_id: Any) -> ChatState:
        chat = state.chats.get(_int(chat_id, "chat_id"))
        if chat is None:
            raise ControlError(404, f"unknown chat {chat_id}")
        return chat

    def _user_chat(self, state: BotState, user: UserRecord, chat_id: Any) -> ChatState:
        chat = self._chat(state, user.id if chat_id is None else chat_id)
        if chat.type == "private":
            if chat.id != user.id:
                raise ControlError(400, "a user can only write in their own private chat")
            if user.blocked:
                raise ControlError(400, "the user has blocked the bot; unblock first")
        elif user.id not in chat.members:
            raise ControlError(400, f"user {user.id} is not a member of chat {chat.id}")
        return chat

    def _chat_member_update(
        self,
        state: BotState,
        chat: ChatState,
        actor: UserRecord,
        old: str,
        new: str,
    ) -> int:
        def member(status: str) -> dict[str, Any]:
            data: dict[str, Any] = {"status": status, "user": state.bot_user}
            if status == "kicked":
                data["until_date"] = 0
            return data

        payload = {
            "my_chat_member": {
                "chat": chat.chat_object(),
                "from": actor.as_user(),
                "date": int(time.time()),
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            }
        }
        return self.sandbox.enqueue_update(state, payload, chat)

    # ------------------------------------------------------------ endpoints

    async def health(self, request: web.Request) -> web.Response:
        return _ok({"status": "ok"})

    async def overview(self, request: web.Request) -> web.Response:
        state = self._state(request)
        return _ok(
            {
                "bot": state.bot_user,
                "users": len(state.users),
                "chats": [chat.chat_object() for chat in state.chats.values()],
                "pending_updates": len(state.updates),
                "webhook": self.sandbox.webhook_info(state),
                "calls": len(state.calls),
            }
        )

    async def get_limits(self, request: web.Request) -> web.Response:
        self._state(request)
        return _ok(self.sandbox.limits.as_dict())

    async def set_limits(self, request: web.Request) -> web.Response:
        self._state(request)
        body, _ = await self._body(request)
        try:
            self.sandbox.limits.update(body)
        except ValueError as exc:
            raise ControlError(400, str(exc)) from None
        return _ok(self.sandbox.limits.as_dict())

    async def list_users(self, request: web.Request) -> web.Response:
        state = self._state(request)
        return _ok(
            [
                {**user.as_user(), "started": user.started, "blocked": user.blocked}
                for user in state.users.values()
            ]
        )

    async def create_user(self, request: web.Request) -> web.Response:
        state = self._state(request)
        body, _ = await self._body(request)
        first_name = body.get("first_name")
        if not isinstance(first_name, str) or not first_name:
            raise ControlError(400, "first_name is required")
        user_id = self._new_user_id(state, body.get("id"))
        user = UserRecord(
            id=user_id,
            first_name=first_name,
            last_name=body.get("last_name") or None,
            username=body.get("username") or None,
            language_code=body.get("language_code", "nl") or None,
            started=bool(body.get("started", True)),
        )
        state.users[user.id] = user
        # Private chat ids equal user ids in Telegram.
        state.chats[user.id] = ChatState(user.id, "private", user=user)
        return _ok(user.as_user())

    def _new_user_id(self, state: BotState, wanted: Any) -> int:
        if wanted is None:
            return self.sandbox.new_user_id()
        # A chosen id lets a restarted sandbox bring back users a bot's database remembers.
        user_id = _int(wanted, "id")
        if not 0 < user_id < 2**52:
            raise ControlError(400, "id must be a positive integer below 2**52")
        if user_id in state.users or user_id in state.chats or user_id == state.bot_id:
            raise ControlError(409, f"id {user_id} is already taken")
        self.sandbox.claim_user_id(user_id)
        return user_id

    async def block_user(self, request: web.Request) -> web.Response:
        state = self._state(request)
        user = self._user(state, request.match_info["user_id"])
        body, _ = await self._body(request)
        blocked = bool(body.get("blocked", True))
        update_id = None
        if blocked != user.blocked:
            user.blocked = blocked
            chat = state.chats[user.id]
            old, new = ("member", "kicked") if blocked else ("kicked", "member")
            update_id = self._chat_member_update(state, chat, user, old, new)
        return _ok({"blocked": user.blocked, "update_id": update_id})

    async def create_group(self, request: web.Request) -> web.Response:
        state = self._state(request)
        body, _ = await self._body(request)
        title = body.get("title")
        if not isinstance(title, str) or not title:
            raise ControlError(400, "title is required")
        member_ids = body.get("member_ids", [])
        if not isinstance(member_ids, list):
            raise ControlError(400, "member_ids must be a list")
        members = [self._user(state, member_id) for member_id in member_ids]
        with_bot = bool(body.get("with_bot", True))
        if with_bot and not members:
            raise ControlError(400, "someone has to add the bot: give at least one member")
        chat = ChatState(self.sandbox.new_group_id(), "group", title=title)
        chat.members = [member.id for member in members]
        chat.bot_member = False
        state.chats[chat.id] = chat
        update_id = None
        if with_bot:
            chat.bot_member = True
            update_id = self._chat_member_update(state, chat, members[0], "left", "member")
        return _ok({"chat": chat.chat_object(), "update_id": update_id})

    async def group_bot(self, request: web.Request) -> web.Response:
        state = self._state(request)
        chat = self._chat(state, request.match_info["chat_id"])
        if chat.type == "private":
            raise ControlError(400, "not a group")
        body, _ = await self._body(request)
        member = bool(body.get("member", True))
        actor_id = body.get("by_user_id", chat.members[0] if chat.members else None)
        if actor_id is None:
            raise ControlError(400, "by_user_id is required for a group without members")
        actor = self._user(state, actor_id)
        update_id = None
        if member != chat.bot_member:
            chat.bot_member = member
            old, new = ("left", "member") if member else ("member", "left")
            update_id = self._chat_member_update(state, chat, actor, old, new)
        return _ok({"member": chat.bot_member, "update_id": update_id})

    def post_user_message(
        self,
        state: BotState,
        user: UserRecord,
        chat: ChatState,
        content: dict[str, Any],
        reply_to_message_id: int | None = None,
    ) -> tuple[dict[str, Any], int | None]:
        """Store a user's message, log it, and emit the update the bot should get."""
        if chat.type == "private":
            user.started = True
        message: dict[str, Any] = {
            "message_id": chat.allocate_message_id(),
            "from": user.as_user(),
            "chat": chat.chat_object(),
            "date": int(time.time()),
        }
        reply_target = None
        if reply_to_message_id is not None:
            reply_target = chat.messages.get(reply_to_message_id)
            if reply_target is None:
                raise ControlError(400, f"message {reply_to_message_id} not found in chat")
            message["reply_to_message"] = {
                k: v for k, v in reply_target.items() if k != "reply_to_message"
            }
        message.update(content)
        meta = MessageMeta(from_bot=False)
        chat.store(message, meta)
        text = message.get("text", "")
        keyboard = chat.reply_keyboard
        if (
            keyboard
            and keyboard.get("one_time_keyboard")
            and any(b.get("text") == text for row in keyboard.get("keyboard", []) for b in row)
        ):
            chat.reply_keyboard = None
        chat.add_event(
            "message",
            from_bot=False,
            message_id=message["message_id"],
            message=self.sandbox.control_view(message, meta),
        )
        if chat.type != "private" and self.sandbox.limits.group_privacy:
            replied_to_bot = (
                reply_target is not None and reply_target.get("from", {}).get("id") == state.bot_id
            )
            if not text.startswith("/") and not replied_to_bot:
                return message, None
        if chat.type != "private" and not chat.bot_member:
            return message, None
        return message, self.sandbox.enqueue_update(state, {"message": message}, chat)

    async def send_message(self, request: web.Request) -> web.Response:
        state = self._state(request)
        body, uploads = await self._body(request)
        user = self._user(state, body.get("user_id"))
        chat = self._user_chat(state, user, body.get("chat_id"))
        reply_to = body.get("reply_to_message_id")
        reply_to_id = None if reply_to is None else _int(reply_to, "reply_to_message_id")
        kinds = [k for k in SENDABLE if k in body]
        if len(kinds) != 1:
            raise ControlError(400, "give exactly one of " + ", ".join(SENDABLE))
        contents = await self._contents(state, kinds[0], body, uploads)
        messages: list[dict[str, Any]] = []
        update_ids: list[int | None] = []
        for content in contents:
            message, update_id = self.post_user_message(state, user, chat, content, reply_to_id)
            messages.append(message)
            update_ids.append(update_id)
        return _ok(
            {
                "messages": messages,
                "update_ids": update_ids,
                "seq": chat.seq,
                "chat_state": self._chat_state(chat),
            }
        )

    def _caption(self, body: dict[str, Any]) -> dict[str, Any]:
        caption = body.get("caption")
        if caption is None:
            return {}
        if not isinstance(caption, str):
            raise ControlError(400, "caption must be a string")
        if len(caption) > self.sandbox.limits.max_caption:
            raise ControlError(400, "caption is too long")
        return {"caption": caption}

    async def _contents(
        self, state: BotState, kind: str, body: dict[str, Any], uploads: dict[str, Upload]
    ) -> list[dict[str, Any]]:
        limits = self.sandbox.limits
        if kind == "text":
            text = body["text"]
            if not isinstance(text, str) or not text.strip():
                raise ControlError(400, "text must be a non-empty string")
            if len(text) > limits.max_text:
                raise ControlError(400, "text is too long")
            content: dict[str, Any] = {"text": text}
            entities = detect_entities(text)
            if entities:
                content["entities"] = entities
            return [content]
        if kind == "photo":
            data = self._binary(body["photo"], uploads, "photo")
            return [
                {
                    "photo": await store_photo(state, data, limits.max_image_pixels),
                    **self._caption(body),
                }
            ]
        if kind == "document":
            return [self._document(state, body, body["document"], uploads)]
        if kind == "voice":
            data = self._binary(body["voice"], uploads, "voice")
            duration = _int(body.get("duration", 1), "duration")
            voice = store_media(state, "voice", data, mime_type="audio/ogg", duration=duration)
            return [{"voice": voice, **self._caption(body)}]
        if kind == "video":
            data = self._binary(body["video"], uploads, "video")
            video = store_media(
                state,
                "video",
                data,
                file_name=body.get("file_name") or None,
                mime_type=body.get("mime_type") or "video/mp4",
                duration=_int(body.get("duration", 1), "duration"),
                width=_int(body.get("width", 320), "width"),
                height=_int(body.get("height", 240), "height"),
                thumbnail=await self._thumbnail(state, body, uploads),
            )
            return [{"video": video, **self._caption(body)}]
        if kind == "video_note":
            data = self._binary(body["video_note"], uploads, "video_note")
            note = store_media(
                state,
                "video_note",
                data,
                duration=_int(body.get("duration", 1), "duration"),
                length=_int(body.get("length", 240), "length"),
                thumbnail=await self._thumbnail(state, body, uploads),
            )
            note.pop("mime_type", None)  # the Bot API's VideoNote has none
            return [{"video_note": note}]
        items = body["album"]
        if not isinstance(items, list) or not 2 <= len(items) <= 10:
            raise ControlError(400, "album must be a list of 2-10 items")
        group_id = str(next(state.media_group_counter))
        contents = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise ControlError(400, "album items must be objects")
            item_type = item.get("type", "photo")
            if item_type == "photo":
                data = self._binary(item.get("media"), uploads, f"album[{index}]")
                content = {"photo": await store_photo(state, data, limits.max_image_pixels)}
            elif item_type == "document":
                content = self._document(state, item, item.get("media"), uploads)
            else:
                raise ControlError(400, f"album item type {item_type!r} is not supported")
            content.update(self._caption(item))
            content["media_group_id"] = group_id
            contents.append(content)
        return contents

    async def _thumbnail(
        self, state: BotState, body: dict[str, Any], uploads: dict[str, Upload]
    ) -> dict[str, Any] | None:
        if body.get("thumbnail") is None:
            return None
        data = self._binary(body["thumbnail"], uploads, "thumbnail")
        try:
            return await store_thumbnail(state, data, self.sandbox.limits.max_image_pixels)
        except ApiError as exc:
            raise ControlError(400, f"thumbnail: {exc}") from None

    def _document(
        self, state: BotState, body: dict[str, Any], value: Any, uploads: dict[str, Upload]
    ) -> dict[str, Any]:
        data = self._binary(value, uploads, "document")
        file_name = body.get("file_name") or "document"
        mime_type = body.get("mime_type") or None
        document = store_media(state, "document", data, file_name=file_name, mime_type=mime_type)
        return {"document": document, **self._caption(body)}

    async def press(self, request: web.Request) -> web.Response:
        state = self._state(request)
        body, _ = await self._body(request)
        user = self._user(state, body.get("user_id"))
        chat = self._user_chat(state, user, body.get("chat_id"))
        raw_id = body.get("message_id")
        message_id = None if raw_id is None else _int(raw_id, "message_id")
        if "data" in body:
            if message_id is None:
                raise ControlError(400, "message_id is required with raw data")
            data = body["data"]
            if not isinstance(data, str):
                raise ControlError(400, "data must be a string")
            message = chat.messages.get(message_id)
            if message is None or chat.meta[message_id].deleted:
                raise ControlError(404, f"message {message_id} not found in chat {chat.id}")
        else:
            button = body.get("button")
            if not isinstance(button, str):
                raise ControlError(400, "give button (text or callback_data) or data")
            message, data = self._find_button(chat, button, message_id)
        user.started = user.started or chat.type == "private"
        query_id = new_callback_id()
        query: dict[str, Any] = {
            "id": query_id,
            "from": user.as_user(),
            # A snapshot: a later edit must not change what this press saw.
            "message": dict(message),
            "chat_instance": chat.chat_instance,
            "data": data,
        }
        state.callbacks[query_id] = CallbackRecord(
            id=query_id,
            user_id=user.id,
            chat_id=chat.id,
            message_id=message["message_id"],
            data=data,
            created=time.time(),
        )
        event = chat.add_event(
            "callback_query",
            from_bot=False,
            message_id=message["message_id"],
            callback_query=query,
        )
        update_id = self.sandbox.enqueue_update(state, {"callback_query": query}, chat)
        return _ok(
            {
                "callback_query": query,
                "update_id": update_id,
                "seq": event["seq"],
                "chat_state": self._chat_state(chat),
            }
        )

    def _find_button(
        self, chat: ChatState, wanted: str, message_id: int | None
    ) -> tuple[dict[str, Any], str]:
        candidates = [
            message
            for message, meta in reversed(chat.live_messages())
            if meta.from_bot
            and "reply_markup" in message
            and (message_id is None or message["message_id"] == message_id)
        ]
        for field in ("text", "callback_data"):
            for message in candidates:
                for row in message["reply_markup"].get("inline_keyboard", []):
                    for button in row:
                        if button.get(field) == wanted and "callback_data" in button:
                            return message, button["callback_data"]
        available = "; ".join(
            f"message {m['message_id']}: "
            + ", ".join(
                f"{b.get('text')!r} ({b['callback_data']!r})"
                if "callback_data" in b
                else f"{b.get('text')!r} (no callback_data)"
                for row in m["reply_markup"].get("inline_keyboard", [])
                for b in row
            )
            for m in candidates
        )
        where = f"message {message_id}" if message_id is not None else f"chat {chat.id}"
        raise ControlError(
            400,
            f"no inline button {wanted!r} in {where}; available: {available or 'none'}",
            "button_not_found",
        )

    async def callback_answer(self, request: web.Request) -> web.Response:
        state = self._state(request)
        record = state.callbacks.get(request.match_info["query_id"])
        if record is None:
            raise ControlError(404, "unknown callback query")
        return _ok({"answered": record.answer is not None, "answer": record.answer})

    def _chat_state(self, chat: ChatState) -> dict[str, Any]:
        """What a user currently sees; clients cache it to answer without a round trip."""
        last = None
        for message_id in reversed(chat.messages):
            meta = chat.meta[message_id]
            if meta.from_bot and not meta.deleted:
                last = self.sandbox.control_view(chat.messages[message_id], meta)
                break
        return {
            "chat_id": chat.id,
            "seq": chat.seq,
            "reply_keyboard": chat.reply_keyboard,
            "last_bot_message": last,
        }

    def _chat_summary(self, state: BotState, chat: ChatState) -> dict[str, Any]:
        return {
            "chat_state": self._chat_state(chat),
            "chat": chat.chat_object(),
            "members": chat.members,
            "bot_member": chat.bot_member,
            "reply_keyboard": chat.reply_keyboard,
            "menu_button": chat.menu_button or state.default_menu_button,
            "seq": chat.seq,
        }

    async def list_chats(self, request: web.Request) -> web.Response:
        state = self._state(request)
        return _ok([self._chat_summary(state, chat) for chat in state.chats.values()])

    async def chat_info(self, request: web.Request) -> web.Response:
        state = self._state(request)
        return _ok(self._chat_summary(state, self._chat(state, request.match_info["chat_id"])))

    async def chat_messages(self, request: web.Request) -> web.Response:
        state = self._state(request)
        chat = self._chat(state, request.match_info["chat_id"])
        messages = [
            self.sandbox.control_view(message, meta) for message, meta in chat.live_messages()
        ]
        return _ok(
            {
                "messages": messages,
                "seq": chat.seq,
                "reply_keyboard": chat.reply_keyboard,
                "chat_state": self._chat_state(chat),
            }
        )

    async def wait(self, request: web.Request) -> web.Response:
        state = self._state(request)
        chat = self._chat(state, request.match_info["chat_id"])
        query = request.query
        after = max(0, _int(query.get("after", 0), "after"))
        timeout = min(max(0.0, _float(query.get("timeout", 0), "timeout")), MAX_WAIT)
        count = max(0, _int(query.get("count", 1), "count"))
        types = set(filter(None, query.get("type", "").split(",")))
        if types - EVENT_TYPES:
            raise ControlError(400, f"unknown event types {sorted(types - EVENT_TYPES)}")
        from_bot = query.get("from_bot")
        wanted_bot = None if from_bot is None else from_bot.lower() in {"1", "true", "yes"}
        message_id = query.get("message_id")
        wanted_message = None if message_id is None else _int(message_id, "message_id")

        def matching() -> list[dict[str, Any]]:
            return [
                event
                for event in chat.events[after:]
                if (not types or event["type"] in types)
                and (wanted_bot is None or event["from_bot"] == wanted_bot)
                and (wanted_message is None or event.get("message_id") == wanted_message)
            ]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        found = matching()
        while len(found) < count and not self.sandbox.closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await chat.signal.wait(remaining)
            found = matching()
        return _ok(
            {
                "events": found,
                "seq": chat.seq,
                "timed_out": len(found) < count,
                "chat_state": self._chat_state(chat),
            }
        )

    async def calls(self, request: web.Request) -> web.Response:
        state = self._state(request)
        method = request.query.get("method", "").lower()
        since_id = _int(request.query.get("since_id", 0), "since_id")
        return _ok(
            [
                call
                for call in state.calls
                if call["id"] > since_id and (not method or call["method"].lower() == method)
            ]
        )

    async def clear_calls(self, request: web.Request) -> web.Response:
        self._state(request).calls.clear()
        return _ok(True)

    async def list_faults(self, request: web.Request) -> web.Response:
        return _ok([fault.as_dict() for fault in self._state(request).faults])

    async def add_fault(self, request: web.Request) -> web.Response:
        state = self._state(request)
        body, _ = await self._body(request)
        method = body.get("method", "*")
        if not isinstance(method, str) or not method:
            raise ControlError(400, "method must be a method name or '*'")
        status = body.get("status", 500)
        if isinstance(status, str) and status not in {"timeout", "drop"}:
            status = _int(status, "status")
        if isinstance(status, int) and not 400 <= status <= 599:
            raise ControlError(400, "status must be 400-599, 'timeout' or 'drop'")
        description = body.get("description")
        fault = Fault(
            method=method,
            status=status,
            count=max(1, _int(body.get("count", 1), "count")),
            retry_after=max(1, _int(body.get("retry_after", 1), "retry_after")),
            delay=max(0.0, _float(body.get("delay", 70.0), "delay")),
            description=description if isinstance(description, str) else None,
        )
        state.faults.append(fault)
        return _ok([item.as_dict() for item in state.faults])

    async def clear_faults(self, request: web.Request) -> web.Response:
        self._state(request).faults.clear()
        return _ok(True)

    async def raw_update(self, request: web.Request) -> web.Response:
        state = self._state(request)
        body, _ = await self._body(request)
        payload = {key: value for key, value in body.items() if key != "update_id"}
        if len(payload) != 1:
            raise ControlError(400, "an update has exactly one field besides update_id")
        update_id = None
        if _flag(request, "keep_update_id"):
            update_id = _int(body.get("update_id"), "update_id")
            if update_id in state.updates:
                raise ControlError(400, f"update {update_id} is already queued")
        inner = next(iter(payload.values()))
        chat = None
        if isinstance(inner, dict):
            message = inner.get("message")
            chat_data = inner.get("chat")
            if chat_data is None and isinstance(message, dict):
                chat_data = message.get("chat")
            if isinstance(chat_data, dict):
                chat = state.chats.get(chat_data.get("id", 0))
            query = body.get("callback_query")
            if query is inner and isinstance(query.get("id"), str):
                self._remember_raw_press(state, query, chat)
        update_id = self.sandbox.enqueue_update(state, payload, chat, update_id=update_id)
        if _flag(request, "predating_allowed_updates"):
            state.predating_allowed_updates.add(update_id)
        return _ok({"update_id": update_id})

    def _remember_raw_press(
        self, state: BotState, query: dict[str, Any], chat: ChatState | None
    ) -> None:
        """A raw tap can be answered (answerCallbackQuery) as a press can; one on an inline
        message has no chat or message."""
        message = query.get("message")
        message_id = message.get("message_id") if isinstance(message, dict) else None
        sender = query.get("from")
        state.callbacks[query["id"]] = CallbackRecord(
            id=query["id"],
            user_id=sender.get("id", 0) if isinstance(sender, dict) else 0,
            chat_id=chat.id if chat is not None else None,
            message_id=message_id if isinstance(message_id, int) else None,
            data=str(query.get("data", "")),
            created=time.time(),
        )

    async def pending_updates(self, request: web.Request) -> web.Response:
        state = self._state(request)
        return _ok([update for update, _chat in state.updates.values()])

    async def file_bytes(self, request: web.Request) -> web.Response:
        state = self._state(request)
        stored = state.files.get(request.match_info["file_id"])
        if stored is None:
            raise ControlError(404, "unknown file_id")
        headers = {"X-File-Path": stored.file_path}
        if stored.file_name:
            headers["X-File-Name"] = stored.file_name.encode("ascii", "replace").decode("ascii")
        return web.Response(
            body=stored.data,
            content_type=stored.mime_type or "application/octet-stream",
            headers=headers,
        )
