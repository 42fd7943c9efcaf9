"""Comparison of N runs: metrics side by side, equity rebased to 100, return correlations.

Runs may come from different strategies and datasets. The common time axis is the
INTERSECTION of the runs' spans (latest start .. earliest end) sampled at the UNION of
their bar times inside it: rebasing to 100 only means something from one common start,
and the union keeps every run's own detail when bar sizes differ (a minute run next
to a daily one). Each curve is read as of each axis time (its last bar at or before
it: no look-ahead) and divided by its value at the common start.

Correlations are Pearson correlations of returns sampled on the bar times of the
COARSEST run inside the common span (the one with the fewest bars there), so a daily
run is compared with a minute run on daily returns rather than on minute returns that
are mostly zero for the daily one. Runs on the same bars simply use those bars.

When the spans do not overlap there is no axis: `overlap` is False, `message` names
the runs that do not meet, and the metrics are still compared side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.analysis import json_safe, safe_list
from engine.analysis_periods import iso_local
from engine.downsample import DEFAULT_POINTS, downsample_indices
from engine.errors import EngineInputError

__all__ = ["COMPARE_METRICS", "CompareRun", "Comparison", "compare_runs"]

COMPARE_METRICS = ("total_return_pct", "cagr_pct", "sharpe", "sortino", "calmar",
                   "volatility_pct", "max_drawdown_pct", "max_drawdown_duration_days",
                   "win_rate", "profit_factor", "expectancy", "n_trades", "exposure_pct",
                   "final_equity")
LOWER_IS_BETTER = frozenset({"volatility_pct", "max_drawdown_pct", "max_drawdown_duration_days"})
MAX_RUNS = 50


@dataclass(frozen=True, slots=True)
class CompareRun:
    """One run to compare: its equity per bar (int64 ns UTC times) and stored metrics."""

    id: str
    ts: np.ndarray
    equity: np.ndarray
    metrics: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None
    tz: str = "UTC"

    @property
    def name(self) -> str:
        """The label, or the id when there is none."""
        return self.label or self.id


@dataclass(frozen=True, slots=True)
class Comparison:
    """The result of compare_runs; `to_dict(points)` is the JSON answer."""

    runs: tuple[CompareRun, ...]
    overlap: bool
    message: str | None
    start: int | None
    end: int | None
    ts: np.ndarray  # the common axis (empty without overlap)
    rebased: np.ndarray  # (n_runs, len(ts)), NaN where a run cannot be rebased
    correlation: np.ndarray | None
    correlation_points: int
    metric_keys: tuple[str, ...]

    @property
    def tz(self) -> str:
        """Display time zone: the first run's."""
        return self.runs[0].tz

    def metrics_table(self) -> list[dict[str, Any]]:
        """[{"metric", "values" (one per run), "best" (index of the best run or None)}]."""
        rows = []
        for key in self.metric_keys:
            values = json_safe([r.metrics.get(key) for r in self.runs])
            nums = [(v, i) for i, v in enumerate(values) if isinstance(v, int | float)]
            best = None
            if len(nums) > 1 and key not in ("n_trades", "final_equity"):
                pick = min if key in LOWER_IS_BETTER else max
                best = pick(nums)[1]
            rows.append({"metric": key, "values": values, "best": best})
        return rows

    def to_dict(self, points: int | None = DEFAULT_POINTS) -> dict[str, Any]:
        """JSON-safe comparison; each rebased curve downsampled to `points` (None: all)."""
        curves: list[dict[str, Any] | None] = []
        for k in range(len(self.runs)):
            v = self.rebased[k] if self.overlap else np.zeros(0)
            if not self.overlap or not np.isfinite(v).any():
                curves.append(None)
                continue
            idx = (np.flatnonzero(np.isfinite(v)) if points is None
                   else downsample_indices(self.ts, v, points))
            curves.append({"t": (self.ts[idx] // 1_000_000).tolist(), "v": safe_list(v[idx])})
        runs = []
        for k, r in enumerate(self.runs):
            last = self.rebased[k, -1] if self.overlap else np.nan
            runs.append({
                "id": r.id, "label": r.name, "tz": r.tz, "n_bars": int(r.ts.shape[0]),
                "start": iso_local(int(r.ts[0]), r.tz), "end": iso_local(int(r.ts[-1]), r.tz),
                "overlap_return_pct": last - 100.0,
            })
        corr = None if self.correlation is None else self.correlation.tolist()
        out = json_safe({
            "overlap": self.overlap,
            "message": self.message,
            "tz": self.tz,
            "start": iso_local(self.start, self.tz) if self.start is not None else None,
            "end": iso_local(self.end, self.tz) if self.end is not None else None,
            "axis": "union of the runs' bar times within the intersection of their spans",
            "n_points": int(self.ts.shape[0]),
            "runs": runs,
            "metrics": self.metrics_table(),
            "correlation": corr,
            "correlation_points": self.correlation_points,
        })
        out["equity"] = curves  # already JSON-safe; kept out of the recursive pass (speed)
        return out


def _check(runs: Sequence[CompareRun]) -> list[CompareRun]:
    if not 1 <= len(runs) <= MAX_RUNS:
        raise EngineInputError(f"compare needs 1 to {MAX_RUNS} runs, got {len(runs)}")
    out = []
    for r in runs:
        ts = np.ascontiguousarray(r.ts, dtype=np.int64)
        eq = np.ascontiguousarray(r.equity, dtype=np.float64)
        if ts.ndim != 1 or ts.shape != eq.shape or ts.shape[0] == 0:
            raise EngineInputError(f"run {r.id}: equity and ts must be non-empty and of one length")
        out.append(CompareRun(r.id, ts, eq, dict(r.metrics), r.label, r.tz))
    return out


def _asof(r: CompareRun, grid: np.ndarray) -> np.ndarray:
    """Each run's equity as of each grid time (its last bar at or before it)."""
    j = np.searchsorted(r.ts, grid, side="right") - 1
    return r.equity[np.maximum(j, 0)]


def _corr(rows: np.ndarray) -> np.ndarray | None:
    """Pearson correlation matrix of return rows; NaN where a row has no variance."""
    if rows.shape[1] < 3:
        return None
    c = rows - rows.mean(axis=1, keepdims=True)
    ss = np.sqrt(np.einsum("ij,ij->i", c, c))
    with np.errstate(divide="ignore", invalid="ignore"):
        m = (c @ c.T) / np.outer(ss, ss)
    m[~np.isfinite(m)] = np.nan
    np.fill_diagonal(m, np.where(ss > 0, 1.0, np.nan))
    return np.clip(m, -1.0, 1.0)


def _no_overlap(runs: list[CompareRun], keys: tuple[str, ...]) -> Comparison:
    late = max(range(len(runs)), key=lambda k: runs[k].ts[0])
    early = min(range(len(runs)), key=lambda k: runs[k].ts[-1])
    a, b = runs[early], runs[late]
    msg = (f"runs do not overlap in time: {a.name} ends {iso_local(int(a.ts[-1]), a.tz)} "
           f"before {b.name} starts {iso_local(int(b.ts[0]), b.tz)}")
    return Comparison(tuple(runs), False, msg, None, None, np.zeros(0, dtype=np.int64),
                      np.zeros((len(runs), 0)), None, 0, keys)


def compare_runs(
    runs: Sequence[CompareRun], *, metric_keys: Sequence[str] = COMPARE_METRICS
) -> Comparison:
    """Compare runs on a common time axis (see the module docstring for the rules)."""
    rs = _check(runs)
    keys = tuple(metric_keys)
    lo = max(int(r.ts[0]) for r in rs)
    hi = min(int(r.ts[-1]) for r in rs)
    if lo > hi:
        return _no_overlap(rs, keys)
    inside = [r.ts[np.searchsorted(r.ts, lo, "left"):np.searchsorted(r.ts, hi, "right")]
              for r in rs]
    first = inside[0]
    if all(x.shape == first.shape and np.array_equal(x, first) for x in inside[1:]):
        grid = first
    else:
        grid = np.unique(np.concatenate(inside))
    values = np.vstack([_asof(r, grid) for r in rs])
    base = values[:, :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rebased = np.where(base > 0, values / base * 100.0, np.nan)
    coarse = min(inside, key=lambda x: x.shape[0])
    sample = np.vstack([_asof(r, coarse) for r in rs]) if coarse.shape[0] >= 3 else None
    corr = None
    if sample is not None and (sample[:, :-1] > 0).all():
        corr = _corr(sample[:, 1:] / sample[:, :-1] - 1.0)
    msg = None if grid.shape[0] >= 2 else "the runs overlap in a single instant"
    return Comparison(tuple(rs), True, msg, lo, hi, grid, rebased, corr,
                      0 if sample is None else int(sample.shape[1] - 1), keys)
