"""Queues: arq job ids are idempotent per (run, attempt); the in-process queue dedups runs."""

from __future__ import annotations

import asyncio
import uuid

from arq import create_pool

from store import runs as run_store
from store.models import RunStatus
from tests.workers.conftest import Embedded
from workers.constants import job_id_for
from workers.queue import ArqQueue, JobQueue, redis_settings


def test_job_ids() -> None:
    assert job_id_for("abc") == "abc" and job_id_for("abc", 0) == "abc"
    assert job_id_for("abc", 2) == "abc:2"


async def test_arq_enqueue_is_idempotent(redis_url: str) -> None:
    name = f"bt:test:{uuid.uuid4().hex}"
    queue = ArqQueue(redis_url, name)
    assert isinstance(queue, JobQueue)
    run_id = str(uuid.uuid4())
    try:
        await queue.enqueue_run(run_id)
        await queue.enqueue_run(run_id)
        assert await queue.depth() == 1
        await queue.enqueue_run(run_id, attempt=1)
        await queue.enqueue_run(run_id, attempt=1)
        assert await queue.depth() == 2
        pool = await create_pool(redis_settings(redis_url), default_queue_name=name)
        try:
            jobs = await pool.queued_jobs(queue_name=name)
            assert sorted(j.job_id for j in jobs) == sorted([run_id, f"{run_id}:1"])
            assert {j.function for j in jobs} == {"run_backtest"}
            assert all(j.args == (run_id,) for j in jobs)
            await pool.delete(name, *(f"arq:job:{j.job_id}" for j in jobs))
        finally:
            await pool.aclose()
    finally:
        await queue.close()


async def test_in_process_queue_dedups_and_bounds(embedded: Embedded) -> None:
    ids = []
    for fast in (5, 6, 7, 8):
        row = await run_store.create_run(
            embedded.db, strategy="ema_crossover", dataset_id=embedded.dataset_id,
            params={"fast": fast}, options={},
        )
        ids.append(row.id)
    for run_id in ids + ids:
        await embedded.queue.enqueue_run(run_id)
    assert await embedded.queue.depth() == 4  # none started yet; duplicates ignored
    await embedded.queue.join()
    assert await embedded.queue.depth() == 0
    rows = await asyncio.gather(*(run_store.get_run(embedded.db, i) for i in ids))
    assert all(r.status is RunStatus.SUCCEEDED and r.attempt == 1 for r in rows)


async def test_in_process_wait_batch_wakes_when_a_batch_job_ends(embedded: Embedded) -> None:
    # The embedded coordinator waits here between polls: a batch job of its optimization
    # that ends (here one with nothing to claim) wakes it long before the timeout.
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    waiter = asyncio.create_task(embedded.queue.wait_batch("opt-wake", 30.0))
    await asyncio.sleep(0)
    await embedded.queue.enqueue_batch("opt-wake", 0)
    await asyncio.wait_for(waiter, 10.0)
    assert loop.time() - t0 < 10.0
    await embedded.queue.wait_batch("opt-idle", 0.05)  # nothing ends: the timeout
    assert not embedded.queue._batch_ended  # no event left behind for either
