"""The compiled CSCV (`pbo_from_blocks` via `engine.optim.pbo_nb`) against the former numpy
version (`pbo_numpy.py`) on inputs with ties, zero variances and undefined performances."""

from __future__ import annotations

import itertools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from engine.optim import OptimInputError
from engine.optim.overfit import _combinations, pbo_from_blocks
from engine.optim.pbo_nb import cscv_nb
from tests.engine.optim.pbo_numpy import pbo_from_blocks_numpy


def _blocks(r: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    parts = np.array_split(np.arange(r.shape[0]), s)
    counts = np.array([len(p) for p in parts], dtype=np.float64)
    return (counts, np.stack([r[p].sum(axis=0) for p in parts]),
            np.stack([(r[p] ** 2).sum(axis=0) for p in parts]))


def _awkward(rng: np.random.Generator, t: int, n: int, integer: bool) -> np.ndarray:
    """Returns [t, n] with duplicated trials, flat (zero-variance) trials, a trial that
    is flat after its first quarter (best in sample, undefined out of sample) and, when
    `integer`, values whose sums are exact, so distinct trials tie too."""
    r = (rng.integers(-3, 4, (t, n)).astype(np.float64) if integer
         else rng.normal(0.0004, 0.01, (t, n)) + rng.normal(0, 0.0004, n))
    r[:, 1] = r[:, 0]
    r[:, 4] = r[:, 2]
    r[:, 3] = 0.0
    r[:, n - 1] = 0.0
    r[:, 5] = 0.0
    r[: t // 4, 5] = 2.0 + np.arange(t // 4) % 2
    return r


def _same(got, want, exact: bool) -> None:  # type: ignore[no-untyped-def]
    assert got.pbo == want.pbo and got.n_splits == want.n_splits and got.metric == want.metric
    np.testing.assert_array_equal(got.logits, want.logits)  # same argmax and same ranks
    for a, b in ((got.is_performance, want.is_performance),
                 (got.oos_performance, want.oos_performance)):
        assert np.array_equal(np.isneginf(a), np.isneginf(b))
        if exact:
            np.testing.assert_array_equal(a, b)
        else:  # sums added in another order: last bits, so a hair of slack near zero
            scale = np.max(np.abs(b[np.isfinite(b)]), initial=0.0)
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13 * scale)
    assert got.prob_oos_loss == want.prob_oos_loss
    if want.degradation_slope is None:
        assert got.degradation_slope is None
    else:
        assert got.degradation_slope == pytest.approx(want.degradation_slope, rel=1e-9)


@pytest.mark.parametrize(("t", "n", "s", "metric", "integer"), [
    (160, 40, 16, "sharpe", True), (160, 40, 16, "mean", True), (90, 25, 6, "sharpe", True),
    (120, 300, 8, "sharpe", False), (120, 300, 8, "mean", False), (64, 30, 16, "sharpe", False),
    (20, 7, 2, "sharpe", False), (44, 9, 4, "mean", True),
])
def test_kernel_matches_the_numpy_version(t: int, n: int, s: int, metric: str,
                                          integer: bool) -> None:
    rng = np.random.default_rng(t * n + s)
    r = _awkward(rng, t, n, integer)
    counts, sums, sumsqs = _blocks(r, s)
    got = pbo_from_blocks(counts, sums, sumsqs, metric=metric)
    want = pbo_from_blocks_numpy(counts, sums, sumsqs, metric=metric)
    assert len(got.logits) == math.comb(s, s // 2)
    # integer returns: every sum is exact whatever the order of the additions, so bit for bit
    _same(got, want, exact=integer)
    if metric == "sharpe":
        assert np.isneginf(got.oos_performance).any()  # trial 5 went flat out of sample
    shift = rng.normal(0.001, 0.0005, n)
    _same(pbo_from_blocks(counts, sums, sumsqs, metric=metric, shift=shift),
          pbo_from_blocks_numpy(counts, sums, sumsqs, metric=metric, shift=shift), exact=integer)


def test_undefined_everywhere_and_nan_inputs() -> None:
    counts = np.array([5.0, 5.0, 1.0, 0.0])
    rng = np.random.default_rng(5)
    sums, sumsqs = rng.normal(0, 1, (4, 6)), rng.uniform(5, 6, (4, 6))
    sums[:, 2] = np.nan  # an undefined trial: -inf both ways
    sumsqs[:, 5] = 0.0  # a negative variance: -inf
    for metric in ("sharpe", "mean"):
        _same(pbo_from_blocks(counts, sums, sumsqs, metric=metric),
              pbo_from_blocks_numpy(counts, sums, sumsqs, metric=metric), exact=False)
    flat = pbo_from_blocks(counts, np.zeros((4, 6)), np.zeros((4, 6)))
    assert np.all(np.isneginf(flat.is_performance)) and np.all(np.isneginf(flat.oos_performance))
    assert flat.pbo == 1.0 and np.all(flat.logits == 0.0)  # all tied: rank (N + 1) / 2
    assert flat.degradation_slope is None and flat.prob_oos_loss == 1.0


def test_results_do_not_depend_on_the_chunking() -> None:
    rng = np.random.default_rng(11)
    counts, sums, sumsqs = _blocks(_awkward(rng, 200, 57, False), 10)
    combos = _combinations(10)
    runs = [cscv_nb(counts, sums, sumsqs, np.zeros(57), combos, True, k) for k in (1, 3, 126, 999)]
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            assert np.array_equal(a, b)


def test_concurrent_calls_from_threads() -> None:
    """Workers run PBO in threads; parallel launches share engine.sweep's lock where numba's
    threading layer needs it (its workqueue layer aborts the process otherwise)."""
    rng = np.random.default_rng(2)
    data = [_blocks(_awkward(rng, 96, 300, False), 12) for _ in range(4)]
    alone = [pbo_from_blocks(*d) for d in data]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda d: pbo_from_blocks(*d), data * 2))
    for got, want in zip(together, alone * 2, strict=True):
        _same(got, want, exact=True)


def test_combinations_pair_with_their_complements() -> None:
    for s in (2, 4, 8, 16):
        combos = _combinations(s)
        assert [tuple(c) for c in combos] == list(itertools.combinations(range(s), s // 2))
        for i in range(len(combos)):
            assert set(combos[i]) | set(combos[-1 - i]) == set(range(s))


def test_bad_shapes_are_refused() -> None:
    counts, sums = np.ones(4), np.ones((4, 3))
    with pytest.raises(OptimInputError, match="sums"):
        pbo_from_blocks(counts[:3], sums, sums)
    with pytest.raises(OptimInputError, match="sums"):
        pbo_from_blocks(counts, sums, sums[:, :2])
    with pytest.raises(OptimInputError, match="shift"):
        pbo_from_blocks(counts, sums, sums, shift=np.zeros(2))
    with pytest.raises(OptimInputError, match="metric"):
        pbo_from_blocks(counts, sums, sums, metric="sortino")
    with pytest.raises(OptimInputError, match="splits"):
        pbo_from_blocks(np.ones(3), np.ones((3, 3)), np.ones((3, 3)))
