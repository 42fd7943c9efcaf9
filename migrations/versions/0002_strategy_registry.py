"""Strategy registry: file path, validation steps, best metrics, tags, default params.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True)


def upgrade() -> None:
    with op.batch_alter_table("strategies") as batch:
        batch.add_column(sa.Column("path", sa.String(1000), nullable=True))
        batch.add_column(sa.Column("validation_steps", JSON, nullable=True))
        batch.add_column(sa.Column("best_metrics", JSON, nullable=True))
        batch.add_column(sa.Column("tags", JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("default_params", JSON, nullable=True))
        batch.add_column(
            sa.Column("description_edited", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # Defaults were only for the rows already there; the models supply them from now on.
    with op.batch_alter_table("strategies") as batch:
        batch.alter_column("tags", server_default=None)
        batch.alter_column("description_edited", server_default=None)
    op.execute(
        "UPDATE strategies SET validation_status = 'unvalidated' "
        "WHERE validation_status = 'unknown'"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE strategies SET validation_status = 'unknown' "
        "WHERE validation_status = 'unvalidated'"
    )
    with op.batch_alter_table("strategies") as batch:
        for column in (
            "description_edited", "default_params", "tags", "best_metrics",
            "validation_steps", "path",
        ):
            batch.drop_column(column)
