"""The coordinator loop: every worker process coordinates optimizations as background
tasks, outside its job slots.

An optimization's coordinator (`execute_optimization`) mostly waits on the database for
its batches, and the batches are the queue jobs. Were the coordinator a job too, a worker
with as many running optimizations as slots could never run a batch (a deadlock), and one
optimization would halve a 2-slot worker. So each process (`backtester worker`, and the
embedded server's `InProcessQueue`) runs one `CoordinatorLoop`: every `interval_s`, and at
once when woken (`wake()`, or an event on the wake channel that
`ArqQueue.enqueue_optimization` publishes), it lists the optimizations that are QUEUED or
whose coordinator lease expired (`store.optimizations.claimable_optimizations`, oldest
first) and runs `execute_optimization` for each as a task, at most `max_active` at a
time. The conditional claim inside it decides which process wins; the losers' tasks end
at once. `close()` cancels the tasks: their leases expire and another process takes them
over with the next attempt, the same rules as for a killed worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from store import optimizations as opt_store
from workers.bus import ProgressBus
from workers.jobs import WorkerContext
from workers.optimization_jobs import BatchQueue, execute_optimization

__all__ = ["DEFAULT_MAX_COORDINATORS", "CoordinatorLoop", "wake_id"]

log = logging.getLogger("backtester.coordinator")

DEFAULT_MAX_COORDINATORS = 16
"""Optimizations one process coordinates at once (`BT_MAX_COORDINATORS`)."""

_WAKE_ID = "coordinators:{queue_name}"


def wake_id(queue_name: str) -> str:
    """The bus id (`ProgressBus.subscribe(id)`, Redis channel `run_channel(id)`) whose
    events wake the coordinator loops of the workers reading `queue_name`."""
    return _WAKE_ID.format(queue_name=queue_name)


class CoordinatorLoop:
    """This process's optimization coordinators (see the module docstring)."""

    def __init__(
        self,
        ctx: WorkerContext,
        queue: BatchQueue,
        *,
        max_active: int = DEFAULT_MAX_COORDINATORS,
        interval_s: float = 5.0,
        bus: ProgressBus | None = None,
        channel: str | None = None,
    ) -> None:
        if max_active < 1:
            raise ValueError("max_active must be at least 1")
        self.ctx = ctx
        self.queue = queue
        self.max_active = max_active
        self.interval_s = interval_s
        self.bus = bus
        self.channel = channel
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def active(self) -> list[str]:
        """Ids of the optimizations this process is coordinating (or trying to claim)."""
        return list(self._tasks)

    def tasks(self) -> list[asyncio.Task[None]]:
        return [t for t in self._tasks.values() if not t.done()]

    def start(self) -> None:
        """Start the loop (and the wake listener when a bus and channel are given); needs a
        running event loop; a second call does nothing."""
        if self._closed or self._loop is not None:
            return
        self._loop = asyncio.create_task(self._run(), name="backtester-coordinator")
        if self.bus is not None and self.channel is not None:
            self._listener = asyncio.create_task(self._listen(), name="backtester-coordinator-wake")

    def wake(self) -> None:
        """Look for claimable optimizations now rather than at the next interval."""
        self._wake.set()

    def offer(self, opt_id: str) -> None:
        """Coordinate `opt_id` now if there is room (the embedded queue's fast path, which
        also makes `InProcessQueue.join()` see it at once); otherwise just wake the loop."""
        if len(self._tasks) < self.max_active:
            self._spawn(opt_id)
        else:
            self.wake()

    async def poll_once(self) -> int:
        """One look for claimable optimizations; the number of coordinators started."""
        free = self.max_active - len(self._tasks)
        if free <= 0 or self._closed:
            return 0
        ids = await opt_store.claimable_optimizations(self.ctx.db, limit=free + len(self._tasks))
        started = 0
        for opt_id in ids:
            if started >= free:
                break
            started += self._spawn(opt_id)
        return started

    def _spawn(self, opt_id: str) -> bool:
        if self._closed or opt_id in self._tasks:
            return False
        task = asyncio.create_task(self._coordinate(opt_id), name=f"coordinator {opt_id}")
        self._tasks[opt_id] = task
        task.add_done_callback(lambda t: self._done(opt_id, t))
        return True

    async def _coordinate(self, opt_id: str) -> None:
        try:
            await execute_optimization(self.ctx, self.queue, opt_id)
        except Exception as exc:  # storage trouble: the lease expires, someone retries
            log.warning("coordinator of optimization %s stopped: %s: %s", opt_id,
                        type(exc).__name__, exc)

    def _done(self, opt_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(opt_id) is task:
            del self._tasks[opt_id]
            if len(self._tasks) == self.max_active - 1:  # was full: others may be waiting
                self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                started = await self.poll_once()
                if started:
                    log.debug("coordinating %d more optimization(s)", started)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down: try again next interval
                log.warning("coordinator poll failed: %s: %s", type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()

    async def _listen(self) -> None:
        assert self.bus is not None and self.channel is not None
        while True:
            try:
                async with self.bus.subscribe(self.channel) as sub:
                    async for _ in sub:
                        self._wake.set()
                return  # the bus was closed
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # polling still covers us meanwhile
                log.warning("coordinator wake subscription failed: %s", exc)
                await asyncio.sleep(1.0)

    async def join(self) -> None:
        """Wait until this process's coordinators have ended (tests, the demo command)."""
        while tasks := self.tasks():
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop looking and cancel the coordinators; their leases expire and another
        process takes them over."""
        self._closed = True
        tasks = [t for t in (self._loop, self._listener, *self._tasks.values()) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
