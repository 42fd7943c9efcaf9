"""A per-process snapshot of the live strategy catalog, dropped the moment the catalog changes.

Listing strategies is one of the API's hottest reads, and the catalog changes only when
strategies are synced, validated, edited or deleted. Every such write in
`store.strategy_catalog` goes through `catalog_write`, which NOTIFYs `CATALOG_CHANNEL` in
its transaction (PostgreSQL sends it at commit) and drops this process's snapshot once
committed. `follow_catalog` LISTENs in each API process and drops the snapshot whenever
any process changes the catalog. A snapshot is kept only while that feed is live, so
SQLite (where another process, e.g. a CLI sync, cannot tell us) and a lost listener
mean every call reads the database, as before.

Usage counters and best metrics (`store.strategy_usage`, changed by every run) are not
catalog changes: callers read those fresh (`usage_counters`), never from a snapshot.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database
from store.models import StrategyRow
from store.notify import listen

__all__ = [
    "CATALOG_CHANNEL",
    "CatalogSnapshot",
    "catalog_write",
    "follow_catalog",
    "following",
    "live_snapshot",
    "usage_counters",
]


CATALOG_CHANNEL = "bt_strategy_catalog"
"""PostgreSQL NOTIFY channel: some process changed the strategy catalog (no payload)."""


@dataclass(frozen=True, eq=False)
class CatalogSnapshot:
    """The live (not deleted) catalog rows by name, as read at one moment. Its identity
    changes with every re-read, so callers may key what they derive from it on it."""

    rows: tuple[StrategyRow, ...]


class _Feed:
    """The snapshot of one database, and whether changes to it are heard."""

    def __init__(self) -> None:
        self.live = False
        self.generation = 0
        self.snapshot: CatalogSnapshot | None = None
        self.loading: asyncio.Future[CatalogSnapshot] | None = None

    def changed(self) -> None:
        self.generation += 1
        self.snapshot = None
        self.loading = None  # a read in flight may predate the change: later callers re-read

    def settled(self, future: asyncio.Future[CatalogSnapshot]) -> None:
        if self.loading is future:
            self.loading = None
        if not future.cancelled():
            future.exception()  # each waiter got it; nobody else must be warned


_feeds: weakref.WeakKeyDictionary[Database, _Feed] = weakref.WeakKeyDictionary()


def _feed(db: Database) -> _Feed:
    feed = _feeds.get(db)
    if feed is None:
        feed = _feeds[db] = _Feed()
    return feed


@asynccontextmanager
async def catalog_write(db: Database) -> AsyncIterator[AsyncSession]:
    """`db.session()` for a write to the strategy catalog: every process that keeps a
    snapshot hears of it at commit, this one as soon as the block is done."""
    try:
        async with db.session() as s:
            yield s
            if db.dialect == "postgresql":
                await s.execute(select(func.pg_notify(CATALOG_CHANNEL, "")))
    finally:
        _feed(db).changed()


async def _read_live(db: Database) -> CatalogSnapshot:
    q = select(StrategyRow).where(StrategyRow.deleted_at.is_(None)).order_by(StrategyRow.name)
    async with db.read() as s:
        return CatalogSnapshot(tuple((await s.execute(q)).scalars()))


async def live_snapshot(db: Database) -> CatalogSnapshot:
    """The live catalog rows by name: this process's snapshot while the change feed is
    live and nothing changed since it was read, else a fresh read (concurrent callers
    share one read)."""
    feed = _feed(db)
    if feed.live and feed.snapshot is not None:
        return feed.snapshot
    if not feed.live:
        return await _read_live(db)
    loading = feed.loading
    if loading is None:
        loading = feed.loading = asyncio.ensure_future(_load(db, feed))
        loading.add_done_callback(feed.settled)
    return await asyncio.shield(loading)


async def _load(db: Database, feed: _Feed) -> CatalogSnapshot:
    generation = feed.generation
    snapshot = await _read_live(db)
    if feed.live and generation == feed.generation:  # no change heard while reading
        feed.snapshot = snapshot
    return snapshot


async def usage_counters(db: Database) -> dict[str, tuple[int, Any]]:
    """{name: (usage_count, best_metrics)} of every strategy, read now (never cached)."""
    q = select(StrategyRow.name, StrategyRow.usage_count, StrategyRow.best_metrics)
    async with db.read() as s:
        return {name: (int(count or 0), best) for name, count, best in await s.execute(q)}


def following(db: Database) -> bool:
    """Whether this process hears catalog changes of `db` now (then snapshots are kept)."""
    return _feed(db).live


def _set_live(feed: _Feed, live: bool) -> None:
    feed.live = live
    feed.changed()  # what was read before (or while) the feed was down may be stale


async def follow_catalog(db: Database, *, ping_s: float = 5.0) -> None:
    """LISTEN for catalog changes on PostgreSQL until cancelled, keeping snapshots only
    while listening (returns at once on SQLite: no snapshots there)."""
    feed = _feed(db)
    await listen(db, CATALOG_CHANNEL, lambda _: feed.changed(), lambda live: _set_live(feed, live),
                 ping_s=ping_s, what="strategy catalog feed")
