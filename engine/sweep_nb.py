"""Parallel sweep kernels: many parameter sets in one compiled call, metrics only.

Each set runs the same simulation (`simulate_off_nb`, in chunks as a full run may) and
metrics core (`metrics_from_parts_nb` after the same drawdown scan and bar returns) as a
full run, so its metrics are bit-identical to `run_backtest(...).metrics`; no trade
objects are built. Both kernels are `parallel=True`.

Memory: on long series a set's equity curve, returns and trade records are megabytes;
allocating them per set cost more than the arithmetic (fresh pages fault in and evict
the caches), and every extra pass over a curve that does not fit in cache is paid in
memory bandwidth, which two threads share. So `prange` runs over "lanes", each owning
one set of buffers and evaluating sets lane, lane + L, lane + 2L, ... (interleaved, so
lanes get an even mix of cheap and costly sets; `engine.sweep` launches with a chunk
size of 1), and a set is simulated and scanned chunk by chunk (`run_set_nb`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.indicators import ema_into_nb
from engine.metrics_nb import (
    N_METRICS,
    drawdown_init_nb,
    drawdown_update_nb,
    metrics_from_parts_nb,
    stats_work_size,
)
from engine.simulate_nb import N_TRADE_FIELDS, SimParams, initial_state_nb, simulate_off_nb
from engine.stream_stats_nb import lane_sum_nb

_CAPACITY = 64  # initial trade rows per lane; grows by doubling and is kept


@njit(nogil=True, cache=True, error_model="numpy")
def block_stats_nb(rets: np.ndarray, blocks: int, out: np.ndarray, j: int) -> None:
    """Count, sum and sum of squares of the bar returns `rets` (equity[i] / equity[i-1] - 1,
    i = 1..n-1) in `blocks` contiguous blocks sized like `np.array_split`; written to
    out[0, j], out[1, j], out[2, j] (each [blocks])."""
    m = rets.shape[0]
    base, extra = divmod(m, blocks)
    s = np.empty(4)
    q = np.empty(4)
    i = 0
    for b in range(blocks):
        size = base + 1 if b < extra else base
        # 4 interleaved lanes from the block's start (one serial chain of additions would
        # cost ~4 cycles a return), the last size % 4 returns in lane 0.
        s[:] = 0.0
        q[:] = 0.0
        lane_sum_nb(rets[i : i + size], 0, size - size % 4, s, q)
        i += size
        out[0, j, b] = size
        out[1, j, b] = (s[0] + s[1]) + (s[2] + s[3])
        out[2, j, b] = (q[0] + q[1]) + (q[2] + q[3])


@njit(nogil=True, cache=True, error_model="numpy")
def run_set_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    signals: np.ndarray,
    fast: np.ndarray,
    slow: np.ndarray,
    long_only: bool,
    atr: np.ndarray,
    day_id: np.ndarray,
    minute: np.ndarray,
    p: SimParams,
    ts: np.ndarray,
    bars_per_year: float,
    chunk_eq: np.ndarray,
    trades: np.ndarray,
    work: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(metrics vector, trade matrix to keep) of one set, in the lane's buffers.

    Bars go by in chunks of `chunk_eq.shape[0]`: (the EMA-cross signals of the chunk when
    `fast` is not empty, written into `signals`), the simulation, the drawdown scan and
    the bar returns (into work[:n-1]), so a chunk's equity is used while it is in cache
    and the whole curve is never stored. Then the same `metrics_from_parts_nb` as a full
    run. On return work[:n-1] holds the set's bar returns.
    """
    n = close.shape[0]
    size = chunk_eq.shape[0]
    s = initial_state_nb(p.initial_cash)
    d = drawdown_init_nb(p.initial_cash)
    rets = work[: max(n - 1, 0)]
    ema = fast.shape[0] > 0
    last = 0.0  # equity at the close before the chunk
    for a in range(0, n, size):
        b = min(n, a + size)
        if ema:
            ema_cross_into_nb(fast[a:b], slow[a:b], long_only, signals[a:b])
        while True:
            s = simulate_off_nb(open_, high, low, close, signals, atr, day_id, minute, p, s, b,
                                chunk_eq, a, trades)
            if s.bar >= b:
                break
            bigger = np.empty((trades.shape[0] * 2, N_TRADE_FIELDS))
            bigger[: s.n_trades] = trades[: s.n_trades]
            trades = bigger
        eq = chunk_eq[: b - a]
        d = drawdown_update_nb(d, eq, ts, a)
        if a > 0:
            rets[a - 1] = eq[0] / last - 1.0
        for t in range(1, b - a):
            rets[a + t - 1] = eq[t] / eq[t - 1] - 1.0
        last = eq[b - a - 1]
    n_open = 1 if s.pos != 0 else 0
    open_bars = n - s.entry_idx if s.pos != 0 else 0
    vec = metrics_from_parts_nb(last, n, ts, d, rets, work, trades, s.n_trades, open_bars,
                                n_open, p.initial_cash, bars_per_year)
    return vec, trades


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
    blocks: int,
    lanes: int,
    chunk: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Metrics [n_sets, N_METRICS] of each row of the int8 signal matrix [n_sets, n_bars],
    and block statistics [3, n_sets, blocks] (see `block_stats_nb`; empty if blocks is 0).
    `lanes`: how many buffer sets (a few per thread, for load balance); `chunk`: bars per
    chunk (`run_set_nb`; a size whose chunk data stays in L2 cache)."""
    n = close.shape[0]
    n_sets = signals.shape[0]
    out = np.empty((n_sets, N_METRICS))
    blk = np.zeros((3, n_sets, max(blocks, 0)))
    n_lanes = max(1, min(n_sets, lanes))
    for lane in prange(n_lanes):
        no_ema = np.empty(0)
        chunk_eq = np.empty(max(chunk, 1))
        trades = np.empty((_CAPACITY, N_TRADE_FIELDS))
        work = np.empty(stats_work_size(n - 1))
        for j in range(lane, n_sets, n_lanes):
            vec, trades = run_set_nb(open_, high, low, close, signals[j], no_ema, no_ema, False,
                                     atr, day_id, minute, p, ts, bars_per_year, chunk_eq,
                                     trades, work)
            out[j] = vec
            if blocks > 0:
                block_stats_nb(work[: max(n - 1, 0)], blocks, blk, j)
    return out, blk


@njit(nogil=True, cache=True, error_model="numpy")
def ema_cross_into_nb(fast: np.ndarray, slow: np.ndarray, long_only: bool,
                      out: np.ndarray) -> None:
    """+1 while fast > slow, -1 (0 if long_only) while fast < slow, 0 if equal or undefined."""
    short = np.int8(0) if long_only else np.int8(-1)
    for i in range(fast.shape[0]):
        f = fast[i]
        s = slow[i]
        out[i] = np.int8(1) if f > s else (short if f < s else np.int8(0))


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
    blocks: int,
    lanes: int,
    chunk: int,
) -> tuple[np.ndarray, np.ndarray]:
    """EMA-crossover sweep: each distinct period's EMA once, then every set in parallel.

    `fast_idx`/`slow_idx` index `periods`; returns metrics [n_sets, N_METRICS] and block
    statistics [3, n_sets, blocks] and uses `lanes` and `chunk` as `sweep_signals_nb`.
    """
    n = close.shape[0]
    n_periods = periods.shape[0]
    emas = np.empty((n_periods, n))
    for j in prange(n_periods):
        ema_into_nb(close, periods[j], emas[j])
    n_sets = fast_idx.shape[0]
    out = np.empty((n_sets, N_METRICS))
    blk = np.zeros((3, n_sets, max(blocks, 0)))
    n_lanes = max(1, min(n_sets, lanes))
    for lane in prange(n_lanes):
        sig = np.empty(n, dtype=np.int8)
        chunk_eq = np.empty(max(chunk, 1))
        trades = np.empty((_CAPACITY, N_TRADE_FIELDS))
        work = np.empty(stats_work_size(n - 1))
        for j in range(lane, n_sets, n_lanes):
            vec, trades = run_set_nb(open_, high, low, close, sig, emas[fast_idx[j]],
                                     emas[slow_idx[j]], long_only[j], atr, day_id, minute, p,
                                     ts, bars_per_year, chunk_eq, trades, work)
            out[j] = vec
            if blocks > 0:
                block_stats_nb(work[: max(n - 1, 0)], blocks, blk, j)
    return out, blk
