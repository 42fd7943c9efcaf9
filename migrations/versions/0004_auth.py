"""Teams: users, API tokens, the append-only audit log, and owners of datasets, runs and
strategy settings (with a `shared` flag on datasets and runs).

Datasets are unique per owner and content hash from now on (two users may each own the
same bars). Rows that exist already get no owner (admins see them); the shipped sample
datasets are shared with everyone. The audit log refuses UPDATE and DELETE with a
trigger on both databases.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-15
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True)
UTC_DATETIME = sa.DateTime(timezone=True)

_PG_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql
"""


def _owner_column(table: str) -> sa.Column[int]:
    fk = sa.ForeignKey("users.id", name=f"fk_{table}_owner_id_users", ondelete="SET NULL")
    return sa.Column("owner_id", sa.Integer(), fk, nullable=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("scopes", JSON, nullable=False),
        sa.Column("note", sa.String(200), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=True),
        sa.Column("revoked_at", UTC_DATETIME, nullable=True),
        sa.Column("last_used_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("token_id", sa.String(16), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_kind", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.Column("detail", JSON, nullable=True),
        sa.Column("request_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_actor"), "audit_log", ["actor"])
    op.create_index(op.f("ix_audit_log_action"), "audit_log", ["action"])

    with op.batch_alter_table("datasets") as batch:
        batch.add_column(_owner_column("datasets"))
        batch.add_column(sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.drop_constraint("uq_datasets_content_hash", type_="unique")
        batch.create_unique_constraint(
            "uq_datasets_owner_id_content_hash", ["owner_id", "content_hash"]
        )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(_owner_column("runs"))
        batch.add_column(sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("strategies") as batch:
        batch.add_column(_owner_column("strategies"))
    for table in ("datasets", "runs", "strategies"):
        op.create_index(f"ix_{table}_owner_id", table, ["owner_id"])
    for table in ("datasets", "runs"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("shared", server_default=None)
    op.create_index(op.f("ix_datasets_content_hash"), "datasets", ["content_hash"])
    op.execute("UPDATE datasets SET shared = true WHERE symbol = 'NIFTY-SYNTH'")

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_APPEND_ONLY)
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_index(op.f("ix_datasets_content_hash"), table_name="datasets")
    for table in ("datasets", "runs", "strategies"):
        op.drop_index(f"ix_{table}_owner_id", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_owner_id_users", type_="foreignkey")
    with op.batch_alter_table("strategies") as batch:
        batch.drop_column("owner_id")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("shared")
        batch.drop_column("owner_id")
    # Per-owner duplicates cannot survive the global unique constraint: keep the oldest.
    op.execute(
        "DELETE FROM datasets WHERE id NOT IN "
        "(SELECT MIN(id) FROM datasets GROUP BY content_hash)"
    )
    with op.batch_alter_table("datasets") as batch:
        batch.drop_constraint("uq_datasets_owner_id_content_hash", type_="unique")
        batch.create_unique_constraint("uq_datasets_content_hash", ["content_hash"])
        batch.drop_column("shared")
        batch.drop_column("owner_id")
    op.drop_table("audit_log")
    op.drop_table("api_tokens")
    op.drop_table("users")
