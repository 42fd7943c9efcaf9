"""The coordinator loop: optimization coordinators run outside the job slots, in every
worker process (embedded queue and arq workers), and take over each other's work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from engine.options import EngineOptions
from store import optimizations as opt_store
from store.datasets import BARS_CACHE
from store.db import Database, run_migrations
from store.models import RunStatus
from strategies.registry import get_strategy
from tests.workers.conftest import Embedded, close_embedded, open_embedded
from tests.workers.test_arq_e2e import Team, close_team, open_team
from tests.workers.test_optimizations import assert_same, stored, undisturbed, wait_terminal
from workers.jobs import Faults, WorkerContext
from workers.optimization_jobs import make_optimizer
from workers.queue import InProcessQueue
from workers.service import ServiceLimits, Services

GRID = {"fast": "4:12:2", "slow": "20:40:5", "long_only": False}  # 25 trials


def grid_spec(dataset_id: int, batch_size: int = 5, space: dict | None = None) -> dict[str, Any]:  # type: ignore[type-arg]
    return {"strategy": "ema_crossover", "dataset_id": dataset_id, "method": "grid",
            "space": space or GRID, "objectives": ["sharpe"], "batch_size": batch_size}


async def test_claimable_optimizations_are_what_the_claim_takes(sqlite_url: str) -> None:
    await asyncio.to_thread(run_migrations, sqlite_url)
    db = Database(sqlite_url)
    try:
        async def new() -> str:
            row = await opt_store.create_optimization(db, strategy="ema_crossover",
                                                      method="grid", total=1)
            await asyncio.sleep(0.002)  # distinct created_at: the order is oldest first
            return row.id

        queued, live, expired, cancelled, spent, queued2 = [await new() for _ in range(6)]
        assert await opt_store.claim_optimization(db, live, "w", 60) == 1
        assert await opt_store.claim_optimization(db, expired, "w", -1) == 1
        assert await opt_store.claim_optimization(db, cancelled, "w", -1) == 1
        await opt_store.cancel_optimization(db, cancelled)
        for attempt in (1, 2, 3):
            assert await opt_store.claim_optimization(db, spent, "w", -1) == attempt
        assert await opt_store.claimable_optimizations(db, limit=10) == [
            queued, expired, cancelled, spent, queued2]
        assert await opt_store.claimable_optimizations(db, limit=2) == [queued, expired]
        # The claim refuses the spent one but fails it, so the loop never spins on it.
        assert await opt_store.claim_optimization(db, spent, "w", 60) is None
        assert (await opt_store.get_optimization(db, spent)).status is RunStatus.FAILED
        # A cancel its dead coordinator never saw: the claim records it as CANCELLED.
        assert await opt_store.claim_optimization(db, cancelled, "w", 60) is None
        assert (await opt_store.get_optimization(db, cancelled)).status is RunStatus.CANCELLED
        assert await opt_store.claimable_optimizations(db, limit=10) == [queued, expired, queued2]
    finally:
        await db.dispose()


# -- the embedded queue ---------------------------------------------------------------
async def one_slot(url: str, tmp_path, *, max_coordinators: int = 16,  # type: ignore[no-untyped-def]
                   worker_id: str = "embedded", faults: Faults | None = None) -> Embedded:
    """The embedded stack with ONE job slot and a short coordinator poll."""
    e = await open_embedded(url, tmp_path, faults=faults)
    await e.queue.close()
    e.ctx = WorkerContext(db=e.db, blobs=e.blobs, bus=e.bus, worker_id=worker_id, lease_s=2.0,
                          heartbeat_s=0.4, faults=faults or Faults())
    e.queue = InProcessQueue(e.ctx, concurrency=1, reap_interval_s=0.3, queued_grace_s=30,
                             max_coordinators=max_coordinators)
    e.services = Services(e.db, e.blobs, e.queue, e.bus, ServiceLimits(poll_s=0.3))
    return e


@pytest.fixture
async def single(sqlite_url: str, tmp_path) -> AsyncIterator[Embedded]:  # type: ignore[no-untyped-def]
    BARS_CACHE.clear()
    e = await one_slot(sqlite_url, tmp_path)
    try:
        yield e
    finally:
        await close_embedded(e)


async def test_one_slot_runs_more_optimizations_than_slots(single: Embedded) -> None:
    e = single
    rows = [await e.services.optimizations.start(grid_spec(e.dataset_id, 4 + i)) for i in range(3)]
    done = [await wait_terminal(e, r.id, 60) for r in rows]
    assert [d.status for d in done] == [RunStatus.SUCCEEDED] * 3, [d.error for d in done]
    assert [d.completed for d in done] == [25] * 3 and [d.attempt for d in done] == [1] * 3
    await e.queue.join()
    assert e.queue.coordinator.active == []


async def test_a_queued_optimization_nobody_enqueued_is_picked_up(single: Embedded) -> None:
    """A lost enqueue costs one poll interval (0.3 s here), not the reaper's grace (30 s)."""
    e = single
    spec = grid_spec(e.dataset_id)
    cls = get_strategy("ema_crossover")
    opt = make_optimizer(cls, spec)
    row = await opt_store.create_optimization(
        e.db, strategy=cls.name, dataset_id=e.dataset_id, total=opt.total, method="grid",
        space=GRID, objectives=["sharpe"], seed=0, options=EngineOptions().model_dump(mode="json"),
        budget={"max_trials": None, "max_seconds": None, "batch_size": 5})
    done = await wait_terminal(e, row.id, 8)
    assert done.status is RunStatus.SUCCEEDED and done.completed == 25, done.error


async def test_coordinators_per_process_are_capped(sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    BARS_CACHE.clear()
    e = await one_slot(sqlite_url, tmp_path, max_coordinators=1)
    try:
        rows = [await e.services.optimizations.start(grid_spec(e.dataset_id, 3)) for _ in range(2)]
        both_running = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [(await opt_store.get_optimization(e.db, r.id)).status for r in rows]
            both_running |= states == [RunStatus.RUNNING] * 2
            if all(s.terminal for s in states):
                break
            await asyncio.sleep(0.05)
        done = [await opt_store.get_optimization(e.db, r.id) for r in rows]
        assert [d.status for d in done] == [RunStatus.SUCCEEDED] * 2, [d.error for d in done]
        assert not both_running
        assert done[1].started_at >= done[0].finished_at  # oldest first, one at a time
    finally:
        await close_embedded(e)


async def test_a_closed_process_hands_its_coordinations_over(sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """close() cancels the coordinator; once its lease expires another process's loop
    claims it (attempt 2) and the result equals an undisturbed run."""
    BARS_CACHE.clear()
    slow = Faults(chunk_delay_s=0.15)
    first = await one_slot(sqlite_url, tmp_path, faults=slow, worker_id="first")
    spec = grid_spec(first.dataset_id, 2)
    row = await first.services.optimizations.start(spec)
    try:
        deadline = time.monotonic() + 30
        while (await opt_store.get_optimization(first.db, row.id)).completed < 4:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        t0 = time.monotonic()
        await first.queue.close()
        assert time.monotonic() - t0 < 1.0
        handed = await opt_store.get_optimization(first.db, row.id)
        assert handed.status is RunStatus.RUNNING and handed.completed < 25
        second = InProcessQueue(
            WorkerContext(db=first.db, blobs=first.blobs, bus=first.bus, worker_id="second",
                          lease_s=2.0, heartbeat_s=0.4),
            concurrency=1, reap_interval_s=0.3)
        try:
            done = await wait_terminal(first, row.id, 60)
        finally:
            await second.close()
        assert done.status is RunStatus.SUCCEEDED and done.attempt == 2, done.error
        trials = list(await opt_store.list_trials(first.db, row.id, first=1000))
        assert_same(stored(trials), undisturbed(first.bars, spec))
    finally:
        await close_embedded(first)


# -- arq worker processes ---------------------------------------------------------------
async def first_batch_after(team: Team, opt_id: str, t0: float, timeout: float = 10) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await opt_store.get_batches(team.db, opt_id, [0]):
            return time.monotonic() - t0
        await asyncio.sleep(0.01)
    raise AssertionError(f"no batch of {opt_id} was stored\n{team.logs()}")


async def ready(team: Team, n: int) -> None:
    await team.wait_until(lambda: sum("ready on queue" in w.log_path.read_text(errors="replace")
                                      for w in team.workers) >= n, 60, "workers to start")


async def test_one_slot_arq_worker_finishes_more_optimizations_than_slots(
        pg_url: str, redis_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With coordinators as jobs, the first optimization took the only slot and its
    batches never ran. The poll is 10 s here, so starting within 1 s is the wake event."""
    BARS_CACHE.clear()
    team = await open_team(pg_url, redis_url, tmp_path)
    try:
        team.env.update({"BT_WORKER_CONCURRENCY": "1", "BT_REAP_INTERVAL_SECONDS": "10"})
        team.start_worker()
        await ready(team, 1)
        warm = await team.services.optimizations.start(grid_spec(team.dataset_id))
        assert (await wait_terminal(team, warm.id, 60)).status is RunStatus.SUCCEEDED, team.logs()
        specs = [grid_spec(team.dataset_id, 3 + i) for i in range(3)]
        latencies, rows = [], []
        for spec in specs:
            t0 = time.monotonic()
            rows.append(await team.services.optimizations.start(spec))
            latencies.append(await first_batch_after(team, rows[-1].id, t0))
        done = [await wait_terminal(team, r.id, 90) for r in rows]
        assert [d.status for d in done] == [RunStatus.SUCCEEDED] * 3, ([d.error for d in done], team.logs())
        assert max(latencies) < 1.0, latencies
        print(f"start -> first batch stored: {[round(x * 1000) for x in latencies]} ms")
        trials = list(await opt_store.list_trials(team.db, rows[2].id, first=1000))
        assert_same(stored(trials), undisturbed(team.bars, specs[2]))
        # Cancel still takes effect within 2 s on the one-slot worker.
        long = await team.services.optimizations.start(
            {"strategy": "ema_crossover", "dataset_id": team.dataset_id, "method": "random",
             "max_trials": 100_000, "batch_size": 4, "objectives": ["sharpe"]})

        async def started() -> bool:
            return (await opt_store.get_optimization(team.db, long.id)).completed > 0

        await team.wait_until(started, 30, "the long optimization")
        t0 = time.monotonic()
        await team.services.optimizations.cancel(long.id)
        cancelled = await wait_terminal(team, long.id, 5)
        elapsed = time.monotonic() - t0
        assert cancelled.status is RunStatus.CANCELLED and elapsed < 2.0, (elapsed, team.logs())
        print(f"cancel -> CANCELLED: {elapsed * 1000:.0f} ms")
    finally:
        await close_team(team)


async def test_killed_coordinator_is_taken_over_by_another_worker(
        pg_url: str, redis_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    BARS_CACHE.clear()
    team = await open_team(pg_url, redis_url, tmp_path)
    try:
        for _ in range(2):
            team.start_worker({"chunk_delay_s": 0.3})
        await ready(team, 2)
        spec = grid_spec(team.dataset_id, 2, {"fast": "4:12:1", "slow": "20:40:4", "long_only": False})
        row = await team.services.optimizations.start(spec)

        async def coordinated() -> bool:
            r = await opt_store.get_optimization(team.db, row.id)
            return r.status is RunStatus.RUNNING and bool(r.lease_owner) and r.completed > 0

        await team.wait_until(coordinated, 90, "the optimization to be coordinated")
        victim = team.owner((await opt_store.get_optimization(team.db, row.id)).lease_owner)
        victim.kill()
        done = await wait_terminal(team, row.id, 90)
        assert done.status is RunStatus.SUCCEEDED and done.attempt == 2, (done.error, team.logs())
        trials = list(await opt_store.list_trials(team.db, row.id, first=1000))
        assert [t.number for t in trials] == list(range(done.total))
        assert_same(stored(trials), undisturbed(team.bars, spec))
    finally:
        await close_team(team)
