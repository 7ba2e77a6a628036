"""What a scheduled message says: one composer per reminder kind, in one registry.

A composer turns a claimed reminder into the messages to send, at the moment of sending, or
says "not needed any more" (None): the pupil already reflected, the talk was moved. Each
feature (conversations/) registers its composers with `register_composers(registry)`; the
composition root (bot.app) builds the registry and calls those, so the scheduler knows no
feature and a feature knows no other.

A composer gets everything it may use: the database session (it only reads; the dispatcher
rolls back), the reminder, its recipient, and a `ComposerContext` with the app's settings,
its media store and its clock. It never reads the environment, so a test, the demo and a
second app in one process each compose with their own settings and files. The dispatcher has
set the recipient's language (and formal address) around the call, so `_()` speaks it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from aiogram.methods import TelegramMethod
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import Settings
from media.store import MediaStore
from services.clock import Clock
from storage.accounts import Recipient
from storage.reminders import DueReminder, ReminderKind

Methods = Sequence[TelegramMethod[Any]]


@dataclass(frozen=True)
class ComposerContext:
    """What the app gives a composer besides the reminder and its recipient."""

    settings: Settings
    # Where the stored files (shared photos, videos) are read from.
    media: MediaStore
    clock: Clock
    # The moment this reminder is composed: the dispatcher's reading of the clock, the same
    # one its quiet hours were checked against.
    now: datetime


class Composer(Protocol):
    """A due reminder -> the messages to send, or None when it is no longer needed."""

    def __call__(
        self,
        session: AsyncSession,
        reminder: DueReminder,
        to: Recipient,
        context: ComposerContext,
        /,
    ) -> Awaitable[Methods | None]: ...


class ComposerRegistry:
    """The composer of each reminder kind, and what every composer is given."""

    def __init__(self, *, settings: Settings, media: MediaStore, clock: Clock) -> None:
        self._settings = settings
        self._media = media
        self._clock = clock
        self._composers: dict[ReminderKind, Composer] = {}

    def register(self, kind: ReminderKind, composer: Composer) -> None:
        """Add the composer of `kind`; a kind has exactly one (two features claiming the same
        kind is a mistake worth failing the start for)."""
        if kind in self._composers:
            raise ValueError(f"a composer for reminder kind {kind!r} is registered already")
        self._composers[ReminderKind(kind)] = composer

    def composer_for(self, kind: str) -> Composer | None:
        """The composer of a stored kind; None for a kind without one (or unknown here)."""
        try:
            return self._composers.get(ReminderKind(kind))
        except ValueError:
            return None

    @property
    def kinds(self) -> frozenset[ReminderKind]:
        """The kinds with a composer: the planners create rows of these kinds only."""
        return frozenset(self._composers)

    def context(self, now: datetime) -> ComposerContext:
        return ComposerContext(
            settings=self._settings, media=self._media, clock=self._clock, now=now
        )
