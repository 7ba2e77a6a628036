"""Keeps aiogram's response models alive for the life of the process.

aiogram parses every Bot API answer with `Response[<return type>]`. pydantic caches such
parametrised models only weakly, and aiogram's models build their validators lazily, so after
each garbage collection the next reply rebuilt its validator from scratch: a few milliseconds
per API call, about a sixth of the bot's CPU time per update in the load bench. Holding one
reference per return type turns that into a dictionary lookup.
"""

from __future__ import annotations

import inspect
from typing import Any

import aiogram.methods
from aiogram.client.session.base import Response
from aiogram.methods import TelegramMethod

_KEPT: list[Any] = []


def keep_response_models() -> int:
    """Idempotent; returns how many models are held."""
    if not _KEPT:
        returning = {
            method.__returning__
            for method in vars(aiogram.methods).values()
            if inspect.isclass(method)
            and issubclass(method, TelegramMethod)
            and method is not TelegramMethod
            # The abstract base declares it as a property, not as a type.
            and not isinstance(getattr(method, "__returning__", None), property | None)
        }
        _KEPT.extend(Response[kind] for kind in returning)  # type: ignore[valid-type]
    return len(_KEPT)
