"""How strategies are used: run counts, the best metrics their runs reached, summary stats.

`note_run_success` runs inside the transaction that marks a run SUCCEEDED
(`store.runs.finish_run`), so a strategy's best metrics never disagree with its runs.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database
from store.models import RunRow, StrategyRow
from store.scope import SYSTEM, Scope

__all__ = [
    "BEST_HIGHER",
    "BEST_LOWER",
    "bump_usage",
    "note_run_success",
    "strategy_stats",
    "usage_by_strategy",
]

BEST_HIGHER = (
    "sharpe", "sortino", "calmar", "total_return_pct", "cagr_pct", "profit_factor",
    "win_rate", "expectancy", "sqn",
)
BEST_LOWER = ("max_drawdown_pct",)  # a positive percent: smaller is better


async def bump_usage(db: Database, name: str) -> None:
    """Count one more run of `name` (no-op when the catalog has no row for it)."""
    async with db.session() as s:
        await s.execute(
            update(StrategyRow)
            .where(StrategyRow.name == name)
            .values(usage_count=StrategyRow.usage_count + 1)
        )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def merge_best(
    best: dict[str, Any] | None, run_id: str, metrics: dict[str, Any]
) -> dict[str, Any]:
    """`best` ({metric: {"value", "run_id"}}) improved by one run's metrics."""
    out = dict(best or {})
    for keys, better in ((BEST_HIGHER, float.__gt__), (BEST_LOWER, float.__lt__)):
        for key in keys:
            value = _number(metrics.get(key))
            if value is None:
                continue
            old = _number((out.get(key) or {}).get("value"))
            if old is None or better(value, old):
                out[key] = {"value": value, "run_id": run_id}
    return out


async def note_run_success(
    s: AsyncSession, name: str, run_id: str, metrics: dict[str, Any] | None
) -> None:
    """Fold a succeeded run's metrics into its strategy's best metrics, in the caller's
    transaction (the row is locked on PostgreSQL; SQLite already holds the write lock)."""
    row = (
        await s.execute(
            select(StrategyRow.id, StrategyRow.best_metrics)
            .where(StrategyRow.name == name)
            .with_for_update()
        )
    ).first()
    if row is None or not metrics:
        return
    best = merge_best(row.best_metrics, run_id, metrics)
    if best != (row.best_metrics or {}):
        await s.execute(update(StrategyRow).where(StrategyRow.id == row.id).values(best_metrics=best))


async def usage_by_strategy(db: Database, *, scope: Scope = SYSTEM) -> dict[str, int] | None:
    """Runs per strategy among the runs `scope` sees; None for a scope that sees every run
    (then the catalog's own counters, which also count deleted runs, are the answer)."""
    if scope.admin and not scope.nobody:
        return None
    async with db.session() as s:
        grouped = await s.execute(
            select(RunRow.strategy, func.count(RunRow.id))
            .where(*scope.visible(RunRow))
            .group_by(RunRow.strategy)
        )
        return {name: int(n) for name, n in grouped}


async def _live_names(db: Database) -> list[Any]:
    async with db.session() as s:
        return list(await s.execute(select(StrategyRow.name).where(StrategyRow.deleted_at.is_(None))))


async def strategy_stats(db: Database, *, top: int = 5, scope: Scope = SYSTEM) -> dict[str, Any]:
    """Counts of live strategies by validation status and origin, deleted ones, total
    runs, and the `top` most used (name, usage_count); run counts only over the runs
    `scope` sees."""
    live = StrategyRow.deleted_at.is_(None)
    async with db.session() as s:
        by_status = dict(
            (await s.execute(
                select(StrategyRow.validation_status, func.count()).where(live)
                .group_by(StrategyRow.validation_status)
            )).all()
        )
        user = (await s.execute(
            select(func.count()).where(live, StrategyRow.path.is_not(None))
        )).scalar_one()
        deleted = (await s.execute(
            select(func.count()).where(StrategyRow.deleted_at.is_not(None))
        )).scalar_one()
        runs = (await s.execute(select(func.coalesce(func.sum(StrategyRow.usage_count), 0)))).scalar_one()
        used = (await s.execute(
            select(StrategyRow.name, StrategyRow.usage_count)
            .where(live, StrategyRow.usage_count > 0)
            .order_by(StrategyRow.usage_count.desc(), StrategyRow.name)
            .limit(top)
        )).all()
    total = sum(by_status.values())
    scoped = await usage_by_strategy(db, scope=scope)
    if scoped is not None:
        names = {n for (n,) in (await _live_names(db))}
        runs = sum(scoped.values())
        used = sorted(((n, c) for n, c in scoped.items() if n in names and c > 0),
                      key=lambda nc: (-nc[1], nc[0]))[:top]
    return {
        "total": total,
        "by_status": {k: int(v) for k, v in sorted(by_status.items())},
        "builtin": total - int(user),
        "user": int(user),
        "deleted": int(deleted),
        "total_runs": int(runs),
        "most_used": [{"name": n, "usage_count": int(c)} for n, c in used],
    }
