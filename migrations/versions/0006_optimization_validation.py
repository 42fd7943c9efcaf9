"""Optimization validation: hold-out and walk-forward inputs/results, OOS metrics, PBO blocks.

`optimizations.validation` (the resolved split or windows) and `walk_forward` (per-window
results, stitched out-of-sample equity, efficiency); a batch's `window`, `oos_metrics` and
`blocks` (compressed per-block return sums for the PBO); a trial's `window` and
`oos_metrics`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True)


def upgrade() -> None:
    with op.batch_alter_table("optimizations") as t:
        t.add_column(sa.Column("validation", JSON, nullable=True))
        t.add_column(sa.Column("walk_forward", JSON, nullable=True))
    with op.batch_alter_table("optimization_batches") as t:
        t.add_column(sa.Column("window", sa.Integer(), nullable=True))
        t.add_column(sa.Column("oos_metrics", JSON, nullable=True))
        t.add_column(sa.Column("blocks", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("optimization_trials") as t:
        t.add_column(sa.Column("window", sa.Integer(), nullable=True))
        t.add_column(sa.Column("oos_metrics", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("optimization_trials") as t:
        t.drop_column("oos_metrics")
        t.drop_column("window")
    with op.batch_alter_table("optimization_batches") as t:
        t.drop_column("blocks")
        t.drop_column("oos_metrics")
        t.drop_column("window")
    with op.batch_alter_table("optimizations") as t:
        t.drop_column("walk_forward")
        t.drop_column("validation")
