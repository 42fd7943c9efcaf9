"""Numba indicator kernels: arrays in, preallocated float64 arrays out, NaN during warm-up.

Conventions (each kernel has a pandas or pure-Python twin in tests/engine/test_indicators.py):

* `ema_nb` is exactly pandas `ewm(span=n, adjust=False, min_periods=n).mean()`,
  including its NaN handling (NaNs count as elapsed time, not observations).
  `ema_cross_nb` is the sign of two such EMAs, computed in one pass.
* Rolling windows (`sma_nb`, `bollinger_nb`, `rolling_max_nb`, `rolling_min_nb`) are
  pandas `rolling(n)` with min_periods=n: NaN until n values, NaN if the window holds a NaN.
* Wilder smoothing (`rsi_nb`, `atr_nb`) seeds with the simple mean of the first n
  values, then avg = (avg * (n - 1) + value) / n.
* `bollinger_nb` uses the POPULATION standard deviation (ddof=0), as Bollinger does.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "atr_nb",
    "bollinger_nb",
    "ema4_into_nb",
    "ema_cross_nb",
    "ema_into_nb",
    "ema_nb",
    "macd_nb",
    "rolling_max_nb",
    "rolling_min_nb",
    "rolling_std_nb",
    "rsi_nb",
    "sma_nb",
    "true_range_nb",
    "vwap_nb",
]


@njit(nogil=True, cache=True)
def _ema_coefs_nb(n: int) -> tuple[bool, float, float, float, float]:
    """(span-3 special case, alpha, 1 - alpha, new weight and divisor after an observed bar)."""
    if n < 1:
        raise ValueError("indicator period n must be >= 1")
    # Same arithmetic as pandas' Cython ewm so results agree bit for bit.
    com = (n - 1) / 2.0
    alpha = 1.0 / (1.0 + com)
    factor = 1.0 - alpha
    # pandas' special case for span=3 (com == 1): new weight = 1 - old weight.
    new_wt = 1.0 - factor if com == 1.0 else alpha
    return com == 1.0, alpha, factor, new_wt, factor + new_wt


@njit(nogil=True, cache=True)
def _ema_step_nb(
    cur: float,
    weighted: float,
    old_wt: float,
    nobs: int,
    com1: bool,
    alpha: float,
    factor: float,
    new_wt: float,
    denom: float,
) -> tuple[float, float, int]:
    """One bar of pandas' ewm(adjust=False) recursion; returns (weighted, old_wt, nobs).

    pandas computes (old_wt * weighted + new_wt * cur) / (old_wt + new_wt). Right after an
    observed bar old_wt is exactly `factor`, so the divisor is the constant `denom`, which
    is exactly 1.0 for every span ((1 - a) + a rounds to 1): the division is skipped
    (x / 1.0 == x bit for bit), leaving a multiply-add per bar. After NaN gaps old_wt is a
    power of `factor` and the general formula, division included, runs as in pandas.
    """
    if cur == cur:
        nobs += 1
        if weighted == weighted:
            if old_wt == 1.0:  # the previous bar was observed: old_wt * factor == factor
                if weighted != cur:
                    weighted = factor * weighted + new_wt * cur
                    if denom != 1.0:
                        weighted /= denom
            else:
                old_wt *= factor
                if weighted != cur:
                    wt = 1.0 - old_wt if com1 else alpha
                    weighted = old_wt * weighted + wt * cur
                    weighted /= old_wt + wt
                old_wt = 1.0
        else:
            weighted = cur
    elif weighted == weighted:
        old_wt *= factor
    return weighted, old_wt, nobs


@njit(nogil=True, cache=True)
def ema_nb(x: np.ndarray, n: int) -> np.ndarray:
    """EMA with alpha = 2/(n+1) seeded at the first value: pandas ewm(span=n, adjust=False)."""
    out = np.empty(x.shape[0], dtype=np.float64)
    ema_into_nb(x, n, out)
    return out


@njit(nogil=True, cache=True)
def ema_into_nb(x: np.ndarray, n: int, out: np.ndarray) -> None:
    """`ema_nb` written into `out` (same length as x), e.g. a row of a preallocated matrix."""
    com1, alpha, factor, new_wt, denom = _ema_coefs_nb(n)
    size = x.shape[0]
    if size == 0:
        return
    weighted = x[0]
    nobs = 1 if weighted == weighted else 0
    old_wt = 1.0
    out[0] = weighted if nobs >= n else np.nan
    for i in range(1, size):
        weighted, old_wt, nobs = _ema_step_nb(
            x[i], weighted, old_wt, nobs, com1, alpha, factor, new_wt, denom
        )
        out[i] = weighted if nobs >= n else np.nan


@njit(nogil=True, cache=True)
def ema4_into_nb(x: np.ndarray, n0: int, n1: int, n2: int, n3: int, o0: np.ndarray,
                 o1: np.ndarray, o2: np.ndarray, o3: np.ndarray) -> bool:
    """`ema_into_nb(x, n_k, o_k)` for four periods in one pass, when every x is finite.

    One EMA is a chain of dependent multiply-adds (latency-bound); four independent
    chains side by side keep the floating-point units busy. Same operations per bar as
    `_ema_step_nb` takes on finite data (old_wt stays 1, nobs is the bar count), so the
    same numbers. The caller checks that x is finite; returns False without writing when
    a divisor is not exactly 1 (then `ema_into_nb` must run).
    """
    c0, f0, w0 = _ema_mul_add_nb(n0)
    c1, f1, w1 = _ema_mul_add_nb(n1)
    c2, f2, w2 = _ema_mul_add_nb(n2)
    c3, f3, w3 = _ema_mul_add_nb(n3)
    if not (c0 and c1 and c2 and c3):
        return False
    size = x.shape[0]
    if size == 0:
        return True
    e0 = e1 = e2 = e3 = x[0]
    nan = np.nan
    o0[0] = e0 if n0 <= 1 else nan
    o1[0] = e1 if n1 <= 1 else nan
    o2[0] = e2 if n2 <= 1 else nan
    o3[0] = e3 if n3 <= 1 else nan
    for i in range(1, size):
        cur = x[i]
        e0 = f0 * e0 + w0 * cur if e0 != cur else e0
        e1 = f1 * e1 + w1 * cur if e1 != cur else e1
        e2 = f2 * e2 + w2 * cur if e2 != cur else e2
        e3 = f3 * e3 + w3 * cur if e3 != cur else e3
        o0[i] = e0 if i >= n0 - 1 else nan
        o1[i] = e1 if i >= n1 - 1 else nan
        o2[i] = e2 if i >= n2 - 1 else nan
        o3[i] = e3 if i >= n3 - 1 else nan
    return True


@njit(nogil=True, cache=True)
def _ema_mul_add_nb(n: int) -> tuple[bool, float, float]:
    """(divisor exactly 1, factor, new weight) of `_ema_coefs_nb`."""
    _, _, factor, new_wt, denom = _ema_coefs_nb(n)
    return denom == 1.0, factor, new_wt


@njit(nogil=True, cache=True)
def ema_cross_nb(x: np.ndarray, fast: int, slow: int, long_only: bool) -> np.ndarray:
    """Sign of EMA(fast) - EMA(slow) as int8, both EMAs in one pass and never stored.

    +1 where ema_nb(x, fast) > ema_nb(x, slow), -1 (0 if long_only) where it is below,
    0 where they are equal or either is NaN (warm-up): exactly the comparison of the
    two ema_nb arrays, at a fraction of the time and memory.
    """
    c1, a1, f1, w1, d1 = _ema_coefs_nb(fast)
    c2, a2, f2, w2, d2 = _ema_coefs_nb(slow)
    size = x.shape[0]
    out = np.empty(size, dtype=np.int8)
    if size == 0:
        return out
    short = np.int8(0) if long_only else np.int8(-1)
    e1 = x[0]
    e2 = e1
    nobs1 = 1 if e1 == e1 else 0
    nobs2 = nobs1
    old1 = 1.0
    old2 = 1.0
    out[0] = _cross_sign_nb(e1, e2, nobs1 >= fast and nobs2 >= slow, short)
    for i in range(1, size):
        cur = x[i]
        e1, old1, nobs1 = _ema_step_nb(cur, e1, old1, nobs1, c1, a1, f1, w1, d1)
        e2, old2, nobs2 = _ema_step_nb(cur, e2, old2, nobs2, c2, a2, f2, w2, d2)
        out[i] = _cross_sign_nb(e1, e2, nobs1 >= fast and nobs2 >= slow, short)
    return out


@njit(nogil=True, cache=True)
def _cross_sign_nb(a: float, b: float, defined: bool, short: np.int8) -> np.int8:
    if defined:
        if a > b:
            return np.int8(1)
        if a < b:
            return short
    return np.int8(0)


@njit(nogil=True, cache=True)
def sma_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average over the last n values (pandas rolling(n).mean())."""
    if n < 1:
        raise ValueError("indicator period n must be >= 1")
    size = x.shape[0]
    out = np.full(size, np.nan)
    total = 0.0
    nan_count = 0
    for i in range(size):
        v = x[i]
        if v == v:
            total += v
        else:
            nan_count += 1
        if i >= n:
            old = x[i - n]
            if old == old:
                total -= old
            else:
                nan_count -= 1
        # Re-sum each full window renewal so rounding drift stays bounded.
        if i >= n - 1 and (i + 1) % n == 0 and nan_count == 0:
            total = 0.0
            for j in range(i - n + 1, i + 1):
                total += x[j]
        if i >= n - 1 and nan_count == 0:
            out[i] = total / n
    return out


@njit(nogil=True, cache=True)
def rolling_std_nb(x: np.ndarray, n: int, ddof: int) -> np.ndarray:
    """Rolling standard deviation (two-pass per window; ddof 0 = population)."""
    if n < 1:
        raise ValueError("indicator period n must be >= 1")
    size = x.shape[0]
    out = np.full(size, np.nan)
    if n - ddof <= 0:
        return out
    last_nan = -1
    for i in range(size):
        if x[i] != x[i]:
            last_nan = i
        if i < n - 1 or last_nan > i - n:
            continue
        mean = 0.0
        for j in range(i - n + 1, i + 1):
            mean += x[j]
        mean /= n
        ss = 0.0
        for j in range(i - n + 1, i + 1):
            d = x[j] - mean
            ss += d * d
        out[i] = np.sqrt(ss / (n - ddof))
    return out


@njit(nogil=True, cache=True)
def bollinger_nb(x: np.ndarray, n: int, k: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mid, upper, lower): SMA(n) +/- k population standard deviations (ddof=0)."""
    if n < 1:
        raise ValueError("indicator period n must be >= 1")
    size = x.shape[0]
    mid = np.full(size, np.nan)
    upper = np.full(size, np.nan)
    lower = np.full(size, np.nan)
    last_nan = -1
    for i in range(size):
        if x[i] != x[i]:
            last_nan = i
        if i < n - 1 or last_nan > i - n:
            continue
        mean = 0.0
        for j in range(i - n + 1, i + 1):
            mean += x[j]
        mean /= n
        ss = 0.0
        for j in range(i - n + 1, i + 1):
            d = x[j] - mean
            ss += d * d
        sd = np.sqrt(ss / n)
        mid[i] = mean
        upper[i] = mean + k * sd
        lower[i] = mean - k * sd
    return mid, upper, lower


@njit(nogil=True, cache=True)
def rsi_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Wilder RSI: first value at index n (mean of the first n changes), then Wilder smoothing.

    A window with no losses is 100 (50 when there were no gains either). A NaN input
    restarts the warm-up.
    """
    if n < 1:
        raise ValueError("indicator period n must be >= 1")
    size = x.shape[0]
    out = np.full(size, np.nan)
    avg_gain = 0.0
    avg_loss = 0.0
    count = 0  # valid consecutive changes seen since the last NaN
    for i in range(1, size):
        a = x[i - 1]
        b = x[i]
        if a != a or b != b:
            count = 0
            avg_gain = 0.0
            avg_loss = 0.0
            continue
        change = b - a
        gain = change if change > 0 else 0.0
        loss = -change if change < 0 else 0.0
        count += 1
        if count <= n:
            avg_gain += gain
            avg_loss += loss
            if count < n:
                continue
            avg_gain /= n
            avg_loss /= n
        else:
            avg_gain = (avg_gain * (n - 1) + gain) / n
            avg_loss = (avg_loss * (n - 1) + loss) / n
        if avg_loss == 0.0:
            out[i] = 50.0 if avg_gain == 0.0 else 100.0
        else:
            out[i] = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    return out


@njit(nogil=True, cache=True)
def true_range_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range: max(high - low, |high - prev close|, |low - prev close|); bar 0 is high - low."""
    size = high.shape[0]
    out = np.empty(size, dtype=np.float64)
    for i in range(size):
        tr = high[i] - low[i]
        if i > 0:
            pc = close[i - 1]
            tr = max(tr, abs(high[i] - pc), abs(low[i] - pc))
        out[i] = tr
    return out


@njit(nogil=True, cache=True)
def atr_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    """Wilder ATR: mean of the first n true ranges at index n-1, then Wilder smoothing."""
    if n < 1:
        raise ValueError("indicator period n must be >= 1")
    tr = true_range_nb(high, low, close)
    size = tr.shape[0]
    out = np.full(size, np.nan)
    if size < n:
        return out
    avg = 0.0
    for i in range(n):
        avg += tr[i]
    avg /= n
    out[n - 1] = avg
    for i in range(n, size):
        avg = (avg * (n - 1) + tr[i]) / n
        out[i] = avg
    return out


@njit(nogil=True, cache=True)
def macd_nb(
    x: np.ndarray, fast: int, slow: int, signal: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(line, signal, hist): EMA(fast) - EMA(slow), its EMA(signal), and their difference."""
    line = ema_nb(x, fast) - ema_nb(x, slow)
    sig = ema_nb(line, signal)
    return line, sig, line - sig


@njit(nogil=True, cache=True)
def _rolling_extreme_nb(x: np.ndarray, n: int, sign: float) -> np.ndarray:
    # Monotonic deque of indices: O(len) regardless of n. sign=+1 max, -1 min.
    if n < 1:
        raise ValueError("indicator period n must be >= 1")
    size = x.shape[0]
    out = np.full(size, np.nan)
    dq = np.empty(size, dtype=np.int64)
    head = 0
    tail = 0
    last_nan = -1
    for i in range(size):
        v = x[i]
        if v != v:
            last_nan = i
            head = 0
            tail = 0
        else:
            while tail > head and sign * x[dq[tail - 1]] <= sign * v:
                tail -= 1
            dq[tail] = i
            tail += 1
        while tail > head and dq[head] <= i - n:
            head += 1
        if i >= n - 1 and last_nan <= i - n:
            out[i] = x[dq[head]]
    return out


@njit(nogil=True, cache=True)
def rolling_max_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Highest value of the last n (pandas rolling(n).max())."""
    return _rolling_extreme_nb(x, n, 1.0)


@njit(nogil=True, cache=True)
def rolling_min_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Lowest value of the last n (pandas rolling(n).min())."""
    return _rolling_extreme_nb(x, n, -1.0)


@njit(nogil=True, cache=True)
def vwap_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, day_id: np.ndarray
) -> np.ndarray:
    """Session VWAP of the typical price (h+l+c)/3, reset when day_id changes.

    While a session has traded no volume yet (index data often has none) it is the
    session's running mean typical price, so it is always defined.
    """
    size = close.shape[0]
    out = np.empty(size, dtype=np.float64)
    pv = 0.0
    vol = 0.0
    tp_sum = 0.0
    count = 0
    for i in range(size):
        if i == 0 or day_id[i] != day_id[i - 1]:
            pv = 0.0
            vol = 0.0
            tp_sum = 0.0
            count = 0
        tp = (high[i] + low[i] + close[i]) / 3.0
        v = volume[i]
        if v > 0.0:
            pv += tp * v
            vol += v
        tp_sum += tp
        count += 1
        out[i] = pv / vol if vol > 0.0 else tp_sum / count
    return out
