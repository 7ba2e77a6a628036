"""An invite code seen in a group chat: revoked at once, and the school's admins told.

A code posted where others read it (a parent glad to have joined, a pupil sharing "the
password" with the class) is no secret any more: anyone in that group could become that
person in the bot, a child's parent included. So every valid, unused code in a group message
(typed with or without its dash, in any case, inside other text) stops working the moment the
bot sees it, before anyone can use it in a private chat. The group hears nothing about it (no
name, not even that it was a code); the code's owner hears nothing either, since they may
not be the one who posted it. The revocation is written in the audit log, and each admin of
the school gets a private notice through the reminder queue (in their own language, outside
quiet hours) saying whose code it was and how to issue a new one.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from aiogram.methods import SendMessage
from sqlalchemy.ext.asyncio import AsyncSession

from chat_ui.texts import fill
from language.i18n import _
from scheduler.composers import ComposerContext, ComposerRegistry, Methods
from storage.accounts import Recipient
from storage.audiences import reachable_admins
from storage.audit import (
    ACTION_INVITE_SEEN_IN_GROUP,
    ACTOR_BOT,
    SUBJECT_PERSON,
    person_ref,
    record_audit,
)
from storage.invites import CODE_LENGTH, looks_like_code, revoke_codes_seen
from storage.policy import person_for_admin
from storage.reminders import DueReminder, ReminderKind, schedule_reminder

log = logging.getLogger(__name__)

# A run of letters and digits (any script: what is not a code is dropped by its alphabet).
_WORD = re.compile(r"[^\W_]+")
# What may stand between the two halves of a code: a space, a dash of any kind, a dot, an
# underscore or an invisible character, at most three of them ("ABCD - EFGH").
_BETWEEN_HALVES = re.compile(r"[\s\-\u2010-\u2015\u2212._\u00b7\u200b-\u200d\u2060\ufeff]{1,3}")
_HALF = CODE_LENGTH // 2
# Enough for any honest message; bounds the work a long text can cause.
MOST_CODES_PER_MESSAGE = 20


def codes_in(text: str) -> list[str]:
    """Everything in `text` that is shaped like an invite code, as typed (without duplicates,
    at most MOST_CODES_PER_MESSAGE): an eight-character word, or two four-character words
    with a dash or a space between them. Whether one is a real code only the database knows."""
    found: dict[str, None] = {}  # in the order they appear
    words = list(_WORD.finditer(text))
    for word, following in zip(words, [*words[1:], None], strict=True):
        if len(word.group()) == CODE_LENGTH and looks_like_code(word.group()):
            found[word.group().upper()] = None
        if (
            following is not None
            and len(word.group()) == len(following.group()) == _HALF
            and _BETWEEN_HALVES.fullmatch(text[word.end() : following.start()])
            and looks_like_code(word.group() + following.group())
        ):
            found[(word.group() + following.group()).upper()] = None
    return list(found)[:MOST_CODES_PER_MESSAGE]


async def revoke_codes_seen_in_group(
    session: AsyncSession, *, text: str, secret: bytes, now: datetime
) -> int:
    """Revoke the valid codes in a group message, log it and queue the admins' notices (due
    `now`, the school's clock); how many codes were revoked. Whether a code is still valid is
    judged by real time, as redeeming it is."""
    candidates = codes_in(text)
    if not candidates:
        return 0
    persons = await revoke_codes_seen(session, typed_codes=candidates, secret=secret)
    for person in persons:
        await record_audit(
            session,
            school_id=person.school_id,
            actor_label=ACTOR_BOT,
            action=ACTION_INVITE_SEEN_IN_GROUP,
            subject_kind=SUBJECT_PERSON,
            subject_ref=person_ref(person.id),
            details={"role": person.role.value},
        )
        admins = await reachable_admins(session, school_id=person.school_id)
        if not admins:
            log.warning("a code seen in a group was revoked; the school has no admin to tell")
        for admin_id in admins:
            await schedule_reminder(
                session,
                kind=ReminderKind.INVITE_SEEN_IN_GROUP,
                person_id=admin_id,
                due_at=now,
                idempotency_key=(
                    f"{ReminderKind.INVITE_SEEN_IN_GROUP}:{person.id}:{admin_id}:{now.timestamp()}"
                ),
                payload={"person_id": person.id},
            )
    return len(persons)


async def compose_invite_seen_in_group(
    session: AsyncSession, reminder: DueReminder, to: Recipient, context: ComposerContext
) -> Methods | None:
    """The admin's notice; nothing when the person is gone or not of the admin's school."""
    try:
        person_id = int(reminder.payload["person_id"])
    except (KeyError, TypeError, ValueError):
        return None
    person = await person_for_admin(session, admin_id=to.person_id, person_id=person_id)
    if person is None:
        return None
    text = fill(
        _(
            "⚠️ De uitnodigingscode van {name} stond in een groepsgesprek. Iedereen in die "
            "groep kon hem lezen, dus de code werkt niet meer.\n"
            "Maak een nieuwe code op de server met: <code>portfolio-bot invite {id}</code>"
        ),
        name=person.display_name,
        id=person.external_id,
    )
    return [SendMessage(chat_id=to.telegram_user_id, text=text)]


def register_composers(registry: ComposerRegistry) -> None:
    """The admins' notice of a code seen in a group chat."""
    registry.register(ReminderKind.INVITE_SEEN_IN_GROUP, compose_invite_seen_in_group)
