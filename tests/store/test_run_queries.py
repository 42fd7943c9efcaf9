"""Run listing: filters, keyset pages, portable metric sorts, stats."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from store import runs
from store.db import Database
from store.errors import BadInputError
from store.models import RunRow, RunStatus, utcnow
from tests.store.conftest import fake_result


async def _finished(db: Database, strategy: str, sharpe: float | None) -> str:
    run = await runs.create_run(db, strategy=strategy, dataset_id=None, params={}, options={})  # type: ignore[arg-type]
    attempt = await runs.claim_run(db, run.id, "w", 30)
    assert attempt
    await runs.finish_run(db, run.id, attempt, fake_result(n_bars=20, n_trades=1, sharpe=sharpe))
    return run.id


async def _all_pages(db: Database, **kw) -> list[str]:  # type: ignore[no-untyped-def]
    ids, after = [], None
    while True:
        page = await runs.list_runs(db, first=2, after=after, **kw)
        ids += [r.id for r in page]
        if not page.has_next:
            return ids
        after = page.next_cursor


async def test_sort_by_metric_with_nulls_last(db: Database) -> None:
    sharpes = [0.5, None, 2.0, -1.0, 2.0, None, 1.25]
    ids = [await _finished(db, "a" if i % 2 else "b", s) for i, s in enumerate(sharpes)]
    by_id = dict(zip(ids, sharpes, strict=True))
    desc = await _all_pages(db, sort="-metrics.sharpe")
    values = [by_id[i] for i in desc]
    assert values == [2.0, 2.0, 1.25, 0.5, -1.0, None, None]
    asc = await _all_pages(db, sort="metrics.sharpe")
    assert [by_id[i] for i in asc] == [-1.0, 0.5, 1.25, 2.0, 2.0, None, None]
    assert sorted(desc) == sorted(ids) == sorted(asc)
    only_a = await _all_pages(db, sort="-metrics.sharpe", strategy="a")
    assert {by_id[i] for i in only_a} == {None, -1.0}


async def test_created_order_pages_and_filters(db: Database) -> None:
    ids = []
    for i in range(5):
        run = await runs.create_run(db, strategy="s", dataset_id=None, params={}, options={})  # type: ignore[arg-type]
        async with db.session() as s:  # distinct, known creation times
            await s.execute(
                update(RunRow).where(RunRow.id == run.id).values(created_at=utcnow() - timedelta(minutes=10 - i))
            )
        ids.append(run.id)
    assert await _all_pages(db) == list(reversed(ids))
    assert await _all_pages(db, sort="created_at") == ids
    page = await runs.list_runs(db, first=2)
    assert page.total == 5 and len(page) == 2 and page.cursors[-1] == page.next_cursor
    await runs.cancel_run(db, ids[0])
    assert [r.id for r in await runs.list_runs(db, status="CANCELLED")] == [ids[0]]
    assert len(await runs.list_runs(db, status=[RunStatus.QUEUED])) == 4
    recent = await runs.list_runs(db, created_after=utcnow() - timedelta(minutes=7, seconds=30))
    assert {r.id for r in recent} == set(ids[3:])
    older = await runs.list_runs(db, created_before=utcnow() - timedelta(minutes=8, seconds=30))
    assert {r.id for r in older} == set(ids[:2])
    assert len(await runs.list_runs(db, dataset_id=12345)) == 0


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"sort": "metrics.sharpe;drop"}, "sort"),
        ({"sort": "name"}, "sort"),
        ({"status": "DONE"}, "status"),
        ({"first": -1}, "first"),
        ({"after": "bm90IGEgY3Vyc29y"}, "after"),
    ],
)
async def test_bad_arguments(db: Database, kw: dict, field: str) -> None:
    with pytest.raises(BadInputError) as info:
        await runs.list_runs(db, **kw)
    assert info.value.field == field


async def test_stats(db: Database) -> None:
    await _finished(db, "a", 1.0)
    await _finished(db, "a", 2.0)
    queued = await runs.create_run(db, strategy="s", dataset_id=None, params={}, options={})  # type: ignore[arg-type]
    await runs.cancel_run(db, queued.id)
    await runs.create_run(db, strategy="s", dataset_id=None, params={}, options={})  # type: ignore[arg-type]
    stats = await runs.run_stats(db)
    assert stats["total"] == 4
    assert stats["by_status"] == {
        "QUEUED": 1, "RUNNING": 0, "SUCCEEDED": 2, "FAILED": 0, "CANCELLED": 1,
    }
    assert stats["avg_duration_ms"] is not None and stats["avg_duration_ms"] >= 0
