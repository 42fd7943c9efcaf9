"""Numba core of the scalar metrics, shared bit for bit by full runs and sweeps.

`metrics_nb` returns a float64 vector in `METRIC_KEYS` order with NaN for undefined
values; `engine.metrics` names them, turns NaN into None and documents each one.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.simulate_nb import T_BARS_HELD, T_ENTRY_IDX, T_EXIT_IDX, T_PNL

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
TAIL = 0.05  # VaR / CVaR tail share


N_BINS = 2048


@njit(nogil=True, cache=True, error_model="numpy")
def _bin_nb(v: float, lo: float, scale: float) -> int:
    # Monotone in v, so a bin's members are exactly the values of a rank range.
    return min(int((v - lo) * scale), N_BINS - 1)


@njit(nogil=True, cache=True, error_model="numpy")
def _select_nb(buf: np.ndarray, counts: np.ndarray, lo: float, scale: float, k: int) -> float:
    """k-th smallest (0-based) of buf, given its histogram `counts` over [lo, lo + N_BINS/scale]."""
    while True:
        b = 0
        while k >= counts[b]:
            k -= counts[b]
            b += 1
        out = np.empty(counts[b])
        j = 0
        for v in buf:
            if _bin_nb(v, lo, scale) == b:
                out[j] = v
                j += 1
        buf = out
        m = buf.shape[0]
        if m <= 256:
            return np.sort(buf)[k]
        lo = buf.min()
        hi = buf.max()
        if lo == hi:
            return lo
        scale = N_BINS / (hi - lo)
        if not np.isfinite(scale):
            return np.sort(buf)[k]
        counts = np.zeros(N_BINS, dtype=np.int64)
        for v in buf:
            counts[_bin_nb(v, lo, scale)] += 1


@njit(nogil=True, cache=True, error_model="numpy")
def kth_smallest_nb(x: np.ndarray, k: int) -> float:
    """The k-th smallest value (0-based) of x without sorting all of it (x is untouched).

    Histogram selection: count values into bins between min and max, keep only the bin
    holding rank k, repeat. The bin index is monotone in the value, so it is exact.
    """
    if x.shape[0] <= 256:
        return np.sort(x)[k]
    lo = x.min()
    hi = x.max()
    if lo == hi:
        return lo
    scale = N_BINS / (hi - lo)
    if not np.isfinite(scale):
        return np.sort(x)[k]
    counts = np.zeros(N_BINS, dtype=np.int64)
    for v in x:
        counts[_bin_nb(v, lo, scale)] += 1
    return _select_nb(x, counts, lo, scale, k)


# Returns below this count take the general path (a full histogram costs little there).
_FAST_MIN_RETURNS = 8192
_SAMPLE = 4096  # returns sampled to place the tail threshold


@njit(nogil=True, cache=True, error_model="numpy")
def return_stats_nb(equity: np.ndarray) -> tuple[float, float, float, float, float]:
    """(mean, stdev ddof=1, downside deviation, VaR_95, CVaR_95) of bar returns, as fractions.

    Bar returns are equity[i+1] / equity[i] - 1 (equity must be > 0); VaR/CVaR use the
    K = ceil(5% of them) worst returns. Sums run in 4 interleaved lanes (so LLVM can
    vectorize them), in a fixed order, so results are deterministic.

    For long series a strided sample places a threshold safely above the 5% quantile, the
    pass that sums the squares also keeps the returns at or below it, and the K-th
    smallest return and the tail sum come from those few (no histogram of all returns,
    no third pass). Every quantity is the same number, bit for bit, as
    `_return_stats_general_nb` computes (the same divisions, the same additions in the
    same lane order; skipped additions are of +0.0). When the sample misjudges the
    threshold (ties, a strongly periodic series) the general path runs instead.
    """
    if equity.shape[0] - 1 >= _FAST_MIN_RETURNS:
        ok, stats = _return_stats_sampled_nb(equity)
        if ok:
            return stats
    # One call site: LLVM inlines it, and several copies would multiply compile time.
    return _return_stats_general_nb(equity)


@njit(nogil=True, cache=True, error_model="numpy")
def _return_stats_sampled_nb(
    equity: np.ndarray,
) -> tuple[bool, tuple[float, float, float, float, float]]:
    """(True, stats) by the sampled-threshold method, or (False, NaNs) when it cannot tell."""
    m = equity.shape[0] - 1
    rets = np.empty(m)
    for i in range(m):  # its own loop: fused with the sums it would not vectorize
        rets[i] = equity[i + 1] / equity[i] - 1.0
    m4 = m - m % 4
    s0 = s1 = s2 = s3 = 0.0
    for i in range(0, m4, 4):
        s0 += rets[i]
        s1 += rets[i + 1]
        s2 += rets[i + 2]
        s3 += rets[i + 3]
    for i in range(m4, m):
        s0 += rets[i]
    mean = ((s0 + s1) + (s2 + s3)) / m
    if not np.isfinite(mean):  # non-finite returns: leave them to the general path
        return False, (np.nan, np.nan, np.nan, np.nan, np.nan)
    n_tail = max(1, int(np.ceil(TAIL * m)))
    cut = _tail_threshold_nb(rets)
    cap = m // 8 + 16
    low_even = np.empty(cap)  # returns <= cut at even indices, in index order
    low_odd = np.empty(cap)
    ne = 0
    no = 0
    q0 = q1 = q2 = q3 = 0.0
    d0 = d1 = d2 = d3 = 0.0
    room = cap - 2  # each buffer takes at most 2 writes per step below
    for i in range(0, m4, 4):
        if ne > room or no > room:  # the threshold was too generous
            return False, (np.nan, np.nan, np.nan, np.nan, np.nan)
        r0 = rets[i]
        r1 = rets[i + 1]
        r2 = rets[i + 2]
        r3 = rets[i + 3]
        q0 += (r0 - mean) * (r0 - mean)
        q1 += (r1 - mean) * (r1 - mean)
        q2 += (r2 - mean) * (r2 - mean)
        q3 += (r3 - mean) * (r3 - mean)
        d0 += min(r0, 0.0) * min(r0, 0.0)
        d1 += min(r1, 0.0) * min(r1, 0.0)
        d2 += min(r2, 0.0) * min(r2, 0.0)
        d3 += min(r3, 0.0) * min(r3, 0.0)
        # Branch-free compaction: always write, advance only past kept values.
        low_even[ne] = r0
        ne += r0 <= cut
        low_odd[no] = r1
        no += r1 <= cut
        low_even[ne] = r2
        ne += r2 <= cut
        low_odd[no] = r3
        no += r3 <= cut
    if ne > room or no > room:
        return False, (np.nan, np.nan, np.nan, np.nan, np.nan)
    for i in range(m4, m):
        r0 = rets[i]
        q0 += (r0 - mean) * (r0 - mean)
        d0 += min(r0, 0.0) * min(r0, 0.0)
        if i % 2 == 0:
            low_even[ne] = r0
            ne += r0 <= cut
        else:
            low_odd[no] = r0
            no += r0 <= cut
    if ne + no < n_tail:  # the threshold was too tight
        return False, (np.nan, np.nan, np.nan, np.nan, np.nan)
    sd = np.sqrt(((q0 + q1) + (q2 + q3)) / (m - 1))
    dsd = np.sqrt(((d0 + d1) + (d2 + d3)) / m)
    # Every return < v (the K-th smallest, itself <= cut) was kept, in index order.
    low = np.empty(ne + no)
    for j in range(ne):  # explicit loops: slice assignment costs seconds of compile time
        low[j] = low_even[j]
    for j in range(no):
        low[ne + j] = low_odd[j]
    v = kth_smallest_nb(low, n_tail - 1)
    t0 = t1 = 0.0
    b = 0
    for j in range(ne):
        r = low_even[j]
        if r < v:
            t0 += r
            b += 1
    for j in range(no):
        r = low_odd[j]
        if r < v:
            t1 += r
            b += 1
    tail = (t0 + t1) + (n_tail - b) * v
    return True, (mean, sd, dsd, -v, -tail / n_tail)


@njit(nogil=True, cache=True, error_model="numpy")
def _tail_threshold_nb(rets: np.ndarray) -> float:
    """A return level that about 8% of the returns are at or below (from a sample)."""
    m = rets.shape[0]
    stride = max(1, m // _SAMPLE) | 1  # odd, so it does not lock onto even periods
    k = (m - 1) // stride + 1
    sample = np.empty(k)
    for j in range(k):
        sample[j] = rets[j * stride]
    # 5% plus ~6 standard errors of a sample quantile (sqrt(0.05 * 0.95 / 4096) = 0.34%).
    return kth_smallest_nb(sample, min(k - 1, int(np.ceil(0.08 * k))))


@njit(nogil=True, cache=True, error_model="numpy")
def _return_stats_general_nb(equity: np.ndarray) -> tuple[float, float, float, float, float]:
    """`return_stats_nb` for any input: materializes the returns and selects the tail by
    histogram over all of them. Loops are written so LLVM can vectorize them: sums run
    in 4 interleaved lanes, in a fixed order, so results are deterministic.
    """
    m = equity.shape[0] - 1
    rets = np.empty(m)
    for i in range(m):
        rets[i] = equity[i + 1] / equity[i] - 1.0
    m4 = m - m % 4
    s0 = s1 = s2 = s3 = 0.0
    lo0 = lo1 = lo2 = lo3 = np.inf
    hi0 = hi1 = hi2 = hi3 = -np.inf
    for i in range(0, m4, 4):
        r0 = rets[i]
        r1 = rets[i + 1]
        r2 = rets[i + 2]
        r3 = rets[i + 3]
        s0 += r0
        s1 += r1
        s2 += r2
        s3 += r3
        lo0 = r0 if r0 < lo0 else lo0
        lo1 = r1 if r1 < lo1 else lo1
        lo2 = r2 if r2 < lo2 else lo2
        lo3 = r3 if r3 < lo3 else lo3
        hi0 = r0 if r0 > hi0 else hi0
        hi1 = r1 if r1 > hi1 else hi1
        hi2 = r2 if r2 > hi2 else hi2
        hi3 = r3 if r3 > hi3 else hi3
    for i in range(m4, m):
        r0 = rets[i]
        s0 += r0
        lo0 = r0 if r0 < lo0 else lo0
        hi0 = r0 if r0 > hi0 else hi0
    mean = ((s0 + s1) + (s2 + s3)) / m
    lo = min(min(lo0, lo1), min(lo2, lo3))
    hi = max(max(hi0, hi1), max(hi2, hi3))
    q0 = q1 = q2 = q3 = 0.0
    d0 = d1 = d2 = d3 = 0.0
    for i in range(0, m4, 4):
        r0 = rets[i]
        r1 = rets[i + 1]
        r2 = rets[i + 2]
        r3 = rets[i + 3]
        q0 += (r0 - mean) * (r0 - mean)
        q1 += (r1 - mean) * (r1 - mean)
        q2 += (r2 - mean) * (r2 - mean)
        q3 += (r3 - mean) * (r3 - mean)
        d0 += min(r0, 0.0) * min(r0, 0.0)
        d1 += min(r1, 0.0) * min(r1, 0.0)
        d2 += min(r2, 0.0) * min(r2, 0.0)
        d3 += min(r3, 0.0) * min(r3, 0.0)
    for i in range(m4, m):
        r0 = rets[i]
        q0 += (r0 - mean) * (r0 - mean)
        d0 += min(r0, 0.0) * min(r0, 0.0)
    sd = np.sqrt(((q0 + q1) + (q2 + q3)) / (m - 1)) if m > 1 else np.nan
    dsd = np.sqrt(((d0 + d1) + (d2 + d3)) / m)
    n_tail = max(1, int(np.ceil(TAIL * m)))
    v = _tail_value_nb(rets, lo, hi, n_tail - 1)
    t0 = t1 = 0.0
    b0 = b1 = 0
    m2 = m - m % 2
    for i in range(0, m2, 2):
        r0 = rets[i]
        r1 = rets[i + 1]
        t0 += r0 if r0 < v else 0.0
        t1 += r1 if r1 < v else 0.0
        b0 += 1 if r0 < v else 0
        b1 += 1 if r1 < v else 0
    if m2 < m:
        r0 = rets[m - 1]
        t0 += r0 if r0 < v else 0.0
        b0 += 1 if r0 < v else 0
    tail = (t0 + t1) + (n_tail - (b0 + b1)) * v
    return mean, sd, dsd, -v, -tail / n_tail


@njit(nogil=True, cache=True, error_model="numpy")
def _tail_value_nb(rets: np.ndarray, lo: float, hi: float, k: int) -> float:
    """k-th smallest return given the min and max (histogram selection, exact)."""
    m = rets.shape[0]
    if lo == hi:
        return lo
    scale = N_BINS / (hi - lo)
    if m <= 256 or not np.isfinite(scale):
        return np.sort(rets)[k]
    # Four interleaved histograms avoid a store-to-load chain on popular bins.
    counts4 = np.zeros((4, N_BINS), dtype=np.int64)
    bins = np.empty(m, dtype=np.int16)
    for i in range(m):
        b = _bin_nb(rets[i], lo, scale)
        bins[i] = b
        counts4[i & 3, b] += 1
    b = 0
    while True:
        c = counts4[0, b] + counts4[1, b] + counts4[2, b] + counts4[3, b]
        if k < c:
            break
        k -= c
        b += 1
    out = np.empty(c)
    j = 0
    for i in range(m):
        if bins[i] == b:
            out[j] = rets[i]
            j += 1
    if c <= 256:
        return np.sort(out)[k]
    return kth_smallest_nb(out, k)


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
    out = np.full(N_METRICS, np.nan)
    n = equity.shape[0]
    out[M_BPY] = bars_per_year
    out[M_N_TRADES] = n_closed
    out[M_N_OPEN] = n_open
    if n == 0:
        return out
    final = equity[n - 1]
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
    peak = initial_cash
    peak_idx = 0
    under = False
    trough = initial_cash
    mdd = 0.0
    dd_bars = 0
    dd_ns = 0
    low = np.inf  # lowest equity before the last bar (a return's denominator)
    prev = np.inf
    for i in range(n):
        e = equity[i]
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
    if under:
        dd_bars = max(dd_bars, n - 1 - peak_idx)
        dd_ns = max(dd_ns, ts[n - 1] - ts[peak_idx])
        mdd = max(mdd, 1.0 - trough / peak)
    out[M_MDD] = mdd * 100.0
    out[M_MDD_BARS] = dd_bars
    out[M_MDD_DAYS] = dd_ns / NS_PER_DAY
    cagr = out[M_CAGR]
    if mdd > 0.0 and cagr == cagr:
        out[M_CALMAR] = cagr / (mdd * 100.0)
    # Return statistics: undefined once equity has reached zero (returns lose meaning).
    if m >= 1 and low > 0.0:
        mean, sd, dsd, var, cvar = return_stats_nb(equity)
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
