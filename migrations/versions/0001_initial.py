"""The registry of originals and derived images.

Revision ID: 0001
Revises:
Create Date: 2024-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "originals",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('ready', 'deleting')", name=op.f("ck_originals_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_originals")),
    )
    op.create_table(
        "derived",
        sa.Column("original_id", sa.String(128), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("checksum", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'ready')", name=op.f("ck_derived_status")),
        sa.ForeignKeyConstraint(
            ["original_id"],
            ["originals.id"],
            name=op.f("fk_derived_original_id_originals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("original_id", "width", "height", "format", name=op.f("pk_derived")),
    )
    op.create_index(op.f("ix_derived_status_claimed_at"), "derived", ["status", "claimed_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_derived_status_claimed_at"), table_name="derived")
    op.drop_table("derived")
    op.drop_table("originals")
