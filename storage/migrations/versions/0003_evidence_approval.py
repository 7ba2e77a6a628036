"""evidence approval: shared work may wait for a teacher before parents see it

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_APPROVALS = ("not_needed", "pending", "approved", "private")


def upgrade() -> None:
    # Every new column is nullable or has a server default, so a bot of the previous version
    # keeps working against the upgraded schema (it never sets them; the defaults mean "as
    # before": no approval needed).
    with op.batch_alter_table("school", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "shared_work_needs_approval",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "approval",
                sa.Enum(
                    *_APPROVALS,
                    name="evidence_approval",
                    native_enum=False,
                    create_constraint=False,
                    length=24,
                ),
                nullable=False,
                server_default="not_needed",
            )
        )
        batch_op.add_column(sa.Column("approved_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("approval_decided_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_check_constraint(
            "evidence_approval",
            "approval IN (" + ", ".join(f"'{value}'" for value in _APPROVALS) + ")",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_evidence_approved_by_id_person"),
            "person",
            ["approved_by_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    # The previous version knows only `shared_with_parents`: work still waiting for (or
    # refused) approval must not reach parents after a downgrade.
    op.execute(
        "UPDATE evidence SET shared_with_parents = false WHERE approval IN ('pending', 'private')"
    )
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_evidence_approved_by_id_person"), type_="foreignkey"
        )
        batch_op.drop_constraint(op.f("ck_evidence_evidence_approval"), type_="check")
        batch_op.drop_column("approval_decided_at")
        batch_op.drop_column("approved_by_id")
        batch_op.drop_column("approval")
    with op.batch_alter_table("school", schema=None) as batch_op:
        batch_op.drop_column("shared_work_needs_approval")
