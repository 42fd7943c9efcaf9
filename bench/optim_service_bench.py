"""The grid benchmark through the full service path (embedded stack), for `optim_bench.py`.

`service_rows(bars, space_overrides, n_trials, batch)` stores `bars` as a dataset in a
temporary SQLite database, starts a grid optimization with `Services.optimizations.start`
and waits for it to finish: coordinator, batch jobs in the in-process queue (threads),
trial log writes, progress events and the final statistics all included; the process
freezes its start-up objects out of the garbage collector as `backtester serve` does, and
the bench follows the optimization's events as a client would. The raw sweep
kernel runs on the same combinations in the same process for the ratio.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.bars import Bars
from engine.sweep import sweep_ema_crossover


async def _service_seconds(bars: Bars, space: dict[str, Any], batch: int, tmp: Path) -> tuple[float, int]:
    from store import optimizations as opt_store
    from store.blobs import FileBlobStore
    from store.datasets import save_dataset
    from store.db import Database, run_migrations
    from workers.bus import InMemoryBus
    from workers.jobs import WorkerContext, freeze_startup_objects
    from workers.queue import InProcessQueue
    from workers.service import Services

    url = f"sqlite+aiosqlite:///{tmp / 'bench.sqlite3'}"
    await asyncio.to_thread(run_migrations, url)
    db = Database(url)
    blobs = FileBlobStore(tmp / "blobs")
    bus = InMemoryBus()
    ctx = WorkerContext(db=db, blobs=blobs, bus=bus, worker_id="bench")
    queue = InProcessQueue(ctx, concurrency=2)
    services = Services(db, blobs, queue, bus)
    try:
        ds = await save_dataset(db, blobs, bars, name="bench", symbol="BENCH")
        freeze_startup_objects()  # as `backtester serve` does once its stack is open
        t0 = time.perf_counter()
        row = await services.optimizations.start({
            "strategy": "ema_crossover", "dataset_id": ds.id, "method": "grid", "space": space,
            "constraints": ["fast < slow"], "objectives": ["sharpe"], "batch_size": batch})
        async for event in services.optimizations.events(row.id):  # as a client follows it
            if event["type"] == "terminal":
                break
        took = time.perf_counter() - t0
        row = await opt_store.get_optimization(db, row.id)
        assert row.error is None, row.error
        return took, int(row.completed)
    finally:
        await queue.close()
        await bus.close()
        await db.dispose()


def service_rows(bars: Bars, space: dict[str, Any], points: list[dict[str, Any]], batch: int,
                 row: Any) -> list[list[str]]:
    """Rows: the raw sweep on `points`, and the same grid through the service."""
    fast = np.array([p["fast"] for p in points])
    slow = np.array([p["slow"] for p in points])
    t0, c0 = time.perf_counter(), time.process_time()
    sweep_ema_crossover(bars, fast, slow, False)
    raw, raw_cpu = time.perf_counter() - t0, time.process_time() - c0
    with tempfile.TemporaryDirectory() as tmp:
        c0 = time.process_time()
        took, n = asyncio.run(_service_seconds(bars, space, batch, Path(tmp)))
        svc_cpu = time.process_time() - c0  # includes migrations and the dataset save
    assert n == len(points), (n, len(points))
    return [
        row("raw sweep_ema_crossover (service check)", len(bars), len(points), raw,
            f"1.00 (cpu {raw_cpu:.1f} s)"),
        row("full service path (embedded: SQLite + in-process queue)", len(bars), n, took,
            f"{raw / took:.2f} of raw; by cpu time {raw_cpu / svc_cpu:.2f} (cpu {svc_cpu:.1f} s; "
            "everything: jobs, trial log, events, statistics)"),
    ]
