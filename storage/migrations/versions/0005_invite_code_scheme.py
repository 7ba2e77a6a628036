"""invite.code_scheme: invite codes hashed with a secret kept outside the database

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 01:30:00

Up to 0004 an invite stored the plain sha256 of its code, which a copy of the database gives
back by trying all codes. From here on it stores HMAC-SHA256(invite secret, that sha256). A
migration does not know the secret, so it only marks the existing rows "sha256"; the bot
rewraps them with the secret when it starts (storage.invites.rewrap_plain_hashes), and until
then still finds them the old way. The column's server default is the old scheme, since the
previous version, running beside this one during a rolling upgrade, inserts plain hashes.

Downgrade drops the column. The previous version cannot check a keyed hash, so the codes not
used yet are revoked first: its next import issues those people new codes (or
`portfolio-bot invite` does).
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_invite = sa.table(
    "invite",
    sa.column("code_scheme", sa.String),
    sa.column("used_at", sa.DateTime(timezone=True)),
    sa.column("revoked_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("invite", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("code_scheme", sa.String(length=16), server_default="sha256", nullable=False)
        )


def downgrade() -> None:
    connection = op.get_bind()
    now = datetime.now(UTC)
    if connection.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # as storage.types.UTCDateTime stores it there
    connection.execute(
        _invite.update()
        .where(
            _invite.c.code_scheme == "hmac-sha256",
            _invite.c.used_at.is_(None),
            _invite.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    with op.batch_alter_table("invite", schema=None) as batch_op:
        batch_op.drop_column("code_scheme")
