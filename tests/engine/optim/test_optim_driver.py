"""The ask/tell driver with every method: grid = full runs, determinism, known optima."""

from __future__ import annotations

import numpy as np
import pytest

from engine.backtest import run_backtest
from engine.errors import EngineError
from engine.optim import OptimInputError, Optimizer, SearchSpace, optimize, pareto_front
from engine.options import EngineOptions
from strategies.classic import EmaCrossover
from tests.engine.optim import synth
from tests.engine.reference import random_bars

OPTS = EngineOptions(commission_pct=0.05, slippage_bps=2)


@pytest.fixture(scope="module")
def bars():  # type: ignore[no-untyped-def]
    return random_bars(np.random.default_rng(5), 1200, per_day=25, gap=0.003)


def test_grid_trials_equal_full_single_runs(bars) -> None:  # type: ignore[no-untyped-def]
    space = SearchSpace.from_schema(
        EmaCrossover.params_schema(),
        {"fast": "2:20:3", "slow": "10:60:10", "long_only": [False, True]},
        ["fast < slow"],
    )
    calls: list[int] = []

    def evaluate(ps: list[dict]) -> dict[str, np.ndarray]:
        calls.append(len(ps))
        return EmaCrossover.sweep(bars, ps, OPTS)

    opt = Optimizer(space, "sharpe", "grid", batch_size=16)
    assert opt.total == space.count_grid() == 2 * sum(
        1 for f in range(2, 21, 3) for s in range(10, 61, 10) if f < s)
    res = optimize(opt, evaluate)
    assert res.stop_reason == "exhausted" and len(res.trials) == opt.total
    assert calls == [16] * (opt.total // 16) + ([opt.total % 16] if opt.total % 16 else [])
    assert [t.number for t in res.trials] == list(range(opt.total))
    assert [t.batch for t in res.trials] == [i // 16 for i in range(opt.total)]
    rng = np.random.default_rng(0)
    for i in rng.choice(len(res.trials), 8, replace=False):
        t = res.trials[int(i)]
        full = run_backtest(bars, EmaCrossover(**t.params).signals(bars), OPTS)
        assert t.metrics == full.metrics, t.params
    assert res.best is not None
    assert res.best.values[0] == max(t.values[0] for t in res.trials if t.feasible)


def test_result_constraints_make_trials_infeasible_but_logged() -> None:
    opt = Optimizer(synth.space(), "sharpe", "grid", result_constraints=["n_trades >= 40"])
    res = optimize(opt, synth.bowl)
    assert res.best is not None and res.best.params == {"x": 40, "y": 120, "flag": True}
    bad = [t for t in res.trials if not t.feasible]
    assert bad and all(t.params["x"] < 40 for t in bad)
    assert bad[0].violations == ("n_trades >= 40",)
    assert all(t.params["x"] < t.params["y"] for t in res.trials)  # the space constraint
    # an undefined objective is infeasible too, with the reason
    opt = Optimizer(synth.space(), "sharpe", "random", max_trials=5, seed=1)
    res = optimize(opt, lambda ps: {"sharpe": np.full(len(ps), np.nan)})
    assert res.best is None and res.trials[0].violations == ("sharpe is undefined",)
    assert res.trials[0].values == (None,) and res.trials[0].metrics["sharpe"] is None


def test_budgets_and_errors() -> None:
    with pytest.raises(OptimInputError, match="needs a trial budget"):
        Optimizer(synth.space(), "sharpe", "genetic")
    with pytest.raises(OptimInputError, match="feasible points but the budget is 10"):
        Optimizer(synth.space(), "sharpe", "grid", max_trials=10)
    with pytest.raises(OptimInputError, match="did you mean 'population'"):
        Optimizer(synth.space(), "sharpe", "genetic", max_trials=10,
                  method_options={"populaton": 5})
    with pytest.raises(OptimInputError, match="did you mean 'genetic'"):
        Optimizer(synth.space(), "sharpe", "genetik", max_trials=10)
    with pytest.raises(OptimInputError, match="use 'nsga2'"):
        Optimizer(synth.space(), ["sharpe", "max_drawdown_pct"], "genetic", max_trials=10)
    with pytest.raises(OptimInputError, match="did you mean 'sharpe'"):
        Optimizer(synth.space(), "sharp", "random", max_trials=10)
    opt = Optimizer(synth.space(), "sharpe", "random", max_trials=3)
    batch = opt.ask()
    assert batch is not None
    with pytest.raises(EngineError, match="no 'sharpe' metric"):
        opt.tell(batch, {"sortino": np.zeros(3)})
    with pytest.raises(EngineError, match="expected"):
        opt.tell(batch, {"sharpe": np.zeros(2)})


def test_objective_directions() -> None:
    opt = Optimizer(synth.space(), ["-max_drawdown_pct", "sharpe"], "nsga2", max_trials=10)
    assert [o.direction for o in opt.objectives] == ["minimize", "maximize"]
    opt = Optimizer(synth.space(), ["max_drawdown_pct:max"], "random", max_trials=10)
    assert opt.objectives[0].direction == "maximize"
    opt = Optimizer(synth.space(), ["max_drawdown_pct"], "random", max_trials=10)
    assert opt.objectives[0].direction == "minimize"  # less is better by default


def test_non_adaptive_batches_can_be_out_at_once_and_told_in_any_order() -> None:
    opt = Optimizer(synth.space(), "sharpe", "random", max_trials=50, batch_size=20, seed=3)
    batches = [opt.ask(), opt.ask(), opt.ask()]
    assert opt.ask() is None and not opt.done
    assert [len(b.params) for b in batches if b] == [20, 20, 10]
    for b in reversed(batches):
        assert b is not None and not opt.done
        opt.tell(b, synth.bowl(b.params), seconds=1.0)
    assert opt.done  # all handed out and told, without another ask
    assert opt.tell(batches[0].number, synth.bowl(batches[0].params))  # idempotent
    assert opt.done and opt.stop_reason == "max_trials"
    assert [t.number for t in opt.trials] == list(range(50))
    again = optimize(Optimizer(synth.space(), "sharpe", "random", max_trials=50,
                               batch_size=20, seed=3), synth.bowl)
    assert [t.params for t in again.trials] == [t.params for t in opt.trials]
    assert len({tuple(t.params.values()) for t in again.trials}) == 50  # no repeats


@pytest.mark.parametrize("method", ["genetic", "tpe", "nsga2"])
def test_adaptive_methods_wait_for_each_batch(method: str) -> None:
    opt = Optimizer(synth.space(), "sharpe", method, max_trials=80, seed=1)
    b = opt.ask()
    assert b is not None and opt.ask() is None  # the next batch depends on this one
    opt.tell(b, synth.bowl(b.params))
    assert opt.ask() is not None


def test_seeded_genetic_run_is_deterministic() -> None:
    def run(seed: int) -> list[tuple[int, dict]]:
        opt = Optimizer(synth.space(), "sharpe", "genetic", max_trials=300, seed=seed,
                        method_options={"population": 30})
        return [(t.batch, t.params) for t in optimize(opt, synth.bowl).trials]

    first = run(7)
    assert len(first) == 300 and first == run(7)
    assert first != run(8)


@pytest.mark.parametrize(("method", "budget"), [("genetic", 500), ("tpe", 200)])
def test_search_finds_the_known_optimum_within_budget(method: str, budget: int) -> None:
    opt = Optimizer(synth.space(), "sharpe", method, max_trials=budget, seed=11)
    res = optimize(opt, synth.bowl)
    assert len(res.trials) <= budget
    assert res.best is not None
    best = res.best.params
    assert best["flag"] is True
    assert abs(best["x"] - synth.OPTIMUM["x"]) <= 2 and abs(best["y"] - synth.OPTIMUM["y"]) <= 4
    assert res.best.values[0] is not None and res.best.values[0] > 0.95  # optimum: 1.0
    if method == "genetic":
        assert best == synth.OPTIMUM


def test_tpe_and_nsga2_replay_from_stored_batches() -> None:
    for method, objectives in (("tpe", ["sharpe"]), ("nsga2", ["sharpe", "max_drawdown_pct"])):
        stored: list[tuple[list[dict], dict]] = []

        def record(ps: list[dict], stored: list = stored) -> dict[str, np.ndarray]:
            out = synth.bowl(ps)
            stored.append((ps, out))
            return out

        first = optimize(Optimizer(synth.space(), objectives, method, max_trials=60, seed=2,
                                   batch_size=10), record)
        replay = Optimizer(synth.space(), objectives, method, max_trials=60, seed=2,
                           batch_size=10)
        for ps, metrics in stored:
            b = replay.ask()
            assert b is not None and b.params == ps
            replay.tell(b, metrics)
        assert [t.params for t in replay.trials] == [t.params for t in first.trials]


def test_nsga2_front_is_the_non_dominated_feasible_set() -> None:
    opt = Optimizer(synth.space(), ["sharpe", "-max_drawdown_pct"], "nsga2", max_trials=200,
                    seed=4, result_constraints=[{"metric": "n_trades", "min": 10}])
    res = optimize(opt, synth.bowl)
    feas = [t for t in res.trials if t.feasible]
    assert res.pareto and all(t.feasible for t in res.pareto)
    vals = np.array([t.values for t in feas], dtype=np.float64)
    g = vals * np.array([1.0, -1.0])
    front = {t.number for t in res.pareto}
    for i, t in enumerate(feas):
        dominated = bool(np.any(np.all(g >= g[i], axis=1) & np.any(g > g[i], axis=1)))
        assert dominated != (t.number in front)
    assert res.best is not None and res.best.number in front
    assert pareto_front(vals, [1, -1]).tolist() == [
        i for i, t in enumerate(feas) if t.number in front]


def test_time_budget_and_cancel() -> None:
    now = [0.0]
    opt = Optimizer(synth.space(), "sharpe", "random", max_trials=100, batch_size=10,
                    max_seconds=2.5, clock=lambda: now[0])

    def slow(ps: list[dict]) -> dict[str, np.ndarray]:
        now[0] += 1.0
        return synth.bowl(ps)

    res = optimize(opt, slow)
    assert res.stop_reason == "max_seconds" and len(res.trials) == 30
    n = [0]

    def stop() -> bool:
        n[0] += 1
        return n[0] > 2

    res = optimize(Optimizer(synth.space(), "sharpe", "random", max_trials=100, batch_size=10),
                   synth.bowl, should_stop=stop)
    assert res.stop_reason == "cancelled" and len(res.trials) == 20
    d = res.to_dict()
    assert d["n_trials"] == 20 and len(d["trials"]) == 20 and d["best"]["feasible"]
