"""Optimizations end to end on the embedded stack: coordinator, batch jobs, trial log, cancel."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from engine.backtest import run_backtest
from engine.optim import optimize
from engine.options import EngineOptions
from store import optimizations as opt_store
from store.datasets import BARS_CACHE
from store.models import RunStatus
from strategies.registry import get_strategy
from tests.workers.conftest import Embedded
from tests.workers.test_arq_e2e import close_team, open_team
from workers.optimization_jobs import make_optimizer

GRID = {"fast": "4:12:2", "slow": "20:40:5", "long_only": False}


async def wait_terminal(e: Any, opt_id: str, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = await opt_store.get_optimization(e.db, opt_id)
        if row.terminal:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"optimization {opt_id} did not finish")


async def all_trials(e: Embedded, opt_id: str) -> list:  # type: ignore[type-arg]
    return list(await opt_store.list_trials(e.db, opt_id, first=1000))


async def test_grid_finishes_and_matches_single_runs(embedded: Embedded) -> None:
    e = embedded
    spec = {"strategy": "ema_crossover", "dataset_id": e.dataset_id, "method": "grid",
            "space": GRID, "objectives": ["sharpe"], "batch_size": 7}
    est = await e.services.optimizations.estimate(spec)
    row = await e.services.optimizations.start(spec)
    assert est["trials"] == row.total == 25 and est["seconds"] is not None
    done = await wait_terminal(e, row.id)
    assert done.status is RunStatus.SUCCEEDED, done.error
    trials = await all_trials(e, row.id)
    assert [t.number for t in trials] == list(range(25)) and done.completed == 25
    assert len({(t.params["fast"], t.params["slow"]) for t in trials}) == 25
    batches = await opt_store.get_batches(e.db, row.id)
    assert [b.attempt for b in batches] == [1] * len(batches) == [1] * 4
    cls = get_strategy("ema_crossover")
    for t in (trials[3], trials[17]):
        want = run_backtest(e.bars, cls(**cls.validate_params(t.params)).signals(e.bars), {})
        for key in ("sharpe", "total_return_pct", "n_trades", "max_drawdown_pct"):
            assert t.metrics[key] == pytest.approx(want.metrics[key], nan_ok=True), key
    assert done.best is not None and done.result["n_trials"] == 25
    assert done.dataset_hash and done.code_hash and done.engine_version
    ranked = await opt_store.list_trials(e.db, row.id, first=5, order_by="-sharpe")
    values = [t.metrics["sharpe"] for t in ranked]
    assert values == sorted(values, reverse=True)
    assert values[0] == pytest.approx(done.best["metrics"]["sharpe"])


async def cancel_once_running(e: Embedded, spec: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Start `spec`, cancel it once it has trials; (started row, terminal row, seconds from
    the cancel to the terminal state)."""
    row = await e.services.optimizations.start(spec)
    for _ in range(100):
        if (await opt_store.get_optimization(e.db, row.id)).completed > 0:
            break
        await asyncio.sleep(0.1)
    t0 = time.monotonic()
    await e.services.optimizations.cancel(row.id)
    done = await wait_terminal(e, row.id, 5)
    return row, done, time.monotonic() - t0


async def test_cancel_within_two_seconds(embedded: Embedded) -> None:
    e = embedded
    spec = {"strategy": "ema_crossover", "dataset_id": e.dataset_id, "method": "random",
            "max_trials": 100_000, "batch_size": 4, "objectives": ["sharpe"]}
    _, done, seconds = await cancel_once_running(e, spec)
    assert done.status is RunStatus.CANCELLED and seconds < 2.0


async def test_tpe_search_leaves_the_event_loop_free(embedded: Embedded) -> None:
    """Optuna's TPE asks take milliseconds a trial (a 96-trial batch half a second): the
    coordinator runs ask/tell in a thread, so the loop the API shares keeps ticking."""
    e = embedded
    spec = {"strategy": "ema_crossover", "dataset_id": e.dataset_id, "method": "tpe",
            "space": {"fast": "2:60", "slow": "10:300"}, "constraints": ["fast < slow"],
            "max_trials": 192, "batch_size": 96, "seed": 3, "objectives": ["sharpe"]}
    worst, stop = 0.0, asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not stop.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            worst = max(worst, time.perf_counter() - t0 - 0.005)

    tick = asyncio.create_task(ticker())
    try:
        row = await e.services.optimizations.start(spec)
        done = await wait_terminal(e, row.id, 60)
    finally:
        stop.set()
        await tick
    assert done.status is RunStatus.SUCCEEDED and done.completed == 192, done.error
    assert worst < 0.25, f"the event loop stalled {worst * 1e3:.0f} ms"


# -- the team deployment: PostgreSQL + Redis + two arq worker processes ------------------
def undisturbed(bars, spec: dict) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    """The same optimization in this process, with no queue at all."""
    cls = get_strategy("ema_crossover")
    opt = make_optimizer(cls, spec)
    result = optimize(opt, lambda ps: cls.sweep(bars, ps, EngineOptions()))
    return [(t.number, t.params, t.metrics.get("sharpe")) for t in result.trials]


def stored(trials: list) -> list[tuple]:  # type: ignore[type-arg]
    return [(t.number, t.params, t.metrics.get("sharpe")) for t in trials]


def assert_same(got: list[tuple], want: list[tuple]) -> None:  # type: ignore[type-arg]
    assert [g[:2] for g in got] == [w[:2] for w in want]
    assert [g[2] for g in got] == pytest.approx([w[2] for w in want], nan_ok=True)


async def test_two_arq_workers_evaluate_every_trial_once(pg_url: str, redis_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    BARS_CACHE.clear()
    team = await open_team(pg_url, redis_url, tmp_path)
    try:
        for _ in range(2):
            team.start_worker()
        spec = {"strategy": "ema_crossover", "dataset_id": team.dataset_id, "method": "grid",
                "space": GRID, "objectives": ["sharpe"], "batch_size": 3}
        row = await team.services.optimizations.start(spec)
        done = await wait_terminal(team, row.id, 60)
        assert done.status is RunStatus.SUCCEEDED, (done.error, team.logs())
        trials = list(await opt_store.list_trials(team.db, row.id, first=1000))
        assert [t.number for t in trials] == list(range(25))
        batches = await opt_store.get_batches(team.db, row.id)
        assert all(b.attempt == 1 and b.status is RunStatus.SUCCEEDED for b in batches)
        assert len({b.lease_owner for b in batches}) <= 1  # cleared on success
        assert_same(stored(trials), undisturbed(team.bars, spec))
    finally:
        await close_team(team)


async def test_killed_worker_costs_only_its_batch(pg_url: str, redis_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    BARS_CACHE.clear()
    team = await open_team(pg_url, redis_url, tmp_path)
    try:
        for _ in range(2):
            team.start_worker({"chunk_delay_s": 0.3})  # every batch takes >= 0.3 s
        spec = {"strategy": "ema_crossover", "dataset_id": team.dataset_id, "method": "grid",
                "space": {"fast": "4:12:1", "slow": "20:40:4", "long_only": False},
                "objectives": ["sharpe"], "batch_size": 2}
        row = await team.services.optimizations.start(spec)
        victim = None
        deadline = time.monotonic() + 30
        while victim is None and time.monotonic() < deadline:
            for b in await opt_store.get_batches(team.db, row.id):
                if b.status is RunStatus.RUNNING and b.lease_owner:
                    victim = team.owner(b.lease_owner)
                    break
            await asyncio.sleep(0.02)
        assert victim is not None, team.logs()
        victim.kill()
        done = await wait_terminal(team, row.id, 90)
        assert done.status is RunStatus.SUCCEEDED, (done.error, team.logs())
        trials = list(await opt_store.list_trials(team.db, row.id, first=1000))
        assert [t.number for t in trials] == list(range(done.total))
        batches = await opt_store.get_batches(team.db, row.id)
        assert any(b.attempt >= 2 for b in batches), team.logs()
        assert_same(stored(trials), undisturbed(team.bars, spec))
    finally:
        await close_team(team)
