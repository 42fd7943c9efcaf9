"""Worker fixtures: the embedded stack (SQLite + in-process queue + in-memory bus) and data."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from engine.bars import Bars
from engine.synthetic import synthetic_intraday
from store.blobs import BlobStore, FileBlobStore
from store.datasets import BARS_CACHE, save_dataset
from store.db import Database, run_migrations
from workers.bus import InMemoryBus
from workers.jobs import Faults, WorkerContext
from workers.queue import InProcessQueue
from workers.service import ServiceLimits, Services


@dataclass
class Embedded:
    db: Database
    blobs: BlobStore
    bus: InMemoryBus
    ctx: WorkerContext
    queue: InProcessQueue
    services: Services
    dataset_id: int
    bars: Bars


def intraday(days: int = 20, seed: int = 5) -> Bars:
    return synthetic_intraday(days, seed)


async def open_embedded(url: str, tmp_path, *, faults: Faults | None = None, days: int = 20) -> Embedded:  # type: ignore[no-untyped-def]
    await asyncio.to_thread(run_migrations, url)
    db = Database(url)
    blobs = FileBlobStore(tmp_path / "blobs")
    bus = InMemoryBus()
    ctx = WorkerContext(
        db=db, blobs=blobs, bus=bus, worker_id="embedded", lease_s=3.0, heartbeat_s=0.5,
        faults=faults or Faults(),
    )
    queue = InProcessQueue(ctx, concurrency=2, reap_interval_s=0.5, queued_grace_s=30)
    services = Services(db, blobs, queue, bus, ServiceLimits(poll_s=0.3))
    bars = intraday(days)
    row = await save_dataset(db, blobs, bars, name="intraday", symbol="NIFTY-SYNTH")
    return Embedded(db, blobs, bus, ctx, queue, services, row.id, bars)


async def close_embedded(e: Embedded) -> None:
    await e.queue.close()
    await e.bus.close()
    await e.db.dispose()


@pytest.fixture
async def embedded(sqlite_url: str, tmp_path) -> AsyncIterator[Embedded]:  # type: ignore[no-untyped-def]
    BARS_CACHE.clear()
    e = await open_embedded(sqlite_url, tmp_path)
    try:
        yield e
    finally:
        await close_embedded(e)


@pytest.fixture
async def slow_embedded(sqlite_url: str, tmp_path) -> AsyncIterator[Embedded]:  # type: ignore[no-untyped-def]
    """Runs take a few seconds: small chunks with a pause after each."""
    BARS_CACHE.clear()
    e = await open_embedded(
        sqlite_url, tmp_path, faults=Faults(chunk_bars=500, chunk_delay_s=0.03), days=40
    )
    try:
        yield e
    finally:
        await close_embedded(e)
