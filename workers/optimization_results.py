"""What a finished optimization stores beyond its trial log: the PBO of the trial log and the
walk-forward outcome (per-window results, stitched out-of-sample equity, efficiency).

PBO: a batch job asks `Strategy.sweep(..., blocks=PBO_SPLITS)` for each parameter set's
per-bar equity-return count / sum / sum of squares in `PBO_SPLITS` contiguous blocks of the
searched bars and stores them compressed in its batch row (`pack_blocks`); at the end they
are reassembled by trial number and `engine.optim.overfit.pbo_from_blocks` runs over the
feasible trials (counts of the first, sums transposed to [S, N]; at most `PBO_MAX_TRIALS`).

Walk-forward: the coordinator's finished per-window optimizers are handed to
`engine.optim.walkforward.run_walk_forward` (their searches are over, so it only picks each
window's best trial, tests it on the test bars and stitches the curves), which keeps one
definition of the choice, the stitching and the efficiency for the service, the CLI and
the tests. All of this is CPU work: callers run it in a thread.
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.backtest import run_backtest
from engine.bars import Bars
from engine.downsample import downsample
from engine.optim import Optimizer
from engine.optim.overfit import deflated_sharpe_of_trials, parameter_stability, pbo_from_blocks
from engine.optim.validation import Segment
from engine.optim.walkforward import run_walk_forward
from engine.options import EngineOptions
from strategies.base import Strategy, merge_engine_options
from workers.optimization_plan import Plan, windows_of

__all__ = ["PBO_SPLITS", "STORED_POINTS", "pack_blocks", "pbo_of", "sweep_blocks",
           "trial_statistics", "unpack_blocks", "walk_forward_outcome", "walk_forward_summary"]

PBO_SPLITS = 16
PBO_MAX_TRIALS = 20_000
"""CSCV ranks every trial in each of C(16, 8) = 12,870 combinations (compiled and parallel:
~0.4 s of CPU for 10,000 trials, bench/pbo_bench.py): beyond this many feasible trials an
even spread of them (by trial number) is used, and the result says how many."""
STORED_POINTS = 5000
"""Points of the stitched out-of-sample equity kept; `equity(points)` thins them further."""
BLOCK_KEYS = ("block_n", "block_sum", "block_sumsq")


def trial_statistics(opt: Optimizer, n_bars: int) -> dict[str, Any]:
    """The deflated Sharpe of `opt`'s best trial over its whole trial log and its parameter
    stability (`{}` without a best trial); a statistic that cannot be computed is stored
    as `{"error": ...}` instead of sinking the optimization."""
    best = opt.best()
    if best is None:
        return {}
    out: dict[str, Any] = {}
    try:
        out["deflated_sharpe"] = deflated_sharpe_of_trials(opt.trials, best,
                                                           n_obs=max(n_bars - 1, 2))
    except Exception as exc:
        out["deflated_sharpe"] = {"error": str(exc)}
    try:
        out["stability"] = parameter_stability(opt.space, opt.trials, opt.objectives[0])
    except Exception as exc:
        out["stability"] = {"error": str(exc)}
    return out


def sweep_blocks(cls: type[Strategy]) -> bool:
    """Whether the strategy's sweep takes `blocks=` (the per-block return sums; a sweep
    that takes **kwargs is given it too, and a result without the keys stores no blocks)."""
    try:
        params = inspect.signature(cls.sweep).parameters
    except (TypeError, ValueError):
        return False
    return "blocks" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def pack_blocks(metrics: dict[str, Any]) -> bytes | None:
    """The sweep's block arrays as zlib-compressed float64 [3, n_sets, S] (None if absent)."""
    if not all(k in metrics for k in BLOCK_KEYS):
        return None
    arr = np.stack([np.asarray(metrics[k], dtype=np.float64) for k in BLOCK_KEYS])
    head = np.asarray(arr.shape, dtype=np.int64).tobytes()
    return zlib.compress(head + np.ascontiguousarray(arr).tobytes(), 1)


def unpack_blocks(data: bytes) -> np.ndarray:
    raw = zlib.decompress(data)
    shape = tuple(int(x) for x in np.frombuffer(raw[:24], dtype=np.int64))
    return np.frombuffer(raw[24:], dtype=np.float64).reshape(shape)


def pbo_of(opt: Optimizer, batches: Sequence[Any]) -> dict[str, Any] | None:
    """PBO over the feasible trials of `opt` from stored batches (rows with `number`,
    `first_trial`, `blocks`); None when blocks are missing or < 2 trials are feasible."""
    feasible = [t for t in opt.trials if t.feasible]
    if len(feasible) < 2:
        return None
    by_trial: dict[int, tuple[np.ndarray, int]] = {}
    for b in batches:
        if b.blocks is None:
            continue
        arr = unpack_blocks(b.blocks)
        for i in range(arr.shape[1]):
            by_trial[int(b.first_trial) + i] = (arr, i)
    if any(t.number not in by_trial for t in feasible):
        return None
    n_feasible = len(feasible)
    if n_feasible > PBO_MAX_TRIALS:
        pick = np.unique(np.linspace(0, n_feasible - 1, PBO_MAX_TRIALS).round().astype(int))
        feasible = [feasible[i] for i in pick]
    cols = [by_trial[t.number][0][:, by_trial[t.number][1], :] for t in feasible]
    counts = cols[0][0]
    sums = np.stack([c[1] for c in cols], axis=1)
    sumsqs = np.stack([c[2] for c in cols], axis=1)
    res = pbo_from_blocks(counts, sums, sumsqs)
    return {"pbo": res.pbo, "n_splits": res.n_splits, "n_trials": len(feasible),
            "n_feasible": n_feasible, "prob_oos_loss": res.prob_oos_loss, "degradation_slope": res.degradation_slope,
            "metric": res.metric}


def _run_segment(cls: type[Strategy], bars: Bars, options: EngineOptions):  # type: ignore[no-untyped-def]
    def run(seg: Segment, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        part = bars.slice(seg.start, seg.stop)
        valid = cls.validate_params(params)
        opts = options
        if cls.engine_overrides(valid):
            explicit = options.model_dump(include=options.model_fields_set)
            opts = EngineOptions.model_validate(merge_engine_options(cls, valid, explicit))
        res = run_backtest(part, cls(**valid).signals(part), opts)
        return res.ts, res.equity
    return run


def _iso(ns: int, tz: str) -> str:
    return pd.Timestamp(int(ns), tz="UTC").tz_convert(tz).isoformat()


def _span(bars: Bars, seg: Segment) -> dict[str, Any]:
    """Bars [start_bar, stop_bar) and the times of their first and last bar (ISO, in the
    dataset's time zone)."""
    return {"start_bar": seg.start, "stop_bar": seg.stop, "bars": len(seg),
            "start": _iso(int(bars.ts[seg.start]), bars.tz),
            "end": _iso(int(bars.ts[seg.stop - 1]), bars.tz)}


def walk_forward_outcome(plan: Plan, cls: type[Strategy], bars: Bars,
                         options: EngineOptions) -> dict[str, Any]:
    """Test each window's chosen trial, stitch and score (stored as `walk_forward`)."""
    windows = windows_of(plan.validation)

    def evaluate(seg: Segment, ps: list[dict[str, Any]]) -> Any:
        return cls.sweep(bars.slice(seg.start, seg.stop), ps, options)

    res = run_walk_forward(windows, lambda w: plan.parts[w.index].opt, evaluate,
                           _run_segment(cls, bars, options), ts=bars.ts)
    out = walk_forward_summary(plan, bars)
    for row, wr in zip(out["windows"], res.windows, strict=False):
        part = plan.parts[wr.window.index]
        best = part.opt.best()
        row.update(params=wr.params, in_sample=wr.train_metrics, out_of_sample=wr.test_metrics,
                   efficiency=wr.efficiency,
                   trial=None if best is None else part.offset + best.number,
                   **trial_statistics(part.opt, len(part.search)))
    eq_ts, eq = res.ts, res.equity
    if len(eq) > STORED_POINTS:
        eq_ts, eq = downsample(eq_ts, eq, STORED_POINTS)
    out.update(efficiency=res.efficiency, is_mean_return=res.is_mean_return,
               oos_mean_return=res.oos_mean_return, return_metric=res.return_metric,
               oos_return_pct=res.oos_return_pct, tested=True,
               equity={"ts": [int(t) // 1_000_000 for t in eq_ts],
                       "values": [float(v) for v in eq]})
    return out


def walk_forward_summary(plan: Plan, bars: Bars) -> dict[str, Any]:
    """Windows' spans and trial counts only (a cancelled optimization: nothing tested)."""
    rows = []
    for w, part in zip(windows_of(plan.validation), plan.parts, strict=True):
        rows.append({"index": w.index, "train": _span(bars, w.train), "test": _span(bars, w.test),
                     "n_trials": len(part.opt.trials), "params": None, "in_sample": None,
                     "out_of_sample": None, "efficiency": None, "trial": None})
    return {"windows": rows, "efficiency": None, "is_mean_return": None,
            "oos_mean_return": None, "return_metric": "cagr_pct", "oos_return_pct": None,
            "tested": False, "equity": {"ts": [], "values": []}}
