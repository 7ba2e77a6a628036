"""Typed text made safe to keep and to show to others, before any handler sees it.

What people type ends up in front of other people: a pupil's note in the teacher's timeline,
a caption in the parents' summary. So, once, at the door:

* NFC normalisation, so "é" typed two ways is one text (search and de-duplication rely on it);
* control characters removed (a tab becomes a space; line breaks stay);
* bidirectional overrides, embeddings and isolates removed: "U+202E" can make a file name or
  a name read backwards ("gpj.exe" shown as "exe.jpg"); ordinary right-to-left text (Arabic)
  needs none of them, and the LRM/RLM marks stay;
* invisible zero-width spaces and BOMs removed (ZWJ and ZWNJ stay: emoji and Persian need them);
* runs of combining marks capped ("zalgo" text that paints over the lines above and below);
* more than two empty lines in a row collapsed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject, Update

# Enough for every real script (Vietnamese stacks two, Indic scripts a few vowel signs).
MAX_COMBINING_RUN = 4

_BIDI_CONTROLS = {chr(code) for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_INVISIBLE = {"\u200b", "\u2060", "\ufeff", "\u180e"}
_KEEP_CONTROLS = {"\n"}
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """The text as it may be stored and shown; see the module docstring for what changes."""
    if text.isascii() and text.isprintable():
        return text  # the common case, without a character-by-character walk
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    kept: list[str] = []
    combining_run = 0
    for char in text:
        if char == "\t":
            char = " "
        category = unicodedata.category(char)
        if char in _BIDI_CONTROLS or char in _INVISIBLE:
            continue
        # Unassigned code points (Cn) stay: they are often emoji newer than this Python.
        if category in ("Cc", "Cs") and char not in _KEEP_CONTROLS:
            continue
        if category in ("Mn", "Me"):
            combining_run += 1
            if combining_run > MAX_COMBINING_RUN:
                continue
        else:
            combining_run = 0
        kept.append(char)
    return _BLANK_LINES.sub("\n\n", "".join(kept))


def cleaned_message(message: Message) -> Message:
    """The message with its text or caption cleaned; the same object when nothing changed."""
    changes: dict[str, str] = {}
    if message.text is not None and (text := clean_text(message.text)) != message.text:
        changes["text"] = text
    if message.caption is not None and (caption := clean_text(message.caption)) != message.caption:
        changes["caption"] = caption
    if not changes:
        return message
    return message.model_copy(update=changes)


class CleanInput(BaseMiddleware):
    """Outer update middleware: handlers only ever see cleaned text (see `clean_text`)."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if isinstance(event, Update):
            for field in ("message", "edited_message"):
                message = getattr(event, field)
                if message is not None:
                    cleaned = cleaned_message(message)
                    if cleaned is not message:
                        event = event.model_copy(update={field: cleaned})
        return await handler(event, data)
