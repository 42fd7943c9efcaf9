"""Chart-sized time series: min/max bucket downsampling that keeps every extreme.

A run over a million bars has a million equity points; a chart needs a few thousand.
Each bucket keeps its lowest and highest point (in time order), plus the first and
last point overall, so drawdowns and peaks survive the reduction exactly.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

MIN_POINTS = 2


def downsample_minmax(
    ts: npt.ArrayLike, values: npt.ArrayLike, points: int
) -> tuple[np.ndarray, np.ndarray]:
    """At most `points` (ts, value) pairs of the series, keeping each bucket's min and max."""
    t = np.asarray(ts)
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if points < MIN_POINTS:
        raise ValueError(f"points must be at least {MIN_POINTS}")
    if n <= points:
        return t, v
    n_buckets = (points - 2) // 2
    if n_buckets == 0:  # room for the two ends only
        return t[[0, n - 1]], v[[0, n - 1]]
    # Interior points only: the first and last point are always kept.
    edges = np.linspace(1, n - 1, n_buckets + 1).astype(np.int64)
    keep = [0]
    for lo, hi in itertools.pairwise(edges):
        if hi <= lo:
            continue
        chunk = v[lo:hi]
        a = lo + int(np.argmin(chunk))
        b = lo + int(np.argmax(chunk))
        keep.extend(sorted({a, b}))
    keep.append(n - 1)
    idx = np.unique(np.asarray(keep, dtype=np.int64))
    return t[idx], v[idx]


def equity_pairs(ts_ns: npt.ArrayLike, values: npt.ArrayLike) -> list[tuple[float, float]]:
    """(epoch ms, value) pairs from engine time (int64 ns)."""
    t = np.asarray(ts_ns, dtype=np.int64) // 1_000_000
    v = np.asarray(values, dtype=np.float64)
    return list(zip(t.astype(np.float64).tolist(), v.tolist(), strict=True))
