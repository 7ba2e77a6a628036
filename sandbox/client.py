"""An httpx client for the sandbox's control API: play users and inspect what the bot did.

Typical test::

    async with SandboxClient(sandbox.base_url, token) as control:
        pupil = await control.create_user("Sanne", username="sanne")
        await pupil.send_text("/start ABC123")
        [welcome] = await pupil.wait_for_reply()
        await pupil.press("Doelen")
        edited = await pupil.wait_for_edit(welcome["message_id"])

Waiting uses the sandbox's long-poll endpoint, so tests do not sleep. Every message dict is
Bot API JSON plus a ``"sandbox"`` key: ``{"from_bot": bool, "keyboard": <reply keyboard or
None>}``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import httpx


class SandboxError(RuntimeError):
    """The control API refused a request."""

    def __init__(self, status: int, description: str, error_type: str | None = None) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status
        self.description = description
        self.error_type = error_type


def _text_of(message: dict[str, Any]) -> str:
    text = message.get("text") or message.get("caption")
    if text is not None:
        return repr(text[:80])
    kinds = [
        k for k in ("photo", "document", "voice", "video", "video_note", "audio") if k in message
    ]
    return f"<{kinds[0] if kinds else 'message'}>"


def _describe_events(events: list[dict[str, Any]]) -> str:
    if not events:
        return "nothing"
    parts = []
    for event in events[-10:]:
        who = f"seq {event['seq']}: " + ("bot" if event.get("from_bot") else "user")
        if event["type"] in {"message", "edit"}:
            parts.append(
                f"{who} {event['type']} #{event['message_id']} {_text_of(event['message'])}"
            )
        elif event["type"] == "callback_answer":
            parts.append(f"bot answered callback {event['answer']}")
        else:
            parts.append(f"{who} {event['type']} #{event.get('message_id', '-')}")
    return "; ".join(parts)


class SandboxClient:
    """Control-API client for one bot token of a running sandbox."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self._timeout = timeout
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        self._prefix = f"/sandbox/{token}"
        # chat id -> the newest "chat_state" any answer carried; lets SandboxUser answer
        # reply_keyboard() / last_bot_message() synchronously inside async tests.
        self._chat_states: dict[int, dict[str, Any]] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any:
        kwargs: dict[str, Any] = {"params": params}
        if files:
            kwargs["data"] = {"payload": json.dumps(body or {})}
            kwargs["files"] = files
        elif body is not None:
            kwargs["json"] = body
        if timeout is not None:
            kwargs["timeout"] = timeout
        response = await self._http.request(method, self._prefix + path, **kwargs)
        try:
            data = response.json()
        except ValueError:
            raise SandboxError(response.status_code, response.text[:200]) from None
        if not data.get("ok"):
            raise SandboxError(
                data.get("error_code", response.status_code),
                data.get("description", ""),
                data.get("error_type"),
            )
        result = data["result"]
        if isinstance(result, dict) and isinstance(result.get("chat_state"), dict):
            self._remember(result["chat_state"])
        return result

    def _remember(self, chat_state: dict[str, Any]) -> None:
        chat_id = chat_state["chat_id"]
        known = self._chat_states.get(chat_id)
        # Concurrent requests may answer out of order; never step back to an older view.
        if known is None or known["seq"] <= chat_state["seq"]:
            self._chat_states[chat_id] = chat_state

    def cached_chat_state(self, chat_id: int) -> dict[str, Any] | None:
        """The newest chat view seen in any answer (None before any call about the chat)."""
        return self._chat_states.get(chat_id)

    # ---------------------------------------------------------------- people

    async def create_user(
        self,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "nl",
        *,
        started: bool = True,
        user_id: int | None = None,
    ) -> SandboxUser:
        """Create a Telegram user (with ``user_id``: that id, else a new one).

        ``started=False`` makes a user who never opened the bot: until they write to it, the
        bot's messages to them fail with "Forbidden: bot can't initiate conversation".
        """
        body: dict[str, Any] = {
            "first_name": first_name,
            "last_name": last_name,
            "username": username,
            "language_code": language_code,
            "started": started,
        }
        if user_id is not None:
            body["id"] = user_id
        data = await self._call("POST", "/users", body=body)
        return SandboxUser(self, data)

    async def create_group(
        self, title: str, members: list[SandboxUser], *, with_bot: bool = True
    ) -> int:
        """Create a group (first member is its creator); returns the negative chat id."""
        result = await self._call(
            "POST",
            "/groups",
            body={"title": title, "member_ids": [m.id for m in members], "with_bot": with_bot},
        )
        return int(result["chat"]["id"])

    async def set_group_bot(
        self, chat_id: int, member: bool, by: SandboxUser | None = None
    ) -> None:
        body: dict[str, Any] = {"member": member}
        if by is not None:
            body["by_user_id"] = by.id
        await self._call("POST", f"/groups/{chat_id}/bot", body=body)

    async def set_blocked(self, user_id: int, blocked: bool) -> None:
        await self._call("POST", f"/users/{user_id}/block", body={"blocked": blocked})

    # ------------------------------------------------------------ inspection

    async def overview(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "")
        return result

    async def chat(self, chat_id: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", f"/chats/{chat_id}")
        return result

    async def messages(self, chat_id: int) -> list[dict[str, Any]]:
        result = await self._call("GET", f"/chats/{chat_id}/messages")
        messages: list[dict[str, Any]] = result["messages"]
        return messages

    async def wait_events(
        self,
        chat_id: int,
        *,
        after: int = 0,
        timeout: float = 0.0,  # noqa: ASYNC109
        count: int = 1,
        types: list[str] | None = None,
        from_bot: bool | None = None,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        """Long-poll the chat's event log; see the control API docs for the fields."""
        params: dict[str, Any] = {"after": after, "timeout": timeout, "count": count}
        if types:
            params["type"] = ",".join(types)
        if from_bot is not None:
            params["from_bot"] = "true" if from_bot else "false"
        if message_id is not None:
            params["message_id"] = message_id
        result: dict[str, Any] = await self._call(
            "GET", f"/chats/{chat_id}/wait", params=params, timeout=timeout + self._timeout
        )
        return result

    async def calls(self, method: str | None = None, since_id: int = 0) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"since_id": since_id}
        if method:
            params["method"] = method
        result: list[dict[str, Any]] = await self._call("GET", "/calls", params=params)
        return result

    async def clear_calls(self) -> None:
        await self._call("DELETE", "/calls")

    async def callback_answer(self, query_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", f"/callbacks/{query_id}")
        return result

    async def download(self, file_id: str) -> bytes:
        response = await self._http.get(f"{self._prefix}/files/{file_id}")
        if response.status_code != 200:
            raise SandboxError(response.status_code, response.text[:200])
        return response.content

    async def pending_updates(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._call("GET", "/updates")
        return result

    # --------------------------------------------------------------- control

    async def inject_fault(
        self,
        method: str = "*",
        status: int | str = 500,
        count: int = 1,
        *,
        retry_after: int = 1,
        delay: float = 70.0,
        description: str | None = None,
    ) -> list[dict[str, Any]]:
        """Make the next ``count`` calls of ``method`` fail (500/429/4xx, "timeout", "drop")."""
        body: dict[str, Any] = {
            "method": method,
            "status": status,
            "count": count,
            "retry_after": retry_after,
            "delay": delay,
        }
        if description is not None:
            body["description"] = description
        result: list[dict[str, Any]] = await self._call("POST", "/faults", body=body)
        return result

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/faults")

    async def get_limits(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/limits")
        return result

    async def set_limits(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", "/limits", body=changes)
        return result

    async def enqueue_raw_update(
        self,
        update: dict[str, Any],
        *,
        keep_update_id: bool = False,
        predating_allowed_updates: bool = False,
    ) -> int:
        """Queue any update (Bot API JSON) for the bot; returns its update_id.

        Its update_id is the next in sequence unless ``keep_update_id`` (one Telegram never
        uses, say). ``predating_allowed_updates``: delivered even if the bot did not ask for
        its type, as Telegram does with updates created before the bot's ``allowed_updates``.
        """
        params = {
            name: "true"
            for name, wanted in (
                ("keep_update_id", keep_update_id),
                ("predating_allowed_updates", predating_allowed_updates),
            )
            if wanted
        }
        result = await self._call("POST", "/updates/raw", body=update, params=params)
        return int(result["update_id"])


class SandboxUser:
    """One simulated Telegram user; every chat_id defaults to the user's private chat."""

    def __init__(self, client: SandboxClient, data: dict[str, Any]) -> None:
        self.client = client
        self.data = data
        self.id: int = data["id"]
        self.first_name: str = data["first_name"]
        self.username: str | None = data.get("username")
        # Per chat: the seq after which wait_for_reply / wait_for_edit look.
        self._reply_cursor: dict[int, int] = {}
        self._edit_cursor: dict[int, int] = {}
        self._query_chats: dict[str, int] = {}

    @property
    def chat_id(self) -> int:
        """Private chat ids equal user ids in Telegram."""
        return self.id

    def __repr__(self) -> str:
        return f"SandboxUser(id={self.id}, first_name={self.first_name!r})"

    def _chat(self, chat_id: int | None) -> int:
        return self.id if chat_id is None else chat_id

    def _mark(self, chat_id: int, seq: int) -> None:
        self._reply_cursor[chat_id] = seq
        self._edit_cursor[chat_id] = seq

    async def _send(
        self,
        body: dict[str, Any],
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> list[dict[str, Any]]:
        chat_id = self._chat(body.get("chat_id"))
        body = {**body, "user_id": self.id, "chat_id": chat_id}
        result = await self.client._call("POST", "/messages", body=body, files=files)
        self._mark(chat_id, result["seq"])
        messages: list[dict[str, Any]] = result["messages"]
        return messages

    # ---------------------------------------------------------------- acting

    async def send_text(
        self, text: str, chat_id: int | None = None, *, reply_to_message_id: int | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text, "chat_id": chat_id}
        if reply_to_message_id is not None:
            body["reply_to_message_id"] = reply_to_message_id
        return (await self._send(body))[0]

    async def send_photo(
        self, data: bytes, caption: str | None = None, *, chat_id: int | None = None
    ) -> dict[str, Any]:
        body = {"photo": "attach://photo", "caption": caption, "chat_id": chat_id}
        if caption is None:
            del body["caption"]
        return (await self._send(body, {"photo": ("photo.jpg", data, "image/jpeg")}))[0]

    async def send_document(
        self,
        data: bytes,
        filename: str,
        mime_type: str,
        caption: str | None = None,
        *,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "document": "attach://document",
            "file_name": filename,
            "mime_type": mime_type,
            "chat_id": chat_id,
        }
        if caption is not None:
            body["caption"] = caption
        return (await self._send(body, {"document": (filename, data, mime_type)}))[0]

    async def send_album(
        self, items: list[bytes], caption: str | None = None, *, chat_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Several photos sharing one media_group_id; ``caption`` goes on the first."""
        album: list[dict[str, Any]] = []
        files: dict[str, tuple[str, bytes, str]] = {}
        for index, data in enumerate(items):
            entry: dict[str, Any] = {"type": "photo", "media": f"attach://p{index}"}
            if index == 0 and caption is not None:
                entry["caption"] = caption
            album.append(entry)
            files[f"p{index}"] = (f"photo{index}.jpg", data, "image/jpeg")
        return await self._send({"album": album, "chat_id": chat_id}, files)

    async def send_voice(
        self, data: bytes, duration: int, *, chat_id: int | None = None
    ) -> dict[str, Any]:
        body = {"voice": base64.b64encode(data).decode("ascii"), "duration": duration}
        return (await self._send({**body, "chat_id": chat_id}))[0]

    async def send_video(
        self,
        data: bytes,
        duration: int,
        *,
        width: int = 320,
        height: int = 240,
        file_name: str | None = None,
        mime_type: str = "video/mp4",
        thumbnail: bytes | None = None,
        caption: str | None = None,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """A video as the Telegram app sends one; ``thumbnail`` (any picture) stands in for
        the still Telegram cuts from the video."""
        body: dict[str, Any] = {
            "video": "attach://video",
            "duration": duration,
            "width": width,
            "height": height,
            "mime_type": mime_type,
            "chat_id": chat_id,
        }
        files = {"video": (file_name or "video.mp4", data, mime_type)}
        if file_name is not None:
            body["file_name"] = file_name
        if caption is not None:
            body["caption"] = caption
        if thumbnail is not None:
            body["thumbnail"] = "attach://thumbnail"
            files["thumbnail"] = ("thumbnail.jpg", thumbnail, "image/jpeg")
        return (await self._send(body, files))[0]

    async def send_video_note(
        self,
        data: bytes,
        duration: int,
        *,
        length: int = 240,
        thumbnail: bytes | None = None,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """A round video message (square video, at most a minute in the real app)."""
        body: dict[str, Any] = {
            "video_note": "attach://video_note",
            "duration": duration,
            "length": length,
            "chat_id": chat_id,
        }
        files = {"video_note": ("video_note.mp4", data, "video/mp4")}
        if thumbnail is not None:
            body["thumbnail"] = "attach://thumbnail"
            files["thumbnail"] = ("thumbnail.jpg", thumbnail, "image/jpeg")
        return (await self._send(body, files))[0]

    async def _press(self, body: dict[str, Any], chat_id: int | None) -> dict[str, Any]:
        chat = self._chat(chat_id)
        try:
            result = await self.client._call(
                "POST", "/callback", body={**body, "user_id": self.id, "chat_id": chat}
            )
        except SandboxError as exc:
            if exc.error_type == "button_not_found":
                raise AssertionError(exc.description) from None
            raise
        self._mark(chat, result["seq"])
        query: dict[str, Any] = result["callback_query"]
        self._query_chats[query["id"]] = chat
        return query

    async def press(
        self,
        button_text_or_callback_data: str,
        message_id: int | None = None,
        *,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """Press an inline button (by text, else callback_data) on the newest bot message
        that has it, or on ``message_id``; returns the callback_query sent to the bot."""
        body: dict[str, Any] = {"button": button_text_or_callback_data}
        if message_id is not None:
            body["message_id"] = message_id
        return await self._press(body, chat_id)

    async def press_raw(
        self, message_id: int, data: str, *, chat_id: int | None = None
    ) -> dict[str, Any]:
        """Send any callback_data for ``message_id``, as a tampering client could."""
        return await self._press({"message_id": message_id, "data": data}, chat_id)

    async def block(self) -> None:
        await self.client.set_blocked(self.id, True)

    async def unblock(self) -> None:
        await self.client.set_blocked(self.id, False)

    # --------------------------------------------------------------- looking

    async def messages(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        return await self.client.messages(self._chat(chat_id))

    async def refresh(self, chat_id: int | None = None) -> None:
        """Fetch the chat's current state for :meth:`reply_keyboard` / :meth:`last_bot_message`.

        Not needed after a send, press or wait: their answers already carry it.
        """
        await self.client.chat(self._chat(chat_id))

    def last_bot_message(self, chat_id: int | None = None) -> dict[str, Any]:
        """The newest bot message in the chat, as of the last send/press/wait/refresh."""
        chat = self._chat(chat_id)
        state = self.client.cached_chat_state(chat)
        message = state["last_bot_message"] if state else None
        if message is None:
            raise AssertionError(f"the bot has not sent anything to chat {chat} (yet)")
        result: dict[str, Any] = message
        return result

    def reply_keyboard(self, chat_id: int | None = None) -> list[list[str]] | None:
        """Button texts of the reply keyboard the user sees (as of the last send/press/wait/
        refresh), or None when the bot has not set one or removed it."""
        state = self.client.cached_chat_state(self._chat(chat_id))
        keyboard = state["reply_keyboard"] if state else None
        if not keyboard:
            return None
        return [[button["text"] for button in row] for row in keyboard["keyboard"]]

    async def _recent(self, chat: int, cursor: int) -> str:
        """Describe the chat's latest events for a timeout message (a few before the cursor)."""
        seen = await self.client.wait_events(chat, after=max(0, cursor - 5), count=0)
        return f"latest events (seq > {cursor} are new): {_describe_events(seen['events'])}"

    async def wait_for_reply(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109
        count: int = 1,
        *,
        chat_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Wait for ``count`` new bot messages since the last send/press/wait in this chat."""
        chat = self._chat(chat_id)
        cursor = self._reply_cursor.get(chat, 0)
        result = await self.client.wait_events(
            chat, after=cursor, timeout=timeout, count=count, types=["message"], from_bot=True
        )
        events = result["events"]
        if len(events) < count:
            raise TimeoutError(
                f"expected {count} new bot message(s) in chat {chat} within {timeout}s, got "
                f"{len(events)}; {await self._recent(chat, cursor)}"
            )
        taken = events[:count]
        self._reply_cursor[chat] = taken[-1]["seq"]
        return [event["message"] for event in taken]

    async def wait_for_edit(
        self,
        message_id: int,
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """Wait until the bot edits ``message_id`` (after the last send/press); returns it."""
        chat = self._chat(chat_id)
        cursor = self._edit_cursor.get(chat, 0)
        result = await self.client.wait_events(
            chat, after=cursor, timeout=timeout, types=["edit"], message_id=message_id
        )
        if not result["events"]:
            raise TimeoutError(
                f"message {message_id} in chat {chat} was not edited within {timeout}s; "
                f"{await self._recent(chat, cursor)}"
            )
        event = result["events"][0]
        self._edit_cursor[chat] = event["seq"]
        message: dict[str, Any] = event["message"]
        return message

    async def wait_until(
        self,
        predicate: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        chat_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Wait until ``predicate(messages)`` holds for the chat's messages; returns them."""
        loop_chat = self._chat(chat_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = await self.client._call("GET", f"/chats/{loop_chat}/messages")
            messages: list[dict[str, Any]] = result["messages"]
            if predicate(messages):
                return messages
            remaining = deadline - loop.time()
            if remaining <= 0:
                tail = ", ".join(_text_of(m) for m in messages[-5:]) or "no messages"
                raise TimeoutError(
                    f"condition not met in chat {loop_chat} within {timeout}s; last: {tail}"
                )
            await self.client.wait_events(
                loop_chat, after=result["seq"], timeout=remaining, count=1
            )

    async def wait_for_callback_answer(
        self,
        query_id: str,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Wait for the bot's answerCallbackQuery to a press; returns the answer fields."""
        chat = self._query_chats.get(query_id, self.id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            seq = (await self.client.chat(chat))["seq"]
            state = await self.client.callback_answer(query_id)
            if state["answered"]:
                answer: dict[str, Any] = state["answer"]
                return answer
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"callback query {query_id} was not answered in {timeout}s")
            await self.client.wait_events(
                chat, after=seq, timeout=remaining, types=["callback_answer"]
            )
