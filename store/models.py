"""SQLAlchemy 2 models: datasets, strategies, runs, trades, equity curves and blobs.

Types are portable so one alembic history serves PostgreSQL and SQLite: JSON,
LargeBinary, BigInteger nanosecond timestamps, and `UTCDateTime` (aware datetimes,
stored as UTC). Enums are plain strings, which keeps migrations free of
database-specific enum types.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "TERMINAL_STATUSES",
    "AuditRow",
    "Base",
    "BlobRow",
    "DatasetRow",
    "EquityRow",
    "OptimizationBatchRow",
    "OptimizationRow",
    "OptimizationTrialRow",
    "Owned",
    "RunRow",
    "RunStatus",
    "StrategyRow",
    "TokenRow",
    "TradeRow",
    "UTCDateTime",
    "UserRow",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the only kind the store accepts)."""
    return datetime.now(UTC)


class RunStatus(StrEnum):
    """Lifecycle of a run: QUEUED -> RUNNING -> one of the three terminal states."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive values are refused.

    SQLite keeps them as naive UTC text in one fixed format, so comparisons in SQL
    (lease expiry, cursors) order correctly there too.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only accepts aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StatusType(TypeDecorator[RunStatus]):
    """A `RunStatus` stored as a short string."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else RunStatus(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> RunStatus | None:
        return None if value is None else RunStatus(value)


# Deterministic constraint names: the migration and the models agree on both databases.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Json = JSON(none_as_null=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Owned:
    """Mixin of every owned table: the user who created the row, and whether the team sees it.

    `owner_id` NULL = created by the system or the embedded local user (only admins, or
    everyone when shared, see it in a team). Queries filter with `store.scope.Scope`.
    """

    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    shared: Mapped[bool] = mapped_column(Boolean, default=False)


class UserRow(Base):
    """A person or service account of a team deployment; API tokens belong to one."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TokenRow(Base):
    """An API token: only the sha256 of the secret is kept; the secret is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    """Public part of the token (`bt_<id>_<secret>`), used to look it up."""
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(Json, default=list)
    """Any of "read", "run", "admin"."""
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditRow(Base):
    """One entry of the append-only audit log (the migration adds triggers refusing
    UPDATE and DELETE on both databases)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    """The user's id at the time (no foreign key: entries outlive their users)."""
    actor: Mapped[str] = mapped_column(String(100), index=True)
    token_id: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_kind: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(Json)
    request_id: Mapped[str | None] = mapped_column(String(32))


class DatasetRow(Owned, Base):
    """An uploaded (or shipped) OHLCV dataset; the bars live in the blob store as Parquet.

    The same bars are stored once per owner (unique owner + content hash); the blobs are
    content-addressed, so two owners of the same bars share them.
    """

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("owner_id", "content_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    symbol: Mapped[str] = mapped_column(String(64), index=True)
    exchange: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64))
    timeframe: Mapped[str] = mapped_column(String(16), index=True)
    rows: Mapped[int] = mapped_column(Integer)
    start_ts: Mapped[int] = mapped_column(BigInteger)
    end_ts: Mapped[int] = mapped_column(BigInteger)
    file_size: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    blob_key: Mapped[str] = mapped_column(String(200))
    original_key: Mapped[str | None] = mapped_column(String(200))
    source_name: Mapped[str | None] = mapped_column(String(300))
    quality: Mapped[dict[str, Any] | None] = mapped_column(Json)
    quality_score: Mapped[int | None] = mapped_column(Integer, index=True)
    """`quality["score"]` (0-100) as a column, so lists can filter on it."""
    warnings: Mapped[list[dict[str, Any]] | None] = mapped_column(Json)
    """The repairs made while reading the upload (`IngestWarning.to_dict()` each)."""
    dialect: Mapped[dict[str, Any] | None] = mapped_column(Json)
    """How the upload was read (delimiter, time format, ...: `Dialect.to_dict()`)."""
    raw_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    """sha256 of the original file's bytes; `content_hash` is of the bars."""
    original_size: Mapped[int | None] = mapped_column(BigInteger)
    """Bytes of the original file as uploaded (`file_size` is the stored Parquet)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"DatasetRow(id={self.id}, name={self.name!r}, rows={self.rows})"


class StrategyRow(Base):
    """A strategy known to the service (built-in or user folder), soft-deletable."""

    __tablename__ = "strategies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    module: Mapped[str] = mapped_column(String(300))
    class_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    params_schema: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    code_hash: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(String(1000))
    """The user file it was loaded from; None for a built-in."""
    validation_status: Mapped[str] = mapped_column(String(16), default="unvalidated")
    """unvalidated | valid | invalid | missing (its file or class is gone)."""
    validation_error: Mapped[str | None] = mapped_column(Text)
    validation_steps: Mapped[list[dict[str, Any]] | None] = mapped_column(Json)
    last_validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    usage_count: Mapped[int] = mapped_column(Integer, default=0)
    best_metrics: Mapped[dict[str, Any] | None] = mapped_column(Json)
    """{metric: {"value", "run_id"}}: the best value each key metric reached in a run."""
    tags: Mapped[list[str]] = mapped_column(Json, default=list)
    default_params: Mapped[dict[str, Any] | None] = mapped_column(Json)
    """User-chosen defaults merged under a run's params (validated against the schema)."""
    description_edited: Mapped[bool] = mapped_column(Boolean, default=False)
    """The description was set by a user: syncing no longer refreshes it from the docstring."""
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    """Who owns the settings (description, tags, default params): the first user to edit
    them; NULL = the operator's. Only that user or an admin may change or delete them."""
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


class RunRow(Owned, Base):
    """One backtest run; the database is the only authority on its state."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_created_at_id", "created_at", "id"),
        Index("ix_runs_status_lease", "status", "lease_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[RunStatus] = mapped_column(StatusType(), default=RunStatus.QUEUED)
    seq: Mapped[int] = mapped_column(BigInteger, default=1)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(32), default="queued")
    strategy: Mapped[str] = mapped_column(String(100), index=True)
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), index=True
    )
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(Json)
    monthly_returns: Mapped[list[dict[str, Any]] | None] = mapped_column(Json)
    engine_info: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    n_bars: Mapped[int | None] = mapped_column(BigInteger)
    n_trades: Mapped[int | None] = mapped_column(Integer)

    @property
    def terminal(self) -> bool:
        return RunStatus(self.status).terminal

    def __repr__(self) -> str:
        return f"RunRow(id={self.id!r}, status={self.status!s}, attempt={self.attempt})"


class TradeRow(Base):
    """One trade of a run, in the engine's order (closed trades, then the open one)."""

    __tablename__ = "trades"

    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    side: Mapped[int] = mapped_column(SmallInteger)
    qty: Mapped[float] = mapped_column(Float)
    entry_time: Mapped[int] = mapped_column(BigInteger)
    exit_time: Mapped[int | None] = mapped_column(BigInteger)
    entry_idx: Mapped[int] = mapped_column(BigInteger)
    exit_idx: Mapped[int | None] = mapped_column(BigInteger)
    entry_price: Mapped[float] = mapped_column(Float)
    exit_price: Mapped[float | None] = mapped_column(Float)
    pnl: Mapped[float] = mapped_column(Float)
    commission: Mapped[float] = mapped_column(Float)
    exit_reason: Mapped[str | None] = mapped_column(String(16))
    is_open: Mapped[bool] = mapped_column(Boolean, default=False)
    extra: Mapped[dict[str, Any] | None] = mapped_column(Json)


class EquityRow(Base):
    """A run's whole equity curve in one row: zlib-compressed int64 ts and float64 values."""

    __tablename__ = "equity_curves"

    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    n_points: Mapped[int] = mapped_column(BigInteger)
    encoding: Mapped[str] = mapped_column(String(32))
    ts_data: Mapped[bytes] = mapped_column(LargeBinary)
    equity_data: Mapped[bytes] = mapped_column(LargeBinary)


class BlobRow(Base):
    """Bytes by key, for `DatabaseBlobStore` (dataset Parquet files in team deployments)."""

    __tablename__ = "blobs"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OptimizationRow(Owned, Base):
    """One parameter optimization: its inputs, its coordinator lease and its outcome.

    Batches of trials are their own rows (`OptimizationBatchRow`), each a queue job with
    the same lease/attempt rule as a run; the coordinator holds the lease on this row.
    """

    __tablename__ = "optimizations"
    __table_args__ = (
        Index("ix_optimizations_created_at_id", "created_at", "id"),
        Index("ix_optimizations_status_lease", "status", "lease_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[RunStatus] = mapped_column(StatusType(), default=RunStatus.QUEUED)
    seq: Mapped[int] = mapped_column(BigInteger, default=1)
    strategy: Mapped[str] = mapped_column(String(100), index=True)
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), index=True
    )
    method: Mapped[str] = mapped_column(String(16))
    space: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    objectives: Mapped[list[Any]] = mapped_column(Json, default=list)
    constraints: Mapped[list[Any]] = mapped_column(Json, default=list)
    result_constraints: Mapped[list[Any]] = mapped_column(Json, default=list)
    options: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    method_options: Mapped[dict[str, Any] | None] = mapped_column(Json)
    seed: Mapped[int] = mapped_column(BigInteger, default=0)
    budget: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    """{"max_trials", "max_seconds", "batch_size"} (None = unset)."""
    total: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    best: Mapped[dict[str, Any] | None] = mapped_column(Json)
    result: Mapped[dict[str, Any] | None] = mapped_column(Json)
    dataset_hash: Mapped[str | None] = mapped_column(String(64))
    code_hash: Mapped[str | None] = mapped_column(String(64))
    engine_version: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def terminal(self) -> bool:
        return RunStatus(self.status).terminal


class OptimizationBatchRow(Base):
    """One batch of parameter sets: a queue job claimed under a lease like a run."""

    __tablename__ = "optimization_batches"
    __table_args__ = (Index("ix_optimization_batches_status_lease", "status", "lease_expires_at"),)

    optimization_id: Mapped[str] = mapped_column(
        ForeignKey("optimizations.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_trial: Mapped[int] = mapped_column(Integer)
    params: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    status: Mapped[RunStatus] = mapped_column(StatusType(), default=RunStatus.QUEUED)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    metrics: Mapped[dict[str, list[Any]] | None] = mapped_column(Json)
    seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OptimizationTrialRow(Base):
    """One evaluated parameter set of an optimization (the queryable trial log)."""

    __tablename__ = "optimization_trials"

    optimization_id: Mapped[str] = mapped_column(
        ForeignKey("optimizations.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    values: Mapped[list[Any]] = mapped_column(Json, default=list)
    feasible: Mapped[bool] = mapped_column(Boolean, default=True)
    violations: Mapped[list[str]] = mapped_column(Json, default=list)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
