"""Backtest runs, their trades and their equity curves."""

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
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Json, Owned, RunStatus, StatusType, UTCDateTime, utcnow

__all__ = ["EquityRow", "RunRow", "TradeRow"]


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
