"""The reaper: re-dispatch orphaned and forgotten runs, settle runs out of attempts.

Every worker process (and the embedded server) runs it; passes are idempotent, so
several reapers at once only cost a few queries.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from store import optimizations as opt_store
from store import runs as run_store
from store.db import Database
from workers.bus import ProgressBus
from workers.events import row_event

if TYPE_CHECKING:
    from workers.queue import JobQueue

__all__ = ["reap_once", "reaper_loop"]

log = logging.getLogger("backtester.reaper")


async def reap_once(
    db: Database, queue: JobQueue, bus: ProgressBus | None = None, *, queued_grace_s: float = 30.0
) -> run_store.ReapResult:
    """One pass: enqueue runs to retry, announce the runs it failed or cancelled."""
    result = await run_store.reap(db, queued_grace_s=queued_grace_s)
    for run_id, attempt in result.requeue:
        try:
            await queue.enqueue_run(run_id, attempt=attempt)
        except Exception as exc:  # the next pass tries again
            log.warning("could not re-enqueue run %s: %s", run_id, exc)
    if result.requeue:
        log.info("reaper re-enqueued %d run(s)", len(result.requeue))
    for run_id in (*result.failed, *result.cancelled):
        log.warning("reaper settled orphaned run %s", run_id)
        if bus is not None:
            await bus.publish(run_id, row_event(await run_store.get_run(db, run_id), "terminal"))
    await reap_optimizations(db, queue, queued_grace_s=queued_grace_s)
    return result


async def reap_optimizations(db: Database, queue: JobQueue, *, queued_grace_s: float = 30.0) -> None:
    """Re-enqueue optimization batches whose lease expired (a killed worker) or left QUEUED
    past the grace period: the next claim takes them with a new attempt, or fails them when
    out of it. Coordinators are not jobs: each worker's coordinator loop
    (`workers.coordinator`) takes over the ones whose lease expired by itself."""
    found = await opt_store.reap_optimizations(db, queued_grace_s=queued_grace_s)
    for opt_id, number, attempt in found.batches:
        try:
            await queue.enqueue_batch(opt_id, number, attempt=attempt)  # type: ignore[attr-defined]
        except Exception as exc:
            log.warning("could not re-enqueue batch %d of %s: %s", number, opt_id, exc)
    if found.batches:
        log.info("reaper re-enqueued %d optimization batch(es)", len(found.batches))


async def reaper_loop(
    db: Database,
    queue: JobQueue,
    bus: ProgressBus | None = None,
    *,
    interval_s: float = 5.0,
    queued_grace_s: float = 30.0,
) -> None:
    """`reap_once` every `interval_s` seconds until cancelled; errors are logged, not raised."""
    while True:
        try:
            await reap_once(db, queue, bus, queued_grace_s=queued_grace_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("reaper pass failed: %s", exc)
        await asyncio.sleep(interval_s)
