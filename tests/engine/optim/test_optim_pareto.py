"""The Pareto front is exactly the non-dominated set (property test against brute force)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.optim import pareto_front


def _brute(values: np.ndarray, signs: np.ndarray) -> list[int]:
    g = values * signs
    out = []
    for i in range(len(g)):
        if not np.all(np.isfinite(g[i])):
            continue
        dominated = False
        for j in range(len(g)):
            if j != i and np.all(np.isfinite(g[j])) and np.all(g[j] >= g[i]) and np.any(g[j] > g[i]):
                dominated = True
                break
        if not dominated:
            out.append(i)
    return out


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 40))
    k = draw(st.integers(1, 4))
    # few distinct values, so ties and duplicates are common
    cells = st.one_of(st.integers(-3, 3).map(float), st.just(np.nan))
    values = draw(arrays(np.float64, (n, k), elements=cells))
    signs = np.array(draw(st.lists(st.sampled_from([1.0, -1.0]), min_size=k, max_size=k)))
    return values, signs


@settings(max_examples=150, deadline=None)
@given(problems())
def test_front_is_the_non_dominated_set(problem: tuple[np.ndarray, np.ndarray]) -> None:
    values, signs = problem
    front = pareto_front(values, signs)
    assert front.tolist() == _brute(values, signs)
    g = values * signs
    for i in front:  # nothing on the front is dominated by any row
        assert not np.any(np.all(g >= g[i], axis=1) & np.any(g > g[i], axis=1))


def test_simple_front() -> None:
    v = np.array([[1.0, 5.0], [2.0, 4.0], [2.0, 5.0], [0.0, 9.0], [2.0, 5.0]])
    assert pareto_front(v).tolist() == [2, 3, 4]
    assert pareto_front(v, [-1, -1]).tolist() == [0, 1, 3]
    assert pareto_front(np.empty((0, 2))).tolist() == []
