"""Numba core of the scalar metrics, shared bit for bit by full runs and sweeps.

`metrics_nb` returns a float64 vector in `METRIC_KEYS` order with NaN for undefined
values; `engine.metrics` names them, turns NaN into None and documents each one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from engine.returns_nb import (  # re-exported: kth_smallest_nb, the return statistics
    _return_stats_general_nb,
    kth_smallest_nb,
    return_stats_into_nb,
    return_stats_nb,
    return_stats_rets_nb,
    stats_work_size,
)
from engine.simulate_nb import T_BARS_HELD, T_ENTRY_IDX, T_EXIT_IDX, T_PNL

__all__ = [
    "INT_KEYS",
    "METRIC_KEYS",
    "N_METRICS",
    "Drawdown",
    "_return_stats_general_nb",
    "drawdown_init_nb",
    "drawdown_update_nb",
    "kth_smallest_nb",
    "metrics_from_parts_nb",
    "metrics_from_stats_nb",
    "metrics_into_nb",
    "metrics_nb",
    "return_stats_into_nb",
    "return_stats_nb",
    "return_stats_rets_nb",
    "stats_work_size",
]

METRIC_KEYS = (
    "final_equity",
    "total_return_pct",
    "cagr_pct",
    "volatility_pct",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown_pct",
    "max_drawdown_duration_bars",
    "max_drawdown_duration_days",
    "win_rate",
    "profit_factor",
    "expectancy",
    "avg_win",
    "avg_loss",
    "largest_win",
    "largest_loss",
    "max_win_streak",
    "max_loss_streak",
    "exposure_pct",
    "n_trades",
    "n_open",
    "avg_holding_bars",
    "avg_holding_days",
    "var_95",
    "cvar_95",
    "sqn",
    "kelly",
    "bars_per_year",
)
N_METRICS = len(METRIC_KEYS)
INT_KEYS = frozenset(
    {"max_drawdown_duration_bars", "max_win_streak", "max_loss_streak", "n_trades", "n_open"}
)
_M = {name: i for i, name in enumerate(METRIC_KEYS)}
(M_FINAL, M_TOTAL, M_CAGR, M_VOL, M_SHARPE, M_SORTINO, M_CALMAR, M_MDD, M_MDD_BARS,
 M_MDD_DAYS, M_WIN_RATE, M_PF, M_EXPECT, M_AVG_WIN, M_AVG_LOSS, M_BEST, M_WORST, M_WIN_STREAK,
 M_LOSS_STREAK, M_EXPOSURE, M_N_TRADES, M_N_OPEN, M_HOLD_BARS, M_HOLD_DAYS, M_VAR, M_CVAR,
 M_SQN, M_KELLY, M_BPY) = (_M[k] for k in METRIC_KEYS)
NS_PER_DAY = 86_400_000_000_000
@njit(nogil=True, cache=True, error_model="numpy")
def metrics_nb(
    equity: np.ndarray,
    ts: np.ndarray,
    trades: np.ndarray,
    n_closed: int,
    open_bars: int,
    n_open: int,
    initial_cash: float,
    bars_per_year: float,
) -> np.ndarray:
    """Scalar metrics of one run (see engine.metrics for the definitions).

    `trades[:n_closed]` are the closed trade records (engine.simulate_nb columns);
    `open_bars` is the bars held by the open position (0 if none), `n_open` 0 or 1.
    """
    work = np.empty(stats_work_size(equity.shape[0] - 1))
    return metrics_into_nb(equity, ts, trades, n_closed, open_bars, n_open, initial_cash,
                           bars_per_year, work)


class Drawdown(NamedTuple):
    """Running state of the drawdown scan (see `metrics_into_nb`)."""

    peak: float
    peak_idx: int
    under: bool
    trough: float
    mdd: float
    dd_bars: int
    dd_ns: int
    low: float  # lowest equity before the last bar seen (a return's denominator)
    prev: float


@njit(nogil=True, cache=True, error_model="numpy")
def drawdown_init_nb(initial_cash: float) -> Drawdown:
    """Before bar 0: the peak starts at the initial cash."""
    return Drawdown(initial_cash, 0, False, initial_cash, 0.0, 0, 0, np.inf, np.inf)


@njit(nogil=True, cache=True, error_model="numpy")
def drawdown_update_nb(d: Drawdown, equity: np.ndarray, ts: np.ndarray, i0: int) -> Drawdown:
    """Scan bars i0 .. i0 + len(equity) - 1 (`equity` holds just those bars).

    Runs of _DD_RUN bars that stay below the peak (no new peak, no NaN: the usual case
    under water) take a branch-free path: the trough and the lowest equity are then just
    minima, the same values the bar-by-bar rules give.
    """
    peak, peak_idx, under, trough = d.peak, d.peak_idx, d.under, d.trough
    mdd, dd_bars, dd_ns, low, prev = d.mdd, d.dd_bars, d.dd_ns, d.low, d.prev
    size = equity.shape[0]
    t = 0
    # A run's bit patterns as integers: for doubles with the sign bit clear the integer
    # order is the float order (NaN above +inf), and integer min/max vectorize.
    bits = equity.view(np.int64)
    box = np.empty(1, dtype=np.int64)
    fbox = box.view(np.float64)
    while t + _DD_RUN <= size:
        lo_b = hi_b = bits[t]
        for u in range(t + 1, t + _DD_RUN - 1):
            v = bits[u]
            lo_b = v if v < lo_b else lo_b
            hi_b = v if v > hi_b else hi_b
        last_b = bits[t + _DD_RUN - 1]
        hi_b = last_b if last_b > hi_b else hi_b
        box[0] = hi_b
        ok = min(lo_b, last_b) >= 0 and fbox[0] < peak  # all >= +0.0, no NaN, below peak
        box[0] = lo_b
        mn = fbox[0]  # the run's minimum but its last bar
        e = equity[t + _DD_RUN - 1]
        if not ok:
            low, prev, peak, peak_idx, under, trough, mdd, dd_bars, dd_ns = _dd_bars_nb(
                equity, ts, i0, t, t + _DD_RUN, peak, peak_idx, under, trough, mdd, dd_bars,
                dd_ns, low, prev)
        else:
            low = prev if prev < low else low
            low = mn if mn < low else low
            prev = e
            mn = e if e < mn else mn
            trough = (mn if mn < trough else trough) if under else mn
            under = True
        t += _DD_RUN
    low, prev, peak, peak_idx, under, trough, mdd, dd_bars, dd_ns = _dd_bars_nb(
        equity, ts, i0, t, size, peak, peak_idx, under, trough, mdd, dd_bars, dd_ns, low, prev)
    return Drawdown(peak, peak_idx, under, trough, mdd, dd_bars, dd_ns, low, prev)


_DD_RUN = 64


@njit(nogil=True, cache=True, error_model="numpy")
def _dd_bars_nb(
    equity: np.ndarray, ts: np.ndarray, i0: int, t0: int, t1: int, peak: float, peak_idx: int,
    under: bool, trough: float, mdd: float, dd_bars: int, dd_ns: int, low: float, prev: float,
) -> tuple[float, float, float, int, bool, float, float, int, int]:
    """The drawdown rules bar by bar over equity[t0:t1]."""
    for t in range(t0, t1):
        i = i0 + t
        e = equity[t]
        low = prev if prev < low else low
        prev = e
        if e >= peak:
            if under:
                dd_bars = max(dd_bars, i - peak_idx)
                dd_ns = max(dd_ns, ts[i] - ts[peak_idx])
                mdd = max(mdd, 1.0 - trough / peak)
                under = False
            peak = e
            peak_idx = i
        elif under:
            trough = min(trough, e)
        else:
            under = True
            trough = e
    return low, prev, peak, peak_idx, under, trough, mdd, dd_bars, dd_ns


@njit(nogil=True, cache=True, error_model="numpy")
def metrics_into_nb(
    equity: np.ndarray,
    ts: np.ndarray,
    trades: np.ndarray,
    n_closed: int,
    open_bars: int,
    n_open: int,
    initial_cash: float,
    bars_per_year: float,
    work: np.ndarray,
) -> np.ndarray:
    """`metrics_nb` with caller-owned scratch `work` (>= `stats_work_size(n - 1)` floats)."""
    n = equity.shape[0]
    d = drawdown_init_nb(initial_cash)
    if n == 0:
        return metrics_from_parts_nb(np.nan, 0, ts, d, work[:0], work, trades, n_closed,
                                     open_bars, n_open, initial_cash, bars_per_year)
    d = drawdown_update_nb(d, equity, ts, 0)
    m = n - 1
    rets = work[:m]
    if m >= 1 and d.low > 0.0:
        for i in range(m):  # its own loop: fused with the sums it would not vectorize
            rets[i] = equity[i + 1] / equity[i] - 1.0
    return metrics_from_parts_nb(equity[n - 1], n, ts, d, rets, work, trades, n_closed,
                                 open_bars, n_open, initial_cash, bars_per_year)


@njit(nogil=True, cache=True, error_model="numpy")
def metrics_from_parts_nb(
    final: float,
    n: int,
    ts: np.ndarray,
    d: Drawdown,
    rets: np.ndarray,
    work: np.ndarray,
    trades: np.ndarray,
    n_closed: int,
    open_bars: int,
    n_open: int,
    initial_cash: float,
    bars_per_year: float,
) -> np.ndarray:
    """The metrics vector from an n-bar run's final equity, its drawdown scan over all n
    bars and its n - 1 bar returns in `rets` (= work[:n-1]; read only when the equity
    stayed > 0; the rest of `work` is scratch)."""
    nan = np.nan
    stats = (nan, nan, nan, nan, nan)
    if n - 1 >= 1 and d.low > 0.0:
        stats = return_stats_rets_nb(rets, work)
    return metrics_from_stats_nb(final, n, ts, d, stats, trades, n_closed, open_bars, n_open,
                                 initial_cash, bars_per_year)


@njit(nogil=True, cache=True, error_model="numpy")
def metrics_from_stats_nb(
    final: float,
    n: int,
    ts: np.ndarray,
    d: Drawdown,
    stats: tuple[float, float, float, float, float],
    trades: np.ndarray,
    n_closed: int,
    open_bars: int,
    n_open: int,
    initial_cash: float,
    bars_per_year: float,
) -> np.ndarray:
    """`metrics_from_parts_nb` given the return statistics (`return_stats_rets_nb` of the
    bar returns; used only when n >= 2 and the equity stayed > 0)."""
    out = np.full(N_METRICS, np.nan)
    out[M_BPY] = bars_per_year
    out[M_N_TRADES] = n_closed
    out[M_N_OPEN] = n_open
    if n == 0:
        return out
    out[M_FINAL] = final
    out[M_TOTAL] = (final / initial_cash - 1.0) * 100.0
    ann = np.sqrt(bars_per_year)
    # Bar returns from bar 1 on (bar 0 holds no position: nothing was decided before it).
    m = n - 1
    years = m / bars_per_year
    if years > 0.0:
        if final <= 0.0:
            out[M_CAGR] = -100.0
        else:
            out[M_CAGR] = ((final / initial_cash) ** (1.0 / years) - 1.0) * 100.0
    # Drawdowns: peak starts at the initial cash; a drawdown lasts from its peak bar to the
    # first bar back at or above the peak (or the last bar if it never recovers).
    mdd, dd_bars, dd_ns = d.mdd, d.dd_bars, d.dd_ns
    if d.under:
        dd_bars = max(dd_bars, n - 1 - d.peak_idx)
        dd_ns = max(dd_ns, ts[n - 1] - ts[d.peak_idx])
        mdd = max(mdd, 1.0 - d.trough / d.peak)
    out[M_MDD] = mdd * 100.0
    out[M_MDD_BARS] = dd_bars
    out[M_MDD_DAYS] = dd_ns / NS_PER_DAY
    cagr = out[M_CAGR]
    if mdd > 0.0 and cagr == cagr:
        out[M_CALMAR] = cagr / (mdd * 100.0)
    # Return statistics: undefined once equity has reached zero (returns lose meaning).
    if m >= 1 and d.low > 0.0:
        mean, sd, dsd, var, cvar = stats
        if m >= 2:
            out[M_VOL] = sd * ann * 100.0
            if sd > 0.0:
                out[M_SHARPE] = mean / sd * ann
            if dsd > 0.0:
                out[M_SORTINO] = mean / dsd * ann
        out[M_VAR] = var * 100.0
        out[M_CVAR] = cvar * 100.0
    # Trades (closed only).
    held = open_bars
    for j in range(n_closed):
        held += trades[j, T_BARS_HELD]
    out[M_EXPOSURE] = held / n * 100.0
    if n_closed == 0:
        out[M_WIN_STREAK] = 0.0
        out[M_LOSS_STREAK] = 0.0
        return out
    wins = 0
    losses = 0
    gross_win = 0.0
    gross_loss = 0.0
    best = -np.inf
    worst = np.inf
    total = 0.0
    win_run = 0
    loss_run = 0
    max_win_run = 0
    max_loss_run = 0
    bars_sum = 0.0
    ns_sum = 0.0
    for j in range(n_closed):
        pnl = trades[j, T_PNL]
        total += pnl
        bars_sum += trades[j, T_BARS_HELD]
        ns_sum += ts[int(trades[j, T_EXIT_IDX])] - ts[int(trades[j, T_ENTRY_IDX])]
        if pnl > 0.0:
            wins += 1
            gross_win += pnl
            best = max(best, pnl)
            win_run += 1
            loss_run = 0
        elif pnl < 0.0:
            losses += 1
            gross_loss += pnl
            worst = min(worst, pnl)
            loss_run += 1
            win_run = 0
        else:
            win_run = 0
            loss_run = 0
        max_win_run = max(max_win_run, win_run)
        max_loss_run = max(max_loss_run, loss_run)
    mean_pnl = total / n_closed
    out[M_WIN_RATE] = wins / n_closed * 100.0
    out[M_EXPECT] = mean_pnl
    out[M_WIN_STREAK] = max_win_run
    out[M_LOSS_STREAK] = max_loss_run
    out[M_HOLD_BARS] = bars_sum / n_closed
    out[M_HOLD_DAYS] = ns_sum / n_closed / NS_PER_DAY
    if wins > 0:
        out[M_AVG_WIN] = gross_win / wins
        out[M_BEST] = best
    if losses > 0:
        out[M_AVG_LOSS] = gross_loss / losses
        out[M_WORST] = worst
        out[M_PF] = gross_win / -gross_loss
    if wins > 0 and losses > 0:
        p_win = wins / n_closed
        out[M_KELLY] = p_win - (1.0 - p_win) / (out[M_AVG_WIN] / -out[M_AVG_LOSS])
    if n_closed >= 2:
        ss = 0.0
        for j in range(n_closed):
            d = trades[j, T_PNL] - mean_pnl
            ss += d * d
        sd = np.sqrt(ss / (n_closed - 1))
        if sd > 0.0:
            out[M_SQN] = np.sqrt(n_closed) * mean_pnl / sd
    return out
