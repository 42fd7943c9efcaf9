"""Tiled EMA-crossover sweep: a tile of sets goes through the bars together, chunk by chunk.

`sweep_ema_nb` runs one set at a time over all bars; on long series every set then
streams the closes and its two EMAs from memory and writes and re-reads its bar returns
(tens of MB a set), and two threads share the memory bandwidth. Here a tile (a few fast x
a few slow periods) walks the bars in cache-sized chunks: each chunk's closes and EMAs
are read once for the whole tile, and no set stores its returns:

* pass 1 (per chunk, per set): signals, `simulate_log_nb` (which also logs the position
  state after each bar where it can change) and the strided sample of `return_stats_nb`
  (each sampled return from the log at its two bars), which gives the variance's shift
  and the tail threshold;
* pass 2 (per chunk, per set): the equity recomputed from the closes and the state log
  (the simulator's own expression, so the same numbers), the drawdown scan, then in one
  loop the bar returns (the one division per bar: it runs side by side with the
  latency-bound sums), their sums, squares about the shift and downside squares (4
  lanes) and the returns at or below the tail threshold; then the block statistics.

Every quantity is the same number, bit for bit, as `return_stats_rets_nb` and
`block_stats_nb` compute from the stored returns: the same operations, the same
additions in the same lane order. Where the sampled method would fall back to its
general path (short series, non-finite mean, threshold too loose or too tight) the set's
returns are recomputed in full and `return_stats_rets_nb` runs on them. Only options
without protective levels or clock rules come here (then a position changes only where
the target does, and the log stays short); `engine.sweep` routes the others to
`sweep_ema_nb`.
"""

from __future__ import annotations

import numpy as np
from numba import get_thread_id, njit, prange

from engine.indicators import ema4_into_nb, ema_into_nb
from engine.metrics_nb import (
    N_METRICS,
    drawdown_init_nb,
    drawdown_update_nb,
    metrics_from_stats_nb,
    return_stats_rets_nb,
    stats_work_size,
)
from engine.returns_nb import (
    _FAST_MIN_RETURNS,
    TAIL,
    sample_cut_nb,
    sample_stride_nb,
    shift_nb,
)
from engine.simulate_nb import (
    N_LOG_FIELDS,
    N_TRADE_FIELDS,
    SimParams,
    initial_state_nb,
    simulate_log_nb,
)
from engine.stream_stats_nb import (
    block_add_nb,
    div_dev_keep_chunk_nb,
    rets_from_nb,
    tail_stats_nb,
)
from engine.sweep_nb import ema_cross_into_nb

_CAPACITY = 64  # initial trade and log rows per set slot; grow by doubling and are kept


@njit(nogil=True, cache=True, error_model="numpy")
def _regen_eq_nb(close: np.ndarray, a: int, b: int, log: np.ndarray, ln: int, ptr: int,
                 st: np.ndarray, delta: float, e: np.ndarray) -> int:
    """Equity of bars [a, b) into e[1 : b - a + 1] (e[0] is left for the equity before
    bar a) from the state log, with the simulator's expression; st = [cash, pos, price,
    qty] in force before bar a (updated). The caller divides where it sums the returns
    (`stream_stats_nb.div_dev_keep_chunk_nb`). Returns the next log row."""
    cash, pos, price, qty = st[0], st[1], st[2], st[3]
    i = a
    while i < b:
        while ptr < ln and log[ptr, 0] <= i:
            cash, pos, price, qty = log[ptr, 1], log[ptr, 2], log[ptr, 3], log[ptr, 4]
            ptr += 1
        e_ = b
        if ptr < ln and log[ptr, 0] < b:
            e_ = int(log[ptr, 0])
        if pos != 0:
            k = pos * delta
            for t in range(i, e_):
                e[np.uint64(t - a + 1)] = cash + k * (close[np.uint64(t)] - price) * qty
        else:
            for t in range(i, e_):
                e[np.uint64(t - a + 1)] = cash
        i = e_
    st[0], st[1], st[2], st[3] = cash, pos, price, qty
    return ptr


@njit(nogil=True, cache=True, error_model="numpy")
def _all_rets_nb(close: np.ndarray, log: np.ndarray, ln: int, p: SimParams) -> np.ndarray:
    """A set's n - 1 bar returns from its state log (the general path's input)."""
    n = close.shape[0]
    e = np.empty(n + 1)
    work = np.empty(stats_work_size(n - 1) + 1)
    st = np.array([p.initial_cash, 0.0, np.nan, 0.0])
    _regen_eq_nb(close, 0, n, log, ln, 0, st, p.delta, e)
    rets_from_nb(e[1:], work[1:n])  # return of bar t into work[t]
    return work[1:]


@njit(nogil=True, cache=True, error_model="numpy")
def _eq_at_nb(close: np.ndarray, t: int, log: np.ndarray, ln: int, ptr: int, st: np.ndarray,
              delta: float) -> tuple[float, int]:
    """(equity of bar t by `_regen_eq_nb`'s expression, next log row); st = [cash, pos,
    price, qty] in force before bar t (updated). Bars must come in order."""
    cash, pos, price, qty = st[0], st[1], st[2], st[3]
    while ptr < ln and log[ptr, 0] <= t:
        cash, pos, price, qty = log[ptr, 1], log[ptr, 2], log[ptr, 3], log[ptr, 4]
        ptr += 1
    st[0], st[1], st[2], st[3] = cash, pos, price, qty
    if pos != 0:
        k = pos * delta
        return cash + k * (close[t] - price) * qty, ptr
    return cash, ptr


@njit(nogil=True, cache=True, error_model="numpy")
def _run_tile_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    emas: np.ndarray,
    fast_idx: np.ndarray,
    slow_idx: np.ndarray,
    long_only: np.ndarray,
    j0: int,
    j1: int,
    atr: np.ndarray,
    day_id: np.ndarray,
    minute: np.ndarray,
    p: SimParams,
    ts: np.ndarray,
    bars_per_year: float,
    blocks: int,
    chunk: int,
    out: np.ndarray,
    blk: np.ndarray,
    trades: list[np.ndarray],
    logs: list[np.ndarray],
    keep: np.ndarray,
) -> None:
    """Sets j0 .. j1 - 1 (one tile) in two passes over the bars; metrics into out[j],
    block statistics into blk[:, j]. The lane's buffers: `trades` and `logs` (one per set,
    grown here and kept) and `keep` ([2 * sets, cap], the kept tail returns)."""
    n = close.shape[0]
    m = max(n - 1, 0)  # bar returns
    m4 = m - m % 4
    n_sets = j1 - j0
    states = [initial_state_nb(p.initial_cash) for _ in range(n_sets)]
    log_n = np.zeros(n_sets, dtype=np.int64)
    stride = sample_stride_nb(m)
    n_sample = (m - 1) // stride + 1 if m > 0 else 0
    sample = np.empty((n_sets, n_sample))
    sig = np.empty(chunk + 1, dtype=np.int8)
    eq = np.empty(chunk)
    r = np.empty(chunk)
    one = np.empty(1, dtype=np.int64)
    st1 = np.empty((n_sets, 4))  # `_eq_at_nb` state of the sample
    for jj in range(n_sets):
        st1[jj, 0], st1[jj, 1], st1[jj, 2], st1[jj, 3] = p.initial_cash, 0.0, np.nan, 0.0
    ptr1 = np.zeros(n_sets, dtype=np.int64)
    # Pass 1: signals, the simulation (its state log) and the strided sample of returns
    # (return g is bar g + 1's: eq[g + 1] / eq[g] - 1), each from the log at two bars.
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        lo = max(a - 1, 0)
        g_lo = max(a, 1) - 1  # the returns of bars a .. b - 1
        for jj in range(n_sets):
            j = j0 + jj
            ema_cross_into_nb(emas[fast_idx[j], lo:b], emas[slow_idx[j], lo:b], long_only[j],
                              sig[: b - lo])
            s = states[jj]
            while True:
                one[0] = log_n[jj]
                s = simulate_log_nb(open_, high, low, close, sig, lo, atr, day_id, minute, p,
                                    s, b, eq, a, trades[jj], logs[jj], one)
                log_n[jj] = one[0]
                if s.bar >= b:
                    break
                tr = trades[jj]
                if s.n_trades + 2 > tr.shape[0]:
                    bigger = np.empty((tr.shape[0] * 2, N_TRADE_FIELDS))
                    bigger[: s.n_trades] = tr[: s.n_trades]
                    trades[jj] = bigger
                lg = logs[jj]
                if log_n[jj] >= lg.shape[0]:
                    grown = np.empty((lg.shape[0] * 2, N_LOG_FIELDS))
                    grown[: log_n[jj]] = lg[: log_n[jj]]
                    logs[jj] = grown
            states[jj] = s
            lg = logs[jj]
            for g in range(-(-g_lo // stride) * stride, b - 1, stride):
                x0, ptr1[jj] = _eq_at_nb(close, g, lg, log_n[jj], ptr1[jj], st1[jj], p.delta)
                x1, ptr1[jj] = _eq_at_nb(close, g + 1, lg, log_n[jj], ptr1[jj], st1[jj],
                                         p.delta)
                sample[jj, g // stride] = x1 / x0 - 1.0
    # Between the passes: which sets take the streaming statistics, their shifts and
    # tail thresholds.
    streamed = np.zeros(n_sets, dtype=np.bool_)
    shift = np.zeros(n_sets)
    cut = np.zeros(n_sets)
    floor = np.zeros(n_sets)  # the sample's minimum: where the tail histogram starts
    n_tail = max(1, int(np.ceil(TAIL * m)))
    if m >= _FAST_MIN_RETURNS:
        for jj in range(n_sets):
            shift[jj] = shift_nb(sample[jj])
            if np.isfinite(shift[jj]):
                streamed[jj] = True
                cut[jj] = sample_cut_nb(sample[jj])
                floor[jj] = sample[jj].min()
    # Pass 2: the equity from the log, drawdowns, the sums, the kept tail, block statistics.
    dds = [drawdown_init_nb(p.initial_cash) for _ in range(n_sets)]
    last = np.full(n_sets, np.nan)  # equity before the chunk
    st = np.empty((n_sets, 4))
    for jj in range(n_sets):
        st[jj, 0], st[jj, 1], st[jj, 2], st[jj, 3] = p.initial_cash, 0.0, np.nan, 0.0
    ptr = np.zeros(n_sets, dtype=np.int64)
    sums = np.zeros((n_sets, 4))
    qs = np.zeros((n_sets, 4))
    ds = np.zeros((n_sets, 4))
    cnt = np.zeros((n_sets, 2), dtype=np.int64)
    over = np.zeros(n_sets, dtype=np.bool_)
    bsum = np.zeros((n_sets, max(blocks, 1), 4))
    bsq = np.zeros((n_sets, max(blocks, 1), 4))
    base, extra = divmod(m, max(blocks, 1))
    e = np.empty(chunk + 1)  # the equity before the chunk, then the chunk's
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        g0 = max(a, 1) - 1
        h = 1 if a == 0 else 0  # bar 0 has no return
        for jj in range(n_sets):
            e[0] = last[jj]
            ptr[jj] = _regen_eq_nb(close, a, b, logs[jj], log_n[jj], ptr[jj], st[jj], p.delta, e)
            last[jj] = e[b - a]
            dds[jj] = drawdown_update_nb(dds[jj], e[1 : b - a + 1], ts, a)
            # Return of bar t (index t - 1): e[t - a + 1] / e[t - a] - 1, into r[t - a].
            x = r[h : b - a]
            if streamed[jj]:
                over[jj] |= div_dev_keep_chunk_nb(e[h : b - a + 1], x, g0, m4, shift[jj],
                                                  cut[jj], sums[jj], qs[jj], ds[jj],
                                                  keep[2 * jj], keep[2 * jj + 1], cnt[jj])
            elif blocks > 0:
                rets_from_nb(e[h : b - a + 1], x)
            if blocks > 0:
                block_add_nb(x, g0, base, extra, blocks, bsum[jj], bsq[jj])
    # Finish each set.
    for jj in range(n_sets):
        j = j0 + jj
        s = states[jj]
        d = dds[jj]
        nan = np.nan
        stats = (nan, nan, nan, nan, nan)
        if m >= 1 and d.low > 0.0:
            sm = sums[jj]
            mean = ((sm[0] + sm[1]) + (sm[2] + sm[3])) / m
            if (streamed[jj] and not over[jj] and cnt[jj, 0] + cnt[jj, 1] >= n_tail
                    and np.isfinite(mean)):
                stats = tail_stats_nb(keep[2 * jj, : cnt[jj, 0]], keep[2 * jj + 1, : cnt[jj, 1]],
                                      n_tail, mean, shift[jj], qs[jj], ds[jj], m, floor[jj],
                                      cut[jj])
            else:
                work = _all_rets_nb(close, logs[jj], log_n[jj], p)
                stats = return_stats_rets_nb(work[:m], work)
        n_open = 1 if s.pos != 0 else 0
        open_bars = n - s.entry_idx if s.pos != 0 else 0
        final = last[jj] if n > 0 else np.nan
        out[j] = metrics_from_stats_nb(final, n, ts, d, stats, trades[jj], s.n_trades,
                                       open_bars, n_open, p.initial_cash, bars_per_year)
        for bb in range(blocks):
            size = base + 1 if bb < extra else base
            u = bsum[jj, bb]
            v = bsq[jj, bb]
            blk[0, j, bb] = size
            blk[1, j, bb] = (u[0] + u[1]) + (u[2] + u[3])
            blk[2, j, bb] = (v[0] + v[1]) + (v[2] + v[3])


@njit(nogil=True, cache=True, parallel=True)
def ema_rows_nb(close: np.ndarray, periods: np.ndarray, rows: np.ndarray,
                emas: np.ndarray) -> None:
    """emas[rows[j]] = ema_nb(close, periods[j]) for each j, in parallel: four periods a
    pass (`ema4_into_nb`) when the closes are finite, one by one otherwise."""
    k = periods.shape[0]
    quads = (k + 3) // 4 if np.isfinite(close).all() else 0
    for g in prange(quads):  # a short last group repeats its last period (same row, same values)
        j0, j1, j2, j3 = 4 * g, min(4 * g + 1, k - 1), min(4 * g + 2, k - 1), min(4 * g + 3, k - 1)
        if not ema4_into_nb(close, periods[j0], periods[j1], periods[j2], periods[j3],
                            emas[rows[j0]], emas[rows[j1]], emas[rows[j2]], emas[rows[j3]]):
            for j in range(j0, min(j0 + 4, k)):
                ema_into_nb(close, periods[j], emas[rows[j]])
    for j in prange(k if quads == 0 else 0):
        ema_into_nb(close, periods[j], emas[rows[j]])


@njit(nogil=True, cache=True, parallel=True, error_model="numpy")
def sweep_ema_tiled_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    emas: np.ndarray,
    fast_row: np.ndarray,
    slow_row: np.ndarray,
    long_only: np.ndarray,
    tile_ptr: np.ndarray,
    atr: np.ndarray,
    day_id: np.ndarray,
    minute: np.ndarray,
    p: SimParams,
    ts: np.ndarray,
    bars_per_year: float,
    blocks: int,
    chunk: int,
    n_threads: int,
) -> tuple[np.ndarray, np.ndarray]:
    """`sweep_ema_nb` for sets grouped into tiles: set j trades emas[fast_row[j]] against
    emas[slow_row[j]]; tile t is sets tile_ptr[t] .. tile_ptr[t + 1] - 1 (of a few fast
    and slow periods each). Returns metrics and block statistics as `sweep_ema_nb`.

    Tiles are the parallel loop's iterations, handed out one at a time (the caller sets
    a chunk size of 1) in order: a thread takes the next tile when it is done with one,
    so the threads finish within about one tile of each other even when other work of
    the process takes a core for a while. Each thread keeps its buffers (a few MB) from
    tile to tile: fresh ones would fault in and zero their pages for every tile.
    `n_threads` is `numba.get_num_threads()` of the caller (thread ids are below it)."""
    n = close.shape[0]
    n_sets = fast_row.shape[0]
    out = np.empty((n_sets, N_METRICS))
    blk = np.zeros((3, n_sets, max(blocks, 0)))
    n_tiles = tile_ptr.shape[0] - 1
    cap = max(n - 1, 0) // 8 + 16 + 2  # see `keep_tail_nb`
    slots = 1
    for t in range(n_tiles):
        slots = max(slots, tile_ptr[t + 1] - tile_ptr[t])
    trades = [[np.empty((_CAPACITY, N_TRADE_FIELDS)) for _ in range(slots)]
              for _ in range(n_threads)]
    logs = [[np.empty((_CAPACITY, N_LOG_FIELDS)) for _ in range(slots)]
            for _ in range(n_threads)]
    keep = [np.empty((2 * slots, cap)) for _ in range(n_threads)]
    for t in prange(n_tiles):
        me = get_thread_id()
        _run_tile_nb(open_, high, low, close, emas, fast_row, slow_row, long_only,
                     tile_ptr[t], tile_ptr[t + 1], atr, day_id, minute, p, ts,
                     bars_per_year, blocks, chunk, out, blk, trades[me], logs[me], keep[me])
    return out, blk
