"""Analytics in the API: a run's performance analysis, charts and rolling metrics (fields
of `Run`), `compareRuns` and `analyticsSummary`.

Resolvers only parse, call `Services.analytics` (`workers.analytics`) and shape: the
numbers and Plotly figures come from the engine. A run that has not SUCCEEDED answers
these fields with a CONFLICT error saying it is not finished; an unknown id NOT_FOUND.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import strawberry

from engine.downsample import DEFAULT_POINTS, MIN_POINTS
from graph.context import Info
from graph.errors import BadUserInput
from graph.scalars import JSON, finite_or_none, to_utc

if TYPE_CHECKING:
    from graph.runs import MonthlyReturn, Run, RunStatus

T = TypeVar("T")


@strawberry.enum(description="The charts of a run (`Run.chart`, `Run.chartData`).")
class ChartKind(Enum):
    EQUITY = "equity"
    UNDERWATER = "underwater"
    RETURNS_DISTRIBUTION = "returns_distribution"
    TRADES = "trades"
    PNL_VS_HOLDING = "pnl_vs_holding"
    MONTHLY_HEATMAP = "monthly_heatmap"
    ROLLING_SHARPE = "rolling_sharpe"
    ROLLING_VOLATILITY = "rolling_volatility"


def _shape(cls: type[T], values: dict[str, Any]) -> T:
    return cls(**{name: values.get(name) for name in cls.__dataclass_fields__})  # type: ignore[attr-defined]


@strawberry.type(description="Headline numbers; times are the exchange's local time (ISO-8601).")
class AnalysisBasic:
    total_return_pct: float | None
    cagr_pct: float | None
    sharpe: float | None
    max_drawdown_pct: float | None
    final_equity: float | None
    n_trades: int | None = strawberry.field(description="Closed trades.")
    n_open: int | None
    exposure_pct: float | None
    initial_cash: float | None
    n_bars: int | None
    bars_per_year: float | None = strawberry.field(
        description="Annualization factor, from the data's bar spacing and trading sessions."
    )
    tz: str | None
    start: str | None
    end: str | None


@strawberry.type(description="Risk: volatility, tail losses (percent per bar), drawdowns.")
class AnalysisRisk:
    volatility_pct: float | None
    sortino: float | None
    calmar: float | None
    var_95: float | None
    cvar_95: float | None
    var_99: float | None
    cvar_99: float | None
    skew: float | None
    kurtosis: float | None = strawberry.field(description="Excess kurtosis (0 = normal).")
    tail_ratio: float | None
    ulcer_index: float | None
    max_drawdown_pct: float | None
    max_drawdown_duration_bars: int | None
    max_drawdown_duration_days: float | None
    time_to_recovery_bars: int | None = strawberry.field(
        description="From the deepest drawdown's trough back to its peak; null if not recovered."
    )
    time_to_recovery_days: float | None
    max_drawdown_recovered: bool | None
    current_drawdown_pct: float | None
    best_bar_pct: float | None
    worst_bar_pct: float | None


@strawberry.type(description="Closed-trade statistics and breakdowns (tables as JSON rows).")
class TradeAnalysis:
    n_trades: int | None
    n_open: int | None
    n_wins: int | None
    n_losses: int | None
    win_rate: float | None
    avg_win: float | None
    avg_loss: float | None
    largest_win: float | None
    largest_loss: float | None
    max_win_streak: int | None
    max_loss_streak: int | None
    expectancy: float | None
    profit_factor: float | None
    payoff_ratio: float | None
    avg_holding_bars: float | None
    avg_holding_days: float | None
    sqn: float | None
    kelly: float | None
    gross_profit: float | None
    gross_loss: float | None
    net_pnl: float | None
    total_commission: float | None
    open_pnl: float | None
    by_side: JSON = strawberry.field(
        description="Rows {key, n_trades, n_wins, n_losses, win_rate, total_pnl, avg_pnl, best, "
        "worst, profit_factor, avg_holding_bars}."
    )
    by_exit_reason: JSON
    by_weekday: JSON = strawberry.field(description="By the entry's local weekday.")
    by_hour: JSON = strawberry.field(description="By the entry's local hour of day.")


@strawberry.type(description="Buy and hold of the same dataset over the same bars.")
class BenchmarkAnalysis:
    return_pct: float | None
    final_equity: float | None
    cagr_pct: float | None
    volatility_pct: float | None
    sharpe: float | None
    max_drawdown_pct: float | None
    excess_return_pct: float | None
    alpha_pct: float | None
    beta: float | None
    correlation: float | None
    information_ratio: float | None
    tracking_error_pct: float | None


@strawberry.type(description="One drawdown period: peak (start), trough and recovery (end).")
class DrawdownPeriod:
    rank: int
    start: str
    trough: str
    end: str | None = strawberry.field(description="Null while not recovered.")
    recovered: bool
    depth_pct: float
    length_bars: int
    length_days: float
    decline_bars: int
    recovery_bars: int | None
    start_idx: int
    trough_idx: int
    end_idx: int | None


@strawberry.type
class YearlyReturn:
    year: int
    return_pct: float | None


@strawberry.type(description="A finished run's performance analysis, computed once and cached.")
class RunAnalysis:
    basic: AnalysisBasic
    risk: AnalysisRisk
    trade_analysis: TradeAnalysis
    benchmark: BenchmarkAnalysis | None = strawberry.field(
        description="Null when the dataset's bars are no longer available."
    )
    drawdowns: list[DrawdownPeriod] = strawberry.field(description="The 5 worst, deepest first.")
    monthly_returns: list[Annotated[MonthlyReturn, strawberry.lazy("graph.runs")]]
    yearly_returns: list[YearlyReturn]
    monthly_table: JSON = strawberry.field(description="{years, values (12 per year), year_total}")
    metrics: JSON = strawberry.field(description="Every engine metric of the run.")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunAnalysis:
        from graph.runs import MonthlyReturn

        return cls(
            basic=_shape(AnalysisBasic, d["basic"]),
            risk=_shape(AnalysisRisk, d["risk"]),
            trade_analysis=_shape(TradeAnalysis, d["trade_analysis"]),
            benchmark=None if d["benchmark"] is None else _shape(BenchmarkAnalysis, d["benchmark"]),
            drawdowns=[_shape(DrawdownPeriod, row) for row in d["drawdowns"]],
            monthly_returns=[_shape(MonthlyReturn, m) for m in d["monthly_returns"]],
            yearly_returns=[_shape(YearlyReturn, y) for y in d["yearly_returns"]],
            monthly_table=d["monthly_table"],
            metrics=d["metrics"],
        )


@strawberry.type(description="Rolling metrics; series times `t` are epoch milliseconds UTC.")
class RollingMetrics:
    window: str
    window_bars: int | None
    window_seconds: float | None
    series: JSON = strawberry.field(description="{metric: {t: [...], v: [...]}}, null = undefined.")


@strawberry.type
class ComparedRun:
    id: strawberry.ID
    label: str
    timezone: str
    n_bars: int
    start: str
    end: str
    overlap_return_pct: float | None = strawberry.field(
        description="Return over the common span (rebased curve's last value - 100)."
    )


@strawberry.type
class ComparedMetric:
    metric: str
    values: list[float | None] = strawberry.field(description="One per run, in `runs` order.")
    best: int | None = strawberry.field(description="Index of the best run, if comparable.")


@strawberry.type(description="Runs side by side on a common time axis.")
class RunComparison:
    overlap: bool
    message: str | None = strawberry.field(description="Says why when the runs do not overlap.")
    timezone: str
    start: str | None
    end: str | None
    n_points: int
    runs: list[ComparedRun]
    metrics: list[ComparedMetric]
    correlation: list[list[float | None]] | None = strawberry.field(
        description="Pearson correlation of returns, runs x runs; null without overlap."
    )
    correlation_points: int
    equity: JSON = strawberry.field(description="Per run {t, v} rebased to 100, or null.")
    chart: JSON = strawberry.field(description="Plotly figure of the rebased equity curves.")
    correlation_chart: JSON | None = strawberry.field(description="Plotly heatmap.")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunComparison:
        return cls(
            overlap=bool(d["overlap"]),
            message=d["message"],
            timezone=d["tz"],
            start=d["start"],
            end=d["end"],
            n_points=int(d["n_points"]),
            runs=[ComparedRun(id=strawberry.ID(r["id"]), label=r["label"], timezone=r["tz"],
                              n_bars=r["n_bars"], start=r["start"], end=r["end"],
                              overlap_return_pct=finite_or_none(r["overlap_return_pct"]))
                  for r in d["runs"]],
            metrics=[ComparedMetric(metric=m["metric"], values=[finite_or_none(v) for v in m["values"]],
                                    best=m["best"]) for m in d["metrics"]],
            correlation=d["correlation"],
            correlation_points=int(d["correlation_points"]),
            equity=d["equity"],
            chart=d["chart"],
            correlation_chart=d["correlation_chart"],
        )


@strawberry.type
class RunStatusCount:
    status: Annotated[RunStatus, strawberry.lazy("graph.runs")]
    count: int


@strawberry.type(description="Runs of one strategy.")
class StrategyRunCount:
    strategy: str
    total: int
    by_status: list[RunStatusCount]
    average_run_seconds: float | None = strawberry.field(description="Of succeeded runs.")
    last_run_at: datetime | None


@strawberry.type(description="A dataset that runs use.")
class DatasetUsage:
    dataset_id: strawberry.ID
    name: str
    symbol: str
    timeframe: str
    runs: int


@strawberry.type
class RankedRun:
    rank: int
    value: float
    run: Annotated[Run, strawberry.lazy("graph.runs")]


@strawberry.type(description="Service-wide analytics for dashboards.")
class AnalyticsSummary:
    total_runs: int
    by_status: list[RunStatusCount]
    average_run_seconds: float | None = strawberry.field(description="Of succeeded runs.")
    by_strategy: list[StrategyRunCount]
    datasets: list[DatasetUsage]
    metric: str
    lower_is_better: bool
    best_runs: list[RankedRun]


def _counts(by_status: dict[str, int]) -> list[RunStatusCount]:
    from graph.runs import RunStatus

    return [RunStatusCount(status=RunStatus(k), count=int(n)) for k, n in by_status.items()]


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else float(ms) / 1000.0


def summary_from_dict(d: dict[str, Any]) -> AnalyticsSummary:
    from graph.runs import Run

    metric = d["metric"]
    return AnalyticsSummary(
        total_runs=int(d["total"]),
        by_status=_counts(d["by_status"]),
        average_run_seconds=_seconds(d["avg_duration_ms"]),
        by_strategy=[
            StrategyRunCount(strategy=s["strategy"], total=s["total"], by_status=_counts(s["by_status"]),
                             average_run_seconds=_seconds(s["avg_duration_ms"]),
                             last_run_at=to_utc(s["last_run_at"]))
            for s in d["by_strategy"]
        ],
        datasets=[
            DatasetUsage(dataset_id=strawberry.ID(str(x["dataset_id"])), name=x["name"],
                         symbol=x["symbol"], timeframe=x["timeframe"], runs=x["runs"])
            for x in d["datasets"]
        ],
        metric=metric,
        lower_is_better=bool(d["lower_is_better"]),
        best_runs=[RankedRun(rank=i, value=float(row.metrics[metric]), run=Run.from_row(row))
                   for i, row in enumerate(d["best"], start=1)],
    )


def check_points(info: Info, points: int) -> int:
    """`points` within [MIN_POINTS, the request limit], else BAD_USER_INPUT."""
    limit = info.context.limits.max_equity_points
    if not MIN_POINTS <= points <= limit:
        raise BadUserInput(f"points must be between {MIN_POINTS} and {limit}, got {points}",
                           field="points")
    return points


POINTS_HELP = f"At most this many points per series (default {DEFAULT_POINTS}, extremes kept)."


@strawberry.type
class AnalyticsQueries:
    @strawberry.field(
        description="Finished runs side by side: metrics, equity rebased to 100 on a common "
        "time axis, the correlation of their returns and a comparison chart."
    )
    async def compare_runs(
        self, info: Info, ids: list[strawberry.ID], points: int = DEFAULT_POINTS
    ) -> RunComparison:
        check_points(info, points)
        d = await info.context.services.analytics.compare([str(i) for i in ids], points=points)
        return RunComparison.from_dict(d)

    @strawberry.field(
        description="Runs by status and strategy, datasets in use, average run time and "
        "the best runs by `metric` (lowest first for drawdowns and volatility)."
    )
    async def analytics_summary(
        self, info: Info, metric: str = "sharpe", limit: int = 5
    ) -> AnalyticsSummary:
        d = await info.context.services.analytics.summary(metric, limit)
        return summary_from_dict(d)
