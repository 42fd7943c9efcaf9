"""Numba kernels of the run analysis: drawdown periods, tail risk, moments and quantiles.

They follow `engine.metrics_nb` to the letter where the two meet: the drawdown rule
(peak starts at the initial cash; a drawdown ends at the first bar back at or above its
peak) and the historical VaR/CVaR rule (K = ceil(tail x m) worst bar returns). Order
statistics come from `engine.metrics_nb.kth_smallest_nb`, never from a full sort.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.metrics_nb import kth_smallest_nb

__all__ = ["drawdown_periods_nb", "moments_nb", "quantile_nb", "tail_risk_nb"]


@njit(nogil=True, cache=True)
def drawdown_periods_nb(
    equity: np.ndarray, initial_cash: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every drawdown period as (start, trough, end, depth) arrays in time order.

    start is the peak bar (0 when the peak is the initial cash), trough the first bar at
    the period's lowest equity, end the first bar back at or above the peak (-1 if it
    never recovered) and depth = 1 - trough equity / peak equity (a fraction).
    """
    n = equity.shape[0]
    start = np.empty(n // 2 + 1, dtype=np.int64)
    trough = np.empty(n // 2 + 1, dtype=np.int64)
    end = np.empty(n // 2 + 1, dtype=np.int64)
    depth = np.empty(n // 2 + 1, dtype=np.float64)
    k = 0
    peak = initial_cash
    peak_idx = 0
    under = False
    low = initial_cash
    low_idx = 0
    for i in range(n):
        e = equity[i]
        if e >= peak:
            if under:
                start[k] = peak_idx
                trough[k] = low_idx
                end[k] = i
                depth[k] = 1.0 - low / peak
                k += 1
                under = False
            peak = e
            peak_idx = i
        elif under:
            if e < low:
                low = e
                low_idx = i
        else:
            under = True
            low = e
            low_idx = i
    if under:
        start[k] = peak_idx
        trough[k] = low_idx
        end[k] = -1
        depth[k] = 1.0 - low / peak
        k += 1
    return start[:k], trough[:k], end[:k], depth[:k]


@njit(nogil=True, cache=True)
def tail_risk_nb(rets: np.ndarray, tail: float) -> tuple[float, float]:
    """(VaR, CVaR) as positive loss fractions over the K = ceil(tail x m) worst returns.

    The same rule, summation order included, as `engine.metrics_nb.return_stats_nb`
    uses for var_95/cvar_95: VaR = -(K-th worst), CVaR = -(mean of the K worst).
    """
    m = rets.shape[0]
    if m == 0:
        return np.nan, np.nan
    n_tail = max(1, int(np.ceil(tail * m)))
    v = kth_smallest_nb(rets, n_tail - 1)
    t0 = t1 = 0.0
    below = 0
    for i in range(0, m - m % 2, 2):
        r0 = rets[i]
        r1 = rets[i + 1]
        t0 += r0 if r0 < v else 0.0
        t1 += r1 if r1 < v else 0.0
        below += (r0 < v) + (r1 < v)
    if m % 2:
        r0 = rets[m - 1]
        t0 += r0 if r0 < v else 0.0
        below += r0 < v
    total = (t0 + t1) + (n_tail - below) * v
    return -v, -total / n_tail


@njit(nogil=True, cache=True)
def moments_nb(x: np.ndarray) -> tuple[float, float, float, float]:
    """(mean, m2, m3, m4): the mean and the central moments with divisor n (two passes)."""
    n = x.shape[0]
    s = 0.0
    for v in x:
        s += v
    mean = s / n
    m2 = m3 = m4 = 0.0
    for v in x:
        d = v - mean
        d2 = d * d
        m2 += d2
        m3 += d2 * d
        m4 += d2 * d2
    return mean, m2 / n, m3 / n, m4 / n


@njit(nogil=True, cache=True)
def quantile_nb(x: np.ndarray, q: float) -> float:
    """The q-quantile of x with linear interpolation (numpy's default 'linear' method)."""
    n = x.shape[0]
    h = (n - 1) * q
    lo = int(np.floor(h))
    frac = h - lo
    a = kth_smallest_nb(x, lo)
    if frac == 0.0 or lo + 1 >= n:
        return a
    b = kth_smallest_nb(x, lo + 1)
    return a + (b - a) * frac
