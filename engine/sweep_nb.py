"""Parallel sweep kernels: many parameter sets in one compiled call, metrics only.

Each set runs the same `simulate_all_nb` and `metrics_nb` as a full run, so its metrics
are bit-identical to `run_backtest(...).metrics`; no trade objects are built. Both kernels
are `parallel=True`: `prange` loops hand sets to numba's threads (`engine.sweep` runs
them with a chunk size of 1, as sets differ in cost).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.indicators import ema_into_nb
from engine.metrics_nb import N_METRICS, metrics_nb
from engine.simulate_nb import SimParams, simulate_all_nb

_CAPACITY = 64  # initial trade rows per set; grows by doubling


@njit(nogil=True, cache=True, error_model="numpy")
def run_metrics_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    signals: np.ndarray,
    atr: np.ndarray,
    day_id: np.ndarray,
    minute: np.ndarray,
    p: SimParams,
    ts: np.ndarray,
    bars_per_year: float,
) -> np.ndarray:
    """Simulate one signal series over all bars and return its metrics vector."""
    n = close.shape[0]
    equity = np.empty(n)
    s, trades = simulate_all_nb(open_, high, low, close, signals, atr, day_id, minute, p,
                                equity, _CAPACITY)
    n_open = 1 if s.pos != 0 else 0
    open_bars = n - s.entry_idx if s.pos != 0 else 0
    return metrics_nb(equity, ts, trades, s.n_trades, open_bars, n_open, p.initial_cash,
                      bars_per_year)


@njit(nogil=True, cache=True, parallel=True, error_model="numpy")
def sweep_signals_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    signals: np.ndarray,
    atr: np.ndarray,
    day_id: np.ndarray,
    minute: np.ndarray,
    p: SimParams,
    ts: np.ndarray,
    bars_per_year: float,
) -> np.ndarray:
    """Metrics [n_sets, N_METRICS] of each row of the int8 signal matrix [n_sets, n_bars]."""
    n_sets = signals.shape[0]
    out = np.empty((n_sets, N_METRICS))
    for j in prange(n_sets):
        out[j] = run_metrics_nb(open_, high, low, close, signals[j], atr, day_id, minute, p,
                                ts, bars_per_year)
    return out


@njit(nogil=True, cache=True, error_model="numpy")
def ema_cross_signals_nb(fast: np.ndarray, slow: np.ndarray, long_only: bool) -> np.ndarray:
    """+1 while fast > slow, -1 (0 if long_only) while fast < slow, 0 if equal or undefined."""
    n = fast.shape[0]
    out = np.zeros(n, dtype=np.int8)
    short = 0 if long_only else -1
    for i in range(n):
        f = fast[i]
        s = slow[i]
        if f > s:
            out[i] = 1
        elif f < s:
            out[i] = short
    return out


@njit(nogil=True, cache=True, parallel=True, error_model="numpy")
def sweep_ema_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    periods: np.ndarray,
    fast_idx: np.ndarray,
    slow_idx: np.ndarray,
    long_only: np.ndarray,
    atr: np.ndarray,
    day_id: np.ndarray,
    minute: np.ndarray,
    p: SimParams,
    ts: np.ndarray,
    bars_per_year: float,
) -> np.ndarray:
    """EMA-crossover sweep: each distinct period's EMA once, then every set in parallel.

    `fast_idx`/`slow_idx` index `periods`; returns metrics [n_sets, N_METRICS].
    """
    n = close.shape[0]
    n_periods = periods.shape[0]
    emas = np.empty((n_periods, n))
    for j in prange(n_periods):
        ema_into_nb(close, periods[j], emas[j])
    n_sets = fast_idx.shape[0]
    out = np.empty((n_sets, N_METRICS))
    for j in prange(n_sets):
        sig = ema_cross_signals_nb(emas[fast_idx[j]], emas[slow_idx[j]], long_only[j])
        out[j] = run_metrics_nb(open_, high, low, close, sig, atr, day_id, minute, p, ts,
                                bars_per_year)
    return out
