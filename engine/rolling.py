"""Rolling metrics of an equity curve: Sharpe, volatility, return and drawdown over a window.

The window is a number of bars (`200`, `"200"`) or a duration (`"30D"`, `"4h"`, `"15min"`,
`"2W"`, `"90s"`; days are calendar days). At bar i the window holds the bar returns
r_k = equity_k / equity_{k-1} - 1 of the last `w` bars (k = i-w+1 .. i), or of the bars
whose time is in (ts_i - duration, ts_i]; a value is defined once the data reaches a
whole window back (i >= w, or ts_i - ts_0 >= duration) and is NaN before that:

* sharpe = mean(r) / stdev(r, ddof=1) x sqrt(bars_per_year) (as `engine.metrics`);
* volatility_pct = stdev(r, ddof=1) x sqrt(bars_per_year) x 100;
* return_pct = (equity_i / equity_{k0-1} - 1) x 100, k0 the window's first return;
* drawdown_pct = the maximum drawdown INSIDE the window (peak and trough both in
  equity_{k0-1} .. equity_i), a positive percent (empyrical's roll_max_drawdown).

Kernels are O(n) whatever the window: sliding Welford updates recomputed exactly every
window length (so rounding cannot accumulate), and a two-stack sliding aggregate for the drawdown.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from engine.downsample import DEFAULT_POINTS, downsample_indices
from engine.errors import EngineInputError

__all__ = ["ROLLING_METRICS", "RollingResult", "Window", "parse_window", "rolling_metrics"]

ROLLING_METRICS = ("sharpe", "volatility", "return", "drawdown")
_UNITS_NS = {
    "s": 1_000_000_000, "sec": 1_000_000_000,
    "min": 60_000_000_000, "t": 60_000_000_000,
    "h": 3_600_000_000_000, "hr": 3_600_000_000_000,
    "d": 86_400_000_000_000, "day": 86_400_000_000_000, "days": 86_400_000_000_000,
    "w": 7 * 86_400_000_000_000, "wk": 7 * 86_400_000_000_000,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$")


@dataclass(frozen=True, slots=True)
class Window:
    """A rolling window: `bars` > 0 for a count of bars, else `ns` > 0 for a duration."""

    label: str
    bars: int = 0
    ns: int = 0


def parse_window(window: int | str) -> Window:
    """A Window from 200, "200", "30D", "4h", "15min", "2W" (EngineInputError otherwise)."""
    if isinstance(window, bool):
        raise EngineInputError(f"window must be a number of bars or a duration, got {window!r}")
    if isinstance(window, int | np.integer):
        if window < 2:
            raise EngineInputError(f"window must be at least 2 bars, got {window}")
        return Window(label=f"{int(window)} bars", bars=int(window))
    text = str(window).strip()
    if text.isdigit():
        return parse_window(int(text))
    m = _DURATION.match(text)
    unit = m.group(2).lower() if m else ""
    if unit == "m":
        raise EngineInputError(f"window {text!r}: 'm' is ambiguous; write 'min' for minutes")
    if not m or unit not in _UNITS_NS:
        raise EngineInputError(
            f"window {text!r} is neither a number of bars nor a duration such as "
            f"'30D', '4h', '15min', '2W' or '90s'")
    ns = int(float(m.group(1)) * _UNITS_NS[unit])
    if ns <= 0:
        raise EngineInputError(f"window {text!r} must be longer than zero")
    return Window(label=text, ns=ns)


@njit(nogil=True, cache=True)
def _rolling_stats_nb(
    rets: np.ndarray, lo: np.ndarray, valid: np.ndarray, ann: float
) -> tuple[np.ndarray, np.ndarray]:
    """(sharpe, volatility as a fraction) per bar; the window of bar i is rets[lo[i]-1 .. i-1].

    Welford's mean and sum of squared deviations, updated as returns enter and leave the
    window and recomputed exactly (two passes) after every window length of updates. A
    window of identical returns has a volatility of exactly 0 (and no Sharpe), found by
    counting value changes rather than trusting a rounding residue.
    """
    changes = np.zeros(rets.shape[0] + 1, dtype=np.int64)  # changes[k]: rets[1..k-1] vs prev
    for k in range(1, rets.shape[0]):
        changes[k + 1] = changes[k] + (rets[k] != rets[k - 1])
    n = lo.shape[0]
    sharpe = np.full(n, np.nan)
    vol = np.full(n, np.nan)
    a = 0  # current window covers returns [a, b)
    b = 0
    cnt = 0
    mean = 0.0
    m2 = 0.0
    bad = 0
    since = 0
    for i in range(1, n):
        na = lo[i] - 1
        while b < i:
            v = rets[b]
            if v == v:
                cnt += 1
                d = v - mean
                mean += d / cnt
                m2 += d * (v - mean)
            else:
                bad += 1
            b += 1
            since += 1
        while a < na:
            v = rets[a]
            if v != v:
                bad -= 1
            elif cnt == 1:
                cnt = 0
                mean = 0.0
                m2 = 0.0
            else:
                cnt -= 1
                d = v - mean
                mean -= d / cnt
                m2 -= d * (v - mean)
            a += 1
            since += 1
        if since > b - a:  # re-anchor: two exact passes over the window
            cnt = 0
            s = 0.0
            for k in range(a, b):
                if rets[k] == rets[k]:
                    s += rets[k]
                    cnt += 1
            mean = s / cnt if cnt > 0 else 0.0
            m2 = 0.0
            for k in range(a, b):
                if rets[k] == rets[k]:
                    m2 += (rets[k] - mean) * (rets[k] - mean)
            since = 0
        m = b - a
        if not valid[i] or bad > 0 or m < 2:
            continue
        if changes[b] - changes[a + 1] == 0:
            vol[i] = 0.0
            continue
        sd = math.sqrt(m2 / (m - 1)) if m2 > 0.0 else 0.0
        vol[i] = sd * ann
        if sd > 0.0:
            sharpe[i] = mean / sd * ann
    return sharpe, vol


@njit(nogil=True, cache=True)
def _rolling_drawdown_nb(equity: np.ndarray, lo: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Max drawdown (fraction) of equity[lo[i]-1 .. i] per bar, by a two-stack queue.

    A segment's aggregate is (max, min, mdd); joining an earlier A to a later B gives
    mdd = max(A.mdd, B.mdd, 1 - B.min / A.max). The front stack keeps suffix aggregates
    of the oldest elements, the back one the running aggregate of the newest: each
    element is moved once, so the whole pass is O(n).
    """
    n = equity.shape[0]
    out = np.full(n, np.nan)
    fmax = np.empty(n)
    fmin = np.empty(n)
    fdd = np.empty(n)
    head = 0  # window start (oldest equity point)
    split = 0  # front holds [head, split), back holds [split, tail]
    bmax = -np.inf
    bmin = np.inf
    bdd = 0.0
    tail = -1
    for i in range(n):
        # push equity[i] on the back
        e = equity[i]
        if tail < split:
            bmax = e
            bmin = e
            bdd = 0.0
        else:
            bdd = max(bdd, 1.0 - e / bmax)
            bmax = max(bmax, e)
            bmin = min(bmin, e)
        tail = i
        start = max(lo[i] - 1, 0)
        if start > head:
            head = start
        if head >= split:  # front empty: move the back into it as suffix aggregates
            split = tail + 1
            fmax[tail] = equity[tail]
            fmin[tail] = equity[tail]
            fdd[tail] = 0.0
            for k in range(tail - 1, head - 1, -1):
                v = equity[k]
                fdd[k] = max(fdd[k + 1], 1.0 - fmin[k + 1] / v)
                fmax[k] = max(v, fmax[k + 1])
                fmin[k] = min(v, fmin[k + 1])
            bmax = -np.inf
            bmin = np.inf
            bdd = 0.0
        if not valid[i]:
            continue
        if tail >= split:
            out[i] = max(max(fdd[head], bdd), 1.0 - bmin / fmax[head])
        else:
            out[i] = fdd[head]
    return out


def _bounds(ts: np.ndarray, w: Window) -> tuple[np.ndarray, np.ndarray]:
    """(lo, valid): index of the first return of each bar's window, and whether it is whole."""
    n = ts.shape[0]
    idx = np.arange(n, dtype=np.int64)
    if w.bars:
        lo = np.maximum(idx - w.bars + 1, 1)
        valid = idx >= w.bars
    else:
        lo = np.maximum(np.searchsorted(ts, ts - w.ns, side="right"), 1).astype(np.int64)
        valid = (ts - ts[0]) >= w.ns
    return lo, valid


@dataclass(frozen=True, slots=True)
class RollingResult:
    """Rolling series per bar (NaN where undefined), keyed by metric name."""

    window: Window
    ts: np.ndarray
    series: dict[str, np.ndarray]

    def to_dict(self, points: int | None = DEFAULT_POINTS) -> dict[str, Any]:
        """JSON-safe: {"window", "window_bars", "window_seconds", "series": {name: {"t", "v"}}},
        t in epoch ms UTC; each series downsampled to `points` (None: every defined bar)."""
        out: dict[str, Any] = {}
        for name, v in self.series.items():
            finite = np.flatnonzero(np.isfinite(v))
            idx = finite if points is None else downsample_indices(self.ts, v, points)
            out[name] = {"t": (self.ts[idx] // 1_000_000).tolist(), "v": v[idx].tolist()}
        return {
            "window": self.window.label,
            "window_bars": self.window.bars or None,
            "window_seconds": self.window.ns / 1e9 if self.window.ns else None,
            "series": out,
        }


def rolling_metrics(
    equity: np.ndarray,
    ts: np.ndarray,
    window: int | str | Window,
    *,
    bars_per_year: float,
    metrics: tuple[str, ...] | list[str] = ROLLING_METRICS,
) -> RollingResult:
    """Rolling `metrics` (any of sharpe, volatility, return, drawdown) over `window`."""
    unknown = [m for m in metrics if m not in ROLLING_METRICS]
    if unknown:
        raise EngineInputError(
            f"unknown rolling metric {unknown[0]!r}; expected one of {', '.join(ROLLING_METRICS)}")
    w = window if isinstance(window, Window) else parse_window(window)
    eq = np.ascontiguousarray(equity, dtype=np.float64)
    t = np.ascontiguousarray(ts, dtype=np.int64)
    if eq.shape != t.shape or eq.ndim != 1:
        raise EngineInputError(f"equity and ts must be 1-D of one length, got {eq.shape}, {t.shape}")
    lo, valid = _bounds(t, w)
    out: dict[str, np.ndarray] = {}
    if "sharpe" in metrics or "volatility" in metrics:
        prev = eq[:-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            rets = np.where(prev > 0.0, eq[1:] / prev - 1.0, np.nan)
        sharpe, vol = _rolling_stats_nb(rets, lo, valid, math.sqrt(bars_per_year))
        if "sharpe" in metrics:
            out["sharpe"] = sharpe
        if "volatility" in metrics:
            out["volatility"] = vol * 100.0
    if "return" in metrics:
        base = eq[lo - 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            ret = np.where(valid & (base > 0.0), (eq / base - 1.0) * 100.0, np.nan)
        out["return"] = ret
    if "drawdown" in metrics:
        out["drawdown"] = _rolling_drawdown_nb(eq, lo, valid) * 100.0
    return RollingResult(window=w, ts=t, series={m: out[m] for m in metrics})
