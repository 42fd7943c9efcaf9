"""Optimization lifecycle: the parent row, its coordinator lease, cancel and the reaper.

The same rules as `store.runs`: every state change is one conditional UPDATE, so two
workers can never both own the coordinator of an optimization or one of its batches. A
batch is claimed (QUEUED, or RUNNING with an expired lease, attempts left) with a new
attempt number; its metrics are stored only while it is RUNNING under that attempt, so a
batch already done is a no-op. Trials are written by the coordinator after it tells the
optimizer a batch (inserting only trial numbers not stored yet: idempotent).

Batches and the trial log live in `store.optimization_trials`; their functions are
re-exported here, so `from store import optimizations as opt_store; opt_store.X` works
for every public name of both modules.
"""

from __future__ import annotations

import uuid
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
    RunStatus,
    utcnow,
)
from store.optimization_trials import (
    _claimable,
    _owned,
    _update,
    add_batch,
    claim_batch,
    ended_batches,
    extend_batch,
    fail_batch,
    finish_batch,
    get_batches,
    list_trials,
    record_trials,
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
    "claimable_optimizations",
    "create_optimization",
    "ended_batches",
    "extend_batch",
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

Opt, Batch = OptimizationRow, OptimizationBatchRow
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


# -- the coordinator's lease (helpers shared with batches: store.optimization_trials)
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
    if got is None:
        orphaned = and_(Opt.id == opt_id, Opt.status == RunStatus.RUNNING,
                        Opt.lease_expires_at < now)
        # Cancel requested, then its coordinator died before it saw the request.
        await _update(Opt, and_(orphaned, Opt.cancel_requested.is_(True)), Opt.id, db,
                      status=RunStatus.CANCELLED, finished_at=now, seq=Opt.seq + 1)
        # Out of attempts with an expired lease: nobody will finish it.
        await _update(
            Opt, and_(orphaned, Opt.attempt >= Opt.max_attempts), Opt.id, db,
            status=RunStatus.FAILED, finished_at=now, seq=Opt.seq + 1,
            error="optimization failed after 3 attempts: its coordinator died each time",
        )
    return None if got is None else int(got[0])


async def claimable_optimizations(db: Database, *, limit: int) -> list[str]:
    """Ids `claim_optimization` would take (or end: out of attempts, or cancel requested
    before its coordinator died), oldest first:
    what each worker's coordinator loop (`workers.coordinator`) looks for."""
    now = utcnow()
    q = select(Opt.id).where(or_(
        _claimable(Opt, Opt.cancel_requested.is_(False), now),
        and_(Opt.status == RunStatus.RUNNING, Opt.lease_expires_at < now,
             or_(Opt.attempt >= Opt.max_attempts, Opt.cancel_requested.is_(True))),
    )).order_by(Opt.created_at, Opt.id).limit(max(int(limit), 0))
    async with db.session() as s:
        return [str(i) for i in (await s.execute(q)).scalars()]


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
    result: Any = None, error: str | None = None, seq: int = 0, walk_forward: Any = None,
) -> bool:
    """End the optimization (SUCCEEDED, FAILED or CANCELLED) if the caller still owns it."""
    now = utcnow()
    async with db.session() as s:
        row = await s.get(Opt, opt_id)
        started = row.started_at if row is not None else None
    got = await _update(
        Opt, _owned(opt_id, attempt), Opt.id, db,
        status=status, best=json_safe(best), result=json_safe(result), error=error,
        walk_forward=json_safe(walk_forward), finished_at=now, lease_owner=None, lease_expires_at=None,
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
