"""Dataset ingest: quality score column, parse warnings and dialect, original file hash and size.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True)


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("quality_score", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("warnings", JSON, nullable=True))
        batch.add_column(sa.Column("dialect", JSON, nullable=True))
        batch.add_column(sa.Column("raw_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("original_size", sa.BigInteger(), nullable=True))
    op.create_index(op.f("ix_datasets_quality_score"), "datasets", ["quality_score"])
    op.create_index(op.f("ix_datasets_raw_hash"), "datasets", ["raw_hash"])


def downgrade() -> None:
    op.drop_index(op.f("ix_datasets_raw_hash"), table_name="datasets")
    op.drop_index(op.f("ix_datasets_quality_score"), table_name="datasets")
    with op.batch_alter_table("datasets") as batch:
        for column in ("original_size", "raw_hash", "dialect", "warnings", "quality_score"):
            batch.drop_column(column)
