"""Optimization lifecycle: the parent row, its batches (leased queue jobs) and its trial log.

The same rules as `store.runs`: every state change is one conditional UPDATE, so two
workers can never both own the coordinator of an optimization or one of its batches. A
batch is claimed (QUEUED, or RUNNING with an expired lease, attempts left) with a new
attempt number; its metrics are stored only while it is RUNNING under that attempt, so a
batch already done is a no-op. Trials are written by the coordinator after it tells the
optimizer a batch (inserting only trial numbers not stored yet: idempotent).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.sql import ColumnElement

from store.db import Database
from store.errors import BadInputError, ConflictError, NotFoundError
from store.models import (
    OptimizationBatchRow,
    OptimizationRow,
    OptimizationTrialRow,
    RunStatus,
    utcnow,
)
from store.pagination import Page, check_first, decode_cursor, encode_cursor
from store.results import json_safe
from store.scope import SYSTEM, Scope, get_visible, require_change

__all__ = [
    "OptReap",
    "add_batch",
    "cancel_optimization",
    "claim_batch",
    "claim_optimization",
    "create_optimization",
    "fail_batch",
    "finish_batch",
    "finish_optimization",
    "get_batches",
    "get_optimization",
    "heartbeat_optimization",
    "list_optimizations",
    "list_trials",
    "reap_optimizations",
    "record_trials",
]

Opt, Batch, TrialRow = OptimizationRow, OptimizationBatchRow, OptimizationTrialRow
SEQ_ATTEMPT_GAP = 100


async def create_optimization(db: Database, *, owner_id: int | None = None, **fields: Any) -> OptimizationRow:
    """Insert a QUEUED optimization (inputs already validated by the service)."""
    row = Opt(
        id=fields.pop("id", None) or str(uuid.uuid4()),
        status=RunStatus.QUEUED, seq=1, completed=0, attempt=0, max_attempts=3,
        cancel_requested=False, created_at=utcnow(), owner_id=owner_id, shared=False,
        **{k: json_safe(v) if isinstance(v, dict | list) else v for k, v in fields.items()},
    )
    async with db.session() as s:
        s.add(row)
    return row


async def get_optimization(db: Database, opt_id: str, *, scope: Scope = SYSTEM) -> OptimizationRow:
    """The optimization if `scope` sees it; NotFoundError (as for an unknown id) otherwise."""
    if scope is SYSTEM:
        async with db.session() as s:
            row = await s.get(Opt, str(opt_id))
        if row is None:
            raise NotFoundError("optimization", opt_id)
        return row
    return await get_visible(db, Opt, str(opt_id), scope, "optimization")


async def list_optimizations(
    db: Database, *, status: str | None = None, first: int | None = 50, after: str | None = None,
    scope: Scope = SYSTEM,
) -> Page[OptimizationRow]:
    """Newest first, keyset-paginated, with `total`."""
    size = check_first(first)
    filters: list[ColumnElement[bool]] = list(scope.visible(Opt))
    if status is not None:
        try:
            filters.append(Opt.status == RunStatus(str(status).upper()))
        except ValueError:
            raise BadInputError("status", f"unknown status {status!r}") from None
    q = select(Opt).where(*filters).order_by(Opt.created_at.desc(), Opt.id.desc())
    if after is not None:
        when_s, cid = decode_cursor(after, 2)
        try:
            when = datetime.fromisoformat(str(when_s))
        except ValueError:
            raise BadInputError("after", f"invalid cursor {after!r}") from None
        if when.tzinfo is None:
            raise BadInputError("after", f"invalid cursor {after!r}")
        cid = str(cid)
        q = q.where(or_(Opt.created_at < when, and_(Opt.created_at == when, Opt.id < cid)))
    async with db.session() as s:
        rows = list((await s.execute(q.limit(size + 1))).scalars())
        total = (await s.execute(select(func.count(Opt.id)).where(*filters))).scalar_one()
    more = len(rows) > size
    rows = rows[:size]
    cursors = [encode_cursor([r.created_at.isoformat(), r.id]) for r in rows]
    return Page(rows, cursors[-1] if more and cursors else None, cursors, total=int(total))


# -- the coordinator's lease ----------------------------------------------------------
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


async def claim_optimization(db: Database, opt_id: str, worker_id: str, lease_s: float) -> int | None:
    """Take the coordinator lease: the new attempt number, or None if not claimable."""
    now = utcnow()
    got = await _update(
        Opt, _claimable(Opt, and_(Opt.id == opt_id, Opt.cancel_requested.is_(False)), now),
        Opt.attempt, db,
        status=RunStatus.RUNNING, attempt=Opt.attempt + 1, lease_owner=worker_id,
        lease_expires_at=now + timedelta(seconds=lease_s),
        started_at=func.coalesce(Opt.started_at, now), seq=Opt.seq + SEQ_ATTEMPT_GAP,
    )
    if got is None:  # out of attempts with an expired lease: nobody will finish it
        await _update(
            Opt, and_(Opt.id == opt_id, Opt.status == RunStatus.RUNNING,
                      Opt.lease_expires_at < now, Opt.attempt >= Opt.max_attempts),
            Opt.id, db, status=RunStatus.FAILED, finished_at=now, seq=Opt.seq + 1,
            error="optimization failed after 3 attempts: its coordinator died each time",
        )
    return None if got is None else int(got[0])


def _owned(opt_id: str, attempt: int) -> ColumnElement[bool]:
    return and_(Opt.id == opt_id, Opt.status == RunStatus.RUNNING, Opt.attempt == attempt)


async def heartbeat_optimization(
    db: Database, opt_id: str, attempt: int, *, lease_s: float, seq: int | None = None,
) -> tuple[bool, bool]:
    """Extend the coordinator lease: (still owned, cancel requested)."""
    values: dict[str, Any] = {"lease_expires_at": utcnow() + timedelta(seconds=lease_s)}
    if seq is not None:
        values["seq"] = case((Opt.seq < seq, seq), else_=Opt.seq)
    got = await _update(Opt, _owned(opt_id, attempt), Opt.cancel_requested, db, **values)
    return (False, False) if got is None else (True, bool(got[0]))


async def finish_optimization(
    db: Database, opt_id: str, attempt: int, status: RunStatus, *, best: Any = None,
    result: Any = None, error: str | None = None, seq: int = 0,
) -> bool:
    """End the optimization (SUCCEEDED, FAILED or CANCELLED) if the caller still owns it."""
    now = utcnow()
    async with db.session() as s:
        row = await s.get(Opt, opt_id)
        started = row.started_at if row is not None else None
    got = await _update(
        Opt, _owned(opt_id, attempt), Opt.id, db,
        status=status, best=json_safe(best), result=json_safe(result), error=error,
        finished_at=now, lease_owner=None, lease_expires_at=None,
        duration_ms=int((now - started).total_seconds() * 1000) if started else None,
        seq=case((Opt.seq < seq + 1, seq + 1), else_=Opt.seq + 1),
    )
    return got is not None


async def cancel_optimization(db: Database, opt_id: str, *, scope: Scope = SYSTEM) -> OptimizationRow:
    """QUEUED -> CANCELLED at once; RUNNING -> cancel_requested (the coordinator ends it)."""
    row = await get_optimization(db, opt_id, scope=scope)
    require_change(row, scope, "optimization", opt_id)
    if row.terminal:
        if RunStatus(row.status) == RunStatus.CANCELLED:
            return row
        raise ConflictError(f"optimization {opt_id} is already {RunStatus(row.status).value}")
    async with db.session() as s:
        await s.execute(update(Opt).where(Opt.id == opt_id, Opt.status == RunStatus.QUEUED).values(
            status=RunStatus.CANCELLED, finished_at=utcnow(), seq=Opt.seq + 1,
            cancel_requested=True))
        await s.execute(update(Opt).where(Opt.id == opt_id, Opt.status == RunStatus.RUNNING).values(
            cancel_requested=True))
        await s.execute(update(Batch).where(Batch.optimization_id == opt_id,
                                            Batch.status == RunStatus.QUEUED).values(
            status=RunStatus.CANCELLED))
    return await get_optimization(db, opt_id)


# -- batches ----------------------------------------------------------------------------
async def add_batch(
    db: Database, opt_id: str, number: int, first_trial: int, params: list[dict[str, Any]]
) -> OptimizationBatchRow:
    """The stored batch `number` (inserted QUEUED unless a previous coordinator stored it)."""
    async with db.session() as s:
        row = await s.get(Batch, (opt_id, number))
        if row is not None:
            return row
        row = Batch(optimization_id=opt_id, number=number, first_trial=first_trial,
                    params=json_safe(params), status=RunStatus.QUEUED, attempt=0,
                    max_attempts=3, created_at=utcnow())
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
    db: Database, opt_id: str, number: int, attempt: int, metrics: dict[str, list[Any]], seconds: float
) -> bool:
    """Store a batch's metrics once (only while RUNNING under `attempt`)."""
    got = await _update(
        Batch, _batch_owned(opt_id, number, attempt), Batch.number, db,
        status=RunStatus.SUCCEEDED, metrics=json_safe(metrics), seconds=float(seconds),
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
        s.add_all(
            TrialRow(optimization_id=opt_id, number=int(t["number"]), batch=int(t["batch"]),
                     params=json_safe(t["params"]), metrics=json_safe(t["metrics"]),
                     values=json_safe(list(t["values"])), feasible=bool(t["feasible"]),
                     violations=list(t["violations"]), seconds=float(t["seconds"]))
            for t in trials if int(t["number"]) not in have
        )
    return True


async def list_trials(
    db: Database, opt_id: str, *, first: int | None = 50, after: str | None = None,
    order_by: str | None = None,
) -> Page[OptimizationTrialRow]:
    """Trials by number, or by `[-]<metric>` (missing values last), keyset-paginated."""
    size = check_first(first)
    q = select(TrialRow).where(TrialRow.optimization_id == opt_id)
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
            TrialRow.optimization_id == opt_id))).scalar_one()
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


# -- the reaper -------------------------------------------------------------------------
@dataclass
class OptReap:
    """Coordinators and batches to enqueue again: (id, attempt), ((id, number), attempt)."""

    coordinators: list[tuple[str, int]] = field(default_factory=list)
    batches: list[tuple[str, int, int]] = field(default_factory=list)


async def reap_optimizations(db: Database, *, queued_grace_s: float = 30.0) -> OptReap:
    """Coordinators and batches whose lease expired, or left QUEUED past the grace period
    (a lost enqueue); their next claim decides the rest."""
    now = utcnow()
    old = now - timedelta(seconds=queued_grace_s)
    out = OptReap()
    async with db.session() as s:
        for oid, att in await s.execute(select(Opt.id, Opt.attempt).where(or_(
                and_(Opt.status == RunStatus.RUNNING, Opt.lease_expires_at < now),
                and_(Opt.status == RunStatus.QUEUED, Opt.created_at < old)))):
            out.coordinators.append((oid, int(att)))
        for oid, num, att in await s.execute(
                select(Batch.optimization_id, Batch.number, Batch.attempt).join(
                    Opt, Opt.id == Batch.optimization_id).where(
                    or_(and_(Batch.status == RunStatus.RUNNING, Batch.lease_expires_at < now),
                        and_(Batch.status == RunStatus.QUEUED, Batch.created_at < old)),
                    Opt.status == RunStatus.RUNNING)):
            out.batches.append((oid, int(num), int(att)))
    return out
