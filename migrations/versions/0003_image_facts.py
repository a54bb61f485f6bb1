"""What pymager learns of each original at upload, and the size of each derived image as made.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 03:40:00

Originals: whether they animate and have transparency (what an ``auto`` URL's format is chosen from),
their size once EXIF orientation is applied, a ThumbHash placeholder and the dominant colour. Existing
originals get NULL (not known yet): the first request that needs them (an ``auto`` URL, the info route)
decodes the original once and records them, as ``pymager backfill`` does for all. Each pair is NULL or
neither. Derived images: the size as made (a fit is not its W×H), NULL for those made before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("originals") as batch:
        batch.add_column(sa.Column("animated", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("alpha", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("upright_width", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("upright_height", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("thumbhash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("colour", sa.String(7), nullable=True))
        batch.create_check_constraint("traits", "(animated IS NULL) = (alpha IS NULL)")
        batch.create_check_constraint("upright", "(upright_width IS NULL) = (upright_height IS NULL)")
        batch.create_check_constraint("placeholder", "(thumbhash IS NULL) = (colour IS NULL)")
    with op.batch_alter_table("derived") as batch:
        batch.add_column(sa.Column("produced_width", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("produced_height", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("derived") as batch:
        batch.drop_column("produced_height")
        batch.drop_column("produced_width")
    with op.batch_alter_table("originals") as batch:
        for name in ("placeholder", "upright", "traits"):
            batch.drop_constraint(op.f(f"ck_originals_{name}"), type_="check")
        for column in ("colour", "thumbhash", "upright_height", "upright_width", "alpha", "animated"):
            batch.drop_column(column)
