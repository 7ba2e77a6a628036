"""observation.search_text: the note folded for accent-free search

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 05:25:00
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_observation = sa.table(
    "observation",
    sa.column("id", sa.Integer),
    sa.column("text", sa.Text),
    sa.column("search_text", sa.Text),
)


def _folded(text: str) -> str:
    # A copy of storage.types.folded as it was at this revision: a migration must not change
    # when the code does.
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.casefold().split())


def upgrade() -> None:
    # Nullable, filled by the application: the previous version keeps writing notes (without
    # a folded copy, which search then simply does not find until the next upgrade's backfill).
    with op.batch_alter_table("observation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", sa.Text(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_observation.c.id, _observation.c.text).where(_observation.c.text.is_not(None))
    ).all()
    for note_id, text in rows:
        connection.execute(
            _observation.update()
            .where(_observation.c.id == note_id)
            .values(search_text=_folded(text))
        )


def downgrade() -> None:
    with op.batch_alter_table("observation", schema=None) as batch_op:
        batch_op.drop_column("search_text")
