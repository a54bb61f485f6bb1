"""Each original's traits: whether it animates and whether it has transparency.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 03:40:00

An ``auto`` derived URL's format is chosen from them. Existing originals get NULL (not known yet): their
first ``auto`` request decodes them once and records them. Both are NULL or neither.
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
        batch.create_check_constraint("traits", "(animated IS NULL) = (alpha IS NULL)")


def downgrade() -> None:
    with op.batch_alter_table("originals") as batch:
        batch.drop_constraint(op.f("ck_originals_traits"), type_="check")
        batch.drop_column("alpha")
        batch.drop_column("animated")
