"""Compiled CSCV core of the probability of backtest overfitting (`engine.optim.overfit`).

One pass per pair of complementary combinations, no [combinations x trials] matrices.
Combinations are in lexicographic order, where combination C-1-i is the complement of
combination i, so pair i (the half holding block 0) with C-1-i: each side's count, sum
and sum of squares per trial are the sequential sums of its block rows in block order,
and each side's performance is both combination i's in-sample (IS) performance and
combination C-1-i's out-of-sample (OOS) one, and the other way round. Consecutive
combinations share prefixes, so each side keeps the partial sums of its prefix and redoes
only the levels that changed (the sums are the same whatever the chunking, so results
do not depend on the thread count). Per combination: the IS argmax (lowest index on
ties), its IS and OOS performance and the counts of trials below / level with it out of
sample, from which the caller takes rank = less + (equal + 1) / 2.

The former numpy version (tests/engine/optim/pbo_numpy.py) summed the IS blocks by a
matrix product (the order of the additions is up to the BLAS kernel and even changes with
the matrix's shape) and took OOS = total - IS, so its sums, and so its performances, can
differ from these in the last bits (exact bit equality with it is impossible: it does not
even agree with itself across BLAS builds); the performance arithmetic on the sums, the
tie rules and the ranks are the same.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(nogil=True, cache=True, error_model="numpy")
def perf_nb(n: float, s: float, q: float, shift: float, sharpe: bool) -> float:
    """Per-period Sharpe ratio (ddof = 1) or mean, of n returns with sum s and sum of
    squares q after subtracting shift; -inf when not finite or when the variance is not
    positive."""
    mean = s / n
    if sharpe:
        var = (q - n * mean * mean) / (n - 1.0)
        v = (mean + shift) / np.sqrt(var)
        ok = (var > 0.0) & (np.abs(v) < np.inf)
    else:
        v = mean + shift
        ok = np.abs(v) < np.inf
    return v if ok else -np.inf


@njit(nogil=True, cache=True, error_model="numpy")
def _side_nb(combo: np.ndarray, prev: np.ndarray, fresh: bool, counts: np.ndarray,
             sums: np.ndarray, sumsqs: np.ndarray, shift: np.ndarray, sharpe: bool,
             ps: np.ndarray, pq: np.ndarray, pn: np.ndarray, out: np.ndarray) -> None:
    """Performance of every trial over the blocks of `combo` into `out`. ps/pq/pn level k
    hold the sums over its first k + 1 blocks (levels 0..h-2); only the levels past the
    prefix shared with `prev` (the previous combination on this side) are redone, all of
    them when `fresh`."""
    h = combo.shape[0]
    n_trials = sums.shape[1]
    d = 0
    if not fresh:
        while d < h - 1 and combo[d] == prev[d]:
            d += 1
    for lvl in range(d, h - 1):
        b = combo[lvl]
        if lvl == 0:
            pn[0] = counts[b]
            for j in range(n_trials):
                ps[0, j] = sums[b, j]
                pq[0, j] = sumsqs[b, j]
        else:
            pn[lvl] = pn[lvl - 1] + counts[b]
            for j in range(n_trials):
                ps[lvl, j] = ps[lvl - 1, j] + sums[b, j]
                pq[lvl, j] = pq[lvl - 1, j] + sumsqs[b, j]
    b = combo[h - 1]
    if h == 1:
        for j in range(n_trials):
            out[j] = perf_nb(counts[b], sums[b, j], sumsqs[b, j], shift[j], sharpe)
    else:
        n = pn[h - 2] + counts[b]
        for j in range(n_trials):
            out[j] = perf_nb(n, ps[h - 2, j] + sums[b, j], pq[h - 2, j] + sumsqs[b, j],
                             shift[j], sharpe)


@njit(nogil=True, cache=True, error_model="numpy")
def _max_nb(x: np.ndarray) -> float:
    """Largest value of x (which holds no NaN), in four independent lanes (a single
    running maximum is one long dependency chain)."""
    n = x.shape[0]
    a0 = a1 = a2 = a3 = x[0]
    m = n - n % 4
    for j in range(0, m, 4):
        v0, v1, v2, v3 = x[j], x[j + 1], x[j + 2], x[j + 3]
        a0 = v0 if v0 > a0 else a0
        a1 = v1 if v1 > a1 else a1
        a2 = v2 if v2 > a2 else a2
        a3 = v3 if v3 > a3 else a3
    for j in range(m, n):
        a0 = x[j] if x[j] > a0 else a0
    a0 = a1 if a1 > a0 else a0
    a2 = a3 if a3 > a2 else a2
    return a2 if a2 > a0 else a0


@njit(nogil=True, cache=True, error_model="numpy")
def _score_nb(perf_is: np.ndarray, perf_oos: np.ndarray, c: int, is_best: np.ndarray,
              oos_best: np.ndarray, less: np.ndarray, equal: np.ndarray) -> None:
    """Combination c's IS-best trial (first maximum) and its standing out of sample."""
    top = _max_nb(perf_is)
    best = 0
    while perf_is[best] != top:  # the first maximum (+0 and -0 count as one, as in argmax)
        best += 1
    top = perf_is[best]
    chosen = perf_oos[best]
    lo = 0
    eq = 0
    for j in range(perf_oos.shape[0]):
        lo += perf_oos[j] < chosen
        eq += perf_oos[j] == chosen
    is_best[c] = top
    oos_best[c] = chosen
    less[c] = lo
    equal[c] = eq


@njit(nogil=True, cache=True, parallel=True, error_model="numpy")
def cscv_nb(counts: np.ndarray, sums: np.ndarray, sumsqs: np.ndarray, shift: np.ndarray,
            combos: np.ndarray, sharpe: bool, n_chunks: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per combination (rows of `combos` [C, S/2]: every choice of S/2 of the S blocks as
    IS, in lexicographic order): the IS-best trial's IS and OOS performance and the
    numbers of trials whose OOS performance is below / equal to its own (itself
    included). `n_chunks` contiguous runs of the C/2 pairs go to the threads."""
    n_trials = sums.shape[1]
    n_combos, h = combos.shape
    n_pairs = n_combos // 2
    is_best = np.empty(n_combos)
    oos_best = np.empty(n_combos)
    less = np.zeros(n_combos, dtype=np.int64)
    equal = np.zeros(n_combos, dtype=np.int64)
    n_chunks = max(1, min(n_chunks, n_pairs))
    levels = max(h - 1, 1)
    for k in prange(n_chunks):
        first = k * n_pairs // n_chunks
        stop = (k + 1) * n_pairs // n_chunks
        ps_a = np.empty((levels, n_trials))
        pq_a = np.empty((levels, n_trials))
        pn_a = np.zeros(levels)
        ps_b = np.empty((levels, n_trials))
        pq_b = np.empty((levels, n_trials))
        pn_b = np.zeros(levels)
        perf_a = np.empty(n_trials)
        perf_b = np.empty(n_trials)
        for i in range(first, stop):
            c = n_combos - 1 - i
            fresh = i == first
            _side_nb(combos[i], combos[i if fresh else i - 1], fresh, counts, sums, sumsqs,
                     shift, sharpe, ps_a, pq_a, pn_a, perf_a)
            _side_nb(combos[c], combos[c if fresh else c + 1], fresh, counts, sums, sumsqs,
                     shift, sharpe, ps_b, pq_b, pn_b, perf_b)
            _score_nb(perf_a, perf_b, i, is_best, oos_best, less, equal)
            _score_nb(perf_b, perf_a, c, is_best, oos_best, less, equal)
    return is_best, oos_best, less, equal
