"""Parameter optimizations, their batches (leased queue jobs) and their trial log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Json, Owned, RunStatus, StatusType, UTCDateTime, utcnow

__all__ = ["OptimizationBatchRow", "OptimizationRow", "OptimizationTrialRow"]


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
    validation: Mapped[dict[str, Any] | None] = mapped_column(Json)
    """Resolved hold-out split or walk-forward windows (migration 0006); None = none."""
    walk_forward: Mapped[dict[str, Any] | None] = mapped_column(Json)
    """Walk-forward outcome: windows, efficiency, stitched out-of-sample equity."""

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
    window: Mapped[int | None] = mapped_column(Integer)
    """Walk-forward window index (None: not a walk-forward optimization)."""
    oos_metrics: Mapped[dict[str, list[Any]] | None] = mapped_column(Json)
    """Hold-out: the same parameter sets' metrics on the out-of-sample bars."""
    blocks: Mapped[bytes | None] = mapped_column(LargeBinary)
    """zlib-compressed float64 [3, n_sets, S]: per-block bar-return count, sum, sum of squares."""


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
    window: Mapped[int | None] = mapped_column(Integer)
    oos_metrics: Mapped[dict[str, Any] | None] = mapped_column(Json)
