"""Performance metrics of a run: the one place they are defined and computed.

Scalar metrics come from one numba core (`engine.metrics_nb.metrics_nb`) shared by full
runs and sweeps, so both report bit-identical numbers. Definitions (bar returns are
r_i = equity_i / equity_{i-1} - 1 for i >= 1; `bars_per_year` comes from
`engine.calendar.bars_per_year`, i.e. the data's own bar spacing and trading days):

* final_equity; total_return_pct = (final / initial_cash - 1) x 100.
* cagr_pct: years = (n_bars - 1) / bars_per_year; -100 if final equity <= 0.
* volatility_pct = stdev(r, ddof=1) x sqrt(bars_per_year) x 100; sharpe = mean(r) /
  stdev(r) x sqrt(bars_per_year) (risk-free 0); sortino uses sqrt(mean(min(r, 0)^2)).
  All return statistics (and VaR/CVaR) are None once equity has reached <= 0.
* max_drawdown_pct: largest peak-to-trough loss as a POSITIVE percent (the peak starts
  at initial_cash). max_drawdown_duration_bars / _days: longest time from a peak bar
  to the first bar back at or above it (or to the last bar, if never recovered).
* calmar = cagr_pct / max_drawdown_pct.
* Trade statistics use CLOSED trades only (n_trades); the open position counts in
  n_open, exposure and equity. win_rate (%) = trades with pnl > 0; losses are pnl < 0
  (a zero pnl breaks both streaks); profit_factor = gross wins / |gross losses| (None
  without losses); expectancy = mean pnl; avg_loss and largest_loss are negative;
  sqn = sqrt(n) x mean(pnl) / stdev(pnl, ddof=1); kelly = W - (1 - W) / (avg_win /
  |avg_loss|) with W the win share.
* exposure_pct: share of bars in which a position was held (a bar whose open closed
  the position does not count); avg_holding_bars counts bars the same way;
  avg_holding_days = mean (exit time - entry time) in days.
* var_95 / cvar_95 (historical, in percent, losses positive): with K = ceil(5% of the
  bar returns), var_95 = -(K-th worst return), cvar_95 = -(mean of the K worst).
* monthly returns: equity at each exchange-local month's last bar over the previous
  month's (initial_cash before the first), in percent.
Undefined values are None, never NaN or inf.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.metrics_nb import INT_KEYS, METRIC_KEYS, metrics_nb
from engine.simulate_nb import (
    N_TRADE_FIELDS,
    T_BARS_HELD,
    T_ENTRY_IDX,
    T_EXIT_IDX,
    T_PNL,
)

if TYPE_CHECKING:
    from engine.backtest import Trade

__all__ = [
    "INT_KEYS",
    "METRIC_KEYS",
    "compute_metrics",
    "metrics_from_records",
    "metrics_to_dict",
    "monthly_returns",
]


def _clean(value: float, as_int: bool) -> float | int | None:
    if not math.isfinite(value):
        return None
    return int(value) if as_int else float(value)


def metrics_to_dict(vector: np.ndarray) -> dict[str, float | int | None]:
    """Name a metrics vector (METRIC_KEYS order); NaN/inf become None, counts become int."""
    values = vector.tolist()
    return {k: _clean(v, k in INT_KEYS) for k, v in zip(METRIC_KEYS, values, strict=True)}


def metrics_from_records(
    equity: np.ndarray,
    ts: np.ndarray,
    records: np.ndarray,
    *,
    n_open: int,
    open_bars: int,
    initial_cash: float,
    bars_per_year: float,
) -> dict[str, float | int | None]:
    """Metrics from the equity curve and closed-trade records (engine.simulate_nb layout)."""
    vec = metrics_nb(
        np.ascontiguousarray(equity, dtype=np.float64),
        np.ascontiguousarray(ts, dtype=np.int64),
        np.ascontiguousarray(records, dtype=np.float64).reshape(-1, N_TRADE_FIELDS),
        int(records.shape[0]),
        int(open_bars),
        int(n_open),
        float(initial_cash),
        float(bars_per_year),
    )
    return metrics_to_dict(vec)


def compute_metrics(
    equity: np.ndarray,
    ts: np.ndarray,
    trades: Sequence[Trade],
    *,
    initial_cash: float,
    bars_per_year: float,
) -> dict[str, float | int | None]:
    """Metrics from an equity curve and a trade list (closed trades, then the open one)."""
    closed = [t for t in trades if not t.is_open]
    open_bars = sum(t.bars_held for t in trades if t.is_open)
    rec = np.zeros((len(closed), N_TRADE_FIELDS))
    for j, t in enumerate(closed):
        rec[j, T_ENTRY_IDX] = t.entry_idx
        rec[j, T_EXIT_IDX] = t.exit_idx
        rec[j, T_PNL] = t.pnl
        rec[j, T_BARS_HELD] = t.bars_held
    return metrics_from_records(
        equity,
        ts,
        rec,
        n_open=len(trades) - len(closed),
        open_bars=open_bars,
        initial_cash=initial_cash,
        bars_per_year=bars_per_year,
    )


def _month_starts_utc(ts: np.ndarray, tz: str) -> tuple[list[tuple[int, int]], np.ndarray]:
    """(year, month) of every local month spanned, and UTC ns of local midnight on each 1st."""
    first, last = (pd.Timestamp(int(t), tz="UTC").tz_convert(tz) for t in (ts[0], ts[-1]))
    k0 = first.year * 12 + first.month - 1
    k1 = last.year * 12 + last.month - 1
    ym = [(k // 12, k % 12 + 1) for k in range(k0, k1 + 1)]
    months = (np.arange(k0 + 1, k1 + 1) - 1970 * 12).astype("datetime64[M]")
    naive = pd.DatetimeIndex(months.astype("datetime64[ns]"))
    local = naive.tz_localize(
        tz, ambiguous=np.zeros(len(naive), dtype=bool), nonexistent="shift_forward"
    )
    starts = local.tz_convert("UTC").tz_localize(None).as_unit("ns").asi8
    return ym, np.asarray(starts, dtype=np.int64)


def monthly_returns(
    equity: np.ndarray, ts: np.ndarray, tz: str, initial_cash: float
) -> list[dict[str, Any]]:
    """[{"year", "month", "return_pct"}] per exchange-local month that has bars."""
    n = int(equity.shape[0])
    if n == 0:
        return []
    ym, starts = _month_starts_utc(ts, tz)
    bounds = np.concatenate(([0], np.searchsorted(ts, starts, side="left"), [n])).tolist()
    eq = equity
    rows: list[dict[str, Any]] = []
    prev = float(initial_cash)
    for k, (year, month) in enumerate(ym):
        a, b = bounds[k], bounds[k + 1]
        if b <= a:
            continue
        end = float(eq[b - 1])
        ret = (end / prev - 1.0) * 100.0 if prev > 0 else math.nan
        rows.append({"year": year, "month": month, "return_pct": _clean(ret, False)})
        prev = end
    return rows
