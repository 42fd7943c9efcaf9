"""Service-wide run aggregates for dashboards: counts by status and strategy, datasets in
use, average run time and the best runs by one metric.

Every number is one grouped query (no run is loaded to count it); the best runs reuse
`list_runs`' metric sort, so they order the same way on PostgreSQL and SQLite.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from store.db import Database
from store.errors import BadInputError
from store.models import DatasetRow, RunRow, RunStatus
from store.run_queries import list_runs, run_stats
from store.scope import SYSTEM, Scope

__all__ = ["MAX_BEST", "run_summary"]

MAX_BEST = 100
_METRIC_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _status_counts() -> dict[str, int]:
    return {status.value: 0 for status in RunStatus}


async def _by_strategy(db: Database, scope: Scope) -> list[dict[str, Any]]:
    """One entry per strategy that has runs: counts by status and mean succeeded duration."""
    visible = scope.visible(RunRow)
    async with db.session() as s:
        grouped = await s.execute(
            select(RunRow.strategy, RunRow.status, func.count(), func.max(RunRow.created_at))
            .where(*visible)
            .group_by(RunRow.strategy, RunRow.status)
        )
        rows = list(grouped)
        durations = await s.execute(
            select(RunRow.strategy, func.avg(RunRow.duration_ms))
            .where(RunRow.status == RunStatus.SUCCEEDED, *visible)
            .group_by(RunRow.strategy)
        )
        avg = {name: None if ms is None else float(ms) for name, ms in durations}
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"total": 0, "by_status": _status_counts(), "last_run_at": None}
    )
    for name, status, count, last in rows:
        entry = out[name]
        entry["total"] += int(count)
        entry["by_status"][RunStatus(status).value] += int(count)
        if last is not None and (entry["last_run_at"] is None or last > entry["last_run_at"]):
            entry["last_run_at"] = last
    return [
        {"strategy": name, **entry, "avg_duration_ms": avg.get(name)}
        for name, entry in sorted(out.items(), key=lambda kv: (-kv[1]["total"], kv[0]))
    ]


async def _datasets_in_use(db: Database, scope: Scope) -> list[dict[str, Any]]:
    """Datasets that runs refer to, most used first (runs of deleted datasets are left out);
    only datasets and runs `scope` sees."""
    async with db.session() as s:
        grouped = await s.execute(
            select(
                DatasetRow.id, DatasetRow.name, DatasetRow.symbol, DatasetRow.timeframe,
                func.count(RunRow.id),
            )
            .join(RunRow, RunRow.dataset_id == DatasetRow.id)
            .where(*scope.visible(DatasetRow), *scope.visible(RunRow))
            .group_by(DatasetRow.id, DatasetRow.name, DatasetRow.symbol, DatasetRow.timeframe)
        )
        rows = list(grouped)
    return sorted(
        (
            {"dataset_id": int(i), "name": name, "symbol": symbol, "timeframe": tf, "runs": int(n)}
            for i, name, symbol, tf, n in rows
        ),
        key=lambda d: (-d["runs"], d["dataset_id"]),
    )


async def run_summary(
    db: Database,
    *,
    metric: str = "sharpe",
    limit: int = 5,
    descending: bool = True,
    scope: Scope = SYSTEM,
) -> dict[str, Any]:
    """Aggregates over every run `scope` sees.

    Returns {"total", "by_status" ({status: n}, every status), "avg_duration_ms" (of
    succeeded runs), "by_strategy" ([{"strategy", "total", "by_status", "last_run_at",
    "avg_duration_ms"}], most runs first), "datasets" ([{"dataset_id", "name", "symbol",
    "timeframe", "runs"}]), "metric", "best" (up to `limit` succeeded RunRows with that
    metric, best first: highest when `descending`, else lowest)}.
    """
    if not isinstance(metric, str) or not _METRIC_KEY.match(metric):
        raise BadInputError("metric", f"invalid metric name {metric!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_BEST:
        raise BadInputError("limit", f"limit must be between 1 and {MAX_BEST}, got {limit!r}")
    stats = await run_stats(db, scope=scope)
    page = await list_runs(
        db,
        scope=scope,
        status=RunStatus.SUCCEEDED,
        sort=f"{'-' if descending else ''}metrics.{metric}",
        first=limit,
    )
    best = [
        row for row in page.items
        if isinstance(value := (row.metrics or {}).get(metric), int | float)
        and not isinstance(value, bool)
    ]
    return {
        **stats,
        "by_strategy": await _by_strategy(db, scope),
        "datasets": await _datasets_in_use(db, scope),
        "metric": metric,
        "best": best,
    }
