"""CDN purge notices (the outbox) and the count of purges of each original's derived images.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 00:00:00

``purge_notices``: a notice to the CDN's webhook (``[cdn] purge_url``), written in the transaction of
the DELETE or purge it announces and removed once delivered; ``due_at`` is when it is tried (again).
``originals.derived_epoch``: purges of the original's derived images so far; existing originals get 0,
so the names of the derived objects already in a bucket stay what they were.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("originals") as batch:
        batch.add_column(sa.Column("derived_epoch", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "purge_notices",
        sa.Column(
            "number",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("original_id", sa.String(128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_purge_notices")),
        # never reuse a number (receivers dedupe on it): SQLite reuses row ids without AUTOINCREMENT
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_purge_notices_due_at"), "purge_notices", ["due_at"])


def downgrade() -> None:
    # Undelivered notices are lost with the table: downgrading gives up CDN purges.
    op.drop_index(op.f("ix_purge_notices_due_at"), table_name="purge_notices")
    op.drop_table("purge_notices")
    with op.batch_alter_table("originals") as batch:
        batch.drop_column("derived_epoch")
