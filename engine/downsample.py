"""Extreme-preserving downsampling of long series for charts (MinMax-LTTB, via tsdownsample).

A million-bar equity curve needs a few thousand points on screen. MinMax-LTTB (Van Der
Donckt et al., 2023) pre-selects each bucket's min and max and then runs LTTB on them,
so the shape and the spikes survive. The algorithm alone does not promise to keep any
particular point, so the caller's must-keep indices (the equity peak, the maximum
drawdown's trough, ...) plus the first, last, global min and global max points are
added explicitly and the algorithm is asked for that many fewer points: the result never
exceeds `points`.

Non-finite values (a rolling metric's warm-up) are dropped before downsampling.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tsdownsample import MinMaxDownsampler, MinMaxLTTBDownsampler

from engine.errors import EngineInputError

__all__ = [
    "DEFAULT_POINTS",
    "MIN_POINTS",
    "check_points",
    "downsample",
    "downsample_indices",
    "minmax_indices",
]

DEFAULT_POINTS = 2000
MIN_POINTS = 8
MAX_POINTS = 100_000
_LTTB = MinMaxLTTBDownsampler()
_MINMAX = MinMaxDownsampler()


def check_points(points: int) -> int:
    """`points` as an int within [MIN_POINTS, MAX_POINTS], else EngineInputError."""
    if isinstance(points, bool) or not isinstance(points, int | np.integer):
        raise EngineInputError(f"points must be an integer, got {points!r}")
    if not MIN_POINTS <= int(points) <= MAX_POINTS:
        raise EngineInputError(
            f"points must be between {MIN_POINTS} and {MAX_POINTS}, got {points}"
        )
    return int(points)


def _must_keep(y: np.ndarray, keep: list[int]) -> np.ndarray:
    n = y.shape[0]
    extra = [k for k in keep if 0 <= k < n]
    base = [0, n - 1, int(np.argmax(y)), int(np.argmin(y))]
    return np.unique(np.asarray(base + extra, dtype=np.int64))


def downsample_indices(
    x: np.ndarray,
    y: np.ndarray,
    points: int = DEFAULT_POINTS,
    *,
    keep: Iterable[int] = (),
) -> np.ndarray:
    """Sorted int64 indices of at most `points` samples of y over increasing x.

    Always kept (when finite): the first and last point, the global min and max of y and
    every index in `keep`. Non-finite y values are never returned. All indices are kept
    when there are no more than `points` finite values.
    """
    points = check_points(points)
    keep = [int(k) for k in keep]
    x = np.ascontiguousarray(x)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise EngineInputError(f"x and y must be 1-D of one length, got {x.shape} and {y.shape}")
    finite = np.isfinite(y)
    if not finite.all():
        pos = np.flatnonzero(finite)
        at = np.searchsorted(pos, np.asarray(keep, dtype=np.int64))
        kept = [int(a) for a, k in zip(at.tolist(), keep, strict=True)
                if a < pos.shape[0] and pos[a] == k]
        return pos[downsample_indices(x[pos], y[pos], points, keep=kept)] if pos.size else pos
    n = y.shape[0]
    if n <= points:
        return np.arange(n, dtype=np.int64)
    must = _must_keep(y, keep)
    if must.shape[0] > points:  # more must-keep points than room: keep the extremes only
        must = _must_keep(y, [])
    n_out = points - must.shape[0]
    if n_out < 3:
        return must
    xs = x.astype(np.int64, copy=False) if x.dtype.kind in "iu" else x.astype(np.float64)
    picked = _LTTB.downsample(xs, y, n_out=n_out).astype(np.int64)
    return np.union1d(picked, must)


def downsample(
    x: np.ndarray,
    y: np.ndarray,
    points: int = DEFAULT_POINTS,
    *,
    keep: Iterable[int] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) reduced to at most `points` samples; see `downsample_indices`."""
    idx = downsample_indices(x, y, points, keep=keep)
    return np.asarray(x)[idx], np.asarray(y, dtype=np.float64)[idx]


def minmax_indices(values: np.ndarray, points: int = DEFAULT_POINTS) -> np.ndarray:
    """At most `points` indices of a sequence (e.g. trades in exit order): each of
    points/2 equal-count buckets keeps its smallest and largest value, so the global
    best and worst survive. All indices when there are no more than `points` values."""
    points = check_points(points)
    v = np.ascontiguousarray(values, dtype=np.float64)
    n = v.shape[0]
    if n <= points:
        return np.arange(n, dtype=np.int64)
    v = np.where(np.isfinite(v), v, 0.0)
    idx = _MINMAX.downsample(v, n_out=points - points % 2).astype(np.int64)
    return np.unique(idx)
