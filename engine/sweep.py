"""Parameter sweeps: metrics of many parameter sets from one parallel compiled call.

Every set is simulated by the same kernel and scored by the same metrics core as a full
`run_backtest`, so `sweep_row(result, j)` equals the full run's `metrics` exactly (bit for
bit); only trade lists, monthly returns and timing are left out. Results are dicts of
float64 arrays keyed by `engine.metrics.METRIC_KEYS`, NaN where a metric is undefined.

EMA-crossover sweeps under options without protective levels or clock rules (the usual
optimization setting) run on the tiled kernel (`engine.sweep_tile_nb`: a few fast x slow
periods walk the bars together in cache-sized chunks, returns are never stored), the
others set by set (`engine.sweep_nb`); both give the same numbers.

Block statistics (opt-in, `blocks=S > 0`, for the probability of backtest overfitting):
the result also holds "block_n", "block_sum" and "block_sumsq", float64 [n_sets, S]: per
set the count, sum and sum of squares of its bar returns equity[i] / equity[i-1] - 1
(i = 1..n-1), cut into S contiguous blocks exactly as `np.array_split(np.arange(n-1), S)`.

Threads: sweeps may be called from several Python threads at once; their parallel
launches take turns (`launch_guard`): each one keeps every core busy, so side by side
they would only oversubscribe the cores and thrash the caches, and numba's "workqueue"
threading layer (used when neither TBB nor OpenMP is there) aborts the whole process when
two threads launch parallel kernels at the same time.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numba
import numpy as np
from numba import parallel_chunksize

from engine.backtest import (
    annualization,
    as_options,
    as_signals,
    kernel_inputs,
    readonly_view,
    sim_params,
)
from engine.bars import Bars
from engine.errors import EngineInputError
from engine.metrics import METRIC_KEYS, metrics_to_dict
from engine.options import EngineOptions
from engine.simulate_nb import SimParams
from engine.sweep_nb import sweep_ema_nb, sweep_signals_nb
from engine.sweep_tile_nb import ema_rows_nb, sweep_ema_tiled_nb

__all__ = ["BLOCK_KEYS", "launch_guard", "sweep", "sweep_ema_crossover", "sweep_row", "sweep_signals"]

# EMA matrices above this size are built group by group (a few distinct periods at a time).
_EMA_BYTES = 256 * 2**20
_LANES_PER_THREAD = 4  # buffer sets per thread in a sweep kernel (load balance)
_CHUNK_BARS = 8192  # a set's bars go by in chunks this long (their data stays in L2 cache)
_LAUNCH_LOCK = threading.Lock()
_TILE = (2, 4)  # fast x slow periods per tile of the tiled EMA kernel (small: threads end together)


def launch_guard() -> contextlib.AbstractContextManager[Any]:
    """The lock every parallel kernel launch of this process takes: launches take turns.

    Each launch already keeps every core busy, so two at once (an embedded worker runs two
    optimization batches side by side) only oversubscribe the cores and evict each other's
    cache-sized chunks: two 1,000-set batches on 1M bars took 13% longer side by side than
    in turn. (With numba's workqueue threading layer concurrent launches would abort too.)
    """
    return _LAUNCH_LOCK


BLOCK_KEYS = ("block_n", "block_sum", "block_sumsq")


def _lanes() -> int:
    return _LANES_PER_THREAD * numba.get_num_threads()


def _as_dict(matrix: np.ndarray, blk: np.ndarray | None = None) -> dict[str, np.ndarray]:
    out = {k: np.ascontiguousarray(matrix[:, j]) for j, k in enumerate(METRIC_KEYS)}
    if blk is not None:
        out.update({k: np.ascontiguousarray(blk[i]) for i, k in enumerate(BLOCK_KEYS)})
    return out


def _blocks(blocks: Any) -> int:
    if isinstance(blocks, bool) or not isinstance(blocks, int | np.integer) or blocks < 0:
        raise EngineInputError(f"blocks must be a whole number >= 0, got {blocks!r}")
    return int(blocks)


def sweep_row(result: dict[str, np.ndarray], j: int) -> dict[str, float | int | None]:
    """Set j's metrics as the dict a full run reports (None for undefined, ints for counts)."""
    return metrics_to_dict(np.array([result[k][j] for k in METRIC_KEYS], dtype=np.float64))


def sweep_signals(
    bars: Bars,
    signals: np.ndarray,
    options: EngineOptions | dict[str, Any] | None = None,
    blocks: int = 0,
) -> dict[str, np.ndarray]:
    """Metrics of each row of `signals` [n_sets, n_bars] (values -1/0/+1) under `options`;
    with `blocks` > 0 also the block statistics (module docstring)."""
    opts = as_options(options)
    n_blocks = _blocks(blocks)
    n = len(bars)
    sig = np.asarray(signals)
    if sig.ndim != 2 or sig.shape[1] != n:
        raise EngineInputError(
            f"signals must be a matrix [n_sets, {n}] (one row per set), got shape {sig.shape}"
        )
    sig, bad = as_signals(sig)
    if bad >= 0:
        row, col = divmod(bad, n)
        raise EngineInputError(f"signals set {row}, bar {col}: expected -1, 0 or +1")
    o, h, lo, c, atr, day_id, minute = kernel_inputs(bars, opts)
    bpy = annualization(bars)
    with launch_guard(), parallel_chunksize(1):  # lanes differ in cost: one at a time
        out, blk = sweep_signals_nb(o, h, lo, c, sig, atr, day_id, minute, sim_params(opts),
                                    readonly_view(bars.ts), bpy, n_blocks, _lanes(),
                                    _CHUNK_BARS)
    return _as_dict(out, blk if n_blocks else None)


def _periods(name: str, values: Any, n_sets: int | None) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values))
    if arr.ndim != 1 or (n_sets is not None and arr.shape[0] != n_sets):
        raise EngineInputError(f"{name} must be a 1-D array with one period per set")
    if arr.size and (not np.issubdtype(arr.dtype, np.number) or np.any(arr != np.round(arr))):
        raise EngineInputError(f"{name} periods must be whole numbers")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 1:
        raise EngineInputError(f"{name} periods must be >= 1, got {int(arr.min())}")
    return arr


def _tiles(f: np.ndarray, s: np.ndarray, max_periods: int) -> list[np.ndarray]:
    """Set indices grouped into fast x slow tiles of at most `max_periods` distinct periods.

    The distinct fast periods are cut into runs of `a`, the distinct slow periods into runs
    of `b` (a + b <= max_periods), and each (fast run, slow run) pair with sets is a group,
    so a group's EMAs serve up to a * b sets. `a` is chosen to minimize the EMAs computed
    in all. Every set lands in exactly one group; groups are in (fast, slow) order.
    """
    uf, f_rank = np.unique(f, return_inverse=True)
    us, s_rank = np.unique(s, return_inverse=True)
    n_f, n_s = uf.shape[0], us.shape[0]
    if n_f + n_s <= max_periods:
        return [np.arange(f.shape[0])]
    best: tuple[int, int] | None = None
    a_best = 1
    for a in range(1, min(n_f, max_periods - 1) + 1):
        b = min(n_s, max_periods - a)
        tf, ts_ = -(-n_f // a), -(-n_s // b)
        # EMAs computed on a full grid (each tile its fast run and its slow run), then groups.
        cost = (tf * n_s + ts_ * n_f, tf * ts_)
        if best is None or cost < best:
            best, a_best = cost, a
    a = a_best
    n_runs = -(-n_s // min(n_s, max_periods - a))
    b = -(-n_s // n_runs)  # same slow runs, balanced in size
    tile = (f_rank // a) * n_runs + s_rank // b
    order = np.lexsort((s, f, tile))
    cuts = np.flatnonzero(np.diff(tile[order])) + 1
    return np.split(order, cuts)


def _plain(p: SimParams) -> bool:
    """No protective levels and no clock rules: positions change only with the target."""
    levels = (p.stop_pct, p.target_pct, p.trail_pct, p.stop_atr, p.target_atr, p.trail_atr)
    return all(v != v for v in levels) and p.square_off < 0 and p.no_entry_after < 0


def _tile_order(fi: np.ndarray, si: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(set order, tile starts + end) for the tiled kernel: tiles of up to _TILE[0] fast x
    _TILE[1] slow periods (by rank among the group's periods), in (fast, slow) order."""
    _, f_rank = np.unique(fi, return_inverse=True)
    us, s_rank = np.unique(si, return_inverse=True)
    tile = (f_rank // _TILE[0]) * (us.shape[0] // _TILE[1] + 1) + s_rank // _TILE[1]
    order = np.lexsort((si, fi, tile))
    starts = np.flatnonzero(np.diff(tile[order])) + 1
    return order, np.concatenate(([0], starts, [order.shape[0]])).astype(np.int64)


class _EmaRows:
    """EMA rows kept across a sweep's groups and across sweeps: a group computes only the
    periods the rows do not hold yet (groups of the same fast run share those EMAs; an
    optimization's next batch on the same closes finds the slow periods it shares with
    the last one), and the matrix is allocated once. See `_ema_rows`."""

    def __init__(self, close: np.ndarray, n_rows: int) -> None:
        self.close = close
        self.emas = np.empty((n_rows, close.shape[0]))
        self.period = np.full(n_rows, -1, dtype=np.int64)  # period held by each row

    def load(self, periods: np.ndarray) -> np.ndarray:
        """Row of each of `periods` (distinct, at most n_rows), computing those missing."""
        held = np.isin(self.period, periods)
        missing = periods[~np.isin(periods, self.period)]
        free = np.flatnonzero(~held)[: missing.shape[0]]
        self.period[free] = missing
        if missing.shape[0]:  # (the caller holds the launch lock)
            ema_rows_nb(self.close, missing, free.astype(np.int64), self.emas)
        order = np.argsort(self.period)
        return order[np.searchsorted(self.period, periods, sorter=order)].astype(np.int64)


_EMA_KEPT: list[_EmaRows] = []  # the last sweep's rows (used under the launch lock only)


def _ema_rows(close: np.ndarray, n_rows: int) -> _EmaRows:
    """The process's EMA rows for `close` (the caller holds the launch lock): the last
    sweep's matrix when it has the same shape, its EMAs kept when the closes are equal.

    Reusing the matrix spares a batch faulting in and zeroing up to _EMA_BYTES of fresh
    pages (1M bars: ~0.1 s of CPU a batch); the price is that a process keeps its last
    matrix (at most _EMA_BYTES, the size every sweep allocates anyway) between sweeps.
    """
    if _EMA_KEPT and _EMA_KEPT[0].emas.shape == (n_rows, close.shape[0]):
        rows = _EMA_KEPT[0]
        if not np.array_equal(rows.close, close, equal_nan=True):
            rows.close = close.copy()
            rows.period[:] = -1
        return rows
    _EMA_KEPT.clear()  # free the old matrix before allocating the new one
    rows = _EmaRows(close.copy(), n_rows)
    _EMA_KEPT.append(rows)
    return rows


def sweep_ema_crossover(
    bars: Bars,
    fast: Any,
    slow: Any,
    long_only: Any = False,
    options: EngineOptions | dict[str, Any] | None = None,
    blocks: int = 0,
) -> dict[str, np.ndarray]:
    """Fused EMA-crossover sweep: set j trades EMA(fast[j]) vs EMA(slow[j]) on the close.

    Signals match strategies.ema_crossover: +1 while fast > slow, -1 (0 when
    long_only[j]) while fast < slow, 0 while either EMA is undefined or they are equal.
    `long_only` is a bool or one bool per set; `options.direction` applies on top.
    Each distinct period's EMA (engine.indicators.ema_nb) is computed once. With
    `blocks` > 0 the result also holds the block statistics (module docstring).
    """
    opts = as_options(options)
    n_blocks = _blocks(blocks)
    f = _periods("fast", fast, None)
    s = _periods("slow", slow, f.shape[0])
    lo_arr = np.broadcast_to(np.asarray(long_only, dtype=np.bool_), f.shape).copy()
    n_sets = f.shape[0]
    if n_sets == 0:
        empty = {k: np.empty(0) for k in METRIC_KEYS}
        return empty | ({k: np.empty((0, n_blocks)) for k in BLOCK_KEYS} if n_blocks else {})
    o, h, lo, c, atr, day_id, minute = kernel_inputs(bars, opts)
    p = sim_params(opts)
    ts = readonly_view(bars.ts)
    bpy = annualization(bars)
    # Group sets into fast x slow tiles so each group's distinct EMAs fit in memory and
    # each computed EMA serves as many sets as possible (one group in practice).
    max_periods = max(2, _EMA_BYTES // (8 * max(len(bars), 1)))
    out = np.empty((n_sets, len(METRIC_KEYS)))
    blk = np.empty((3, n_sets, n_blocks))
    # The whole sweep holds the launch lock, not each group's launch: two sweeps of the
    # process (an embedded worker's two batch jobs) would otherwise interleave group by
    # group with both EMA matrices live (measured: the whole grid ~5% slower).
    with launch_guard():
        rows = _ema_rows(c, max_periods) if _plain(p) else None
        for idx in _tiles(f, s, max_periods):
            periods = np.unique(np.concatenate((f[idx], s[idx])))
            fi = np.searchsorted(periods, f[idx]).astype(np.int64)
            si = np.searchsorted(periods, s[idx]).astype(np.int64)
            if rows is not None:
                where = rows.load(periods)
                order, ptr = _tile_order(fi, si)
                idx = idx[order]
                with parallel_chunksize(1):
                    out[idx], blk[:, idx] = sweep_ema_tiled_nb(
                        o, h, lo, c, rows.emas, where[fi[order]], where[si[order]], lo_arr[idx],
                        ptr, atr, day_id, minute, p, ts, bpy, n_blocks, _CHUNK_BARS,
                        numba.get_num_threads())
                continue
            with parallel_chunksize(1):
                out[idx], blk[:, idx] = sweep_ema_nb(o, h, lo, c, periods, fi, si, lo_arr[idx], atr,
                                                     day_id, minute, p, ts, bpy, n_blocks,
                                                     _lanes(), _CHUNK_BARS)
    return _as_dict(out, blk if n_blocks else None)


sweep = sweep_signals
