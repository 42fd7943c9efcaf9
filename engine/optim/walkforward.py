"""Out-of-sample drivers: hold-out metrics for reported trials, and walk-forward analysis.

The caller owns the data: `evaluate(segment, param_sets)` returns metrics of param sets on
bars [segment.start, segment.stop) (e.g. `Strategy.sweep(bars.slice(...), ...)`), and
`run_segment(segment, params)` returns the (ts, equity) of one full run there. A strategy
starts flat at a segment's first bar, with its indicators warming up inside the segment,
as a live deployment restarted at that bar would.

Walk-forward: for each window an optimizer (built by `make_optimizer(window)`, typically
the same configuration with seed + window.index) runs on the train segment; its best trial
(`Optimizer.best()`: the first objective, chosen from the Pareto front when there are
several) is tested on the test segment. The test equity curves are chained into one
out-of-sample curve: window k's curve is scaled by (value so far / its first point), which
is exact because a run holds no position at its first bar's close. A window without a
feasible trial stays flat (in cash) over its test bars.

Walk-forward efficiency (Pardo): WFE = mean over windows of the out-of-sample annualized
return / mean over windows of the in-sample annualized return of the chosen trials, both
read from `return_metric` (default "cagr_pct"). It is None when the in-sample mean is not
positive (the ratio would have no meaning). Per window, efficiency = test / train.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.optim.driver import Optimizer, Trial, optimize
from engine.optim.types import Evaluate, Metrics, Params, clean_metric
from engine.optim.validation import Segment, Window

__all__ = [
    "WalkForwardResult",
    "WindowResult",
    "evaluate_out_of_sample",
    "reported_trials",
    "run_walk_forward",
    "walk_forward_efficiency",
]


def reported_trials(optimizer: Optimizer, top: int = 10) -> list[Trial]:
    """The trials a report shows: the `top` best feasible ones, plus the Pareto front."""
    out = {t.number: t for t in optimizer.ranked(top)}
    for t in optimizer.pareto() if len(optimizer.objectives) > 1 else []:
        out.setdefault(t.number, t)
    return [out[k] for k in sorted(out)]


def evaluate_out_of_sample(trials: Sequence[Trial], evaluate: Evaluate) -> None:
    """Fill `trial.oos_metrics` of `trials` with one call of `evaluate` on the OOS data."""
    if not trials:
        return
    metrics = evaluate([dict(t.params) for t in trials])
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in metrics.items()}
    for i, t in enumerate(trials):
        t.oos_metrics = {k: clean_metric(k, float(a[i])) for k, a in arrays.items()}


def walk_forward_efficiency(
    is_returns: Sequence[float | None], oos_returns: Sequence[float | None]
) -> float | None:
    """mean(oos) / mean(is) over windows with both defined; None if mean(is) <= 0."""
    pairs = [(a, b) for a, b in zip(is_returns, oos_returns, strict=True)
             if a is not None and b is not None]
    if not pairs:
        return None
    is_mean = float(np.mean([a for a, _ in pairs]))
    oos_mean = float(np.mean([b for _, b in pairs]))
    return oos_mean / is_mean if is_mean > 0 else None


@dataclass
class WindowResult:
    """One window: chosen parameters, their train and test metrics."""

    window: Window
    params: Params | None
    train_metrics: dict[str, float | int | None] | None
    test_metrics: dict[str, float | int | None] | None
    n_trials: int
    efficiency: float | None

    def to_dict(self, ts: np.ndarray | None = None) -> dict[str, Any]:
        return {
            "window": self.window.to_dict(ts),
            "params": self.params,
            "train_metrics": self.train_metrics,
            "test_metrics": self.test_metrics,
            "n_trials": self.n_trials,
            "efficiency": self.efficiency,
        }


@dataclass
class WalkForwardResult:
    """Per-window results, the stitched out-of-sample equity and the efficiency."""

    windows: list[WindowResult]
    ts: np.ndarray
    equity: np.ndarray
    efficiency: float | None
    is_mean_return: float | None
    oos_mean_return: float | None
    return_metric: str
    cancelled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def oos_return_pct(self) -> float | None:
        """Total return of the stitched out-of-sample curve, in percent."""
        if len(self.equity) < 1 or self.equity[0] == 0:
            return None
        return float((self.equity[-1] / self.equity[0] - 1.0) * 100.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (without the equity arrays)."""
        return {
            "windows": [w.to_dict() for w in self.windows],
            "efficiency": self.efficiency,
            "is_mean_return": self.is_mean_return,
            "oos_mean_return": self.oos_mean_return,
            "return_metric": self.return_metric,
            "oos_return_pct": self.oos_return_pct,
            "n_points": len(self.equity),
            "cancelled": self.cancelled,
        }


def run_walk_forward(
    windows: Sequence[Window],
    make_optimizer: Callable[[Window], Optimizer],
    evaluate: Callable[[Segment, list[Params]], Metrics],
    run_segment: Callable[[Segment, Params], tuple[np.ndarray, np.ndarray]],
    *,
    ts: np.ndarray | None = None,
    return_metric: str = "cagr_pct",
    on_window: Callable[[WindowResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> WalkForwardResult:
    """Optimize on each train window, test the choice on its test window, stitch, score.

    `ts` (all bars' times) lets a window without a feasible trial be shown flat; without
    it such windows are left out of the curve.
    """
    results: list[WindowResult] = []
    parts_ts: list[np.ndarray] = []
    parts_eq: list[np.ndarray] = []
    value: float | None = None
    flat_pending: list[Segment] = []
    cancelled = False
    for w in windows:
        if should_stop is not None and should_stop():
            cancelled = True
            break
        opt = make_optimizer(w)
        optimize(opt, lambda ps, seg=w.train: evaluate(seg, ps), should_stop=should_stop)
        best = opt.best()
        if best is None:
            res = WindowResult(w, None, None, None, len(opt.trials), None)
            flat_pending.append(w.test)
        else:
            test = evaluate(w.test, [dict(best.params)])
            test_metrics = {k: clean_metric(k, float(np.asarray(v)[0])) for k, v in test.items()}
            seg_ts, seg_eq = run_segment(w.test, dict(best.params))
            seg_eq = np.asarray(seg_eq, dtype=np.float64)
            if value is None:
                value = float(seg_eq[0])
            for seg in flat_pending:  # earlier windows with nothing chosen: flat in cash
                if ts is not None:
                    parts_ts.append(np.asarray(ts[seg.slice]))
                    parts_eq.append(np.full(len(seg), value))
            flat_pending = []
            scaled = seg_eq * (value / seg_eq[0]) if seg_eq[0] != 0 else seg_eq
            parts_ts.append(np.asarray(seg_ts))
            parts_eq.append(scaled)
            value = float(scaled[-1])
            tr, te = best.metrics.get(return_metric), test_metrics.get(return_metric)
            eff = (float(te) / float(tr)) if tr is not None and te is not None and tr > 0 else None
            res = WindowResult(w, dict(best.params), dict(best.metrics), test_metrics,
                               len(opt.trials), eff)
        results.append(res)
        if on_window is not None:
            on_window(res)
        if opt.stop_reason == "cancelled":
            cancelled = True
            break
    if ts is not None and value is not None:
        for seg in flat_pending:
            parts_ts.append(np.asarray(ts[seg.slice]))
            parts_eq.append(np.full(len(seg), value))
    chosen = [r for r in results if r.params is not None]
    is_r = [_num(r.train_metrics, return_metric) for r in chosen]
    oos_r = [_num(r.test_metrics, return_metric) for r in chosen]
    is_def = [x for x in is_r if x is not None]
    oos_def = [x for x in oos_r if x is not None]
    return WalkForwardResult(
        windows=results,
        ts=np.concatenate(parts_ts) if parts_ts else np.empty(0, dtype=np.int64),
        equity=np.concatenate(parts_eq) if parts_eq else np.empty(0),
        efficiency=walk_forward_efficiency(is_r, oos_r),
        is_mean_return=float(np.mean(is_def)) if is_def else None,
        oos_mean_return=float(np.mean(oos_def)) if oos_def else None,
        return_metric=return_metric,
        cancelled=cancelled,
    )


def _num(metrics: dict[str, float | int | None] | None, key: str) -> float | None:
    v = (metrics or {}).get(key)
    return None if v is None else float(v)
