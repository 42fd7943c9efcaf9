"""Run lifecycle: the database is the only authority on a run's state.

Every state change is one conditional UPDATE, so two workers (or a worker and the
reaper) can never both own a run: `claim_run` takes QUEUED runs and RUNNING ones whose
lease expired; `heartbeat`, `finish_run`, `fail_run` and `mark_cancelled` only act
while the run is still RUNNING under the caller's attempt number. `seq` orders a
run's events so subscribers can resume; it grows on every status change.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, select, update

from store.db import Database
from store.errors import ConflictError, NotFoundError
from store.models import EquityRow, RunRow, RunStatus, TradeRow, utcnow
from store.results import encode_equity, json_safe, trade_rows
from store.run_leases import (
    ReapResult,
    _claimable,
    _greatest_seq,
    _owned,
    _settle_orphan,
    _update,
    reap,
    reap_expired,
)
from store.run_queries import get_equity, get_trades, list_runs, run_stats, visible_run_ids
from store.run_view import RunView, read_run
from store.scope import SYSTEM, Scope, require_change
from store.strategy_usage import note_run_success

__all__ = [
    "SEQ_ATTEMPT_GAP",
    "Control",
    "ReapResult",
    "RunView",
    "cancel_run",
    "claim_run",
    "create_run",
    "delete_run",
    "fail_run",
    "finish_run",
    "get_control",
    "get_equity",
    "get_run",
    "get_trades",
    "heartbeat",
    "list_runs",
    "mark_cancelled",
    "read_run",
    "reap",
    "reap_expired",
    "release_run",
    "run_stats",
    "visible_run_ids",
]

# A new attempt jumps `seq` ahead: the attempt before it may have published progress
# events numbered past its last persisted heartbeat, and subscribers drop stale numbers.
SEQ_ATTEMPT_GAP = 100
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Control:
    """What a worker learns from a heartbeat: does it still own the run, is cancel asked."""

    owned: bool
    cancel_requested: bool = False


async def create_run(
    db: Database,
    *,
    strategy: str,
    dataset_id: int,
    params: dict[str, Any],
    options: dict[str, Any],
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    run_id: str | None = None,
    owner_id: int | None = None,
) -> RunRow:
    """Insert a QUEUED run owned by `owner_id` (params and options already validated)."""
    row = RunRow(
        id=run_id or str(uuid.uuid4()),
        status=RunStatus.QUEUED,
        seq=1,
        progress=0.0,
        stage="queued",
        strategy=strategy,
        dataset_id=dataset_id,
        params=json_safe(params),
        options=json_safe(options),
        created_at=utcnow(),
        attempt=0,
        max_attempts=max_attempts,
        cancel_requested=False,
        owner_id=owner_id,
        shared=False,
    )
    async with db.session() as s:
        s.add(row)
    return row


async def get_run(db: Database, run_id: str, *, scope: Scope = SYSTEM) -> RunRow:
    """The run if `scope` sees it; NotFoundError (as for an unknown id) otherwise."""
    # One statement, read outside a transaction (`Database.read`): the API's hottest read.
    async with db.read() as s:
        if scope is SYSTEM:
            row = await s.get(RunRow, str(run_id))
        else:
            q = select(RunRow).where(RunRow.id == str(run_id), *scope.visible(RunRow))
            row = (await s.execute(q)).scalar_one_or_none()
    if row is None:
        raise NotFoundError("run", run_id)
    return row


async def claim_run(db: Database, run_id: str, worker_id: str, lease_s: float) -> int | None:
    """Take the run for `worker_id`: returns the new attempt number, or None if not claimable.

    One conditional UPDATE ... RETURNING: QUEUED, or RUNNING with an expired lease, and
    attempts left. A run out of attempts is marked FAILED instead (and None returned).
    """
    now = utcnow()
    async with db.session() as s:
        got = await _update(
            s,
            and_(_claimable(run_id, now), RunRow.attempt < RunRow.max_attempts),
            RunRow.attempt,
            status=RunStatus.RUNNING,
            attempt=RunRow.attempt + 1,
            lease_owner=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_s),
            started_at=now,
            progress=0.0,
            stage="starting",
            error=None,
            seq=RunRow.seq + SEQ_ATTEMPT_GAP,
        )
        if got is not None:
            return int(got[0])
        row = await s.get(RunRow, run_id)
        if row is not None and row.status == RunStatus.RUNNING:
            await _settle_orphan(s, row, now)
    return None


async def heartbeat(
    db: Database,
    run_id: str,
    attempt: int,
    *,
    lease_s: float,
    progress: float | None = None,
    stage: str | None = None,
    seq: int | None = None,
) -> Control:
    """Extend the lease (only while RUNNING under `attempt`) and report cancel requests.

    `seq` persists the newest event number the worker has published.
    """
    values: dict[str, Any] = {"lease_expires_at": utcnow() + timedelta(seconds=lease_s)}
    if progress is not None:
        values["progress"] = min(max(float(progress), 0.0), 1.0)
    if stage is not None:
        values["stage"] = stage[:32]
    if seq is not None:
        values["seq"] = _greatest_seq(seq)
    async with db.session() as s:
        got = await _update(s, _owned(run_id, attempt), RunRow.cancel_requested, **values)
    if got is None:
        return Control(owned=False)
    return Control(owned=True, cancel_requested=bool(got[0]))


async def get_control(db: Database, run_id: str, attempt: int) -> Control:
    """Read-only ownership and cancel check, cheap enough to run between engine chunks."""
    async with db.session() as s:
        got = (
            await s.execute(
                select(RunRow.status, RunRow.attempt, RunRow.cancel_requested).where(
                    RunRow.id == run_id
                )
            )
        ).first()
    if got is None or got[0] != RunStatus.RUNNING or got[1] != attempt:
        return Control(owned=False)
    return Control(owned=True, cancel_requested=bool(got[2]))


async def finish_run(
    db: Database, run_id: str, attempt: int, result: Any, *, seq: int = 0
) -> bool:
    """Trades + equity + metrics + SUCCEEDED (and the strategy's best metrics) in ONE
    transaction, if still owned.

    `result` is an engine BacktestResult. Returns False (and writes nothing) when the run
    is no longer RUNNING under `attempt`: another attempt or a cancel owns it now.
    """
    trades, (ts_data, eq_data, encoding), metrics = await asyncio.to_thread(
        _encode_result, run_id, result
    )
    now = utcnow()
    async with db.session() as s:
        got = await _update(
            s,
            _owned(run_id, attempt),
            RunRow.started_at,
            status=RunStatus.SUCCEEDED,
            progress=1.0,
            stage="done",
            metrics=metrics,
            monthly_returns=json_safe(list(result.monthly_returns)),
            engine_info=json_safe(dict(result.engine)),
            n_bars=len(result.ts),
            n_trades=len(trades),
            finished_at=now,
            lease_expires_at=None,
            error=None,
            seq=_greatest_seq(seq) + 1,
        )
        if got is None:
            return False
        name = (await s.execute(select(RunRow.strategy).where(RunRow.id == run_id))).scalar_one()
        await note_run_success(s, name, run_id, metrics)
        started: datetime | None = got[0]
        if started is not None:
            duration = int((now - started).total_seconds() * 1000)
            await s.execute(update(RunRow).where(RunRow.id == run_id).values(duration_ms=duration))
        await s.execute(delete(TradeRow).where(TradeRow.run_id == run_id))
        await s.execute(delete(EquityRow).where(EquityRow.run_id == run_id))
        if trades:
            await s.execute(insert(TradeRow), trades)
        s.add(
            EquityRow(
                run_id=run_id,
                n_points=len(result.ts),
                encoding=encoding,
                ts_data=ts_data,
                equity_data=eq_data,
            )
        )
    return True


def _encode_result(run_id: str, result: Any) -> tuple[list[dict[str, Any]], tuple[bytes, bytes, str], Any]:
    """CPU work of saving a result (compression, row building), done off the event loop."""
    return (
        trade_rows(run_id, result.trades),
        encode_equity(result.ts, result.equity),
        json_safe(dict(result.metrics)),
    )


async def _end(
    db: Database, run_id: str, attempt: int, status: RunStatus, seq: int, **values: Any
) -> bool:
    now = utcnow()
    async with db.session() as s:
        got = await _update(
            s,
            _owned(run_id, attempt),
            RunRow.started_at,
            status=status,
            finished_at=now,
            lease_expires_at=None,
            seq=_greatest_seq(seq) + 1,
            **values,
        )
        if got is not None and got[0] is not None:
            duration = int((now - got[0]).total_seconds() * 1000)
            await s.execute(update(RunRow).where(RunRow.id == run_id).values(duration_ms=duration))
    return got is not None


async def fail_run(db: Database, run_id: str, attempt: int, error: str, *, seq: int = 0) -> bool:
    """Mark FAILED with a readable `error`, if still RUNNING under `attempt`."""
    return await _end(
        db, run_id, attempt, RunStatus.FAILED, seq, stage="failed", error=str(error)[:4000]
    )


async def mark_cancelled(db: Database, run_id: str, attempt: int, *, seq: int = 0) -> bool:
    """The worker honours a cancel request: CANCELLED, if still RUNNING under `attempt`."""
    return await _end(db, run_id, attempt, RunStatus.CANCELLED, seq, stage="cancelled")


async def release_run(db: Database, run_id: str, attempt: int, *, seq: int = 0) -> bool:
    """A worker shutting down hands the run back: QUEUED again, this attempt not counted."""
    async with db.session() as s:
        got = await _update(
            s,
            _owned(run_id, attempt),
            RunRow.id,
            status=RunStatus.QUEUED,
            attempt=RunRow.attempt - 1,
            stage="queued",
            progress=0.0,
            lease_owner=None,
            lease_expires_at=None,
            seq=_greatest_seq(seq) + 1,
        )
    return got is not None


async def cancel_run(db: Database, run_id: str, *, scope: Scope = SYSTEM) -> RunRow:
    """QUEUED -> CANCELLED at once; RUNNING -> cancel_requested (the worker ends it).

    Cancelling a cancelled run is a no-op; a SUCCEEDED or FAILED one is a ConflictError.
    Only the run's owner or an admin may (`scope`).
    """
    row = await get_run(db, run_id, scope=scope)
    require_change(row, scope, "run", run_id)
    now = utcnow()
    async with db.session() as s:
        if row.status == RunStatus.QUEUED:
            await _update(
                s,
                and_(RunRow.id == run_id, RunRow.status == RunStatus.QUEUED),
                RunRow.id,
                status=RunStatus.CANCELLED,
                stage="cancelled",
                finished_at=now,
                cancel_requested=True,
                seq=RunRow.seq + 1,
            )
        # Also covers a QUEUED run claimed a moment ago: the worker sees the flag.
        await _update(
            s,
            and_(RunRow.id == run_id, RunRow.status == RunStatus.RUNNING),
            RunRow.id,
            cancel_requested=True,
        )
    row = await get_run(db, run_id)
    if row.status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
        raise ConflictError(
            f"run {run_id} already {row.status.value.lower()}; only queued or running runs "
            "can be cancelled"
        )
    return row


async def delete_run(db: Database, run_id: str, *, scope: Scope = SYSTEM) -> None:
    """Delete a finished run with its trades and equity; ConflictError while it is active."""
    row = await get_run(db, run_id, scope=scope)
    require_change(row, scope, "run", run_id)
    if not row.terminal:
        raise ConflictError(f"run {run_id} is {row.status.value.lower()}; cancel it first")
    async with db.session() as s:
        await s.execute(delete(TradeRow).where(TradeRow.run_id == run_id))
        await s.execute(delete(EquityRow).where(EquityRow.run_id == run_id))
        await s.execute(delete(RunRow).where(RunRow.id == run_id))
