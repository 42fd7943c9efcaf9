"""Deflated Sharpe (published example), PBO (slow reference) and the stability score."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from engine.optim import OptimInputError, Optimizer, SearchSpace, optimize
from engine.optim.overfit import (
    deflated_sharpe_of_trials,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    parameter_stability,
    pbo_cscv,
    probabilistic_sharpe_ratio,
)


def test_deflated_sharpe_matches_the_published_example() -> None:
    # Bailey & Lopez de Prado (2014), section "A numerical example": annualized SR 2.5 over
    # 5 years of daily returns (T = 1250), N = 100 trials with V[SR] = 1/2 (annualized),
    # skewness -3, kurtosis 10: E[max SR] = 0.1132 (daily) and DSR = 0.9004.
    out = deflated_sharpe_ratio(2.5, n_obs=1250, n_trials=100, sharpe_variance=0.5, skew=-3,
                                kurtosis=10, periods_per_year=250)
    assert out.expected_max_sharpe / math.sqrt(250) == pytest.approx(0.1132, abs=5e-5)
    assert out.dsr == pytest.approx(0.9004, abs=5e-5)


def test_psr_against_the_2012_formula_with_scipy() -> None:
    rng = np.random.default_rng(3)
    r = rng.standard_t(5, 700) * 0.01 + 0.001
    sr = r.mean() / r.std(ddof=1)
    g3, g4 = stats.skew(r), stats.kurtosis(r, fisher=False)
    for bench in (0.0, 0.05, 0.2):
        sigma = math.sqrt((1 + 0.5 * sr**2 - g3 * sr + (g4 - 3) / 4 * sr**2) / (len(r) - 1))
        expected = stats.norm.cdf((sr - bench) / sigma)
        assert probabilistic_sharpe_ratio(sr, bench, len(r), g3, g4) == pytest.approx(
            expected, rel=1e-12)
    assert probabilistic_sharpe_ratio(0.1, 0.0, 1) is None


def test_deflated_sharpe_from_a_trial_log() -> None:
    trial_sharpes = np.array([0.4, 1.1, np.nan, -0.3, 0.9, 1.6])
    out = deflated_sharpe_ratio(1.6, n_obs=500, trial_sharpes=trial_sharpes,
                                periods_per_year=252)
    finite = trial_sharpes[np.isfinite(trial_sharpes)]
    assert out.n_trials == 5 and out.sharpe_variance == pytest.approx(np.var(finite, ddof=1))
    sr0 = expected_max_sharpe(5, np.var(finite, ddof=1) / 252)
    assert out.expected_max_sharpe == pytest.approx(sr0 * math.sqrt(252))
    assert out.dsr == pytest.approx(
        probabilistic_sharpe_ratio(1.6 / math.sqrt(252), sr0, 500))
    assert expected_max_sharpe(1, 0.3) == 0.0
    assert expected_max_sharpe(1000, 1.0) > expected_max_sharpe(10, 1.0) > 0
    with pytest.raises(OptimInputError):
        deflated_sharpe_ratio(1.0, n_obs=100)


def _reference_pbo(m: np.ndarray, s: int, metric: str) -> tuple[float, np.ndarray]:
    """Slow, direct CSCV: build every IS/OOS submatrix and rank with scipy."""
    blocks = np.array_split(np.arange(m.shape[0]), s)
    n = m.shape[1]
    logits = []
    for combo in itertools.combinations(range(s), s // 2):
        rest = [j for j in range(s) if j not in combo]
        ins = m[np.concatenate([blocks[j] for j in combo])]
        oos = m[np.concatenate([blocks[j] for j in rest])]

        def perf(x: np.ndarray) -> np.ndarray:
            return x.mean(axis=0) if metric == "mean" else x.mean(axis=0) / x.std(axis=0, ddof=1)

        best = int(np.argmax(perf(ins)))
        rank = stats.rankdata(perf(oos), method="average")[best]
        w = rank / (n + 1)
        logits.append(math.log(w / (1 - w)))
    arr = np.array(logits)
    return float(np.mean(arr <= 0)), arr


@pytest.mark.parametrize(("t", "n", "s", "metric"), [
    (64, 7, 8, "sharpe"), (70, 6, 8, "sharpe"), (48, 9, 6, "mean"), (40, 4, 4, "sharpe"),
])
def test_pbo_matches_a_slow_reference(t: int, n: int, s: int, metric: str) -> None:
    rng = np.random.default_rng(t + n)
    m = rng.normal(0.0005, 0.01, (t, n)) + rng.normal(0, 0.0005, n)
    got = pbo_cscv(m, s, metric=metric)
    pbo, logits = _reference_pbo(m, s, metric)
    assert len(got.logits) == math.comb(s, s // 2)
    np.testing.assert_allclose(got.logits, logits, rtol=1e-12, atol=1e-12)
    assert got.pbo == pbo


def test_pbo_extremes() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, (800, 40))
    assert 0.2 < pbo_cscv(noise, 16).pbo < 0.8  # skill-free trials: a coin flip
    skilled = noise.copy()
    skilled[:, 0] = noise.max(axis=1) + 0.001  # best in every period
    res = pbo_cscv(skilled, 8)
    assert res.pbo == 0.0 and np.all(res.logits > 0)
    assert res.prob_oos_loss == 0.0
    with pytest.raises(OptimInputError, match="even"):
        pbo_cscv(noise, 5)


def _grid_trials(f):  # type: ignore[no-untyped-def]
    space = SearchSpace.from_schema([
        {"name": "a", "type": "int", "min": 0, "max": 20, "step": 1, "default": 0},
        {"name": "b", "type": "int", "min": 0, "max": 20, "step": 1, "default": 0},
    ])
    res = optimize(Optimizer(space, "sharpe", "grid"), lambda ps: {"sharpe": np.array(
        [f(p["a"], p["b"]) for p in ps])})
    return space, res


def test_stability_separates_plateaus_from_spikes() -> None:
    space, plateau = _grid_trials(lambda a, b: 1.0 - 0.001 * ((a - 10) ** 2 + (b - 10) ** 2))
    st = parameter_stability(space, plateau.trials, plateau.objectives[0])
    assert st is not None and st.n_neighbours == 8 and st.best_value == 1.0
    assert st.score is not None and st.score > 0.95
    rng = np.random.default_rng(0)
    bumps = rng.normal(0, 0.1, (21, 21))
    space, spike = _grid_trials(lambda a, b: 5.0 if (a, b) == (10, 10) else float(bumps[a, b]))
    st = parameter_stability(space, spike.trials, spike.objectives[0])
    assert st is not None and st.score is not None and abs(st.score) < 0.1
    assert st.relative_drop is not None and st.relative_drop > 0.9
    wide = parameter_stability(space, spike.trials, spike.objectives[0], radius=2)
    assert wide is not None and wide.n_neighbours == 24
    corner = next(t for t in plateau.trials if t.params == {"a": 0, "b": 0})
    edge = parameter_stability(space, plateau.trials, plateau.objectives[0], best=corner)
    assert edge is not None and edge.n_neighbours == 3


def test_deflated_sharpe_of_a_trial_log() -> None:
    _, res = _grid_trials(lambda a, b: 0.1 * a - 0.05 * b)
    for t in res.trials:
        t.metrics["bars_per_year"] = 252.0
    best = res.best
    assert best is not None
    out = deflated_sharpe_of_trials(res.trials, best, n_obs=999, skew=-0.5, kurtosis=5.0)
    sharpes = [t.metrics["sharpe"] for t in res.trials]
    assert out == deflated_sharpe_ratio(best.metrics["sharpe"], n_obs=999, trial_sharpes=sharpes,
                                        skew=-0.5, kurtosis=5.0, periods_per_year=252.0)
    assert out is not None and out.n_trials == 441
