"""Derived images in fill, fit and pad modes; each original's focal point.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 00:00:00

Existing derived rows are fill (the only mode before), existing originals get the centre, so their
derived images keep today's crop. A ready row must record its file's size and checksum. Downgrade drops
the fit and pad rows (0001 cannot name them; their files are then orphans for ``--repair``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite changes constraints and the primary key by copying the table.
    with op.batch_alter_table("originals") as batch:
        batch.add_column(sa.Column("focus_x", sa.Float(), server_default="0.5", nullable=False))
        batch.add_column(sa.Column("focus_y", sa.Float(), server_default="0.5", nullable=False))
        batch.create_check_constraint("focus", "focus_x BETWEEN 0 AND 1 AND focus_y BETWEEN 0 AND 1")
    with op.batch_alter_table("derived") as batch:
        batch.add_column(sa.Column("mode", sa.String(8), server_default="fill", nullable=False))
        batch.drop_constraint(op.f("pk_derived"), type_="primary")
        batch.create_primary_key("pk_derived", ["original_id", "width", "height", "format", "mode"])
        batch.create_check_constraint("mode", "mode IN ('fill', 'fit', 'pad')")
        batch.create_check_constraint(
            "ready", "status = 'pending' OR (bytes IS NOT NULL AND checksum IS NOT NULL)"
        )


def downgrade() -> None:
    op.execute("DELETE FROM derived WHERE mode <> 'fill'")
    with op.batch_alter_table("derived") as batch:
        batch.drop_constraint(op.f("ck_derived_ready"), type_="check")
        batch.drop_constraint(op.f("ck_derived_mode"), type_="check")
        batch.drop_constraint(op.f("pk_derived"), type_="primary")
        batch.create_primary_key("pk_derived", ["original_id", "width", "height", "format"])
        batch.drop_column("mode")
    with op.batch_alter_table("originals") as batch:
        batch.drop_constraint(op.f("ck_originals_focus"), type_="check")
        batch.drop_column("focus_y")
        batch.drop_column("focus_x")
