"""Read side of runs: filtered, sorted keyset pages, trades, equity curves and stats.

Sorting by a metric reads it from the `metrics` JSON column with SQLAlchemy's portable
JSON accessors (`->>` on PostgreSQL, `json_extract` on SQLite); runs without that
metric sort last in either direction.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.sql import ColumnElement

from store.db import Database
from store.errors import BadInputError
from store.models import EquityRow, RunRow, RunStatus, TradeRow
from store.pagination import Page, check_first, decode_cursor, encode_cursor
from store.results import decode_equity
from store.scope import SYSTEM, Scope

__all__ = [
    "SORTS",
    "get_equity",
    "get_trade_records",
    "get_trades",
    "list_runs",
    "run_stats",
    "visible_run_ids",
]

SORTS = ("-created_at", "created_at", "-metrics.<key>", "metrics.<key>")
_METRIC_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _statuses(status: RunStatus | str | Sequence[RunStatus | str] | None) -> list[RunStatus]:
    if status is None:
        return []
    items = [status] if isinstance(status, str) else list(status)
    try:
        return [RunStatus(str(s).upper()) for s in items]
    except ValueError:
        allowed = ", ".join(s.value for s in RunStatus)
        raise BadInputError("status", f"unknown status in {items!r} (one of {allowed})") from None


def _parse_sort(sort: str) -> tuple[str | None, bool]:
    """(metric key or None for created_at, descending)."""
    desc = sort.startswith("-")
    name = sort.lstrip("-+")
    if name == "created_at":
        return None, desc
    if name.startswith("metrics.") and _METRIC_KEY.match(name[len("metrics.") :]):
        return name[len("metrics.") :], desc
    raise BadInputError(
        "sort", f"unknown sort {sort!r}: use one of {', '.join(SORTS)} (e.g. '-metrics.sharpe')"
    )


def _after_created(values: list[Any], desc: bool) -> ColumnElement[bool]:
    when = datetime.fromisoformat(values[0])
    cid = str(values[1])
    if desc:
        return or_(RunRow.created_at < when, and_(RunRow.created_at == when, RunRow.id < cid))
    return or_(RunRow.created_at > when, and_(RunRow.created_at == when, RunRow.id > cid))


def _after_metric(expr: Any, values: list[Any], desc: bool) -> ColumnElement[bool]:
    is_null, value, cid = bool(values[0]), values[1], str(values[2])
    beyond = RunRow.id < cid if desc else RunRow.id > cid
    if is_null:
        return and_(expr.is_(None), beyond)
    past = expr < value if desc else expr > value
    return or_(past, and_(expr == value, beyond), expr.is_(None))


def _metric_of(row: RunRow, key: str) -> float | None:
    value = (row.metrics or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


async def list_runs(
    db: Database,
    *,
    status: RunStatus | str | Sequence[RunStatus | str] | None = None,
    strategy: str | None = None,
    dataset_id: int | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    sort: str = "-created_at",
    first: int | None = 50,
    after: str | None = None,
    scope: Scope = SYSTEM,
) -> Page[RunRow]:
    """A keyset page of the runs `scope` sees; `sort` is '-created_at' (default),
    'created_at' or '[-]metrics.KEY'."""
    size = check_first(first)
    metric, desc = _parse_sort(sort)
    filters: list[ColumnElement[bool]] = list(scope.visible(RunRow))
    if statuses := _statuses(status):
        filters.append(RunRow.status.in_(statuses))
    if strategy is not None:
        filters.append(RunRow.strategy == strategy)
    if dataset_id is not None:
        filters.append(RunRow.dataset_id == dataset_id)
    if created_after is not None:
        filters.append(RunRow.created_at >= created_after)
    if created_before is not None:
        filters.append(RunRow.created_at < created_before)

    q = select(RunRow).where(*filters)
    id_order = RunRow.id.desc() if desc else RunRow.id.asc()
    if metric is None:
        q = q.order_by(RunRow.created_at.desc() if desc else RunRow.created_at.asc(), id_order)
        if after is not None:
            q = q.where(_after_created(decode_cursor(after, 2), desc))
    else:
        expr = RunRow.metrics[metric].as_float()
        q = q.order_by(case((expr.is_(None), 1), else_=0), expr.desc() if desc else expr.asc(), id_order)
        if after is not None:
            q = q.where(_after_metric(expr, decode_cursor(after, 3), desc))

    async with db.session() as s:
        rows = list((await s.execute(q.limit(size + 1))).scalars())
        total = (await s.execute(select(func.count(RunRow.id)).where(*filters))).scalar_one()
    more = len(rows) > size
    rows = rows[:size]
    if metric is None:
        cursors = [encode_cursor([r.created_at.isoformat(), r.id]) for r in rows]
    else:
        cursors = [
            encode_cursor([(m := _metric_of(r, metric)) is None, m, r.id]) for r in rows
        ]
    return Page(rows, cursors[-1] if more and cursors else None, cursors, total=int(total))


async def get_trades(
    db: Database, run_id: str, first: int | None = 100, after: int | None = None
) -> list[TradeRow]:
    """Up to `first` trades in order, starting after trade index `after` (exclusive)."""
    size = check_first(first, default=100)
    q = select(TradeRow).where(TradeRow.run_id == run_id).order_by(TradeRow.idx).limit(size)
    if after is not None:
        q = q.where(TradeRow.idx > int(after))
    async with db.read() as s:
        return list((await s.execute(q)).scalars())


async def get_trade_records(db: Database, run_id: str) -> list[dict[str, Any]]:
    """Every trade of a run as a dict with `engine.backtest.Trade`'s field names, in order.

    For analysis (`engine.analysis.analyze`); `bars_held` comes from the row's `extra`,
    or `exit_idx - entry_idx` for rows stored without it.
    """
    q = select(TradeRow).where(TradeRow.run_id == run_id).order_by(TradeRow.idx)
    async with db.read() as s:
        rows = list((await s.execute(q)).scalars())
    out = []
    for r in rows:
        extra = r.extra or {}
        exit_idx = r.exit_idx if r.exit_idx is not None else r.entry_idx
        held = extra.get("bars_held")
        out.append({
            "entry_time": r.entry_time,
            "exit_time": r.exit_time if r.exit_time is not None else r.entry_time,
            "entry_idx": r.entry_idx,
            "exit_idx": exit_idx,
            "side": r.side,
            "qty": r.qty,
            "entry_price": r.entry_price,
            "exit_price": r.exit_price if r.exit_price is not None else float("nan"),
            "pnl": r.pnl,
            "commission": r.commission,
            "exit_reason": r.exit_reason or "end_of_data",
            "is_open": bool(r.is_open),
            "bars_held": int(held) if isinstance(held, int | float) else exit_idx - r.entry_idx,
        })
    return out


async def get_equity(db: Database, run_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(int64 ns timestamps, float64 equity) of a finished run; empty arrays before that."""
    async with db.read() as s:
        row = await s.get(EquityRow, run_id)
    if row is None:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    return await asyncio.to_thread(decode_equity, row.ts_data, row.equity_data, row.encoding)


async def visible_run_ids(db: Database, ids: Sequence[str], *, scope: Scope = SYSTEM) -> set[str]:
    """The ids among `ids` of runs that exist and `scope` sees."""
    wanted = list({str(i) for i in ids})
    if not wanted:
        return set()
    async with db.read() as s:
        found = await s.execute(select(RunRow.id).where(RunRow.id.in_(wanted), *scope.visible(RunRow)))
        return {str(i) for (i,) in found}


async def run_stats(db: Database, *, scope: Scope = SYSTEM) -> dict[str, Any]:
    """Counts by status (every status present, 0 if none), total, average duration of
    successes, over the runs `scope` sees."""
    visible = scope.visible(RunRow)
    async with db.session() as s:
        grouped = await s.execute(
            select(RunRow.status, func.count()).where(*visible).group_by(RunRow.status)
        )
        counts = {status: n for status, n in grouped}
        avg = (
            await s.execute(
                select(func.avg(RunRow.duration_ms))
                .where(RunRow.status == RunStatus.SUCCEEDED, *visible)
            )
        ).scalar()
    by_status = {status.value: int(counts.get(status, 0)) for status in RunStatus}
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "avg_duration_ms": None if avg is None else float(avg),
    }
