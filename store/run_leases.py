"""A run's lease, below `store.runs`: the conditional UPDATE every state change is made of,
settling orphaned runs (lease expired) that must not run again, and the reaper pass.

`store.runs` re-exports `ReapResult`, `reap` and `reap_expired`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from store.db import Database
from store.models import RunRow, RunStatus, utcnow

__all__ = ["ReapResult", "attempts_error", "reap", "reap_expired"]


def attempts_error(attempts: int) -> str:
    return f"run failed after {attempts} attempts: the worker processing it died each time"


@dataclass
class ReapResult:
    """One reaper pass: (run id, attempt) pairs to enqueue again, and runs it settled."""

    requeue: list[tuple[str, int]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)


def _greatest_seq(seq: int) -> ColumnElement[int]:
    return case((RunRow.seq < seq, seq), else_=RunRow.seq)


def _owned(run_id: str, attempt: int) -> ColumnElement[bool]:
    return and_(
        RunRow.id == run_id, RunRow.status == RunStatus.RUNNING, RunRow.attempt == attempt
    )


def _orphaned(now: datetime) -> ColumnElement[bool]:
    return and_(RunRow.status == RunStatus.RUNNING, RunRow.lease_expires_at < now)


def _claimable(run_id: str, now: datetime) -> ColumnElement[bool]:
    return and_(
        RunRow.id == run_id,
        RunRow.cancel_requested.is_(False),
        or_(RunRow.status == RunStatus.QUEUED, _orphaned(now)),
    )


async def _update(s: AsyncSession, where: ColumnElement[bool], returning: Any, **values: Any) -> Any:
    stmt = (
        update(RunRow)
        .where(where)
        .values(**values)
        .returning(returning)
        .execution_options(synchronize_session=False)
    )
    return (await s.execute(stmt)).first()


async def _settle_orphan(
    s: AsyncSession, row: RunRow, now: datetime, max_attempts: int | None = None
) -> str | None:
    """An orphaned (lease expired) run that must not run again: CANCELLED or FAILED."""
    where = and_(RunRow.id == row.id, RunRow.attempt == row.attempt, _orphaned(now))
    common = {"finished_at": now, "lease_expires_at": None, "seq": RunRow.seq + 1}
    if row.cancel_requested:
        done = await _update(
            s, where, RunRow.id, status=RunStatus.CANCELLED, stage="cancelled", **common
        )
        return "cancelled" if done else None
    if row.attempt >= (max_attempts or row.max_attempts):
        done = await _update(
            s,
            where,
            RunRow.id,
            status=RunStatus.FAILED,
            stage="failed",
            error=attempts_error(row.attempt),
            **common,
        )
        return "failed" if done else None
    return None


async def reap(
    db: Database,
    *,
    queued_grace_s: float = 30.0,
    max_attempts: int | None = None,
    max_requeue: int = 200,
) -> ReapResult:
    """One reaper pass over orphaned and forgotten runs.

    RUNNING runs whose lease expired are re-enqueued (or FAILED when out of attempts,
    CANCELLED when a cancel was pending); QUEUED runs older than `queued_grace_s` are
    re-enqueued too, in case their enqueue was lost (enqueueing is idempotent).
    """
    now = utcnow()
    out = ReapResult()
    async with db.session() as s:
        orphans = list((await s.execute(select(RunRow).where(_orphaned(now)))).scalars())
        for row in orphans:
            limit = min(row.max_attempts, max_attempts or row.max_attempts)
            settled = await _settle_orphan(s, row, now, limit)
            if settled == "failed":
                out.failed.append(row.id)
            elif settled == "cancelled":
                out.cancelled.append(row.id)
            elif settled is None and row.attempt < limit:
                out.requeue.append((row.id, row.attempt))
        # Oldest first and bounded: with a long backlog most of these are merely waiting,
        # and re-enqueueing them is a no-op that still costs a Redis round trip each.
        lost = await s.execute(
            select(RunRow.id, RunRow.attempt)
            .where(
                RunRow.status == RunStatus.QUEUED,
                RunRow.created_at < now - timedelta(seconds=queued_grace_s),
            )
            .order_by(RunRow.created_at)
            .limit(max_requeue)
        )
        out.requeue.extend((rid, int(att)) for rid, att in lost)
    return out


async def reap_expired(
    db: Database, *, max_attempts: int | None = None, queued_grace_s: float = 30.0
) -> list[str]:
    """Ids of runs to enqueue again (see `reap`); runs out of attempts become FAILED."""
    result = await reap(db, queued_grace_s=queued_grace_s, max_attempts=max_attempts)
    return [run_id for run_id, _ in result.requeue]
