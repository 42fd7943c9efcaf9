"""Hold-out metrics for reported trials and the walk-forward driver on a real strategy."""

from __future__ import annotations

import numpy as np
import pytest

from engine.backtest import run_backtest
from engine.bars import Bars
from engine.optim import Optimizer, SearchSpace, optimize
from engine.optim.validation import Segment, holdout_split, walk_forward_windows
from engine.optim.walkforward import (
    evaluate_out_of_sample,
    reported_trials,
    run_walk_forward,
    walk_forward_efficiency,
)
from engine.options import EngineOptions
from strategies.classic import EmaCrossover
from tests.engine.reference import random_bars

OPTS = EngineOptions(commission_pct=0.02)


@pytest.fixture(scope="module")
def bars() -> Bars:
    return random_bars(np.random.default_rng(9), 1500, per_day=25, gap=0.002)


def _space() -> SearchSpace:
    return SearchSpace.from_schema(
        EmaCrossover.params_schema(), {"fast": "2:12:2", "slow": "10:40:10", "long_only": False},
        ["fast < slow"],
    )


def _run(bars: Bars, seg: Segment, params: dict):  # type: ignore[no-untyped-def]
    part = bars.slice(seg.start, seg.stop)
    return run_backtest(part, EmaCrossover(**params).signals(part), OPTS)


def test_holdout_reports_out_of_sample_metrics(bars: Bars) -> None:
    ins, oos = holdout_split(bars.ts, fraction=0.7)
    opt = Optimizer(_space(), ["sharpe", "-max_drawdown_pct"], "grid")
    optimize(opt, lambda ps: EmaCrossover.sweep(bars.slice(ins.start, ins.stop), ps, OPTS))
    shown = reported_trials(opt, top=3)
    ranked = opt.ranked(3)
    assert {t.number for t in ranked} <= {t.number for t in shown}
    assert {t.number for t in opt.pareto()} <= {t.number for t in shown}
    evaluate_out_of_sample(
        shown, lambda ps: EmaCrossover.sweep(bars.slice(oos.start, oos.stop), ps, OPTS))
    for t in shown:
        assert t.oos_metrics == _run(bars, oos, t.params).metrics
        assert t.metrics == _run(bars, ins, t.params).metrics
        assert t.to_dict()["oos_metrics"] == t.oos_metrics


def test_walk_forward_chooses_tests_and_stitches(bars: Bars) -> None:
    windows = walk_forward_windows(bars.ts, 500, 200)
    assert [(w.test.start, w.test.stop) for w in windows] == [
        (500, 700), (700, 900), (900, 1100), (1100, 1300), (1300, 1500)]
    seen: list[int] = []
    res = run_walk_forward(
        windows,
        lambda w: Optimizer(_space(), "sharpe", "grid", result_constraints=["n_trades >= 1"]),
        lambda seg, ps: EmaCrossover.sweep(bars.slice(seg.start, seg.stop), ps, OPTS),
        lambda seg, p: (lambda r: (r.ts, r.equity))(_run(bars, seg, p)),
        ts=bars.ts,
        on_window=lambda r: seen.append(r.window.index),
    )
    assert seen == [0, 1, 2, 3, 4]
    assert len(res.equity) == 1000 and np.array_equal(res.ts, bars.ts[500:1500])
    for k, wr in enumerate(res.windows):
        w = windows[k]
        grid = optimize(Optimizer(_space(), "sharpe", "grid", result_constraints=["n_trades >= 1"]),
                        lambda ps, w=w: EmaCrossover.sweep(bars.slice(w.train.start, w.train.stop),
                                                           ps, OPTS))
        assert grid.best is not None and wr.params == grid.best.params
        test_run = _run(bars, w.test, wr.params)
        assert wr.test_metrics == test_run.metrics
        part = res.equity[200 * k : 200 * (k + 1)]
        np.testing.assert_allclose(part / part[0], test_run.equity / test_run.equity[0],
                                   rtol=1e-12)
        if k:
            assert part[0] == res.equity[200 * k - 1]  # chained: each piece starts where the last ended
    is_r = [wr.train_metrics["cagr_pct"] for wr in res.windows]
    oos_r = [wr.test_metrics["cagr_pct"] for wr in res.windows]
    assert res.efficiency == walk_forward_efficiency(is_r, oos_r)
    if res.efficiency is not None:
        assert res.efficiency == pytest.approx(np.mean(oos_r) / np.mean(is_r))
    assert res.oos_return_pct == pytest.approx((res.equity[-1] / res.equity[0] - 1) * 100)
    assert len(res.to_dict()["windows"]) == 5


def test_windows_without_a_feasible_trial_stay_flat(bars: Bars) -> None:
    windows = walk_forward_windows(bars.ts, 500, 500)  # two windows

    def make(w):  # type: ignore[no-untyped-def]
        rule = "n_trades >= 0" if w.index == 1 else "n_trades >= 100000"
        return Optimizer(_space(), "sharpe", "grid", result_constraints=[rule])

    res = run_walk_forward(
        windows, make,
        lambda seg, ps: EmaCrossover.sweep(bars.slice(seg.start, seg.stop), ps, OPTS),
        lambda seg, p: (lambda r: (r.ts, r.equity))(_run(bars, seg, p)),
        ts=bars.ts,
    )
    assert res.windows[0].params is None and res.windows[1].params is not None
    assert len(res.equity) == 1000
    assert np.all(res.equity[:500] == res.equity[500])  # in cash until the first choice


def test_efficiency_definition() -> None:
    assert walk_forward_efficiency([10.0, 20.0], [5.0, 10.0]) == pytest.approx(0.5)
    assert walk_forward_efficiency([10.0, None], [4.0, 99.0]) == pytest.approx(0.4)
    assert walk_forward_efficiency([-5.0], [3.0]) is None
    assert walk_forward_efficiency([], []) is None
