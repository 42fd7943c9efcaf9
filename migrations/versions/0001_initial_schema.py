"""Initial schema: datasets, strategies, runs, trades, equity curves, blobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True)


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_blobs")),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("exchange", sa.String(64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("start_ts", sa.BigInteger(), nullable=False),
        sa.Column("end_ts", sa.BigInteger(), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("blob_key", sa.String(200), nullable=False),
        sa.Column("original_key", sa.String(200), nullable=True),
        sa.Column("source_name", sa.String(300), nullable=True),
        sa.Column("quality", JSON, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("content_hash", name=op.f("uq_datasets_content_hash")),
    )
    op.create_index(op.f("ix_datasets_symbol"), "datasets", ["symbol"])
    op.create_index(op.f("ix_datasets_timeframe"), "datasets", ["timeframe"])

    op.create_table(
        "strategies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("module", sa.String(300), nullable=False),
        sa.Column("class_name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("params_schema", JSON, nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=True),
        sa.Column("validation_status", sa.String(16), nullable=False),
        sa.Column("validation_error", sa.Text(), nullable=True),
        sa.Column("last_validated_at", UTC_DATETIME, nullable=True),
        sa.Column("usage_count", sa.Integer(), nullable=False),
        sa.Column("deleted_at", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategies")),
        sa.UniqueConstraint("name", name=op.f("uq_strategies_name")),
    )

    op.create_table(
        "runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("strategy", sa.String(100), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("params", JSON, nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("metrics", JSON, nullable=True),
        sa.Column("monthly_returns", JSON, nullable=True),
        sa.Column("engine_info", JSON, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=True),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", UTC_DATETIME, nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("n_bars", sa.BigInteger(), nullable=True),
        sa.Column("n_trades", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_runs_dataset_id_datasets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index("ix_runs_created_at_id", "runs", ["created_at", "id"])
    op.create_index("ix_runs_status_lease", "runs", ["status", "lease_expires_at"])
    op.create_index(op.f("ix_runs_dataset_id"), "runs", ["dataset_id"])
    op.create_index(op.f("ix_runs_strategy"), "runs", ["strategy"])

    op.create_table(
        "equity_curves",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("n_points", sa.BigInteger(), nullable=False),
        sa.Column("encoding", sa.String(32), nullable=False),
        sa.Column("ts_data", sa.LargeBinary(), nullable=False),
        sa.Column("equity_data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_equity_curves_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_equity_curves")),
    )
    # The primary key (run_id, idx) is the index trades are paged by.
    op.create_table(
        "trades",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("side", sa.SmallInteger(), nullable=False),
        sa.Column("qty", sa.Float(), nullable=False),
        sa.Column("entry_time", sa.BigInteger(), nullable=False),
        sa.Column("exit_time", sa.BigInteger(), nullable=True),
        sa.Column("entry_idx", sa.BigInteger(), nullable=False),
        sa.Column("exit_idx", sa.BigInteger(), nullable=True),
        sa.Column("entry_price", sa.Float(), nullable=False),
        sa.Column("exit_price", sa.Float(), nullable=True),
        sa.Column("pnl", sa.Float(), nullable=False),
        sa.Column("commission", sa.Float(), nullable=False),
        sa.Column("exit_reason", sa.String(16), nullable=True),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("extra", JSON, nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_trades_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "idx", name=op.f("pk_trades")),
    )


def downgrade() -> None:
    op.drop_table("trades")
    op.drop_table("equity_curves")
    op.drop_index(op.f("ix_runs_strategy"), table_name="runs")
    op.drop_index(op.f("ix_runs_dataset_id"), table_name="runs")
    op.drop_index("ix_runs_status_lease", table_name="runs")
    op.drop_index("ix_runs_created_at_id", table_name="runs")
    op.drop_table("runs")
    op.drop_table("strategies")
    op.drop_index(op.f("ix_datasets_timeframe"), table_name="datasets")
    op.drop_index(op.f("ix_datasets_symbol"), table_name="datasets")
    op.drop_table("datasets")
    op.drop_table("blobs")
