"""The strategy list served from a per-process catalog snapshot: every change shows at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from store import strategy_catalog as catalog
from store import strategy_snapshot as snapshots
from store.db import Database
from tests.graph.conftest import Api, _open, make_settings, sample_id

LIST = "{ strategies { name description tags usageCount } }"


@pytest.fixture
async def pg_api(pg_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async for api in _open(make_settings(pg_url, tmp_path / "var")):
        async with asyncio.timeout(10):
            while not snapshots.following(api.stack.db):  # the LISTEN connection is up
                await asyncio.sleep(0.02)
        yield api


async def _by_name(api: Api) -> dict[str, dict]:
    return {s["name"]: s for s in (await api.data(LIST))["strategies"]}


async def test_changes_through_the_api_show_at_once(pg_api: Api) -> None:
    db = pg_api.stack.db
    before = await _by_name(pg_api)
    first = await snapshots.live_snapshot(db)
    assert await snapshots.live_snapshot(db) is first  # served from the snapshot

    await pg_api.data('mutation { updateStrategy(name: "ema_crossover", '
                      'input: { description: "edited", tags: ["fast"] }) { name } }')
    after = await _by_name(pg_api)
    assert after["ema_crossover"]["description"] == "edited"
    assert after["ema_crossover"]["tags"] == ["fast"] and before["ema_crossover"]["tags"] == []
    assert await snapshots.live_snapshot(db) is not first

    await pg_api.data('mutation { deleteStrategy(name: "ema_crossover") { name } }')
    assert "ema_crossover" not in await _by_name(pg_api)

    # Usage counters are read per request, never from the snapshot.
    name = "sma_crossover" if "sma_crossover" in after else sorted(after)[0]
    run = await pg_api.data(
        "mutation($input: BacktestInput!) { runBacktest(input: $input, timeoutSeconds: 120) "
        "{ status } }", {"input": {"strategy": name, "datasetId": await sample_id(pg_api)}},
    )
    assert run["runBacktest"]["status"] == "SUCCEEDED"
    assert (await _by_name(pg_api))[name]["usageCount"] == before[name]["usageCount"] + 1


async def test_a_change_by_another_process_drops_the_snapshot(pg_api: Api) -> None:
    await _by_name(pg_api)
    cached = await snapshots.live_snapshot(pg_api.stack.db)
    other = Database(pg_api.stack.db.url)  # another process: its own pool, its own snapshot
    try:
        await catalog.update_strategy(other, "ema_crossover", tags=["from-elsewhere"])
    finally:
        await other.dispose()
    started = time.monotonic()
    while (await _by_name(pg_api))["ema_crossover"]["tags"] != ["from-elsewhere"]:
        assert time.monotonic() - started < 2.0, "the NOTIFY never dropped the snapshot"
        await asyncio.sleep(0.01)
    assert await snapshots.live_snapshot(pg_api.stack.db) is not cached


async def test_no_snapshot_without_a_change_feed(sqlite_url: str) -> None:
    """SQLite: nobody tells this process of another's changes, so every call reads."""
    db = Database(sqlite_url)
    try:
        from store.db import run_migrations

        await asyncio.to_thread(run_migrations, str(db.url))
        await catalog.sync_strategies(db)
        first = await snapshots.live_snapshot(db)
        assert first.rows and not snapshots.following(db)
        assert await snapshots.live_snapshot(db) is not first
    finally:
        await db.dispose()


async def test_one_context_many_operations_reads_usage_each_time(pg_api: Api) -> None:
    """A websocket's context serves every operation on it: usage read once per operation."""
    from graph.context import Context
    from graph.schema import schema
    from store.auth import LOCAL_PRINCIPAL

    context = Context(services=pg_api.stack.services, principal=LOCAL_PRINCIPAL)

    async def usage() -> int:
        result = await schema.execute(LIST, context_value=context)
        assert not result.errors, result.errors
        return next(s["usageCount"] for s in result.data["strategies"] if s["name"] == "ema_crossover")

    before = await usage()
    await pg_api.data(
        "mutation($input: BacktestInput!) { submitBacktest(input: $input) { id } }",
        {"input": {"strategy": "ema_crossover", "datasetId": await sample_id(pg_api)}},
    )
    assert await usage() == before + 1
