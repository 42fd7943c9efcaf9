"""Overfitting statistics of an optimization: deflated Sharpe, PBO by CSCV, parameter stability.

* Probabilistic Sharpe ratio (Bailey & Lopez de Prado 2012): PSR(SR*) = Phi((SR - SR*)
  sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2)) with SR the per-period Sharpe ratio
  of T returns, g3 their skewness and g4 their (non-excess, normal = 3) kurtosis.
* Deflated Sharpe ratio (Bailey & Lopez de Prado 2014): the PSR against the Sharpe ratio
  expected from the best of N unskilled trials, SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N)
  + gamma Phi^-1(1 - 1/(N e))), V the variance of the trials' Sharpe ratios, gamma the
  Euler-Mascheroni constant. N should be the number of effectively independent trials;
  the trial count is an upper bound (DSR is then conservative).
* Probability of backtest overfitting (Bailey, Borwein, Lopez de Prado & Zhu 2017) by
  combinatorially symmetric cross-validation: the T x N matrix of per-period trial returns
  is cut into S contiguous row blocks (sizes differ by at most one, `np.array_split`);
  for each of the C(S, S/2) ways to pick half the blocks as in-sample (IS, the rest
  out-of-sample, OOS) the IS-best trial n* is found (lowest index on ties), its OOS
  relative rank w = rank / (N + 1) (rank 1 = worst, ties averaged) gives the logit
  l = ln(w / (1 - w)), and PBO = share of combinations with l <= 0. Performance is the
  per-period Sharpe ratio (ddof = 1; a zero-variance part counts as the worst) or the
  mean return.
* Parameter stability (this project's definition): with g = the objective oriented so
  larger is better, neighbours of the best point are the evaluated trials within `radius`
  lattice steps of it in every numeric parameter (a continuous range counts as 20 steps)
  with the same bool/choice values; infeasible neighbours count with the worst feasible
  g. score = (mean g of the neighbours - median g of all feasible trials) / (g of the best
  - that median): 1 when the neighbourhood is as good as the best point, 0 when it is no
  better than a typical trial, negative when worse. A sharp, isolated peak (overfit)
  scores low; a plateau scores near 1.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numba
import numpy as np

from engine.optim.driver import Trial
from engine.optim.objectives import Objective
from engine.optim.pbo_nb import cscv_nb
from engine.optim.space import SearchSpace
from engine.optim.types import OptimInputError
from engine.sweep import launch_guard  # parallel launches of a process take turns

__all__ = [
    "EULER_GAMMA",
    "DeflatedSharpe",
    "PBOResult",
    "Stability",
    "deflated_sharpe_of_trials",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "parameter_stability",
    "pbo_cscv",
    "pbo_from_blocks",
    "probabilistic_sharpe_ratio",
]

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


def expected_max_sharpe(n_trials: float, sharpe_variance: float, mean: float = 0.0) -> float:
    """Expected maximum Sharpe ratio of `n_trials` unskilled trials (same units as input)."""
    if n_trials < 1 or sharpe_variance < 0:
        raise OptimInputError("n_trials", "need n_trials >= 1 and a non-negative variance")
    if n_trials == 1:
        return float(mean)
    z = (1 - EULER_GAMMA) * _N.inv_cdf(1 - 1 / n_trials) + EULER_GAMMA * _N.inv_cdf(
        1 - 1 / (n_trials * math.e)
    )
    return float(mean + math.sqrt(sharpe_variance) * z)


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0
) -> float | None:
    """P(true Sharpe > benchmark); per-period Sharpe ratios, non-excess kurtosis.

    None when undefined (fewer than 2 observations or a non-positive variance term).
    """
    if n_obs < 2:
        return None
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if not var > 0:
        return None
    return float(_N.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var)))


@dataclass(frozen=True)
class DeflatedSharpe:
    """The DSR and its inputs (Sharpe ratios in the caller's units: annualized if
    `periods_per_year` was given)."""

    dsr: float | None
    sharpe: float
    expected_max_sharpe: float
    n_trials: float
    sharpe_variance: float
    n_obs: int
    skew: float
    kurtosis: float


def deflated_sharpe_ratio(
    sharpe: float,
    *,
    n_obs: int,
    trial_sharpes: Sequence[float] | np.ndarray | None = None,
    n_trials: float | None = None,
    sharpe_variance: float | None = None,
    skew: float = 0.0,
    kurtosis: float = 3.0,
    periods_per_year: float = 1.0,
) -> DeflatedSharpe:
    """DSR of the chosen trial's `sharpe` over `n_obs` returns.

    Give the trial log's Sharpe ratios as `trial_sharpes` (NaN ignored; N = their count,
    V = their variance, ddof = 1) or `n_trials` and `sharpe_variance` directly (either
    overrides what the log gives). Sharpe ratios are annualized with `periods_per_year`
    (the engine's `sharpe` metric uses bars_per_year); 1 means per period. `kurtosis` is
    non-excess (engine.analysis reports excess kurtosis: add 3).
    """
    if trial_sharpes is not None:
        s = np.asarray(trial_sharpes, dtype=np.float64)
        s = s[np.isfinite(s)]
        if n_trials is None:
            n_trials = float(len(s))
        if sharpe_variance is None:
            sharpe_variance = float(np.var(s, ddof=1)) if len(s) > 1 else 0.0
    if n_trials is None or sharpe_variance is None:
        raise OptimInputError("trial_sharpes", "give trial_sharpes, or n_trials and sharpe_variance")
    if not periods_per_year > 0:
        raise OptimInputError("periods_per_year", "periods_per_year must be positive")
    root = math.sqrt(periods_per_year)
    sr0 = expected_max_sharpe(n_trials, sharpe_variance / periods_per_year)
    dsr = probabilistic_sharpe_ratio(sharpe / root, sr0, n_obs, skew, kurtosis)
    return DeflatedSharpe(dsr, float(sharpe), sr0 * root, float(n_trials), float(sharpe_variance),
                          int(n_obs), float(skew), float(kurtosis))


def deflated_sharpe_of_trials(
    trials: Sequence[Trial],
    best: Trial,
    *,
    n_obs: int,
    skew: float = 0.0,
    kurtosis: float = 3.0,
    metric: str = "sharpe",
) -> DeflatedSharpe | None:
    """DSR of `best` against every trial of the log (their `metric`, NaN/None ignored).

    Engine Sharpe ratios are annualized with the trial's `bars_per_year` metric, which is
    used to de-annualize. `n_obs` = bar returns of the run (bars - 1); skew and
    (non-excess) kurtosis of the best trial's bar returns come from its full re-run.
    None when the best trial's Sharpe ratio is undefined.
    """
    sr = best.metrics.get(metric)
    if sr is None:
        return None
    bpy = best.metrics.get("bars_per_year") or 1.0
    values = [t.metrics.get(metric) for t in trials]
    sharpes = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return deflated_sharpe_ratio(float(sr), n_obs=n_obs, trial_sharpes=sharpes, skew=skew,
                                 kurtosis=kurtosis, periods_per_year=float(bpy))


# -- probability of backtest overfitting ------------------------------------------------


@dataclass(frozen=True)
class PBOResult:
    """PBO and the distribution behind it (one entry per CSCV combination)."""

    pbo: float
    logits: np.ndarray
    is_performance: np.ndarray  # of the IS-best trial, per combination
    oos_performance: np.ndarray  # of the same trial out of sample
    n_splits: int
    prob_oos_loss: float  # share of combinations where the IS-best loses out of sample
    degradation_slope: float | None  # OLS of OOS on IS performance of the IS-best
    metric: str


def _combinations(n_splits: int) -> np.ndarray:
    """Every choice of n_splits / 2 blocks as IS, in lexicographic order [C, n_splits / 2]
    (`cscv_nb` pairs row i with its complement, row C - 1 - i)."""
    rows = list(itertools.combinations(range(n_splits), n_splits // 2))
    return np.array(rows, dtype=np.int64).reshape(len(rows), n_splits // 2)


def pbo_from_blocks(
    counts: np.ndarray, sums: np.ndarray, sumsqs: np.ndarray, *, metric: str = "sharpe",
    shift: np.ndarray | None = None,
) -> PBOResult:
    """PBO from per-block sufficient statistics: counts [S], sums and sums of squares [S, N].

    `shift` [N] is a constant already subtracted from each trial's returns before summing
    (for precision); it is added back to the means. The combinations run in the compiled
    `engine.optim.pbo_nb.cscv_nb` (parallel, GIL released): ~0.4 s of CPU in all for
    N = 10,000 and S = 16 (bench/pbo_bench.py).
    """
    # fresh writable copies (cheap): a read-only input would compile a second kernel
    counts = np.array(counts, dtype=np.float64)
    sums = np.array(sums, dtype=np.float64, order="C")
    sumsqs = np.array(sumsqs, dtype=np.float64, order="C")
    if metric not in ("sharpe", "mean"):
        raise OptimInputError("metric", f"metric must be 'sharpe' or 'mean', got {metric!r}")
    if sums.ndim != 2 or sumsqs.shape != sums.shape or counts.shape != sums.shape[:1]:
        raise OptimInputError("sums", "need counts [S] and sums, sumsqs [S, N] of one shape")
    n_splits, n_trials = sums.shape
    if n_splits < 2 or n_splits % 2 or n_trials < 2:
        raise OptimInputError("n_splits", "need an even number of splits >= 2 and >= 2 trials")
    sh = np.zeros(n_trials) if shift is None else np.array(shift, dtype=np.float64)
    if sh.shape != (n_trials,):
        raise OptimInputError("shift", f"shift must hold one value per trial ({n_trials})")
    combos = _combinations(n_splits)
    with launch_guard():
        is_best, oos_best, less, equal = cscv_nb(counts, sums, sumsqs, sh, combos,
                                                 metric == "sharpe", 4 * numba.get_num_threads())
    rank = less + (equal + 1) / 2.0
    w = rank / (n_trials + 1)
    logits = np.log(w / (1 - w))
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


def pbo_cscv(returns: np.ndarray, n_splits: int = 16, *, metric: str = "sharpe") -> PBOResult:
    """PBO of a T x N matrix of per-period returns (one column per trial)."""
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2:
        raise OptimInputError("returns", "returns must be a T x N matrix (one column per trial)")
    if n_splits < 2 or n_splits % 2:
        raise OptimInputError("n_splits", f"n_splits must be even and >= 2, got {n_splits}")
    if m.shape[0] < 2 * n_splits:
        raise OptimInputError("returns", f"need at least {2 * n_splits} rows for {n_splits} splits")
    if not np.all(np.isfinite(m)):
        raise OptimInputError("returns", "returns must be finite")
    shift = m.mean(axis=0)
    centred = m - shift
    blocks = np.array_split(np.arange(m.shape[0]), n_splits)
    counts = np.array([len(b) for b in blocks], dtype=np.float64)
    sums = np.stack([centred[b].sum(axis=0) for b in blocks])
    sumsqs = np.stack([(centred[b] ** 2).sum(axis=0) for b in blocks])
    return pbo_from_blocks(counts, sums, sumsqs, metric=metric, shift=shift)


# -- parameter stability ----------------------------------------------------------------


@dataclass(frozen=True)
class Stability:
    """The stability score and its parts (objective values in natural units)."""

    score: float | None
    best_value: float
    neighbour_mean: float | None
    neighbour_worst: float | None
    median_value: float
    n_neighbours: int
    n_infeasible_neighbours: int
    relative_drop: float | None  # (best - neighbour mean) / |best|, oriented: > 0 is worse
    radius: float


def parameter_stability(
    space: SearchSpace,
    trials: Sequence[Trial],
    objective: Objective,
    *,
    index: int = 0,
    best: Trial | None = None,
    radius: float = 1.0,
) -> Stability | None:
    """Stability of `best` (default: the best feasible trial) on objective `index`.

    None when no trial is feasible.
    """
    sign = objective.sign
    feas = [t for t in trials if t.feasible and t.values[index] is not None]
    if not feas:
        return None
    g = np.array([sign * float(t.values[index] or 0.0) for t in feas])
    if best is None:
        best = feas[int(np.argmax(g))]
    if best.values[index] is None:
        raise OptimInputError("best", "the chosen trial has no value for this objective")
    g_best = sign * float(best.values[index] or 0.0)
    worst = float(g.min())
    coords = space.coords([t.params for t in trials])
    centre = space.coords([best.params])[0]
    numeric = np.array([p.numeric for p in space.params])
    diff = np.abs(coords - centre)
    near = np.all(np.where(numeric, diff <= radius + 1e-9, diff == 0), axis=1)
    me = space.key(best.params)
    vals, n_bad = [], 0
    for t, ok in zip(trials, near, strict=True):
        if not ok or space.key(t.params) == me:
            continue
        v = t.values[index]
        if t.feasible and v is not None:
            vals.append(sign * float(v))
        else:
            vals.append(worst)
            n_bad += 1
    median = float(np.median(g))
    mean = float(np.mean(vals)) if vals else None
    score: float | None = None
    if mean is not None:
        edge = g_best - median
        if edge > 0:
            score = (mean - median) / edge
        elif edge == 0 and mean == g_best:
            score = 1.0
    drop = (g_best - mean) / abs(g_best) if mean is not None and g_best != 0 else None
    return Stability(
        score=score,
        best_value=sign * g_best,
        neighbour_mean=sign * mean if mean is not None else None,
        neighbour_worst=sign * min(vals) if vals else None,
        median_value=sign * median,
        n_neighbours=len(vals),
        n_infeasible_neighbours=n_bad,
        relative_drop=drop,
        radius=radius,
    )
