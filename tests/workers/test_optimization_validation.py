"""Validation over the real service (SQLite and PostgreSQL, in-process queue): hold-out
out-of-sample metrics, walk-forward equal to the engine's driver, input errors, cancel, PBO."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from engine.backtest import run_backtest
from engine.downsample import downsample
from engine.optim.overfit import pbo_from_blocks
from engine.optim.validation import Segment, walk_forward_windows
from engine.optim.walkforward import run_walk_forward
from engine.options import EngineOptions
from store import optimizations as opt_store
from store.datasets import BARS_CACHE
from store.errors import BadInputError
from store.models import RunStatus
from strategies.registry import get_strategy
from tests.workers.conftest import Embedded, close_embedded, open_embedded
from tests.workers.test_arq_e2e import close_team, open_team
from tests.workers.test_optimizations import all_trials, cancel_once_running, wait_terminal
from workers.optimization_jobs import make_optimizer, row_spec
from workers.optimization_results import STORED_POINTS

GRID = {"fast": "4:12:4", "slow": "20:40:10", "long_only": False}
CLS = get_strategy("ema_crossover")


@pytest.fixture
async def stack(db_url: str, tmp_path) -> AsyncIterator[Embedded]:  # type: ignore[no-untyped-def]
    BARS_CACHE.clear()
    e = await open_embedded(db_url, tmp_path)
    try:
        yield e
    finally:
        await close_embedded(e)


def full_run(bars: Any, params: dict[str, Any]) -> dict[str, Any]:
    p = CLS.validate_params(params)
    return run_backtest(bars, CLS(**p).signals(bars), EngineOptions()).metrics


async def test_holdout_trials_carry_out_of_sample_metrics(stack: Embedded) -> None:
    e = stack
    spec = {"strategy": "ema_crossover", "dataset_id": e.dataset_id, "method": "grid",
            "space": GRID, "objectives": ["sharpe"], "batch_size": 4,
            "validation": {"holdout": {"fraction": 0.3}}}
    row = await e.services.optimizations.start(spec)
    n = len(e.bars)
    cut = round(n * 0.7)
    assert row.validation["in_sample"] == [0, cut] and row.validation["out_of_sample"] == [cut, n]
    done = await wait_terminal(e, row.id)
    assert done.status is RunStatus.SUCCEEDED, done.error
    trials = await all_trials(e, row.id)
    assert len(trials) == 9 and all(t.oos_metrics for t in trials)
    ins, oos = e.bars.slice(0, cut), e.bars.slice(cut, n)
    for t in (trials[1], trials[7]):
        want_is, want_oos = full_run(ins, t.params), full_run(oos, t.params)
        for key in ("sharpe", "total_return_pct", "n_trades", "max_drawdown_pct"):
            assert t.metrics[key] == pytest.approx(want_is[key], nan_ok=True), key
            assert t.oos_metrics[key] == pytest.approx(want_oos[key], nan_ok=True), key
    assert done.result["holdout"]["out_of_sample"] == [cut, n]
    assert done.best["oos_metrics"] is not None
    # the in-sample statistics are over the in-sample bars only
    assert done.result["deflated_sharpe"]["n_obs"] == cut - 1


WF_SPEC = {"strategy": "ema_crossover", "method": "random", "space": GRID,
           "objectives": ["sharpe"], "max_trials": 6, "batch_size": 2, "seed": 3,
           "validation": {"walk_forward": {"train": "2000", "test": 1000, "step": 1500}}}


async def check_walk_forward(db: Any, bars: Any, row: Any) -> None:
    """The stored outcome equals `run_walk_forward` on the same inputs."""
    windows = walk_forward_windows(bars.ts, 2000, 1000, 1500)
    done = await opt_store.get_optimization(db, row.id)
    assert done.status is RunStatus.SUCCEEDED, done.error
    assert done.completed == done.total == 6 * len(windows)
    options = EngineOptions()

    def evaluate(seg: Segment, ps: list[dict[str, Any]]) -> Any:
        return CLS.sweep(bars.slice(seg.start, seg.stop), ps, options)

    def run_segment(seg: Segment, params: dict[str, Any]) -> Any:
        part = bars.slice(seg.start, seg.stop)
        res = run_backtest(part, CLS(**CLS.validate_params(params)).signals(part), options)
        return res.ts, res.equity

    stored = row_spec(done)
    want = run_walk_forward(
        windows, lambda w: make_optimizer(CLS, {**stored, "seed": 3 + w.index}),
        evaluate, run_segment, ts=bars.ts)
    got = done.walk_forward
    assert got["tested"] and len(got["windows"]) == len(want.windows)
    for g, w in zip(got["windows"], want.windows, strict=True):
        assert (g["train"]["start_bar"], g["train"]["stop_bar"]) == (w.window.train.start, w.window.train.stop)
        assert (g["test"]["start_bar"], g["test"]["stop_bar"]) == (w.window.test.start, w.window.test.stop)
        assert g["train"]["stop_bar"] <= g["test"]["start_bar"]  # never tested on its training
        assert g["params"] == w.params
        assert g["efficiency"] == pytest.approx(w.efficiency, nan_ok=True)
        assert g["out_of_sample"]["sharpe"] == pytest.approx(w.test_metrics["sharpe"], nan_ok=True)
    assert got["efficiency"] == pytest.approx(want.efficiency, nan_ok=True)
    assert got["oos_return_pct"] == pytest.approx(want.oos_return_pct)
    ts, eq = want.ts, want.equity
    if len(eq) > STORED_POINTS:  # stored thinned, the same way
        ts, eq = downsample(ts, eq, STORED_POINTS)
    assert got["equity"]["values"] == pytest.approx(eq.tolist())
    assert got["equity"]["ts"] == [int(t) // 1_000_000 for t in ts]
    # every stored trial belongs to one window and was searched on that window's train bars
    trials = list(await opt_store.list_trials(db, row.id, first=1000))
    assert [t.number for t in trials] == list(range(done.total))
    assert [t.window for t in trials] == [k for k in range(len(windows)) for _ in range(6)]
    batches = await opt_store.get_batches(db, row.id)
    assert {b.window for b in batches} == set(range(len(windows)))
    assert all(b.attempt == 1 for b in batches)
    for g in got["windows"]:
        assert g["trial"] is not None and trials[g["trial"]].window == g["index"]
        assert trials[g["trial"]].params == g["params"]


async def test_walk_forward_equals_the_engine_driver(stack: Embedded) -> None:
    e = stack
    spec = {**WF_SPEC, "dataset_id": e.dataset_id}
    est = await e.services.optimizations.estimate(spec)
    row = await e.services.optimizations.start(spec)
    assert est["windows"] == len(row.validation["windows"]) >= 3
    assert row.total == est["trials"] == 6 * est["windows"] and est["seconds"] > 0
    await wait_terminal(e, row.id, 60)
    await check_walk_forward(e.db, e.bars, row)


async def test_walk_forward_over_two_arq_workers(pg_url: str, redis_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    BARS_CACHE.clear()
    team = await open_team(pg_url, redis_url, tmp_path)
    try:
        for _ in range(2):
            team.start_worker()
        row = await team.services.optimizations.start({**WF_SPEC, "dataset_id": team.dataset_id})
        done = await wait_terminal(team, row.id, 90)
        assert done.status is RunStatus.SUCCEEDED, (done.error, team.logs())
        await check_walk_forward(team.db, team.bars, row)
    finally:
        await close_team(team)


BAD = [
    ({"walk_forward": {"train": "6X", "test": "1M"}}, "validation.walkForward.train"),
    ({"walk_forward": {"train": "6M"}}, "validation.walkForward.test"),
    ({"walk_forward": {"train": 100, "test": 50, "step": 10}}, "validation.walkForward.step"),
    ({"walk_forward": {"train": "5Y", "test": "1Y"}}, "validation.walkForward"),
    ({"walk_forward": {"train": 10**7, "test": 10}}, "validation.walkForward"),
    ({"holdout": {"fraction": 1.5}}, "validation.holdout.fraction"),
    ({"holdout": {"start": "not a date"}}, "validation.holdout.start"),
    ({"holdout": {"start": "2001-01-01"}}, "validation.holdout"),
    ({"holdout": {"fraction": 0.3}, "walk_forward": {"train": 9, "test": 3}}, "validation"),
    ({"holdout": {}}, "validation.holdout"),
    ({"wf": {}}, "validation.wf"),
]


@pytest.mark.parametrize(("validation", "field"), BAD)
async def test_bad_validation_names_the_field(embedded: Embedded, validation: dict, field: str) -> None:  # type: ignore[type-arg]
    e = embedded
    spec = {"strategy": "ema_crossover", "dataset_id": e.dataset_id, "method": "grid",
            "space": GRID, "validation": validation}
    for call in (e.services.optimizations.estimate, e.services.optimizations.start):
        with pytest.raises(BadInputError) as info:
            await call(spec)
        assert info.value.field == field, str(info.value)
    if "5Y" in str(validation) or "10000000" in str(validation):
        assert "no window fits in this dataset" in str(info.value)
    assert (await e.services.optimizations.list()).total == 0  # nothing half-written


async def test_walk_forward_cancel_within_two_seconds(embedded: Embedded) -> None:
    e = embedded
    spec = {"strategy": "ema_crossover", "dataset_id": e.dataset_id, "method": "random",
            "max_trials": 50_000, "batch_size": 4, "objectives": ["sharpe"],
            "validation": {"walk_forward": {"train": "5D", "test": "2D"}}}
    row, done, seconds = await cancel_once_running(e, spec)
    assert done.status is RunStatus.CANCELLED and seconds < 2.0
    assert done.walk_forward is not None and not done.walk_forward["tested"]
    assert len(done.walk_forward["windows"]) == len(row.validation["windows"]) >= 2


async def test_pbo_equals_pbo_from_sweep_blocks(stack: Embedded) -> None:
    e = stack
    spec = {"strategy": "ema_crossover", "dataset_id": e.dataset_id, "method": "grid",
            "space": {"fast": "4:16:4", "slow": "20:50:10", "long_only": False},
            "objectives": ["sharpe"], "batch_size": 5}
    row = await e.services.optimizations.start(spec)
    done = await wait_terminal(e, row.id, 60)
    assert done.status is RunStatus.SUCCEEDED, done.error
    trials = await all_trials(e, row.id)
    feasible = [t for t in trials if t.feasible]
    assert len(feasible) >= 2
    out = CLS.sweep(e.bars, [t.params for t in feasible], EngineOptions(), blocks=16)
    want = pbo_from_blocks(out["block_n"][0], np.asarray(out["block_sum"]).T,
                           np.asarray(out["block_sumsq"]).T)
    got = done.result["pbo"]
    assert got is not None and got["n_splits"] == 16 and got["n_trials"] == len(feasible)
    assert got["pbo"] == pytest.approx(want.pbo)
    assert got["prob_oos_loss"] == pytest.approx(want.prob_oos_loss)


def test_pbo_blocks_round_trip_and_trial_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks survive packing; beyond the cap an even spread of feasible trials is used."""
    from types import SimpleNamespace

    import workers.optimization_results as res

    rng = np.random.default_rng(7)
    n_sets, s = 10, 16
    raw = {"block_n": np.full((n_sets, s), 20.0), "block_sum": rng.normal(0, 1, (n_sets, s)),
           "block_sumsq": rng.uniform(20, 30, (n_sets, s))}
    packed = res.pack_blocks(raw)
    assert packed is not None and res.pack_blocks({"sharpe": np.zeros(3)}) is None
    back = res.unpack_blocks(packed)
    assert back.shape == (3, n_sets, s) and np.array_equal(back[1], raw["block_sum"])
    trials = [SimpleNamespace(number=i, feasible=i != 3) for i in range(n_sets)]
    batches = [SimpleNamespace(first_trial=0, blocks=packed)]
    opt = SimpleNamespace(trials=trials)
    monkeypatch.setattr(res, "PBO_MAX_TRIALS", 5)
    got = res.pbo_of(opt, batches)  # type: ignore[arg-type]
    feasible = [i for i in range(n_sets) if i != 3]
    chosen = [feasible[i] for i in np.unique(np.linspace(0, 8, 5).round().astype(int))]
    want = pbo_from_blocks(raw["block_n"][0], raw["block_sum"][chosen].T,
                           raw["block_sumsq"][chosen].T)
    assert got is not None and got["n_trials"] == 5 and got["n_feasible"] == 9
    assert got["pbo"] == want.pbo
    assert res.pbo_of(SimpleNamespace(trials=trials[:1]), batches) is None  # type: ignore[arg-type]
