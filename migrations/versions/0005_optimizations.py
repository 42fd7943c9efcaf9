"""Optimizations: the parent record, its batches (queue jobs under a lease) and its trials.

Ownership follows 0004: `owner_id` (users.id, SET NULL) and `shared` on the parent;
batches and trials belong to their optimization (CASCADE).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True)
UTC_DATETIME = sa.DateTime(timezone=True)


def _lease_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", UTC_DATETIME, nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "optimizations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("strategy", sa.String(100), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("space", JSON, nullable=False),
        sa.Column("objectives", JSON, nullable=False),
        sa.Column("constraints", JSON, nullable=False),
        sa.Column("result_constraints", JSON, nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("method_options", JSON, nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("budget", JSON, nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("best", JSON, nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("dataset_hash", sa.String(64), nullable=True),
        sa.Column("code_hash", sa.String(64), nullable=True),
        sa.Column("engine_version", sa.String(32), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=True),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *_lease_columns(),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_optimizations")),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"],
            name=op.f("fk_optimizations_dataset_id_datasets"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"],
            name=op.f("fk_optimizations_owner_id_users"), ondelete="SET NULL",
        ),
    )
    op.create_index(op.f("ix_optimizations_strategy"), "optimizations", ["strategy"])
    op.create_index(op.f("ix_optimizations_dataset_id"), "optimizations", ["dataset_id"])
    op.create_index("ix_optimizations_owner_id", "optimizations", ["owner_id"])
    op.create_index("ix_optimizations_created_at_id", "optimizations", ["created_at", "id"])
    op.create_index(
        "ix_optimizations_status_lease", "optimizations", ["status", "lease_expires_at"]
    )

    op.create_table(
        "optimization_batches",
        sa.Column("optimization_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("first_trial", sa.Integer(), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        *_lease_columns(),
        sa.Column("metrics", JSON, nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("optimization_id", "number", name=op.f("pk_optimization_batches")),
        sa.ForeignKeyConstraint(
            ["optimization_id"], ["optimizations.id"],
            name=op.f("fk_optimization_batches_optimization_id_optimizations"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_optimization_batches_status_lease", "optimization_batches",
        ["status", "lease_expires_at"],
    )

    op.create_table(
        "optimization_trials",
        sa.Column("optimization_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("values", JSON, nullable=False),
        sa.Column("feasible", sa.Boolean(), nullable=False),
        sa.Column("violations", JSON, nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("optimization_id", "number", name=op.f("pk_optimization_trials")),
        sa.ForeignKeyConstraint(
            ["optimization_id"], ["optimizations.id"],
            name=op.f("fk_optimization_trials_optimization_id_optimizations"),
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("optimization_trials")
    op.drop_table("optimization_batches")
    op.drop_index("ix_optimizations_status_lease", table_name="optimizations")
    op.drop_index("ix_optimizations_created_at_id", table_name="optimizations")
    op.drop_index("ix_optimizations_owner_id", table_name="optimizations")
    op.drop_index(op.f("ix_optimizations_dataset_id"), table_name="optimizations")
    op.drop_index(op.f("ix_optimizations_strategy"), table_name="optimizations")
    op.drop_table("optimizations")
