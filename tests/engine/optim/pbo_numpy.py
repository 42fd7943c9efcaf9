"""The numpy CSCV that `engine.optim.overfit.pbo_from_blocks` used before its numba kernel:
kept as the slow reference the kernel is tested against (and timed by bench/pbo_bench.py).

Every chunk of combinations becomes [combinations x trials] matrices; the IS sums come
from a matrix product (BLAS decides the order of the additions).
"""

from __future__ import annotations

import itertools

import numpy as np

from engine.optim.overfit import PBOResult


def _perf(n: np.ndarray, s: np.ndarray, q: np.ndarray, shift: np.ndarray, metric: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        mean = s / n
        if metric == "mean":
            out = mean + shift
        else:
            var = (q - n * mean * mean) / (n - 1)
            out = (mean + shift) / np.sqrt(np.maximum(var, 0.0))
            out[~(var > 0)] = np.nan
    return np.where(np.isfinite(out), out, -np.inf)


def pbo_from_blocks_numpy(
    counts: np.ndarray, sums: np.ndarray, sumsqs: np.ndarray, *, metric: str = "sharpe",
    shift: np.ndarray | None = None,
) -> PBOResult:
    """The former `pbo_from_blocks`, unchanged (input checks left out)."""
    counts = np.asarray(counts, dtype=np.float64)
    sums = np.asarray(sums, dtype=np.float64)
    sumsqs = np.asarray(sumsqs, dtype=np.float64)
    n_splits, n_trials = sums.shape
    sh = np.zeros(n_trials) if shift is None else np.asarray(shift, dtype=np.float64)
    combos = np.array(list(itertools.combinations(range(n_splits), n_splits // 2)))
    pick = np.zeros((len(combos), n_splits))
    pick[np.arange(len(combos))[:, None], combos] = 1.0
    tot_n, tot_s, tot_q = counts.sum(), sums.sum(axis=0), sumsqs.sum(axis=0)
    logits = np.empty(len(combos))
    is_best = np.empty(len(combos))
    oos_best = np.empty(len(combos))
    chunk = max(1, 4_000_000 // n_trials)
    for a in range(0, len(combos), chunk):
        p = pick[a : a + chunk]
        n_is = (p @ counts)[:, None]
        s_is, q_is = p @ sums, p @ sumsqs
        perf_is = _perf(n_is, s_is, q_is, sh, metric)
        perf_oos = _perf(tot_n - n_is, tot_s - s_is, tot_q - q_is, sh, metric)
        best = np.argmax(perf_is, axis=1)
        rows = np.arange(len(p))
        chosen = perf_oos[rows, best][:, None]
        less = (perf_oos < chosen).sum(axis=1)
        equal = (perf_oos == chosen).sum(axis=1)
        rank = less + (equal + 1) / 2.0
        w = rank / (n_trials + 1)
        logits[a : a + len(p)] = np.log(w / (1 - w))
        is_best[a : a + len(p)] = perf_is[rows, best]
        oos_best[a : a + len(p)] = chosen[:, 0]
    finite = np.isfinite(is_best) & np.isfinite(oos_best)
    slope = None
    if finite.sum() >= 2 and np.ptp(is_best[finite]) > 0:
        slope = float(np.polyfit(is_best[finite], oos_best[finite], 1)[0])
    return PBOResult(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        is_performance=is_best,
        oos_performance=oos_best,
        n_splits=n_splits,
        prob_oos_loss=float(np.mean(oos_best < 0)),
        degradation_slope=slope,
        metric=metric,
    )
