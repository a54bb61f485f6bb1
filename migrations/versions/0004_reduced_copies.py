"""The reduced copies of each original.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 00:00:00

``reduced``: the long sides of the reduced copies published beside an original, largest first, comma
separated ("3000,640"; "" when it needs none). Existing originals get NULL: not yet backfilled, which
``--check`` reports as such (not as damage) and ``pymager backfill`` fills.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("originals") as batch:
        batch.add_column(sa.Column("reduced", sa.String(64), nullable=True))


def downgrade() -> None:
    # The copies' files stay: without the column they are orphans, which --repair removes.
    with op.batch_alter_table("originals") as batch:
        batch.drop_column("reduced")
