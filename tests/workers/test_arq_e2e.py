"""The team deployment for real: PostgreSQL + Redis + arq worker processes.

Workers run as subprocesses (`python -m workers.arq_worker`) with short leases, so a
killed worker's run is taken over within seconds. Each test has its own database and
arq queue name.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from engine.backtest import run_backtest
from engine.bars import Bars
from store import runs as run_store
from store.blobs import DatabaseBlobStore
from store.datasets import BARS_CACHE, save_dataset
from store.db import Database, run_migrations
from store.models import RunRow, RunStatus
from strategies.registry import get_strategy
from tests.workers.conftest import intraday
from tests.workers.servers import RedisServer, WorkerProcess
from workers.bus import RedisBus
from workers.queue import ArqQueue
from workers.service import ServiceLimits, Services

PARAMS = {"fast": 8, "slow": 21}
SLOW = {"chunk_bars": 250, "chunk_delay_s": 0.06}  # ~15,000 bars in ~4-5 s


@dataclass
class Team:
    db: Database
    services: Services
    bars: Bars
    dataset_id: int
    env: dict[str, str]
    tmp: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self, faults: dict | None = None) -> WorkerProcess:
        env = {**self.env, "BT_TEST_FAULTS": json.dumps(faults or {})}
        w = WorkerProcess(env, self.tmp / f"worker{len(self.workers)}.log").start()
        self.workers.append(w)
        return w

    def owner(self, worker_id: str | None) -> WorkerProcess:
        return next(w for w in self.workers if worker_id and worker_id.endswith(f":{w.pid}"))

    def logs(self) -> str:
        return "\n".join(w.log_path.read_text(errors="replace")[-3000:] for w in self.workers)

    async def wait_until(self, check: Callable[[], object], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await check() if asyncio.iscoroutinefunction(check) else check():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")

    async def running(self, run_id: str, min_progress: float = 0.05) -> RunRow:
        async def ok() -> bool:
            row = await run_store.get_run(self.db, run_id)
            return row.status is RunStatus.RUNNING and row.progress >= min_progress

        await self.wait_until(ok, 30, f"run {run_id} to be running")
        return await run_store.get_run(self.db, run_id)


async def open_team(pg_url: str, redis_url: str, tmp: Path) -> Team:
    await asyncio.to_thread(run_migrations, pg_url)
    db = Database(pg_url)
    blobs = DatabaseBlobStore(db)
    bars = intraday(40, seed=11)
    row = await save_dataset(db, blobs, bars, name="intraday", symbol="NIFTY-SYNTH")
    queue_name = f"bt:test:{uuid.uuid4().hex[:12]}"
    services = Services(
        db, blobs, ArqQueue(redis_url, queue_name), RedisBus(redis_url), ServiceLimits(poll_s=0.3)
    )
    env = {
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "BT_QUEUE_NAME": queue_name,
        "BT_LEASE_SECONDS": "3",
        "BT_HEARTBEAT_SECONDS": "0.5",
        "BT_REAP_INTERVAL_SECONDS": "0.5",
        "BT_QUEUED_GRACE_SECONDS": "5",
        "BT_LOG_LEVEL": "INFO",
    }
    return Team(db, services, bars, row.id, env, tmp)


async def close_team(team: Team) -> None:
    for w in team.workers:
        w.stop()
    await team.services.queue.close()
    await team.services.bus.close()
    await team.db.dispose()


@pytest.fixture
async def team(pg_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Team]:
    BARS_CACHE.clear()
    t = await open_team(pg_url, redis_url, tmp_path)
    try:
        yield t
    finally:
        await close_team(t)


async def assert_undisturbed(team: Team, run_id: str, params: dict = PARAMS) -> None:
    """The stored result equals a plain in-process run of the same backtest."""
    row = await run_store.get_run(team.db, run_id)
    assert row.status is RunStatus.SUCCEEDED, row.error
    want = run_backtest(team.bars, get_strategy("ema_crossover")(**params).signals(team.bars), {})
    assert row.metrics == pytest.approx(want.metrics, nan_ok=True)
    trades = await run_store.get_trades(team.db, run_id, first=1000)
    assert [(t.entry_idx, t.exit_idx, t.side, t.pnl) for t in trades] == [
        (t.entry_idx, t.exit_idx, t.side, pytest.approx(t.pnl)) for t in want.trades
    ]
    ts, eq = await run_store.get_equity(team.db, run_id)
    np.testing.assert_array_equal(ts, want.ts)
    np.testing.assert_array_equal(eq, want.equity)


async def test_accepted_runs_reach_exactly_one_terminal_state(team: Team) -> None:
    for _ in range(2):
        team.start_worker()
    terminal_events: dict[str, int] = {}
    async with team.services.subscribe_all() as everything:
        rows = [
            await team.services.submit_backtest("ema_crossover", team.dataset_id, {"fast": f}, {})
            for f in (5, 6, 7, 8, 9)
        ]
        cancelled = await team.services.submit_backtest("ema_crossover", team.dataset_id, {}, {})
        await team.services.cancel_run(cancelled.id)
        done = [await team.services.wait_for_run(r.id, 60) for r in rows]
        # Redis pub/sub channels are server-wide (not per logical database): count only
        # this test's runs, whatever else runs on the same Redis.
        ours = {r.id for r in rows} | {cancelled.id}
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len(terminal_events) < 6:
            event = await everything.get(0.2)
            if event is not None and event["type"] == "terminal" and event["run_id"] in ours:
                terminal_events[event["run_id"]] = terminal_events.get(event["run_id"], 0) + 1
    assert all(r.status is RunStatus.SUCCEEDED and r.attempt == 1 for r in done), team.logs()
    assert (await run_store.get_run(team.db, cancelled.id)).status is RunStatus.CANCELLED
    assert set(terminal_events) == {r.id for r in rows} | {cancelled.id}
    await assert_undisturbed(team, rows[0].id, {"fast": 5})
    stats = await run_store.run_stats(team.db)
    assert stats["by_status"]["SUCCEEDED"] == 5 and stats["by_status"]["RUNNING"] == 0


async def test_killed_worker_is_taken_over(team: Team) -> None:
    for _ in range(2):
        team.start_worker(SLOW)
    row = await team.services.submit_backtest("ema_crossover", team.dataset_id, PARAMS, {})
    first = await team.running(row.id, 0.1)
    victim = team.owner(first.lease_owner)
    victim.kill()
    t0 = time.monotonic()
    done = await team.services.wait_for_run(row.id, 60)
    assert done.status is RunStatus.SUCCEEDED, team.logs()
    assert done.attempt == 2 and not done.lease_owner.endswith(f":{victim.pid}")
    assert time.monotonic() - t0 < 60
    await assert_undisturbed(team, row.id)


async def test_run_that_kills_its_workers_fails_after_three_attempts(team: Team) -> None:
    crash = await save_dataset(
        team.db, team.services.blobs, intraday(5, seed=3), name="crash", symbol="X"
    )
    faults = {"exit_on_dataset": "crash"}
    for _ in range(2):
        team.start_worker(faults)
    row = await team.services.submit_backtest("ema_crossover", crash.id, {}, {})

    async def settled() -> bool:
        while sum(w.alive() for w in team.workers) < 2:  # a supervisor restarts dead workers
            team.start_worker(faults)
        return (await run_store.get_run(team.db, row.id)).terminal

    await team.wait_until(settled, 60, "the crashing run to fail")
    failed = await run_store.get_run(team.db, row.id)
    assert failed.status is RunStatus.FAILED and failed.attempt == 3
    assert failed.error == "run failed after 3 attempts: the worker processing it died each time"
    # The workers that are left still do ordinary work.
    ok = await team.services.submit_backtest("ema_crossover", team.dataset_id, PARAMS, {})
    fine = await team.services.wait_for_run(ok.id, 30)
    assert fine.status is RunStatus.SUCCEEDED, (fine.error, team.logs())


async def test_cancel_takes_effect_within_two_seconds(team: Team) -> None:
    team.start_worker(SLOW)
    row = await team.services.submit_backtest("ema_crossover", team.dataset_id, PARAMS, {})
    await team.running(row.id, 0.05)
    t0 = time.monotonic()
    await team.services.cancel_run(row.id)
    done = await team.services.wait_for_run(row.id, 5)
    elapsed = time.monotonic() - t0
    assert done.status is RunStatus.CANCELLED and elapsed < 2.0, (elapsed, team.logs())


async def test_worker_survives_a_redis_restart(pg_url: str, tmp_path: Path) -> None:
    server = RedisServer().start()
    BARS_CACHE.clear()
    team = await open_team(pg_url, server.url, tmp_path)
    try:
        worker = team.start_worker(SLOW)
        row = await team.services.submit_backtest("ema_crossover", team.dataset_id, PARAMS, {})
        await team.running(row.id, 0.05)
        server.kill()
        await asyncio.sleep(1.0)
        server.start()
        done = await team.services.wait_for_run(row.id, 30)  # the job kept going meanwhile
        assert done.status is RunStatus.SUCCEEDED and done.attempt == 1, team.logs()
        await assert_undisturbed(team, row.id)
        after = await team.services.submit_backtest("ema_crossover", team.dataset_id, {}, {})
        assert (await team.services.wait_for_run(after.id, 30)).status is RunStatus.SUCCEEDED
        assert worker.alive()
    finally:
        await close_team(team)
        server.kill()
