"""The database session of the update being handled, for code that aiogram calls itself.

The FSM storage is called by aiogram, not by our handlers, so it cannot be handed the update's
session as an argument. Sharing it through this context variable makes a dialogue step and its
state change commit (or roll back) together: after a crash the dialogue resumes exactly where
the data says it is.
"""

from __future__ import annotations

from contextvars import ContextVar

from sqlalchemy.ext.asyncio import AsyncSession

current_session: ContextVar[AsyncSession | None] = ContextVar("current_session", default=None)
