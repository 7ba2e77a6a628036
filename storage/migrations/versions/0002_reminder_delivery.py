"""reminder delivery: send start, message id, uncertain status

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = ("pending", "claimed", "sent", "failed", "dropped", "cancelled")
_NEW = ("pending", "claimed", "sent", "uncertain", "failed", "dropped", "cancelled")


def _status_check(values: Sequence[str]) -> str:
    return "status IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def upgrade() -> None:
    # Added columns are nullable and the new status only widens the check, so a bot of the
    # previous version keeps working against the upgraded schema.
    with op.batch_alter_table("reminder", schema=None) as batch_op:
        batch_op.add_column(sa.Column("send_started_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("telegram_message_id", sa.BigInteger()))
        batch_op.drop_constraint(op.f("ck_reminder_reminder_status"), type_="check")
        batch_op.create_check_constraint("reminder_status", _status_check(_NEW))


def downgrade() -> None:
    op.execute("UPDATE reminder SET status = 'failed' WHERE status = 'uncertain'")
    with op.batch_alter_table("reminder", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_reminder_reminder_status"), type_="check")
        batch_op.create_check_constraint("reminder_status", _status_check(_OLD))
        batch_op.drop_column("telegram_message_id")
        batch_op.drop_column("send_started_at")
