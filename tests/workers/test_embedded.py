"""The embedded deployment end to end: SQLite + in-process queue + in-memory bus."""

from __future__ import annotations

import asyncio
import contextlib
import time

import numpy as np
import pytest

from engine.backtest import Backtester, run_backtest
from store import runs as run_store
from store.datasets import BARS_CACHE, delete_dataset, save_dataset
from store.errors import BadInputError, NotFoundError
from store.models import RunRow, RunStatus
from strategies.registry import get_strategy
from tests.workers.conftest import Embedded, close_embedded, intraday, open_embedded
from workers.jobs import Faults, execute_run

PARAMS = {"fast": 8, "slow": 21}


def expected(e: Embedded, params: dict = PARAMS, options: dict | None = None):  # type: ignore[no-untyped-def]
    cls = get_strategy("ema_crossover")
    return run_backtest(e.bars, cls(**params).signals(e.bars), options or {})


async def assert_matches_engine(e: Embedded, run_id: str) -> None:
    row = await run_store.get_run(e.db, run_id)
    want = expected(e)
    assert row.status is RunStatus.SUCCEEDED, row.error
    assert row.n_trades == len(want.trades) and row.n_bars == len(e.bars)
    for key, value in want.metrics.items():
        assert row.metrics[key] == pytest.approx(value, nan_ok=True), key
    trades = await run_store.get_trades(e.db, run_id, first=1000)
    assert [(t.entry_idx, t.exit_idx, t.side) for t in trades] == [
        (t.entry_idx, t.exit_idx, t.side) for t in want.trades
    ]
    assert [t.pnl for t in trades] == pytest.approx([t.pnl for t in want.trades])
    ts, eq = await run_store.get_equity(e.db, run_id)
    np.testing.assert_array_equal(ts, want.ts)
    np.testing.assert_array_equal(eq, want.equity)


async def test_submit_runs_to_success(embedded: Embedded) -> None:
    row = await embedded.services.submit_backtest("ema_crossover", embedded.dataset_id, PARAMS, {})
    assert row.status is RunStatus.QUEUED and row.params["long_only"] is False
    done = await embedded.services.wait_for_run(row.id, 30)
    assert done.status is RunStatus.SUCCEEDED and done.attempt == 1
    assert done.duration_ms is not None and done.finished_at >= done.started_at
    await assert_matches_engine(embedded, row.id)


async def test_events_snapshot_progress_terminal(slow_embedded: Embedded) -> None:
    e = slow_embedded
    row = await e.services.submit_backtest("ema_crossover", e.dataset_id, PARAMS, {})
    events, stamps = [], []
    async with contextlib.aclosing(e.services.run_events(row.id)) as stream:
        async for event in stream:
            events.append(event)
            stamps.append(time.monotonic())
    assert events[0]["type"] == "snapshot" and events[-1]["type"] == "terminal"
    assert events[-1]["status"] == "SUCCEEDED" and events[-1]["metrics"]["n_trades"] >= 0
    progress = [ev for ev in events if ev["type"] == "progress"]
    assert len(progress) >= 3
    seqs = [ev["seq"] for ev in events[1:]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    values = [ev["progress"] for ev in progress]
    assert values == sorted(values) and values[-1] == 1.0
    points = [p for ev in progress for p in ev["equity"]]
    assert points and all(len(p) == 2 for p in points)
    assert [p[0] for p in points] == sorted(p[0] for p in points)
    span = stamps[-1] - stamps[0]
    assert len(progress) <= 6 * span + 3  # throttled to ~5 events per second
    # Resuming with the last seq skips straight to the end.
    again = [ev async for ev in e.services.run_events(row.id, after_seq=events[-1]["seq"])]
    assert [ev["type"] for ev in again] == ["snapshot", "terminal"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"strategy": "ema_crosover"}, "strategy"),
        ({"params": {"fast": 1}}, "params.fast"),
        ({"params": {"fats": 3}}, "params.fats"),
        ({"params": {"fast": 30, "slow": 10}}, "params.fast"),
        ({"options": {"size_value": -1}}, "options.size_value"),
        ({"options": {"bogus": 1}}, "options.bogus"),
    ],
)
async def test_bad_input_is_typed(embedded: Embedded, kwargs: dict, field: str) -> None:
    args = {"strategy": "ema_crossover", "dataset_id": embedded.dataset_id, **kwargs}
    with pytest.raises(BadInputError) as info:
        await embedded.services.submit_backtest(**args)
    assert info.value.field == field
    assert (await run_store.list_runs(embedded.db)).total == 0


async def test_unknown_dataset_is_not_found(embedded: Embedded) -> None:
    with pytest.raises(NotFoundError) as info:
        await embedded.services.submit_backtest("ema_crossover", 999, {}, {})
    assert info.value.kind == "dataset"


async def test_run_level_errors_fail_readably(embedded: Embedded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    db, ctx = embedded.db, embedded.ctx
    bad_params = await run_store.create_run(
        db, strategy="ema_crossover", dataset_id=embedded.dataset_id, params={"fast": 0}, options={}
    )
    await execute_run(ctx, bad_params.id)
    row = await run_store.get_run(db, bad_params.id)
    assert row.status is RunStatus.FAILED and "fast" in row.error

    gone = await embedded.services.submit_backtest("ema_crossover", embedded.dataset_id, {}, {})
    await embedded.services.cancel_run(gone.id)
    orphan = await run_store.create_run(
        db, strategy="ema_crossover", dataset_id=embedded.dataset_id, params={}, options={}
    )
    await delete_dataset(db, embedded.blobs, embedded.dataset_id, force=True)
    await execute_run(ctx, orphan.id)
    row = await run_store.get_run(db, orphan.id)
    assert row.status is RunStatus.FAILED and row.error == "the run's dataset was deleted"

    def boom(self, max_bars):  # type: ignore[no-untyped-def]
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(Backtester, "step", boom)
    new = await save_dataset(db, embedded.blobs, intraday(3, seed=9), name="x", symbol="X")
    broken = await run_store.create_run(
        db, strategy="ema_crossover", dataset_id=new.id, params={}, options={}
    )
    await execute_run(ctx, broken.id)
    row = await run_store.get_run(db, broken.id)
    assert row.status is RunStatus.FAILED
    assert row.error == "simulating failed: RuntimeError: kernel exploded"


async def test_cancel_takes_effect_within_two_seconds(slow_embedded: Embedded) -> None:
    e = slow_embedded
    row = await e.services.submit_backtest("ema_crossover", e.dataset_id, PARAMS, {})
    for _ in range(100):
        current = await run_store.get_run(e.db, row.id)
        if current.status is RunStatus.RUNNING and current.progress > 0:
            break
        await asyncio.sleep(0.05)
    t0 = time.monotonic()
    assert (await e.services.cancel_run(row.id)).cancel_requested
    done = await e.services.wait_for_run(row.id, 5)
    assert done.status is RunStatus.CANCELLED
    assert time.monotonic() - t0 < 2.0
    assert await run_store.get_trades(e.db, row.id) == []
    queued = await run_store.create_run(
        e.db, strategy="ema_crossover", dataset_id=e.dataset_id, params={}, options={}
    )
    assert (await e.services.cancel_run(queued.id)).status is RunStatus.CANCELLED


async def test_dead_worker_is_taken_over(embedded: Embedded) -> None:
    e = embedded
    row = await run_store.create_run(
        e.db, strategy="ema_crossover", dataset_id=e.dataset_id, params=PARAMS, options={}
    )
    # A worker claims it and dies at once: no heartbeat ever extends its 1 s lease.
    assert await run_store.claim_run(e.db, row.id, "dead-worker", 1.0) == 1
    done = await e.services.wait_for_run(row.id, 15)  # the reaper hands it to this process
    assert done.attempt == 2 and done.lease_owner == "embedded"
    await assert_matches_engine(e, row.id)


async def test_close_hands_running_runs_back(slow_embedded: Embedded) -> None:
    e = slow_embedded
    row = await e.services.submit_backtest("ema_crossover", e.dataset_id, PARAMS, {})
    for _ in range(100):
        if (await run_store.get_run(e.db, row.id)).status is RunStatus.RUNNING:
            break
        await asyncio.sleep(0.05)
    await e.queue.close()
    back = await run_store.get_run(e.db, row.id)
    assert back.status is RunStatus.QUEUED and back.attempt == 0


async def test_strategy_catalog_hooks(embedded: Embedded) -> None:
    from store import strategy_catalog as catalog

    row = await embedded.services.validate_strategy("ema_crossover")
    assert row.validation_status == "valid" and row.last_validated_at is not None
    checked = await embedded.services.validate_strategy("rsi_reversion", embedded.dataset_id)
    assert checked.validation_status == "valid"
    with pytest.raises(BadInputError):
        await embedded.services.validate_strategy("nope")
    await embedded.services.submit_backtest("ema_crossover", embedded.dataset_id, {}, {})
    assert (await catalog.get_strategy_row(embedded.db, "ema_crossover")).usage_count == 1
    await catalog.delete_strategy(embedded.db, "ema_crossover")
    with pytest.raises(BadInputError, match="was deleted"):
        await embedded.services.submit_backtest("ema_crossover", embedded.dataset_id, {}, {})


async def test_storage_errors_retry_instead_of_failing(embedded: Embedded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import workers.jobs as jobs

    calls = {"n": 0}
    real = jobs.load_bars

    async def flaky(db, blobs, dataset_id):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionResetError("blob store unreachable")
        return await real(db, blobs, dataset_id)

    monkeypatch.setattr(jobs, "load_bars", flaky)
    row = await embedded.services.submit_backtest("ema_crossover", embedded.dataset_id, PARAMS, {})
    done = await embedded.services.wait_for_run(row.id, 20)  # lease expiry, then the reaper
    assert done.status is RunStatus.SUCCEEDED and done.attempt == 2 and calls["n"] == 2


async def test_followers_read_the_database_only_while_the_bus_is_quiet(
    sqlite_url: str, tmp_path, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    """While progress events flow, a follower does not re-read the run row every poll_s
    (0.3 s here): with 500 followers that polling alone cost a core (bench/load_bench.py)."""
    BARS_CACHE.clear()
    e = await open_embedded(
        sqlite_url, tmp_path, faults=Faults(chunk_bars=200, chunk_delay_s=0.05), days=20
    )
    try:
        reads: list[float] = []
        get_run = e.services.get_run

        async def counting_get_run(run_id: str) -> RunRow:
            reads.append(time.monotonic())
            return await get_run(run_id)

        monkeypatch.setattr(e.services, "get_run", counting_get_run)
        row = await e.services.submit_backtest("ema_crossover", e.dataset_id, PARAMS, {})
        stamps = []
        async with asyncio.timeout(60), contextlib.aclosing(e.services.run_events(row.id)) as s:
            async for event in s:
                if event["type"] == "progress":
                    stamps.append(time.monotonic())
        assert event["type"] == "terminal" and event["status"] == "SUCCEEDED"
        first, last = stamps[0], stamps[-1]
        assert last - first > 1.0  # the old code read the row >= 3 times in this window
        assert len([t for t in reads if first < t < last]) <= 1
    finally:
        await close_embedded(e)


async def test_followers_of_one_run_share_their_database_polls(
    embedded: Embedded, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    """While the bus is quiet each follower re-reads its run every poll_s (0.3 s here);
    followers of the same run share those reads, so 20 cost about what one does."""
    e = embedded
    row = await run_store.create_run(  # never enqueued: QUEUED, and the bus stays quiet
        e.db, strategy="ema_crossover", dataset_id=e.dataset_id, params=PARAMS, options={}
    )
    reads: list[float] = []
    get_run = e.services.get_run

    async def counting_get_run(run_id: str) -> RunRow:
        reads.append(time.monotonic())
        return await get_run(run_id)

    monkeypatch.setattr(e.services, "get_run", counting_get_run)

    subscribed = asyncio.Semaphore(0)

    async def follow() -> list[dict]:
        events = []
        async with contextlib.aclosing(e.services.run_events(row.id)) as stream:
            async for event in stream:
                events.append(event)
                if event["type"] == "snapshot":
                    subscribed.release()
        return events

    followers = [asyncio.create_task(follow()) for _ in range(20)]
    async with asyncio.timeout(10):
        for _ in followers:
            await subscribed.acquire()
    start = len(reads)  # 2 reads each to subscribe
    await asyncio.sleep(1.5)
    quiet = len(reads) - start  # unshared: 20 x 5 polls
    await e.services.cancel_run(row.id)
    async with asyncio.timeout(10):
        streams = await asyncio.gather(*followers)
    assert all(s[0]["type"] == "snapshot" and s[-1]["status"] == "CANCELLED" for s in streams)
    assert start >= 40 and 3 <= quiet <= 12


async def test_a_follower_on_a_busy_loop_never_skips_buffered_events(
    embedded: Embedded, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    """On a congested event loop a follower's wait can time out in the same turn as events
    arrive. It must deliver those events, not poll the database and jump to the newer seq a
    heartbeat stored there (500 followers lost 15% of events that way)."""
    from workers.bus import Subscription
    from workers.events import progress_event, row_event

    e = embedded
    row = await run_store.create_run(  # never enqueued: this test plays the worker
        e.db, strategy="ema_crossover", dataset_id=e.dataset_id, params=PARAMS, options={}
    )
    raced = {"armed": False}
    real_get = Subscription.get

    async def racing_get(self: Subscription, timeout: float | None = None) -> dict | None:
        if raced["armed"] and self.backlog:
            raced["armed"] = False
            await asyncio.sleep(timeout or 0)  # the loop was busy for longer than timeout
            return None  # and the timeout won the race with the buffered events
        return await real_get(self, timeout)

    monkeypatch.setattr(Subscription, "get", racing_get)
    async with contextlib.aclosing(e.services.run_events(row.id)) as stream:
        assert (await anext(stream))["type"] == "snapshot"
        attempt = await run_store.claim_run(e.db, row.id, "worker", 30)
        assert attempt is not None
        claimed = await run_store.get_run(e.db, row.id)
        seq = int(claimed.seq)
        await e.bus.publish(row.id, row_event(claimed, "status"))
        for k in range(1, 5):
            await e.bus.publish(row.id, progress_event(
                row.id, seq + k, progress=k / 10, stage="simulating", attempt=attempt, equity=[]
            ))
        await run_store.heartbeat(e.db, row.id, attempt, lease_s=30, seq=seq + 4)
        raced["armed"] = True
        # The four unread progress events reach the follower merged into one (newest seq,
        # every equity point kept); without the guard they are dropped: this times out.
        async with asyncio.timeout(5):
            got = [await anext(stream) for _ in range(2)]
    assert not raced["armed"]
    assert [(ev["type"], ev["seq"]) for ev in got] == [("status", seq), ("progress", seq + 4)]
    assert got[1]["progress"] == 0.4
