"""Runs: the `Run` type and its results (typed metrics, trade pages, chart-sized equity).

Queries live in `run_queries.py`, mutations in `run_mutations.py`, events in
`subscriptions.py`; all of them shape store rows with `Run.from_row`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from graph.analytics import POINTS_HELP, ChartKind, RollingMetrics, RunAnalysis, check_points
from graph.context import Info
from graph.datasets import Dataset
from graph.errors import BadUserInput
from graph.pagination import Connection, build_connection, decode_cursor, encode_cursor, page_size
from graph.scalars import JSON, EpochMs, finite_or_none, json_safe, ns_to_datetime, to_utc
from graph.series import downsample_minmax, equity_pairs
from store import runs as run_store

MAX_TRADES_PAGE = 500
_INT_METRICS = frozenset(
    {"max_win_streak", "max_loss_streak", "n_trades", "n_open", "max_drawdown_duration_bars"}
)


@strawberry.enum(description="Lifecycle: QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED.")
class RunStatus(Enum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})


@strawberry.type(description="The headline metrics of a finished run (null = undefined).")
class Metrics:
    final_equity: float | None
    total_return_pct: float | None
    cagr_pct: float | None
    volatility_pct: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown_pct: float | None
    max_drawdown_duration_bars: int | None
    win_rate: float | None
    profit_factor: float | None
    expectancy: float | None
    avg_win: float | None
    avg_loss: float | None
    largest_win: float | None
    largest_loss: float | None
    max_win_streak: int | None
    max_loss_streak: int | None
    exposure_pct: float | None
    n_trades: int | None = strawberry.field(description="Closed trades.")
    n_open: int | None = strawberry.field(description="Open trades at the end (0 or 1).")
    avg_holding_bars: float | None
    var_95: float | None
    cvar_95: float | None
    sqn: float | None
    kelly: float | None

    @classmethod
    def from_dict(cls, metrics: dict[str, Any]) -> Metrics:
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:  # type: ignore[attr-defined]
            raw = finite_or_none(metrics.get(name))
            values[name] = None if raw is None else (int(raw) if name in _INT_METRICS else raw)
        return cls(**values)


@strawberry.type(description="One trade: closed trades first, then the open one if any.")
class Trade:
    index: int
    side: int = strawberry.field(description="+1 long, -1 short.")
    qty: float
    entry_time: datetime
    exit_time: datetime | None
    entry_index: int = strawberry.field(description="Bar index of the entry fill.")
    exit_index: int | None
    entry_price: float
    exit_price: float | None
    pnl: float = strawberry.field(description="Net of commission.")
    commission: float
    exit_reason: str | None
    is_open: bool

    @classmethod
    def from_row(cls, row: Any) -> Trade:
        return cls(
            index=int(row.idx),
            side=int(row.side),
            qty=float(row.qty),
            entry_time=ns_to_datetime(row.entry_time),
            exit_time=None if row.exit_time is None else ns_to_datetime(row.exit_time),
            entry_index=int(row.entry_idx),
            exit_index=None if row.exit_idx is None else int(row.exit_idx),
            entry_price=float(row.entry_price),
            exit_price=finite_or_none(row.exit_price),
            pnl=float(row.pnl),
            commission=float(row.commission),
            exit_reason=row.exit_reason,
            is_open=bool(row.is_open),
        )


@strawberry.type(description="One point of an equity curve.")
class EquityPoint:
    t: EpochMs
    value: float


@strawberry.type
class MonthlyReturn:
    year: int
    month: int
    return_pct: float | None


@strawberry.type(description="A backtest run: its inputs, its state and, when done, its results.")
class Run:
    id: strawberry.ID
    status: RunStatus
    seq: int = strawberry.field(description="Version of the run's state; events carry it too.")
    progress: float = strawberry.field(description="0..1")
    stage: str
    strategy: str
    dataset_id: strawberry.ID | None
    params: JSON
    options: JSON
    metrics: JSON | None = strawberry.field(description="Every metric, as computed by the engine.")
    error: str | None
    attempt: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    n_bars: int | None
    n_trades: int | None = strawberry.field(description="Stored trades, the open one included.")
    engine: JSON | None = strawberry.field(description="Engine version, bars/second, seconds.")
    monthly_returns: list[MonthlyReturn]
    shared: bool = strawberry.field(
        default=False, description="Shown to the whole team (`shareRun`); else only its owner "
        "and admins see it."
    )

    @strawberry.field(description="The main metrics, typed.")
    def summary(self) -> Metrics | None:
        return None if self.metrics is None else Metrics.from_dict(self.metrics)

    @strawberry.field
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @strawberry.field(description="The dataset, unless it was deleted since.")
    async def dataset(self, info: Info) -> Dataset | None:
        if self.dataset_id is None:
            return None
        row = await info.context.loaders.dataset.load(str(self.dataset_id))
        return None if row is None else Dataset.from_row(row)

    @strawberry.field(description="Trades in order, a page at a time.")
    async def trades(
        self, info: Info, first: int | None = 100, after: str | None = None
    ) -> Connection[Trade]:
        size = page_size(first, default=100, maximum=MAX_TRADES_PAGE)
        raw_after = decode_cursor(after)
        try:
            start = int(raw_after) if raw_after is not None else None
        except ValueError:
            raise BadUserInput(f"invalid cursor {after!r}", field="after") from None
        rows = await run_store.get_trades(info.context.services.db, str(self.id), size + 1, start)
        has_next = len(rows) > size
        rows = rows[:size]
        return build_connection(
            rows,
            [encode_cursor(str(row.idx)) for row in rows],
            shape=Trade.from_row,
            has_next=has_next,
            has_previous=start is not None,
            total=self.n_trades,
        )

    @strawberry.field(
        description="The equity curve downsampled to at most `points` points, keeping every "
        "bucket's high and low (so peaks and drawdowns stay exact)."
    )
    async def equity(self, info: Info, points: int = 1000) -> list[EquityPoint]:
        limit = info.context.limits.max_equity_points
        if points < 2 or points > limit:
            raise BadUserInput(f"points must be between 2 and {limit}, got {points}", field="points")
        if self.status is not RunStatus.SUCCEEDED:
            return []
        ts, values = await run_store.get_equity(info.context.services.db, str(self.id))
        # Off the event loop: a long run's curve has millions of points.
        ts, values = await asyncio.to_thread(downsample_minmax, ts, values, points)
        return [EquityPoint(t=t, value=v) for t, v in equity_pairs(ts, values)]  # type: ignore[arg-type]

    @strawberry.field(
        description="Performance analysis (basic, risk, trades, benchmark, drawdowns, period "
        "returns); CONFLICT until the run has succeeded."
    )
    async def analysis(self, info: Info) -> RunAnalysis | None:
        d = await info.context.services.analytics.analysis_dict(str(self.id))
        return RunAnalysis.from_dict(d)

    @strawberry.field(description="One chart as a Plotly figure (JSON). " + POINTS_HELP)
    async def chart(
        self, info: Info, kind: ChartKind, points: int = 2000, window: str | None = None
    ) -> JSON | None:
        check_points(info, points)
        return await info.context.services.analytics.chart(
            str(self.id), kind.value, points=points, window=window
        )

    @strawberry.field(description="Every chart kind -> Plotly figure (JSON). " + POINTS_HELP)
    async def charts(self, info: Info, points: int = 2000, window: str | None = None) -> JSON | None:
        check_points(info, points)
        return await info.context.services.analytics.charts(str(self.id), points=points, window=window)

    @strawberry.field(description="The raw series behind one chart, for custom frontends.")
    async def chart_data(
        self, info: Info, kind: ChartKind, points: int = 2000, window: str | None = None
    ) -> JSON | None:
        check_points(info, points)
        return await info.context.services.analytics.chart_data(
            str(self.id), kind.value, points=points, window=window
        )

    @strawberry.field(
        description="Rolling sharpe, volatility, return and drawdown over `window`: a number of "
        "bars (\"200\") or a duration (\"30D\", \"4h\", \"15min\")."
    )
    async def rolling(
        self, info: Info, window: str, metrics: list[str] | None = None, points: int = 2000
    ) -> RollingMetrics | None:
        check_points(info, points)
        d = await info.context.services.analytics.rolling(
            str(self.id), window, metrics=metrics, points=points
        )
        return RollingMetrics(
            window=d["window"], window_bars=d["window_bars"],
            window_seconds=d["window_seconds"], series=d["series"],
        )

    @classmethod
    def from_row(cls, row: Any) -> Run:
        metrics = json_safe(row.metrics) if row.metrics is not None else None
        return cls(
            id=strawberry.ID(str(row.id)),
            status=RunStatus(str(getattr(row.status, "value", row.status))),
            seq=int(row.seq or 0),
            progress=float(row.progress or 0.0),
            stage=row.stage or "",
            strategy=row.strategy,
            dataset_id=None if row.dataset_id is None else strawberry.ID(str(row.dataset_id)),
            params=json_safe(row.params or {}),
            options=json_safe(row.options or {}),
            metrics=metrics,
            error=row.error,
            attempt=int(row.attempt or 0),
            cancel_requested=bool(row.cancel_requested),
            created_at=to_utc(row.created_at),  # type: ignore[arg-type]
            started_at=to_utc(row.started_at),
            finished_at=to_utc(row.finished_at),
            duration_ms=None if row.duration_ms is None else float(row.duration_ms),
            n_bars=None if row.n_bars is None else int(row.n_bars),
            n_trades=row.n_trades,
            engine=json_safe(row.engine_info) if row.engine_info is not None else None,
            monthly_returns=[
                MonthlyReturn(
                    year=int(m["year"]),
                    month=int(m["month"]),
                    return_pct=finite_or_none(m.get("return_pct")),
                )
                for m in (row.monthly_returns or [])
            ],
            shared=bool(getattr(row, "shared", False)),
        )
