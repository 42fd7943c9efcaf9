"""Job queues: the `JobQueue` protocol, the in-process queue and the arq (Redis) queue.

Enqueueing is idempotent per (run, attempt): the job id is the run id, or
`<run id>:<attempt>` when the reaper re-dispatches a run after attempt N died. Running
a job twice is harmless anyway: only one `claim_run` can win.

Optimization coordinators are not jobs: `enqueue_optimization` only wakes the
coordinator loops (`workers.coordinator`), which run outside the job slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from typing import Any, Protocol, runtime_checkable

from workers.constants import (
    DEFAULT_QUEUE,
    IN_PROGRESS_PREFIX,
    JOB_RUN_BACKTEST,
    JOB_RUN_OPTIMIZATION_BATCH,
    batch_job_id,
    job_id_for,
    run_channel,
)
from workers.coordinator import DEFAULT_MAX_COORDINATORS, CoordinatorLoop, wake_id
from workers.jobs import WorkerContext, execute_run
from workers.optimization_jobs import execute_batch
from workers.reaper import reaper_loop

__all__ = ["ArqQueue", "InProcessQueue", "JobQueue", "redis_settings"]

log = logging.getLogger("backtester.queue")


@runtime_checkable
class JobQueue(Protocol):
    async def enqueue_run(self, run_id: str, *, attempt: int = 0) -> None: ...

    async def depth(self) -> int: ...

    async def close(self) -> None: ...


class InProcessQueue:
    """Embedded default: asyncio tasks in this process, engine chunks in threads.

    At most `concurrency` runs (and optimization batches) at a time; the reaper runs
    every `reap_interval_s`, so runs left QUEUED or orphaned by a previous process are
    picked up after a restart. Optimization coordinators run in `self.coordinator` (a
    `CoordinatorLoop` polling every `reap_interval_s`, at most `max_coordinators` at once),
    outside the `concurrency` slots.
    """

    def __init__(
        self,
        ctx: WorkerContext,
        *,
        concurrency: int = 2,
        reap_interval_s: float = 5.0,
        queued_grace_s: float = 30.0,
        max_coordinators: int = DEFAULT_MAX_COORDINATORS,
    ) -> None:
        self.ctx = ctx
        self.concurrency = concurrency
        self.reap_interval_s = reap_interval_s
        self.queued_grace_s = queued_grace_s
        self._sem = asyncio.Semaphore(concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._batch_ended: dict[str, asyncio.Event] = {}  # by optimization, see wait_batch
        self._waiting = 0
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False
        self.coordinator = CoordinatorLoop(ctx, self, max_active=max_coordinators,
                                           interval_s=reap_interval_s)
        with contextlib.suppress(RuntimeError):  # started later if built outside a loop
            asyncio.get_running_loop()
            self._start_reaper()

    def _start_reaper(self) -> None:
        """Start the reaper and the coordinator loop (once, inside the event loop)."""
        if self._reaper is None and not self._closed:
            self._reaper = asyncio.create_task(
                reaper_loop(
                    self.ctx.db, self, self.ctx.bus,
                    interval_s=self.reap_interval_s, queued_grace_s=self.queued_grace_s,
                ),
                name="backtester-reaper",
            )
            self.coordinator.start()

    async def enqueue_run(self, run_id: str, *, attempt: int = 0) -> None:
        if self._closed:
            raise RuntimeError("the in-process queue is closed")
        self._start_reaper()
        task = self._tasks.get(run_id)
        if task is not None and not task.done():
            return
        self._waiting += 1
        self._tasks[run_id] = asyncio.create_task(self._run(run_id), name=f"run {run_id}")

    async def enqueue_optimization(self, opt_id: str, *, attempt: int = 0) -> None:
        """Hand the optimization to this process's coordinator loop (no worker slot)."""
        if self._closed:
            raise RuntimeError("the in-process queue is closed")
        self._start_reaper()
        self.coordinator.offer(opt_id)

    async def enqueue_batch(self, opt_id: str, number: int, *, attempt: int = 0) -> None:
        if self._closed:
            raise RuntimeError("the in-process queue is closed")
        key = batch_job_id(opt_id, number)
        task = self._tasks.get(key)
        if task is None or task.done():
            self._waiting += 1
            self._tasks[key] = asyncio.create_task(
                self._job(key, lambda: self._batch(opt_id, number), slot=True), name=key)

    async def _batch(self, opt_id: str, number: int) -> None:
        try:
            await execute_batch(self.ctx, opt_id, number)
        finally:
            if (ended := self._batch_ended.pop(opt_id, None)) is not None:
                ended.set()

    async def wait_batch(self, opt_id: str, timeout: float) -> None:
        """Until a batch job of `opt_id` ends here (its coordinator then reads the result
        at once instead of at its next poll) or `timeout` passes."""
        ended = self._batch_ended.setdefault(opt_id, asyncio.Event())
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), timeout)
        finally:  # no event left behind for an optimization that ends here
            if self._batch_ended.get(opt_id) is ended:
                del self._batch_ended[opt_id]

    async def _job(self, key: str, work: Any, *, slot: bool = False) -> None:
        try:
            if slot:
                async with self._sem:
                    self._waiting -= 1
                    slot = False
                    await work()
            else:
                await work()
        except Exception:
            log.exception("in-process job %s crashed", key)
        finally:
            if slot:
                self._waiting -= 1
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]

    async def _run(self, run_id: str) -> None:
        waiting = True
        try:
            async with self._sem:
                self._waiting -= 1
                waiting = False
                await execute_run(self.ctx, run_id)
        except Exception:
            log.exception("in-process job for run %s crashed", run_id)
        finally:
            if waiting:
                self._waiting -= 1
            if self._tasks.get(run_id) is asyncio.current_task():
                del self._tasks[run_id]

    async def depth(self) -> int:
        """Runs waiting for a free slot."""
        return self._waiting

    async def join(self) -> None:
        """Wait until every enqueued run and optimization has finished (tests, the demo)."""
        while tasks := [*(t for t in self._tasks.values() if not t.done()),
                        *self.coordinator.tasks()]:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop the reaper and the coordinators, cancel running jobs (they hand their runs
        back; coordinations resume after their lease)."""
        self._closed = True
        await self.coordinator.close()
        tasks = [t for t in (self._reaper, *self._tasks.values()) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def redis_settings(redis_url: str) -> Any:
    """arq RedisSettings from a URL, retrying commands through short Redis outages."""
    from arq.connections import RedisSettings
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return dataclasses.replace(
        RedisSettings.from_dsn(redis_url),
        conn_timeout=2,
        conn_retries=30,
        conn_retry_delay=1,
        retry_on_error=[RedisConnectionError, RedisTimeoutError, OSError],
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.1), 30),
    )


class ArqQueue:
    """Team deployment: arq jobs on Redis, run by `backtester worker` processes."""

    def __init__(self, redis_url: str, queue_name: str = DEFAULT_QUEUE, *, pool: Any = None) -> None:
        self.redis_url = redis_url
        self.queue_name = queue_name
        self._pool = pool
        self._owns_pool = pool is None
        self._lock = asyncio.Lock()

    async def _get_pool(self) -> Any:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    from arq import create_pool

                    self._pool = await create_pool(
                        redis_settings(self.redis_url), default_queue_name=self.queue_name
                    )
        return self._pool

    async def enqueue_run(self, run_id: str, *, attempt: int = 0) -> None:
        pool = await self._get_pool()
        job = await pool.enqueue_job(
            JOB_RUN_BACKTEST, run_id,
            _job_id=job_id_for(run_id, attempt), _queue_name=self.queue_name,
        )
        if job is None:
            log.debug("run %s (attempt %d) already queued", run_id, attempt)

    async def enqueue_optimization(self, opt_id: str, *, attempt: int = 0) -> None:
        """Wake the coordinator loops of this queue's workers (a pub/sub event, not a job:
        a coordinator holding a job slot would starve its own batches). A lost event costs
        at most the workers' poll interval."""
        pool = await self._get_pool()
        event = {"type": "wake", "optimization_id": opt_id, "attempt": attempt}
        await pool.publish(run_channel(wake_id(self.queue_name)), json.dumps(event))

    async def wait_batch(self, opt_id: str, timeout: float) -> None:
        """Batches run on other workers: the coordinator polls (after `timeout`)."""
        await asyncio.sleep(timeout)

    async def enqueue_batch(self, opt_id: str, number: int, *, attempt: int = 0) -> None:
        pool = await self._get_pool()
        await pool.enqueue_job(JOB_RUN_OPTIMIZATION_BATCH, opt_id, number,
                               _job_id=batch_job_id(opt_id, number, attempt),
                               _queue_name=self.queue_name)

    async def depth(self) -> int:
        """Jobs waiting for a worker: arq keeps a job in its queue until it ends, so the
        ones a worker is already running (they have an in-progress key) are left out."""
        pool = await self._get_pool()
        job_ids = await pool.zrange(self.queue_name, 0, -1)
        if not job_ids:
            return 0
        async with pool.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.exists(IN_PROGRESS_PREFIX + job_id.decode())
            running = await pipe.execute()
        return sum(1 for r in running if not r)

    async def close(self) -> None:
        if self._pool is not None and self._owns_pool:
            await self._pool.aclose()
        self._pool = None
