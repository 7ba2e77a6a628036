"""The bot's HTTP session to the Bot API: aiogram's, doing less work per call.

Every update costs one or two Bot API calls, and in the load bench (bench/load.py) these were
a third of the bot's CPU time per update. Two things aiogram does on every call are not needed:

* The parameters go as one JSON body, as the Bot API accepts them, instead of a form whose
  nested objects (the keyboard) are each JSON-encoded first and then percent-encoded. Calls
  that upload a file still go as a multipart form.
* An edit's answer (the whole edited message, keyboard and all) is not turned into aiogram's
  objects: nothing in the bot reads it. The call returns True, as the Bot API itself does for
  messages sent inline, which every caller of an edit already has to accept. Errors are read
  and raised exactly as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import (
    EditMessageCaption,
    EditMessageMedia,
    EditMessageReplyMarkup,
    EditMessageText,
    TelegramMethod,
)
from aiogram.methods.base import Response, TelegramType
from aiogram.types import InputFile
from aiohttp import ClientError, ClientTimeout

if TYPE_CHECKING:
    from aiogram import Bot

_EDITS = (EditMessageText, EditMessageCaption, EditMessageReplyMarkup, EditMessageMedia)
_JSON = {"Content-Type": "application/json"}


class BotApiSession(AiohttpSession):
    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 (aiogram's signature)
    ) -> TelegramType:
        files: dict[str, InputFile] = {}
        # aiogram's own preparation of each parameter (defaults filled in, files set aside),
        # given the whole call at once: a dict comes back as its JSON text.
        body = self.prepare_value(method.model_dump(warnings=False), bot=bot, files=files)
        if files:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(
                url,
                data=body,
                headers=_JSON,
                timeout=ClientTimeout(total=self.timeout if timeout is None else timeout),
            ) as response:
                content = await response.text()
        except TimeoutError as error:
            raise TelegramNetworkError(method=method, message="Request timeout error") from error
        except ClientError as error:
            message = f"{type(error).__name__}: {error}"
            raise TelegramNetworkError(method=method, message=message) from error
        result = self.check_response(
            bot=bot, method=method, status_code=response.status, content=content
        )
        return cast(TelegramType, result.result)

    def check_response(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        status_code: int,
        content: str,
    ) -> Response[TelegramType]:
        if isinstance(method, _EDITS) and status_code == 200:
            try:
                succeeded = self.json_loads(content).get("ok") is True
            except (ValueError, AttributeError):
                succeeded = False
            if succeeded:
                return cast(Response[TelegramType], Response[bool](ok=True, result=True))
        return super().check_response(bot, method, status_code, content)
