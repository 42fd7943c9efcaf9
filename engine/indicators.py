"""Numba indicator kernels: arrays in, preallocated float64 arrays out, NaN during warm-up.

Conventions (each kernel has a pandas or pure-Python twin in tests/engine/test_indicators.py):

* `ema_nb` is exactly pandas `ewm(span=n, adjust=False, min_periods=n).mean()`,
  including its NaN handling (NaNs count as elapsed time, not observations).
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
def ema_nb(x: np.ndarray, n: int) -> np.ndarray:
    """EMA with alpha = 2/(n+1) seeded at the first value: pandas ewm(span=n, adjust=False)."""
    if n < 1:
        raise ValueError("indicator period n must be >= 1")
    size = x.shape[0]
    out = np.empty(size, dtype=np.float64)
    if size == 0:
        return out
    # Same arithmetic as pandas' Cython ewm so results agree bit for bit.
    com = (n - 1) / 2.0
    alpha = 1.0 / (1.0 + com)
    old_wt_factor = 1.0 - alpha
    new_wt = alpha
    minp = max(n, 1)
    weighted = x[0]
    nobs = 1 if weighted == weighted else 0
    out[0] = weighted if nobs >= minp else np.nan
    old_wt = 1.0
    for i in range(1, size):
        cur = x[i]
        is_obs = cur == cur
        if is_obs:
            nobs += 1
        if weighted == weighted:
            old_wt *= old_wt_factor
            if is_obs:
                if weighted != cur:
                    if com == 1.0:
                        # pandas' special case for span=3 after gaps (irregular intervals)
                        new_wt = 1.0 - old_wt
                    weighted = old_wt * weighted + new_wt * cur
                    weighted /= old_wt + new_wt
                old_wt = 1.0
        elif is_obs:
            weighted = cur
        out[i] = weighted if nobs >= minp else np.nan
    return out


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
