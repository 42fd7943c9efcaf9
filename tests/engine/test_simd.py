"""The vector lane sums (engine/simd_nb.py) against plain per-lane Python loops, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from engine.simd_nb import dev_keep4, div_dev_keep4, sum_sq4
from engine.simulate_nb import _run_end_nb


@njit(cache=True)
def _dev_keep(x: np.ndarray, i0: int, i1: int, shift: float, cut: float, s: np.ndarray,
              q: np.ndarray, d: np.ndarray, ev: np.ndarray, od: np.ndarray,
              cnt: np.ndarray) -> None:
    dev_keep4(x, i0, i1, shift, cut, s, q, d, ev, od, cnt)


@njit(cache=True)
def _sum_sq(x: np.ndarray, i0: int, i1: int, s: np.ndarray, q: np.ndarray) -> None:
    sum_sq4(x, i0, i1, s, q)


def _reference(x: np.ndarray, i0: int, i1: int, shift: float, cut: float,
               start: np.ndarray) -> tuple[list[float], ...]:
    s, q, d = list(start[0]), list(start[1]), list(start[2])
    ev: list[float] = []
    od: list[float] = []
    for k in range(i0, i1):
        r = float(x[k])
        lane = (k - i0) % 4
        s[lane] += r
        q[lane] += (r - shift) * (r - shift)
        d[lane] += r * r if r < 0.0 else 0.0
        if r <= cut:
            (ev if lane % 2 == 0 else od).append(r)
    return s, q, d, ev, od


@pytest.mark.parametrize("cut", [-np.inf, -1.5e-3, 0.0, np.inf])
@pytest.mark.parametrize(("n", "i0"), [(0, 0), (4, 0), (1001, 3), (40_000, 8)])
def test_dev_keep4_equals_per_lane_loop(n: int, i0: int, cut: float) -> None:
    rng = np.random.default_rng(n + i0)
    x = rng.standard_t(3, n) * 1e-3
    i1 = i0 + max(n - i0, 0) // 4 * 4
    start = rng.normal(0, 1e-2, (3, 4))  # sums carried over from earlier chunks
    s, q, d = (start[j].copy() for j in range(3))
    ev = np.full(n + 4, np.nan)
    od = np.full(n + 4, np.nan)
    cnt = np.array([2, 1], dtype=np.int64)  # values kept before
    _dev_keep(x, i0, i1, 1e-5, cut, s, q, d, ev, od, cnt)
    rs, rq, rd, rev, rod = _reference(x, i0, i1, 1e-5, cut, start)
    assert s.tolist() == rs and q.tolist() == rq and d.tolist() == rd
    assert cnt.tolist() == [2 + len(rev), 1 + len(rod)]
    assert ev[2 : cnt[0]].tolist() == rev and od[1 : cnt[1]].tolist() == rod
    assert np.isnan(ev[:2]).all() and np.isnan(ev[cnt[0]:]).all() and np.isnan(od[cnt[1]:]).all()


@njit(cache=True)
def _div_dev_keep(e: np.ndarray, i0: int, i1: int, shift: float, cut: float, r: np.ndarray,
                  s: np.ndarray, q: np.ndarray, d: np.ndarray, ev: np.ndarray, od: np.ndarray,
                  cnt: np.ndarray) -> None:
    div_dev_keep4(e, i0, i1, shift, cut, r, s, q, d, ev, od, cnt)


@pytest.mark.parametrize("cut", [-np.inf, -1.5e-3, np.inf])
@pytest.mark.parametrize(("n", "i0"), [(0, 0), (4, 0), (1001, 3), (40_000, 8)])
def test_div_dev_keep4_divides_then_sums_as_dev_keep4(n: int, i0: int, cut: float) -> None:
    rng = np.random.default_rng(n + i0 + 1)
    e = 1e5 * np.exp(np.cumsum(rng.standard_t(3, n + 1) * 1e-3))  # an equity curve
    i1 = i0 + max(n - i0, 0) // 4 * 4
    r = np.full(n, np.nan)
    start = rng.normal(0, 1e-2, (3, 4))
    s, q, d = (start[j].copy() for j in range(3))
    ev = np.full(n + 4, np.nan)
    od = np.full(n + 4, np.nan)
    cnt = np.array([2, 1], dtype=np.int64)
    _div_dev_keep(e, i0, i1, 1e-5, cut, r, s, q, d, ev, od, cnt)
    x = np.array([e[k + 1] / e[k] - 1.0 for k in range(n)])  # Python floats: the reference
    assert r[i0:i1].tolist() == x[i0:i1].tolist() and np.isnan(r[:i0]).all()
    assert np.isnan(r[i1:]).all()
    rs, rq, rd, rev, rod = _reference(x, i0, i1, 1e-5, cut, start)
    assert s.tolist() == rs and q.tolist() == rq and d.tolist() == rd
    assert cnt.tolist() == [2 + len(rev), 1 + len(rod)]
    assert ev[2 : cnt[0]].tolist() == rev and od[1 : cnt[1]].tolist() == rod


@pytest.mark.parametrize(("n", "i0"), [(0, 0), (8, 4), (99_999, 1)])
def test_sum_sq4_equals_per_lane_loop(n: int, i0: int) -> None:
    x = np.random.default_rng(n).normal(0, 1e-3, n)
    i1 = i0 + max(n - i0, 0) // 4 * 4
    s = np.array([0.5, -0.25, 0.0, 1.0])
    q = np.array([0.0, 1e-6, 2e-6, 0.0])
    rs, rq = s.tolist(), q.tolist()
    for k in range(i0, i1):
        rs[(k - i0) % 4] += float(x[k])
        rq[(k - i0) % 4] += float(x[k]) * float(x[k])
    _sum_sq(x, i0, i1, s, q)
    assert s.tolist() == rs and q.tolist() == rq


def test_non_contiguous_input_is_refused_at_compile_time() -> None:
    x = np.zeros(16)[::2]
    with pytest.raises(Exception, match="sum_sq4"):
        _sum_sq(x, 0, 8, np.zeros(4), np.zeros(4))


@njit(cache=True)
def _run_end(sig: np.ndarray, start: int, end: int, raw: int) -> int:
    return _run_end_nb(sig, start, end, raw)


def test_run_end_compares_words_as_bytes() -> None:
    # The simulator skips held bars to the next change of signal 16 at a time (two
    # 8-byte words against raw's byte repeated): every raw value, run lengths around the
    # word and block sizes, starts and ends anywhere.
    rng = np.random.default_rng(11)
    for _ in range(3000):
        values = rng.choice(np.array([-128, -2, -1, 0, 1, 2, 127], dtype=np.int8), 40)
        sig = np.repeat(values, rng.integers(1, 40, 40))[: int(rng.integers(2, 400))]
        start = int(rng.integers(1, sig.size))
        end = int(rng.integers(start, sig.size + 1))
        raw = int(sig[start - 1])
        k = start
        while k < end and sig[k - 1] == raw:  # the definition, bar by bar
            k += 1
        assert _run_end(sig, start, end, raw) == k
