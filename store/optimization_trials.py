"""An optimization's batches (leased queue jobs) and its trial log.

A batch is claimed (QUEUED, or RUNNING with an expired lease, attempts left) with a new
attempt number; its metrics are stored only while it is RUNNING under that attempt, so a
batch already done is a no-op. Trials are written by the coordinator after it tells the
optimizer a batch (inserting only trial numbers not stored yet: idempotent), and only
while it still holds the coordinator lease.

Also holds the conditional-UPDATE helpers `store.optimizations` shares. Callers use
`store.optimizations` (which re-exports everything public here).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.sql import ColumnElement

from store.db import Database
from store.errors import BadInputError
from store.models import (
    TERMINAL_STATUSES,
    OptimizationBatchRow,
    OptimizationRow,
    OptimizationTrialRow,
    RunStatus,
    utcnow,
)
from store.pagination import Page, check_first, decode_cursor, encode_cursor
from store.results import json_safe

__all__ = [
    "add_batch",
    "claim_batch",
    "ended_batches",
    "extend_batch",
    "fail_batch",
    "finish_batch",
    "get_batches",
    "list_trials",
    "record_trials",
]

Opt, Batch, TrialRow = OptimizationRow, OptimizationBatchRow, OptimizationTrialRow


# -- conditional updates (the leases of coordinators and batches) -----------------------
def _claimable(model: Any, where: ColumnElement[bool], now: Any) -> ColumnElement[bool]:
    return and_(
        where,
        model.attempt < model.max_attempts,
        or_(model.status == RunStatus.QUEUED,
            and_(model.status == RunStatus.RUNNING, model.lease_expires_at < now)),
    )


async def _update(model: Any, where: ColumnElement[bool], returning: Any, db: Database, **values: Any) -> Any:
    stmt = update(model).where(where).values(**values).returning(returning)
    async with db.session() as s:
        return (await s.execute(stmt.execution_options(synchronize_session=False))).first()


def _owned(opt_id: str, attempt: int) -> ColumnElement[bool]:
    return and_(Opt.id == opt_id, Opt.status == RunStatus.RUNNING, Opt.attempt == attempt)


# -- batches ----------------------------------------------------------------------------
async def add_batch(
    db: Database, opt_id: str, number: int, first_trial: int, params: list[dict[str, Any]],
    *, window: int | None = None,
) -> OptimizationBatchRow:
    """The stored batch `number` (inserted QUEUED unless a previous coordinator stored it);
    `window` is the walk-forward window it searches."""
    async with db.session() as s:
        row = await s.get(Batch, (opt_id, number))
        if row is not None:
            return row
        row = Batch(optimization_id=opt_id, number=number, first_trial=first_trial,
                    params=json_safe(params), status=RunStatus.QUEUED, attempt=0,
                    max_attempts=3, created_at=utcnow(), window=window)
        s.add(row)
    return row


def _batch_key(opt_id: str, number: int) -> ColumnElement[bool]:
    return and_(Batch.optimization_id == opt_id, Batch.number == number)


async def claim_batch(db: Database, opt_id: str, number: int, worker_id: str, lease_s: float) -> int | None:
    """Take one batch (QUEUED or lease expired, attempts left): its new attempt, or None."""
    now = utcnow()
    live = select(Opt.id).where(Opt.id == opt_id, Opt.status == RunStatus.RUNNING,
                                Opt.cancel_requested.is_(False)).exists()
    got = await _update(
        Batch, and_(_claimable(Batch, _batch_key(opt_id, number), now), live), Batch.attempt, db,
        status=RunStatus.RUNNING, attempt=Batch.attempt + 1, lease_owner=worker_id,
        lease_expires_at=now + timedelta(seconds=lease_s),
    )
    if got is not None:
        return int(got[0])
    # Out of attempts with an expired lease: the batch fails (so does its optimization).
    await _update(
        Batch, and_(_batch_key(opt_id, number), Batch.status == RunStatus.RUNNING,
                    Batch.lease_expires_at < now, Batch.attempt >= Batch.max_attempts),
        Batch.number, db, status=RunStatus.FAILED,
        error="batch failed after 3 attempts: the worker processing it died each time",
    )
    return None


def _batch_owned(opt_id: str, number: int, attempt: int) -> ColumnElement[bool]:
    return and_(_batch_key(opt_id, number), Batch.status == RunStatus.RUNNING,
                Batch.attempt == attempt)


async def extend_batch(db: Database, opt_id: str, number: int, attempt: int, lease_s: float) -> bool:
    """Heartbeat of a batch being evaluated."""
    got = await _update(Batch, _batch_owned(opt_id, number, attempt), Batch.number, db,
                        lease_expires_at=utcnow() + timedelta(seconds=lease_s))
    return got is not None


async def finish_batch(
    db: Database, opt_id: str, number: int, attempt: int, metrics: dict[str, list[Any]], seconds: float,
    *, oos_metrics: dict[str, list[Any]] | None = None, blocks: bytes | None = None,
) -> bool:
    """Store a batch's metrics once (only while RUNNING under `attempt`), with its
    out-of-sample metrics and PBO blocks when there are any."""
    got = await _update(
        Batch, _batch_owned(opt_id, number, attempt), Batch.number, db,
        status=RunStatus.SUCCEEDED, metrics=json_safe(metrics), seconds=float(seconds),
        oos_metrics=json_safe(oos_metrics), blocks=blocks,
        finished_at=utcnow(), lease_owner=None, lease_expires_at=None,
    )
    return got is not None


async def fail_batch(db: Database, opt_id: str, number: int, attempt: int, error: str) -> bool:
    """A batch whose evaluation raised (bad parameters, engine error): FAILED for good."""
    got = await _update(Batch, _batch_owned(opt_id, number, attempt), Batch.number, db,
                        status=RunStatus.FAILED, error=error[:2000], finished_at=utcnow(),
                        lease_owner=None, lease_expires_at=None)
    return got is not None


async def get_batches(db: Database, opt_id: str, numbers: Sequence[int] | None = None) -> list[OptimizationBatchRow]:
    """Batches of an optimization in number order (only `numbers` if given)."""
    q = select(Batch).where(Batch.optimization_id == opt_id).order_by(Batch.number)
    if numbers is not None:
        q = q.where(Batch.number.in_(list(numbers)))
    async with db.session() as s:
        return list((await s.execute(q)).scalars())


async def ended_batches(db: Database, opt_id: str, numbers: Sequence[int]) -> list[int]:
    """Which of `numbers` are in a terminal state (a cheap poll: no params or metrics)."""
    q = select(Batch.number).where(Batch.optimization_id == opt_id,
                                   Batch.number.in_(list(numbers)),
                                   Batch.status.in_(list(TERMINAL_STATUSES)))
    async with db.read() as s:
        return sorted((await s.execute(q)).scalars())


# -- trials -----------------------------------------------------------------------------
async def record_trials(
    db: Database, opt_id: str, attempt: int, trials: Sequence[dict[str, Any]], *,
    completed: int, total: int, best: Any, seq: int,
) -> bool:
    """Store told trials (numbers not stored yet) and the progress, if still the coordinator."""
    async with db.session() as s:
        got = (await s.execute(
            update(Opt).where(_owned(opt_id, attempt))
            .values(completed=completed, total=total, best=json_safe(best),
                    seq=case((Opt.seq < seq, seq), else_=Opt.seq))
            .returning(Opt.id).execution_options(synchronize_session=False)
        )).first()
        if got is None:
            return False
        numbers = [int(t["number"]) for t in trials]
        have = set((await s.execute(select(TrialRow.number).where(
            TrialRow.optimization_id == opt_id, TrialRow.number.in_(numbers)))).scalars())
        rows = [
            {"optimization_id": opt_id, "number": int(t["number"]), "batch": int(t["batch"]),
             "params": json_safe(t["params"]), "metrics": json_safe(t["metrics"]),
             "values": json_safe(list(t["values"])), "feasible": bool(t["feasible"]),
             "violations": list(t["violations"]), "seconds": float(t["seconds"]),
             "window": t.get("window"), "oos_metrics": json_safe(t.get("oos_metrics"))}
            for t in trials if int(t["number"]) not in have
        ]
        if rows:  # one executemany: the ORM's unit of work cost ~0.3 ms a trial
            await s.execute(insert(TrialRow), rows)
    return True


async def list_trials(
    db: Database, opt_id: str, *, first: int | None = 50, after: str | None = None,
    order_by: str | None = None, window: int | None = None,
) -> Page[OptimizationTrialRow]:
    """Trials by number, or by `[-]<metric>` (missing values last), keyset-paginated; only
    walk-forward window `window`'s when given."""
    size = check_first(first)
    where = [TrialRow.optimization_id == opt_id]
    if window is not None:
        where.append(TrialRow.window == window)
    q = select(TrialRow).where(*where)
    if not order_by or order_by.lstrip("-+") == "number":
        desc = bool(order_by and order_by.startswith("-"))
        q = q.order_by(TrialRow.number.desc() if desc else TrialRow.number)
        if after is not None:
            n = _cursor_int(decode_cursor(after, 1)[0])
            q = q.where(TrialRow.number < n if desc else TrialRow.number > n)
        metric = None
    else:
        desc = order_by.startswith("-")
        metric = order_by.lstrip("-+")
        if not metric.replace("_", "").isalnum() or len(metric) > 64:
            raise BadInputError("orderBy", f"unknown metric {metric!r}")
        expr = TrialRow.metrics[metric].as_float()
        q = q.order_by(case((expr.is_(None), 1), else_=0), expr.desc() if desc else expr.asc(),
                       TrialRow.number)
        if after is not None:
            is_null, value, n = decode_cursor(after, 3)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise BadInputError("after", f"invalid cursor {after!r}")
            later = TrialRow.number > _cursor_int(n)
            if is_null:
                q = q.where(expr.is_(None), later)
            else:
                past = expr < value if desc else expr > value
                q = q.where(or_(past, and_(expr == value, later), expr.is_(None)))
    async with db.session() as s:
        rows = list((await s.execute(q.limit(size + 1))).scalars())
        total = (await s.execute(select(func.count()).select_from(TrialRow).where(
            *where))).scalar_one()
    more = len(rows) > size
    rows = rows[:size]
    if metric is None:
        cursors = [encode_cursor([r.number]) for r in rows]
    else:
        cursors = []
        for r in rows:
            v = (r.metrics or {}).get(metric)
            v = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
            cursors.append(encode_cursor([v is None, v, r.number]))
    return Page(rows, cursors[-1] if more and cursors else None, cursors, total=int(total))


def _cursor_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInputError("after", "invalid cursor")
    return value
