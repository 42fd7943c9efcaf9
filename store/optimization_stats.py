"""Counts over the optimizations a scope sees: by status, trials evaluated, throughput."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from store.db import Database
from store.models import OptimizationRow, RunStatus
from store.scope import SYSTEM, Scope

__all__ = ["optimization_stats"]


async def optimization_stats(db: Database, *, scope: Scope = SYSTEM) -> dict[str, Any]:
    """{"total", "by_status": {status: n} (every status), "trials_evaluated" (stored trials
    of every visible optimization), "trials_per_second" (trials of finished optimizations
    over their summed wall time; None before any finished), "avg_duration_ms" (of the
    succeeded ones)}."""
    Opt = OptimizationRow
    visible = scope.visible(Opt)
    async with db.session() as s:
        counts = {st: int(n) for st, n in await s.execute(
            select(Opt.status, func.count()).where(*visible).group_by(Opt.status))}
        trials = (await s.execute(
            select(func.coalesce(func.sum(Opt.completed), 0)).where(*visible))).scalar_one()
        done_trials, done_ms = (await s.execute(
            select(func.coalesce(func.sum(Opt.completed), 0),
                   func.coalesce(func.sum(Opt.duration_ms), 0))
            .where(*visible, Opt.finished_at.is_not(None), Opt.duration_ms > 0))).one()
        avg = (await s.execute(select(func.avg(Opt.duration_ms)).where(
            *visible, Opt.status == RunStatus.SUCCEEDED))).scalar()
    by_status = {st.value: counts.get(st, 0) for st in RunStatus}
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "trials_evaluated": int(trials),
        "trials_per_second": float(done_trials) / (float(done_ms) / 1000.0) if done_ms else None,
        "avg_duration_ms": None if avg is None else float(avg),
    }
