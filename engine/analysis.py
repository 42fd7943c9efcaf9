"""Performance analysis of one run: grouped metrics, drawdown periods, calendar tables.

`analyze` is computed once from a run's equity curve and trades. Everything the engine's
metrics module already defines is taken from it (`engine.metrics`, `engine.metrics_nb`);
this module only adds what it does not compute, with these definitions (bar returns
r_i = equity_i / equity_{i-1} - 1, i >= 1; b_i the same for the benchmark; annualized
with the run's `bars_per_year`, i.e. `engine.calendar.bars_per_year` of the data):

* var_99 / cvar_99: the engine's historical rule at 1% (K = ceil(1% of m) worst bar
  returns; VaR = -(K-th worst), CVaR = -(mean of the K worst); percent, losses positive).
  empyrical interpolates a percentile instead (VaR = np.percentile(r, 1)) and averages
  the int((m-1) x 1%) + 1 worst: the two agree exactly when (m-1) x tail is a whole number.
* skew, kurtosis: of bar returns, population (biased) moments; kurtosis is EXCESS
  kurtosis (0 for a normal distribution), as scipy.stats.skew / kurtosis by default.
* tail_ratio = |95th percentile| / |5th percentile| of bar returns (linear interpolation).
* ulcer_index = sqrt(mean(D_i^2)) over all bars, D_i the drawdown in percent from the
  running peak (which starts at the initial cash, as in the engine's max drawdown).
* time_to_recovery_bars / _days: from the deepest drawdown's trough to the first bar
  back at or above its peak (None if it has not recovered).
* Drawdown periods: start (peak bar), trough, end (recovery bar, None if open), depth
  in percent, length in bars from start to end (or to the last bar), as the engine's
  max_drawdown_duration_bars counts it.
* Benchmark = buy and hold of the same dataset over the same bars (equity =
  initial_cash x close_i / close_0), with the engine's metrics for its return, CAGR,
  volatility, Sharpe and max drawdown. beta = cov(r, b) / var(b); alpha (percent,
  annualized by compounding, as empyrical's alpha) = ((1 + mean(r - beta x b))^bpy - 1)
  x 100; correlation = Pearson of r and b; information_ratio = mean(r - b) /
  stdev(r - b, ddof=1) x sqrt(bpy) (empyrical's excess_sharpe is the same ratio NOT
  annualized); tracking_error_pct = stdev(r - b, ddof=1) x sqrt(bpy) x 100.
* Return statistics are None once equity has reached <= 0 (as in the engine).
Every value is JSON-safe: None where undefined, never NaN or inf.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.analysis_nb import drawdown_periods_nb, moments_nb, quantile_nb, tail_risk_nb
from engine.analysis_periods import iso_local, monthly_table, yearly_returns
from engine.analysis_trades import TradeArrays, trade_breakdowns
from engine.calendar import bars_per_year as data_bars_per_year
from engine.errors import EngineInputError
from engine.metrics import metrics_from_records, monthly_returns
from engine.simulate_nb import N_TRADE_FIELDS

__all__ = ["N_WORST_DRAWDOWNS", "Analysis", "AnalysisSeries", "analyze", "json_safe", "safe_list"]

N_WORST_DRAWDOWNS = 5
NS_PER_DAY = 86_400_000_000_000


def json_safe(obj: Any) -> Any:
    """A copy of obj with numpy scalars as Python numbers and NaN/inf as None."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    return obj


def safe_list(values: np.ndarray) -> list[Any]:
    """A float array as a JSON-safe list (None for NaN/inf), without a per-item Python pass
    when every value is finite."""
    a = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(a)
    if ok.all():
        return a.tolist()
    out = a.astype(object)
    out[~ok] = None
    return out.tolist()


def _f(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True, slots=True)
class AnalysisSeries:
    """The arrays behind an Analysis, for charts (never serialized)."""

    ts: np.ndarray
    equity: np.ndarray
    returns: np.ndarray  # bar returns r_1..r_{n-1}; NaN where the previous equity <= 0
    drawdown_pct: np.ndarray  # <= 0: percent below the running peak, per bar
    benchmark_equity: np.ndarray | None
    close: np.ndarray | None
    trades: TradeArrays
    dd_start: np.ndarray  # every drawdown period (engine.analysis_nb.drawdown_periods_nb)
    dd_trough: np.ndarray
    dd_end: np.ndarray
    dd_depth: np.ndarray
    tz: str
    bars_per_year: float
    initial_cash: float
    ruined: bool

    @property
    def peak_idx(self) -> int:
        """Bar of the highest equity."""
        return int(np.argmax(self.equity))

    @property
    def trough_idx(self) -> int:
        """Bar of the maximum drawdown's trough (the deepest point under water)."""
        return int(np.argmin(self.drawdown_pct))


@dataclass(frozen=True, slots=True)
class Analysis:
    """A run's analysis, grouped as users read it; `to_dict()` is the JSON answer."""

    basic: dict[str, Any]
    risk: dict[str, Any]
    trade_analysis: dict[str, Any]
    benchmark: dict[str, Any] | None
    drawdowns: list[dict[str, Any]]
    monthly_returns: list[dict[str, Any]]
    yearly_returns: list[dict[str, Any]]
    monthly_table: dict[str, Any]
    metrics: dict[str, Any]
    series: AnalysisSeries = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every group (the arrays in `series` are left out)."""
        return json_safe({
            "basic": self.basic,
            "risk": self.risk,
            "trade_analysis": self.trade_analysis,
            "benchmark": self.benchmark,
            "drawdowns": self.drawdowns,
            "monthly_returns": self.monthly_returns,
            "yearly_returns": self.yearly_returns,
            "monthly_table": self.monthly_table,
            "metrics": self.metrics,
        })


def _returns(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """Bar returns (NaN after a non-positive value) and whether any value was <= 0."""
    prev = values[:-1]
    ruined = bool(np.any(prev <= 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = values[1:] / prev - 1.0
    if ruined:
        r[prev <= 0.0] = np.nan
    return r, ruined


def _drawdown_rows(
    s: AnalysisSeries, limit: int = N_WORST_DRAWDOWNS
) -> list[dict[str, Any]]:
    """The `limit` deepest drawdown periods, deepest first (ties: earlier first)."""
    order = np.argsort(-s.dd_depth, kind="stable")[:limit]
    n = s.equity.shape[0]
    ts = s.ts
    rows = []
    for rank, k in enumerate(order.tolist(), start=1):
        a, t, e = int(s.dd_start[k]), int(s.dd_trough[k]), int(s.dd_end[k])
        last = e if e >= 0 else n - 1
        rows.append({
            "rank": rank,
            "start": iso_local(int(ts[a]), s.tz),
            "trough": iso_local(int(ts[t]), s.tz),
            "end": iso_local(int(ts[e]), s.tz) if e >= 0 else None,
            "recovered": e >= 0,
            "depth_pct": float(s.dd_depth[k] * 100.0),
            "length_bars": last - a,
            "length_days": (int(ts[last]) - int(ts[a])) / NS_PER_DAY,
            "decline_bars": t - a,
            "recovery_bars": e - t if e >= 0 else None,
            "start_idx": a,
            "trough_idx": t,
            "end_idx": e if e >= 0 else None,
        })
    return rows


def _risk(s: AnalysisSeries, m: Mapping[str, Any]) -> dict[str, Any]:
    r = s.returns
    out: dict[str, Any] = {k: m[k] for k in (
        "volatility_pct", "sortino", "calmar", "var_95", "cvar_95", "max_drawdown_pct",
        "max_drawdown_duration_bars", "max_drawdown_duration_days")}
    out.update(var_99=None, cvar_99=None, skew=None, kurtosis=None, tail_ratio=None,
               best_bar_pct=None, worst_bar_pct=None)
    if r.shape[0] >= 1 and not s.ruined:
        var99, cvar99 = tail_risk_nb(r, 0.01)
        out["var_99"], out["cvar_99"] = _f(var99 * 100.0), _f(cvar99 * 100.0)
        out["best_bar_pct"] = float(r.max() * 100.0)
        out["worst_bar_pct"] = float(r.min() * 100.0)
        _, m2, m3, m4 = moments_nb(r)
        if m2 > 0.0:
            out["skew"] = _f(m3 / m2**1.5)
            out["kurtosis"] = _f(m4 / m2**2 - 3.0)
        q5 = quantile_nb(r, 0.05)
        if q5 != 0.0:
            out["tail_ratio"] = _f(abs(quantile_nb(r, 0.95)) / abs(q5))
    dd = s.drawdown_pct
    out["ulcer_index"] = _f(math.sqrt(float(np.dot(dd, dd)) / dd.shape[0]))
    out["current_drawdown_pct"] = _f(-float(dd[-1]))
    out["time_to_recovery_bars"] = out["time_to_recovery_days"] = None
    out["max_drawdown_recovered"] = None
    if s.dd_depth.shape[0]:
        k = int(np.argmax(s.dd_depth))
        t, e = int(s.dd_trough[k]), int(s.dd_end[k])
        out["max_drawdown_recovered"] = e >= 0
        if e >= 0:
            out["time_to_recovery_bars"] = e - t
            out["time_to_recovery_days"] = (int(s.ts[e]) - int(s.ts[t])) / NS_PER_DAY
    return out


def _trade_analysis(tr: TradeArrays, m: Mapping[str, Any], tz: str) -> dict[str, Any]:
    closed = tr.closed()
    pnl = closed.pnl
    out: dict[str, Any] = {k: m[k] for k in (
        "n_trades", "n_open", "win_rate", "avg_win", "avg_loss", "largest_win",
        "largest_loss", "max_win_streak", "max_loss_streak", "expectancy", "profit_factor",
        "avg_holding_bars", "avg_holding_days", "sqn", "kelly")}
    gross_win = float(pnl[pnl > 0].sum())
    gross_loss = float(pnl[pnl < 0].sum())
    avg_win, avg_loss = m["avg_win"], m["avg_loss"]
    out.update(
        n_wins=int((pnl > 0).sum()),
        n_losses=int((pnl < 0).sum()),
        gross_profit=gross_win,
        gross_loss=gross_loss,
        net_pnl=float(pnl.sum()),
        total_commission=float(closed.commission.sum()),
        payoff_ratio=avg_win / -avg_loss if avg_win is not None and avg_loss else None,
        open_pnl=float(tr.pnl[tr.is_open].sum()) if tr.is_open.any() else None,
    )
    out.update(trade_breakdowns(closed, tz))
    return out


def _benchmark(s: AnalysisSeries) -> dict[str, Any] | None:
    if s.benchmark_equity is None:
        return None
    beq = s.benchmark_equity
    bm = metrics_from_records(beq, s.ts, np.zeros((0, N_TRADE_FIELDS)), n_open=0, open_bars=0,
                              initial_cash=s.initial_cash, bars_per_year=s.bars_per_year)
    out: dict[str, Any] = {k: bm[k] for k in (
        "final_equity", "total_return_pct", "cagr_pct", "volatility_pct", "sharpe",
        "max_drawdown_pct")}
    out["return_pct"] = out.pop("total_return_pct")
    eq = s.equity
    out["excess_return_pct"] = _f((eq[-1] - beq[-1]) / s.initial_cash * 100.0)
    out.update(alpha_pct=None, beta=None, correlation=None, information_ratio=None,
               tracking_error_pct=None)
    r = s.returns
    b, b_ruined = _returns(beq)
    if r.shape[0] < 2 or s.ruined or b_ruined:
        return out
    bc = b - b.mean()
    var_b = float(np.dot(bc, bc)) / bc.shape[0]
    rc = r - r.mean()
    cov = float(np.dot(bc, r)) / bc.shape[0]
    if var_b > 1e-30:
        beta = cov / var_b
        out["beta"] = beta
        out["alpha_pct"] = _f(((1.0 + float(np.mean(r - beta * b))) ** s.bars_per_year - 1.0)
                              * 100.0)
        ss_r = float(np.dot(rc, rc))
        if ss_r > 0.0:
            out["correlation"] = _f(float(np.dot(rc, bc)) / math.sqrt(ss_r * float(np.dot(bc, bc))))
    active = r - b
    sd = float(np.std(active, ddof=1))
    ann = math.sqrt(s.bars_per_year)
    out["tracking_error_pct"] = _f(sd * ann * 100.0)
    if sd > 0.0:
        out["information_ratio"] = _f(float(active.mean()) / sd * ann)
    return out


def analyze(
    equity: np.ndarray,
    ts: np.ndarray,
    trades: Sequence[Any],
    *,
    tz: str,
    bars_per_year: float | None,
    benchmark_close: np.ndarray | None = None,
    initial_cash: float | None = None,
) -> Analysis:
    """Analyze one run.

    equity: per-bar equity marked at close; ts: int64 ns UTC; trades: `engine.backtest.Trade`
    objects (or mappings with their field names), closed ones then the open one; tz: the
    exchange time zone; bars_per_year: the annualization factor (None: from the data via
    `engine.calendar.bars_per_year`); benchmark_close: the dataset's close per bar, for
    buy and hold and the trades chart; initial_cash: defaults to equity[0] (bar 0 is flat).
    """
    eq = np.ascontiguousarray(equity, dtype=np.float64)
    t = np.ascontiguousarray(ts, dtype=np.int64)
    n = eq.shape[0]
    if eq.ndim != 1 or n == 0 or t.shape != eq.shape:
        raise EngineInputError(
            f"equity and ts must be non-empty 1-D arrays of one length, got {eq.shape} and {t.shape}")
    bpy = float(data_bars_per_year(t, tz)) if bars_per_year is None else float(bars_per_year)
    cash = float(eq[0]) if initial_cash is None else float(initial_cash)
    close = None
    bench = None
    if benchmark_close is not None:
        close = np.ascontiguousarray(benchmark_close, dtype=np.float64)
        if close.shape != eq.shape:
            raise EngineInputError(
                f"benchmark_close has {close.shape[0]} values but equity has {n}")
        if close[0] > 0 and np.isfinite(close).all():
            bench = cash * (close / close[0])
    tr = TradeArrays.from_trades(trades)
    closed = tr.closed()
    metrics = metrics_from_records(
        eq, t, closed.records(), n_open=len(tr) - len(closed),
        open_bars=int(tr.bars_held[tr.is_open].sum()), initial_cash=cash, bars_per_year=bpy)
    rets, ruined = _returns(eq)
    peak = np.maximum(np.maximum.accumulate(eq), cash)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd_pct = (eq / peak - 1.0) * 100.0
    starts, troughs, ends, depths = drawdown_periods_nb(eq, cash)
    s = AnalysisSeries(
        ts=t, equity=eq, returns=rets, drawdown_pct=dd_pct, benchmark_equity=bench,
        close=close, trades=tr, dd_start=starts, dd_trough=troughs, dd_end=ends,
        dd_depth=depths, tz=tz, bars_per_year=bpy, initial_cash=cash, ruined=ruined)
    basic = {k: metrics[k] for k in (
        "total_return_pct", "cagr_pct", "sharpe", "max_drawdown_pct", "final_equity",
        "n_trades", "n_open", "exposure_pct")}
    basic.update(initial_cash=cash, n_bars=n, bars_per_year=bpy, tz=tz,
                 start=iso_local(int(t[0]), tz), end=iso_local(int(t[-1]), tz))
    monthly = monthly_returns(eq, t, tz, cash)
    yearly = yearly_returns(eq, t, tz, cash)
    return Analysis(
        basic=basic,
        risk=_risk(s, metrics),
        trade_analysis=_trade_analysis(tr, metrics, tz),
        benchmark=_benchmark(s),
        drawdowns=_drawdown_rows(s),
        monthly_returns=monthly,
        yearly_returns=yearly,
        monthly_table=monthly_table(monthly, yearly),
        metrics=dict(metrics),
        series=s,
    )
