"""Invite codes: issuing them to persons and redeeming them from a Telegram account.

A code is 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L), shown as
`ABCD-EFGH`: easy to read off a printed slip and to type on a phone. Guessing is bounded by the
lockout: after `MAX_FAILURES` wrong codes within `LOCKOUT_WINDOW` the Telegram user must wait
`LOCKOUT_WINDOW` before any code is even looked at.

The code itself is never stored. 31^8 codes are few enough to try them all against a plain
hash in minutes, so what is stored is an HMAC-SHA256 keyed with the invite secret, which lives
outside the database (the INVITE_SECRET setting): a copy of the database alone gives no code
back. The HMAC is taken over the code's sha256 (hex), which is what earlier versions stored;
so those rows (`code_scheme` "sha256") can be rewrapped without knowing their codes
(`rewrap_plain_hashes`, at start-up), and until then a code is also looked up the old way.
The secret is a parameter of every function that needs it: storage never reads settings.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    INVITE_SCHEME_HMAC,
    INVITE_SCHEME_SHA256,
    Account,
    AccountPerson,
    Invite,
    InviteAttempt,
    Person,
)
from storage.types import utcnow

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
MAX_FAILURES = 5
LOCKOUT_WINDOW = timedelta(minutes=15)


def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def normalise_code(typed: str) -> str:
    """What the user typed, as stored: spaces, dashes and case do not matter."""
    return "".join(char for char in typed.upper() if char.isalnum())


def plain_hash(code: str) -> str:
    """What versions before the invite secret stored: sha256 of the normalised code."""
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def keyed_hash(plain: str, *, secret: bytes) -> str:
    """What is stored now: HMAC-SHA256 of the plain hash, keyed with the invite secret."""
    if not secret:
        raise ValueError("an invite secret is required")
    return hmac.new(secret, plain.encode(), hashlib.sha256).hexdigest()


def hash_code(code: str, *, secret: bytes) -> str:
    return keyed_hash(plain_hash(code), secret=secret)


def looks_like_code(typed: str) -> bool:
    normalised = normalise_code(typed)
    return len(normalised) == CODE_LENGTH and all(char in CODE_ALPHABET for char in normalised)


async def issue_invite(
    session: AsyncSession,
    *,
    person_id: int,
    valid_for: timedelta,
    secret: bytes,
    now: datetime | None = None,
) -> str:
    """Create a fresh code for a person; earlier unused codes of that person stop working."""
    now = now or utcnow()
    await session.execute(
        update(Invite)
        .where(Invite.person_id == person_id, Invite.used_at.is_(None), Invite.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    code = new_code()
    session.add(
        Invite(
            person_id=person_id,
            code_hash=hash_code(code, secret=secret),
            code_scheme=INVITE_SCHEME_HMAC,
            expires_at=now + valid_for,
        )
    )
    await session.flush()
    return code


async def rewrap_plain_hashes(session: AsyncSession, *, secret: bytes) -> int:
    """Replace every stored plain sha256 (from a version before the invite secret) by its
    keyed hash; the codes keep working. Safe to run by several processes at once."""
    rows = (
        await session.execute(
            select(Invite.id, Invite.code_hash).where(Invite.code_scheme == INVITE_SCHEME_SHA256)
        )
    ).all()
    rewrapped = 0
    for invite_id, plain in rows:
        result = await session.execute(
            update(Invite)
            .where(Invite.id == invite_id, Invite.code_scheme == INVITE_SCHEME_SHA256)
            .values(code_hash=keyed_hash(plain, secret=secret), code_scheme=INVITE_SCHEME_HMAC)
            .execution_options(synchronize_session=False)
        )
        rewrapped += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return rewrapped


class RedeemOutcome(enum.Enum):
    LINKED = "linked"
    ALREADY_LINKED = "already_linked"
    WRONG = "wrong"
    USED = "used"
    EXPIRED = "expired"
    LOCKED = "locked"


@dataclass(frozen=True)
class RedeemResult:
    outcome: RedeemOutcome
    person_id: int | None = None
    locked_until: datetime | None = None
    failures_left: int | None = None


async def lockout_until(
    session: AsyncSession, *, telegram_user_id: int, now: datetime | None = None
) -> datetime | None:
    """When this user may try again, or None if they may try now."""
    now = now or utcnow()
    failures = (
        await session.scalars(
            select(InviteAttempt.attempted_at)
            .where(
                InviteAttempt.telegram_user_id == telegram_user_id,
                InviteAttempt.succeeded.is_(False),
                InviteAttempt.attempted_at > now - LOCKOUT_WINDOW,
            )
            .order_by(InviteAttempt.attempted_at.desc())
            .limit(MAX_FAILURES)
        )
    ).all()
    if len(failures) < MAX_FAILURES:
        return None
    return failures[0] + LOCKOUT_WINDOW


async def redeem_invite(
    session: AsyncSession,
    *,
    telegram_user_id: int,
    typed_code: str,
    secret: bytes,
    now: datetime | None = None,
) -> RedeemResult:
    """Link the Telegram user's account to the person the code was issued to."""
    now = now or utcnow()
    locked_until = await lockout_until(session, telegram_user_id=telegram_user_id, now=now)
    if locked_until is not None:
        return RedeemResult(RedeemOutcome.LOCKED, locked_until=locked_until)

    plain = plain_hash(typed_code)
    invite = await session.scalar(
        select(Invite).where(
            or_(
                and_(
                    Invite.code_hash == keyed_hash(plain, secret=secret),
                    Invite.code_scheme == INVITE_SCHEME_HMAC,
                ),
                # Issued by the previous version and not rewrapped yet (during an upgrade).
                and_(Invite.code_hash == plain, Invite.code_scheme == INVITE_SCHEME_SHA256),
            )
        )
    )
    outcome = _check(invite, now)
    if outcome is not RedeemOutcome.LINKED or invite is None:
        return await _failure(session, telegram_user_id, outcome, now)

    # Claim the code with a conditional update, so two accounts racing for one code cannot
    # both win; the loser sees "used".
    claimed = await session.execute(
        update(Invite)
        .where(Invite.id == invite.id, Invite.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return await _failure(session, telegram_user_id, RedeemOutcome.USED, now)

    account = await get_or_create_account(session, telegram_user_id=telegram_user_id)
    await session.execute(
        update(Invite).where(Invite.id == invite.id).values(used_by_account_id=account.id)
    )
    already = await session.scalar(
        select(AccountPerson).where(
            AccountPerson.person_id == invite.person_id, AccountPerson.account_id == account.id
        )
    )
    if already is None:
        await _move_person_to(session, account=account, person_id=invite.person_id)
    account.active_person_id = invite.person_id
    session.add(InviteAttempt(telegram_user_id=telegram_user_id, attempted_at=now, succeeded=True))
    await session.flush()
    outcome = RedeemOutcome.ALREADY_LINKED if already is not None else RedeemOutcome.LINKED
    return RedeemResult(outcome, person_id=invite.person_id)


def _check(invite: Invite | None, now: datetime) -> RedeemOutcome:
    if invite is None or invite.revoked_at is not None:
        return RedeemOutcome.WRONG
    if invite.used_at is not None:
        return RedeemOutcome.USED
    if invite.expires_at <= now:
        return RedeemOutcome.EXPIRED
    return RedeemOutcome.LINKED


async def _failure(
    session: AsyncSession, telegram_user_id: int, outcome: RedeemOutcome, now: datetime
) -> RedeemResult:
    session.add(InviteAttempt(telegram_user_id=telegram_user_id, attempted_at=now, succeeded=False))
    await session.flush()
    locked_until = await lockout_until(session, telegram_user_id=telegram_user_id, now=now)
    if locked_until is not None:
        return RedeemResult(RedeemOutcome.LOCKED, locked_until=locked_until)
    recent = await session.scalar(
        select(func.count())
        .select_from(InviteAttempt)
        .where(
            InviteAttempt.telegram_user_id == telegram_user_id,
            InviteAttempt.succeeded.is_(False),
            InviteAttempt.attempted_at > now - LOCKOUT_WINDOW,
        )
    )
    return RedeemResult(outcome, failures_left=MAX_FAILURES - int(recent or 0))


async def _move_person_to(session: AsyncSession, *, account: Account, person_id: int) -> None:
    """A person has one Telegram account: a new code (lost phone) moves it to the new one."""
    previous = await session.scalar(
        select(AccountPerson.account_id).where(AccountPerson.person_id == person_id)
    )
    if previous is not None:
        await session.execute(delete(AccountPerson).where(AccountPerson.person_id == person_id))
        await session.execute(
            update(Account)
            .where(Account.id == previous, Account.active_person_id == person_id)
            .values(active_person_id=None)
        )
    session.add(AccountPerson(account_id=account.id, person_id=person_id))


async def get_or_create_account(session: AsyncSession, *, telegram_user_id: int) -> Account:
    account = await session.scalar(
        select(Account).where(Account.telegram_user_id == telegram_user_id)
    )
    if account is None:
        account = Account(telegram_user_id=telegram_user_id)
        session.add(account)
        await session.flush()
    return account


async def invites_of(session: AsyncSession, *, person: Person) -> list[Invite]:
    return list(
        (
            await session.scalars(
                select(Invite).where(Invite.person_id == person.id).order_by(Invite.id)
            )
        ).all()
    )


async def forget_attempts_before(session: AsyncSession, *, moment: datetime) -> int:
    """Attempts only matter inside the lockout window; older ones are noise."""
    result = await session.execute(delete(InviteAttempt).where(InviteAttempt.attempted_at < moment))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def revoke_codes_seen(
    session: AsyncSession,
    *,
    typed_codes: list[str],
    secret: bytes,
    now: datetime | None = None,
) -> list[Person]:
    """Revoke every valid, unused code among `typed_codes` (seen where others could read
    them, such as a group chat); the persons whose code it was. Anything else (no code, a
    code already used, revoked or expired) is left as it is."""
    now = now or utcnow()
    plains = {plain_hash(typed) for typed in typed_codes if looks_like_code(typed)}
    if not plains:
        return []
    keyed = {keyed_hash(plain, secret=secret) for plain in plains}
    rows = (
        await session.execute(
            select(Invite.id, Person)
            .join(Person, Person.id == Invite.person_id)
            .where(
                or_(
                    and_(Invite.code_hash.in_(keyed), Invite.code_scheme == INVITE_SCHEME_HMAC),
                    # Issued by the previous version and not rewrapped yet (during an upgrade).
                    and_(Invite.code_hash.in_(plains), Invite.code_scheme == INVITE_SCHEME_SHA256),
                ),
                Invite.used_at.is_(None),
                Invite.revoked_at.is_(None),
                Invite.expires_at > now,
            )
        )
    ).all()
    if not rows:
        return []
    await session.execute(
        update(Invite)
        .where(Invite.id.in_([invite_id for invite_id, _person in rows]), Invite.used_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return [person for _invite_id, person in rows]
