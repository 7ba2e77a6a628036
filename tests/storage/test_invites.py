"""Invite codes at rest: keyed with the invite secret, so a copy of the database gives none back."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import delete, select

from storage import migrate
from storage.db import create_engine
from storage.invites import (
    MAX_FAILURES,
    RedeemOutcome,
    issue_invite,
    normalise_code,
    redeem_invite,
    rewrap_plain_hashes,
)
from storage.models import Invite
from storage.types import UTCDateTime, utcnow
from tests.conftest import INVITE_SECRET
from tests.factories import build_school

OTHER_SECRET = b"another-installation-secret-0123456789abcdef"
# A code as the version before the invite secret issued it, and what that version stored.
OLD_CODE = "HJKM-NPQR"
LATER_CODE = "STUV-WXYZ"


def sha256_of(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


async def test_the_database_holds_a_keyed_hash_that_only_the_secret_opens(session_factory):
    school = await build_school(session_factory)
    async with session_factory() as session, session.begin():
        code = await issue_invite(
            session,
            person_id=school.persons["P1"],
            valid_for=timedelta(days=1),
            secret=INVITE_SECRET,
        )
        stored = await session.scalar(
            select(Invite.code_hash).where(
                Invite.person_id == school.persons["P1"], Invite.revoked_at.is_(None)
            )
        )
    # Not the plain sha256, which anyone with the database could find by trying 31^8 codes.
    assert stored != sha256_of(code)
    assert stored == hmac.new(INVITE_SECRET, sha256_of(code).encode(), "sha256").hexdigest()

    async with session_factory() as session, session.begin():
        wrong_key = await redeem_invite(
            session, telegram_user_id=41, typed_code=code, secret=OTHER_SECRET
        )
        right_key = await redeem_invite(
            session, telegram_user_id=41, typed_code=code.lower(), secret=INVITE_SECRET
        )
    assert (wrong_key.outcome, right_key.outcome) == (RedeemOutcome.WRONG, RedeemOutcome.LINKED)


async def test_codes_issued_before_the_invite_secret_keep_working_after_the_upgrade(
    db_url: str, session_factory
):
    school = await build_school(session_factory)
    async with session_factory() as session, session.begin():
        await session.execute(delete(Invite))
    # The database as the previous version left it, with two codes it issued.
    await migrate.downgrade(db_url, "0004")
    old_invite = sa.table(
        "invite",
        sa.column("person_id", sa.Integer),
        sa.column("code_hash", sa.String),
        sa.column("created_at", UTCDateTime),
        sa.column("expires_at", UTCDateTime),
    )
    engine = create_engine(db_url)
    try:
        async with engine.begin() as connection:
            for person, code in (("P2", OLD_CODE), ("X1", LATER_CODE)):
                await connection.execute(
                    old_invite.insert().values(
                        person_id=school.persons[person],
                        code_hash=sha256_of(code),
                        created_at=utcnow(),
                        expires_at=utcnow() + timedelta(days=7),
                    )
                )
    finally:
        await engine.dispose()
    await migrate.upgrade(db_url)

    # Before the bot has started (and rewrapped them), a code is still found the old way.
    async with session_factory() as session, session.begin():
        early = await redeem_invite(
            session, telegram_user_id=51, typed_code=OLD_CODE, secret=INVITE_SECRET
        )
    assert (early.outcome, early.person_id) == (RedeemOutcome.LINKED, school.persons["P2"])

    async with session_factory() as session, session.begin():
        assert await rewrap_plain_hashes(session, secret=INVITE_SECRET) == 2
        assert await rewrap_plain_hashes(session, secret=INVITE_SECRET) == 0  # once
        stored = set(await session.scalars(select(Invite.code_hash)))
    assert not stored & {sha256_of(OLD_CODE), sha256_of(LATER_CODE)}

    async with session_factory() as session, session.begin():
        later = await redeem_invite(
            session, telegram_user_id=52, typed_code=LATER_CODE, secret=INVITE_SECRET
        )
        used = await redeem_invite(
            session, telegram_user_id=53, typed_code=OLD_CODE, secret=INVITE_SECRET
        )
    assert (later.outcome, later.person_id) == (RedeemOutcome.LINKED, school.persons["X1"])
    assert used.outcome is RedeemOutcome.USED


async def test_the_lockout_counts_wrong_codes_as_before(session_factory):
    school = await build_school(session_factory)
    async with session_factory() as session, session.begin():
        outcomes = [
            (
                await redeem_invite(
                    session, telegram_user_id=61, typed_code="AAAA-AAAA", secret=INVITE_SECRET
                )
            ).outcome
            for _ in range(MAX_FAILURES)
        ]
        # Even the right code is not looked at while locked.
        locked = await redeem_invite(
            session, telegram_user_id=61, typed_code=school.codes["P1"], secret=INVITE_SECRET
        )
    assert outcomes == [RedeemOutcome.WRONG] * (MAX_FAILURES - 1) + [RedeemOutcome.LOCKED]
    assert locked.outcome is RedeemOutcome.LOCKED


async def test_going_back_a_version_revokes_the_codes_it_could_not_check(
    db_url: str, session_factory
):
    school = await build_school(session_factory)
    async with session_factory() as session, session.begin():
        await redeem_invite(
            session, telegram_user_id=71, typed_code=school.codes["P1"], secret=INVITE_SECRET
        )

    await migrate.downgrade(db_url, "0004")

    invite = sa.table(
        "invite", sa.column("used_at", UTCDateTime), sa.column("revoked_at", UTCDateTime)
    )
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(sa.select(invite.c.used_at, invite.c.revoked_at))
            ).all()
    finally:
        await engine.dispose()
    # The used code stays as it was; every other one is revoked, so that the previous
    # version's next import gives those people a code it can check.
    assert sorted((used is None, revoked is None) for used, revoked in rows) == [(False, True)] + [
        (True, False)
    ] * (len(school.codes) - 1)
