"""Run lifecycle: claims, leases, heartbeats, one-transaction finish, cancel, reaper."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import func, select, update

from store import runs
from store.blobs import FileBlobStore
from store.datasets import save_dataset
from store.db import Database
from store.errors import ConflictError, NotFoundError
from store.models import EquityRow, RunRow, RunStatus, TradeRow, utcnow
from tests.store.conftest import fake_result, make_bars


@pytest.fixture
async def dataset_id(db: Database, tmp_path) -> int:  # type: ignore[no-untyped-def]
    row = await save_dataset(db, FileBlobStore(tmp_path), make_bars(), name="d", symbol="T")
    return row.id


async def _new(db: Database, dataset_id: int, **kw) -> RunRow:  # type: ignore[no-untyped-def]
    return await runs.create_run(
        db, strategy="ema_crossover", dataset_id=dataset_id, params={"fast": 5},
        options={"initial_cash": 1e5}, **kw,
    )


async def _expire_lease(db: Database, run_id: str) -> None:
    async with db.session() as s:
        await s.execute(
            update(RunRow).where(RunRow.id == run_id).values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )


async def _age(db: Database, run_id: str, seconds: float) -> None:
    async with db.session() as s:
        await s.execute(
            update(RunRow).where(RunRow.id == run_id).values(created_at=utcnow() - timedelta(seconds=seconds))
        )


async def test_create_and_get(db: Database, dataset_id: int) -> None:
    run = await _new(db, dataset_id)
    got = await runs.get_run(db, run.id)
    assert got.status is RunStatus.QUEUED and got.attempt == 0 and got.seq == 1
    assert got.params == {"fast": 5} and got.max_attempts == 3 and len(got.id) == 36
    with pytest.raises(NotFoundError):
        await runs.get_run(db, "00000000-0000-0000-0000-000000000000")


async def test_claim_is_exclusive(db: Database, dataset_id: int) -> None:
    run = await _new(db, dataset_id)
    results = await asyncio.gather(*(runs.claim_run(db, run.id, f"w{i}", 30) for i in range(8)))
    assert sorted(results, key=lambda r: r or 0)[-1] == 1
    assert [r for r in results if r is not None] == [1]
    row = await runs.get_run(db, run.id)
    assert row.status is RunStatus.RUNNING and row.lease_owner in {f"w{i}" for i in range(8)}
    assert row.started_at is not None and row.lease_expires_at > utcnow()
    assert row.seq == 1 + runs.SEQ_ATTEMPT_GAP


async def test_expired_lease_is_claimed_again(db: Database, dataset_id: int) -> None:
    run = await _new(db, dataset_id)
    assert await runs.claim_run(db, run.id, "a", 30) == 1
    assert await runs.claim_run(db, run.id, "b", 30) is None  # lease still valid
    await _expire_lease(db, run.id)
    assert await runs.claim_run(db, run.id, "b", 30) == 2
    # The first worker no longer owns it: its heartbeat and its result are refused.
    assert await runs.heartbeat(db, run.id, 1, lease_s=30) == runs.Control(owned=False)
    assert not await runs.finish_run(db, run.id, 1, fake_result())
    assert await runs.finish_run(db, run.id, 2, fake_result())


async def test_out_of_attempts_fails_with_a_clear_error(db: Database, dataset_id: int) -> None:
    run = await _new(db, dataset_id)
    for attempt in (1, 2, 3):
        assert await runs.claim_run(db, run.id, "w", 30) == attempt
        await _expire_lease(db, run.id)
    assert await runs.claim_run(db, run.id, "w", 30) is None
    row = await runs.get_run(db, run.id)
    assert row.status is RunStatus.FAILED
    assert row.error == "run failed after 3 attempts: the worker processing it died each time"


async def test_heartbeat_extends_and_reports_cancel(db: Database, dataset_id: int) -> None:
    run = await _new(db, dataset_id)
    attempt = await runs.claim_run(db, run.id, "w", 2)
    assert attempt == 1
    before = (await runs.get_run(db, run.id)).lease_expires_at
    ctl = await runs.heartbeat(db, run.id, attempt, lease_s=60, progress=0.4, stage="simulating", seq=500)
    assert ctl == runs.Control(owned=True, cancel_requested=False)
    row = await runs.get_run(db, run.id)
    assert row.lease_expires_at > before and row.progress == 0.4 and row.stage == "simulating"
    assert row.seq == 500
    await runs.heartbeat(db, run.id, attempt, lease_s=60, seq=10)  # seq never goes back
    assert (await runs.get_run(db, run.id)).seq == 500
    await runs.cancel_run(db, run.id)
    assert (await runs.heartbeat(db, run.id, attempt, lease_s=60)).cancel_requested
    assert (await runs.get_control(db, run.id, attempt)) == runs.Control(True, True)
    assert (await runs.get_control(db, run.id, attempt + 1)).owned is False


async def test_finish_writes_everything_at_once(db: Database, dataset_id: int) -> None:
    run = await _new(db, dataset_id)
    attempt = await runs.claim_run(db, run.id, "w", 30)
    result = fake_result(n_bars=1000, n_trades=7)
    assert await runs.finish_run(db, run.id, attempt, result, seq=900)
    row = await runs.get_run(db, run.id)
    assert row.status is RunStatus.SUCCEEDED and row.progress == 1.0 and row.seq == 901
    assert row.metrics == {"sharpe": 1.5, "n_trades": 7, "total_return_pct": None}
    assert row.n_bars == 1000 and row.n_trades == 7 and row.duration_ms is not None
    assert row.monthly_returns == [{"year": 2023, "month": 11, "return_pct": 1.25}]
    trades = await runs.get_trades(db, run.id, first=100)
    assert [t.idx for t in trades] == list(range(7))
    assert trades[1].side == -1 and trades[-1].is_open and trades[0].extra == {"bars_held": 5}
    assert trades[2].entry_time == result.trades[2].entry_time
    page = await runs.get_trades(db, run.id, first=3, after=2)
    assert [t.idx for t in page] == [3, 4, 5]
    ts, eq = await runs.get_equity(db, run.id)
    np.testing.assert_array_equal(ts, result.ts)
    np.testing.assert_array_equal(eq, result.equity)
    async with db.session() as s:
        stored = await s.get(EquityRow, run.id)
    assert len(stored.ts_data) + len(stored.equity_data) < 1000 * 16 / 2  # compressed
    # Exactly once: a second finish (or a stale one) writes nothing.
    assert not await runs.finish_run(db, run.id, attempt, result)
    assert not await runs.fail_run(db, run.id, attempt, "late")
    assert (await runs.get_run(db, run.id)).status is RunStatus.SUCCEEDED


async def test_failed_finish_leaves_no_half_record(db: Database, dataset_id: int) -> None:
    run = await _new(db, dataset_id)
    attempt = await runs.claim_run(db, run.id, "w", 30)
    bad = fake_result()
    bad.ts = bad.ts[:-1]  # the equity encoder refuses mismatched arrays
    with pytest.raises(ValueError):
        await runs.finish_run(db, run.id, attempt, bad)
    assert (await runs.get_run(db, run.id)).status is RunStatus.RUNNING
    async with db.session() as s:
        assert (await s.execute(select(func.count()).select_from(TradeRow))).scalar() == 0


async def test_fail_run_records_the_error(db: Database, dataset_id: int) -> None:
    run = await _new(db, dataset_id)
    attempt = await runs.claim_run(db, run.id, "w", 30)
    assert await runs.fail_run(db, run.id, attempt, "params.fast: must be >= 2")
    row = await runs.get_run(db, run.id)
    assert row.status is RunStatus.FAILED and row.error == "params.fast: must be >= 2"
    assert row.finished_at is not None and row.lease_expires_at is None


async def test_cancel(db: Database, dataset_id: int) -> None:
    queued = await _new(db, dataset_id)
    row = await runs.cancel_run(db, queued.id)
    assert row.status is RunStatus.CANCELLED and row.seq == 2
    assert (await runs.cancel_run(db, queued.id)).status is RunStatus.CANCELLED
    assert await runs.claim_run(db, queued.id, "w", 30) is None

    running = await _new(db, dataset_id)
    attempt = await runs.claim_run(db, running.id, "w", 30)
    row = await runs.cancel_run(db, running.id)
    assert row.status is RunStatus.RUNNING and row.cancel_requested
    assert await runs.mark_cancelled(db, running.id, attempt)
    assert (await runs.get_run(db, running.id)).status is RunStatus.CANCELLED

    done = await _new(db, dataset_id)
    attempt = await runs.claim_run(db, done.id, "w", 30)
    await runs.finish_run(db, done.id, attempt, fake_result())
    with pytest.raises(ConflictError, match="already succeeded"):
        await runs.cancel_run(db, done.id)


async def test_release_hands_the_run_back(db: Database, dataset_id: int) -> None:
    run = await _new(db, dataset_id)
    attempt = await runs.claim_run(db, run.id, "w", 30)
    assert await runs.release_run(db, run.id, attempt)
    row = await runs.get_run(db, run.id)
    assert row.status is RunStatus.QUEUED and row.attempt == 0
    assert await runs.claim_run(db, run.id, "w2", 30) == 1


async def test_reaper(db: Database, dataset_id: int) -> None:
    fresh = await _new(db, dataset_id)
    lost = await _new(db, dataset_id)
    await _age(db, lost.id, 120)
    alive = await _new(db, dataset_id)
    await runs.claim_run(db, alive.id, "w", 30)
    orphan = await _new(db, dataset_id)
    await runs.claim_run(db, orphan.id, "w", 30)
    await _expire_lease(db, orphan.id)
    spent = await _new(db, dataset_id)
    for _ in range(3):
        await runs.claim_run(db, spent.id, "w", 30)
        await _expire_lease(db, spent.id)
    doomed = await _new(db, dataset_id)
    await runs.claim_run(db, doomed.id, "w", 30)
    await runs.cancel_run(db, doomed.id)
    await _expire_lease(db, doomed.id)

    result = await runs.reap(db, queued_grace_s=30)
    assert sorted(result.requeue) == sorted([(lost.id, 0), (orphan.id, 1)])
    assert result.failed == [spent.id] and result.cancelled == [doomed.id]
    assert fresh.id not in {r for r, _ in result.requeue}
    spent_row = await runs.get_run(db, spent.id)
    assert spent_row.status is RunStatus.FAILED and "after 3 attempts" in spent_row.error
    assert (await runs.get_run(db, doomed.id)).status is RunStatus.CANCELLED
    assert sorted(await runs.reap_expired(db)) == sorted([lost.id, orphan.id])


async def test_delete_run(db: Database, dataset_id: int) -> None:
    run = await _new(db, dataset_id)
    with pytest.raises(ConflictError):
        await runs.delete_run(db, run.id)
    attempt = await runs.claim_run(db, run.id, "w", 30)
    await runs.finish_run(db, run.id, attempt, fake_result())
    await runs.delete_run(db, run.id)
    with pytest.raises(NotFoundError):
        await runs.get_run(db, run.id)
    assert await runs.get_trades(db, run.id) == []
