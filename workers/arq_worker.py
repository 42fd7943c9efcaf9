"""The arq worker: `WorkerSettings` for `arq workers.arq_worker.WorkerSettings`, and
`run_worker(...)` for `backtester worker` (or `python -m workers.arq_worker`).

Configuration comes from the caller (`run_worker`) or the environment: DATABASE_URL,
REDIS_URL, BT_QUEUE_NAME, BT_WORKER_CONCURRENCY, BT_LEASE_SECONDS,
BT_HEARTBEAT_SECONDS, BT_REAP_INTERVAL_SECONDS, BT_QUEUED_GRACE_SECONDS, BT_DATA_DIR,
BT_MAX_COORDINATORS.
Retries are ours, not arq's: the run's `attempt` column decides, so arq's max_tries is
set far out of the way and results are not kept (the database has them).

Besides the arq jobs (runs and optimization batches, `concurrency` at a time), each
worker runs the reaper and a `CoordinatorLoop` (optimization coordinators, outside the
job slots, woken by `ArqQueue.enqueue_optimization`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from arq.worker import Worker, func

from store.blobs import blob_store_for
from store.db import Database
from workers.bus import RedisBus
from workers.constants import (
    DEFAULT_QUEUE,
    JOB_RUN_BACKTEST,
    JOB_RUN_OPTIMIZATION,
    JOB_RUN_OPTIMIZATION_BATCH,
    KEY_PREFIX,
)
from workers.coordinator import DEFAULT_MAX_COORDINATORS, CoordinatorLoop, wake_id
from workers.jobs import Faults, WorkerContext, default_worker_id, execute_run
from workers.optimization_jobs import execute_batch
from workers.queue import ArqQueue, redis_settings
from workers.reaper import reaper_loop

__all__ = ["WorkerConfig", "WorkerSettings", "main", "run_backtest", "run_worker"]

log = logging.getLogger("backtester.worker")

JOB_TIMEOUT_S = 24 * 3600
ARQ_MAX_TRIES = 1000
DEFAULT_BUS_PREFIX = KEY_PREFIX.rstrip(":")


def _env(*names: str, default: str | None = None) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return default


def _max_coordinators_env() -> int:
    return int(_env("BT_MAX_COORDINATORS", default="") or DEFAULT_MAX_COORDINATORS)


@dataclass(frozen=True)
class WorkerConfig:
    """Everything one worker process needs."""

    database_url: str
    redis_url: str
    queue_name: str = DEFAULT_QUEUE
    concurrency: int = 2
    lease_s: float = 30.0
    heartbeat_s: float = 2.0
    reap_interval_s: float = 5.0
    queued_grace_s: float = 30.0
    data_dir: str | None = None
    max_coordinators: int = DEFAULT_MAX_COORDINATORS
    bus_prefix: str = DEFAULT_BUS_PREFIX
    """The progress bus's channel prefix: the same as the API servers' (`BT_BUS_PREFIX`)."""
    worker_id: str = field(default_factory=default_worker_id)
    faults: Faults = field(default_factory=Faults)

    @classmethod
    def from_env(cls) -> WorkerConfig:
        database_url = _env("DATABASE_URL", "BT_DATABASE_URL")
        if not database_url:
            raise RuntimeError("DATABASE_URL is not set: workers need the shared PostgreSQL database")
        return cls(
            database_url=database_url,
            redis_url=_env("REDIS_URL", "BT_REDIS_URL", default="redis://localhost:6379") or "",
            queue_name=_env("BT_QUEUE_NAME", default=DEFAULT_QUEUE) or DEFAULT_QUEUE,
            concurrency=int(_env("BT_WORKER_CONCURRENCY", default="2") or 2),
            lease_s=float(_env("BT_LEASE_SECONDS", default="30") or 30),
            heartbeat_s=float(_env("BT_HEARTBEAT_SECONDS", default="2") or 2),
            reap_interval_s=float(_env("BT_REAP_INTERVAL_SECONDS", default="5") or 5),
            queued_grace_s=float(_env("BT_QUEUED_GRACE_SECONDS", default="30") or 30),
            data_dir=_env("BT_DATA_DIR"),
            max_coordinators=_max_coordinators_env(),
            bus_prefix=_env("BT_BUS_PREFIX", default=DEFAULT_BUS_PREFIX) or DEFAULT_BUS_PREFIX,
            faults=Faults.from_env(),
        )


async def startup(ctx: dict[str, Any]) -> None:
    """Open the database, blob store and bus; start this process's reaper and coordinator
    loop."""
    cfg: WorkerConfig = ctx.get("bt_config") or WorkerConfig.from_env()
    pool: dict[str, int] = {}
    if cfg.database_url.startswith("postgresql"):  # a few connections per job, not 15
        # +1: the coordinators' queries are short and share it (and the overflow).
        pool = {"pool_size": cfg.concurrency + 3, "max_overflow": cfg.concurrency + 2}
    db = Database(cfg.database_url, **pool)
    bus = RedisBus(cfg.redis_url, prefix=cfg.bus_prefix)
    ctx["bt"] = WorkerContext(
        db=db,
        blobs=blob_store_for(db, cfg.data_dir),
        bus=bus,
        worker_id=cfg.worker_id,
        lease_s=cfg.lease_s,
        heartbeat_s=min(cfg.heartbeat_s, cfg.lease_s / 3),
        faults=cfg.faults,
    )
    queue = ArqQueue(cfg.redis_url, cfg.queue_name, pool=ctx["redis"])
    ctx["bt_queue"] = queue
    ctx["bt_reaper"] = asyncio.create_task(
        reaper_loop(db, queue, bus, interval_s=cfg.reap_interval_s, queued_grace_s=cfg.queued_grace_s),
        name="backtester-reaper",
    )
    coordinator = CoordinatorLoop(
        ctx["bt"], queue, max_active=cfg.max_coordinators, interval_s=cfg.reap_interval_s,
        bus=bus, channel=wake_id(cfg.queue_name),
    )
    coordinator.start()
    ctx["bt_coordinator"] = coordinator
    log.info("worker %s ready on queue %s", cfg.worker_id, cfg.queue_name)


async def shutdown(ctx: dict[str, Any]) -> None:
    """Cancel this process's coordinators (another worker takes them over once their
    leases expire), stop the reaper, close the bus and the database."""
    coordinator: CoordinatorLoop | None = ctx.pop("bt_coordinator", None)
    if coordinator is not None:
        await coordinator.close()
    reaper = ctx.pop("bt_reaper", None)
    if reaper is not None:
        reaper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reaper
    wctx: WorkerContext | None = ctx.pop("bt", None)
    if wctx is not None:
        await wctx.bus.close()
        await wctx.db.dispose()


async def run_backtest(ctx: dict[str, Any], run_id: str) -> None:
    """The arq job: one run, start to terminal state."""
    await execute_run(ctx["bt"], run_id)


async def run_optimization(ctx: dict[str, Any], opt_id: str) -> None:
    """Only wakes the coordinator loop: coordinators are no longer jobs, but an API process
    of an older release may still enqueue this one."""
    coordinator: CoordinatorLoop | None = ctx.get("bt_coordinator")
    if coordinator is not None:
        coordinator.wake()


async def run_optimization_batch(ctx: dict[str, Any], opt_id: str, number: int) -> None:
    """The arq job evaluating one batch of an optimization's trials."""
    await execute_batch(ctx["bt"], opt_id, number)


def _functions() -> list[Any]:
    return [
        func(
            job,  # type: ignore[arg-type]
            name=name,
            keep_result=0,
            max_tries=ARQ_MAX_TRIES,
            timeout=JOB_TIMEOUT_S,
        )
        for job, name in (
            (run_backtest, JOB_RUN_BACKTEST),
            (run_optimization, JOB_RUN_OPTIMIZATION),
            (run_optimization_batch, JOB_RUN_OPTIMIZATION_BATCH),
        )
    ]


def _worker_kwargs(cfg: WorkerConfig) -> dict[str, Any]:
    return {
        "functions": _functions(),
        "queue_name": cfg.queue_name,
        "redis_settings": redis_settings(cfg.redis_url),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "max_jobs": cfg.concurrency,
        "job_timeout": JOB_TIMEOUT_S,
        "keep_result": 0,
        "max_tries": ARQ_MAX_TRIES,
        "poll_delay": 0.2,
        "health_check_interval": 10,
        "ctx": {"bt_config": cfg},
    }


class WorkerSettings:
    """For the arq CLI: `arq workers.arq_worker.WorkerSettings` (configured by environment)."""

    functions = _functions()
    on_startup = startup
    on_shutdown = shutdown
    queue_name = _env("BT_QUEUE_NAME", default=DEFAULT_QUEUE)
    redis_settings = redis_settings(_env("REDIS_URL", "BT_REDIS_URL", default="redis://localhost:6379") or "")
    max_jobs = int(_env("BT_WORKER_CONCURRENCY", default="2") or 2)
    job_timeout = JOB_TIMEOUT_S
    keep_result = 0
    max_tries = ARQ_MAX_TRIES
    poll_delay = 0.2
    health_check_interval = 10


def run_worker(
    database_url: str,
    redis_url: str,
    *,
    queue_name: str = DEFAULT_QUEUE,
    concurrency: int = 2,
    lease_s: float = 30.0,
    heartbeat_s: float = 2.0,
    data_dir: str | os.PathLike[str] | None = None,
    reap_interval_s: float = 5.0,
    queued_grace_s: float = 30.0,
    max_coordinators: int | None = None,
    bus_prefix: str = DEFAULT_BUS_PREFIX,
    burst: bool = False,
) -> None:
    """Run a worker until SIGINT/SIGTERM (blocking). Survives Redis outages: arq's
    connection retries bridge short ones, and a worker whose Redis connection fails for
    good is rebuilt after a pause, while running jobs finish against the database."""
    cfg = WorkerConfig(
        database_url=database_url,
        redis_url=redis_url,
        queue_name=queue_name,
        concurrency=concurrency,
        lease_s=lease_s,
        heartbeat_s=heartbeat_s,
        reap_interval_s=reap_interval_s,
        queued_grace_s=queued_grace_s,
        data_dir=None if data_dir is None else os.fspath(data_dir),
        max_coordinators=max_coordinators or _max_coordinators_env(),
        bus_prefix=bus_prefix,
        faults=Faults.from_env(),
    )
    run_worker_config(cfg, burst=burst)


def run_worker_config(cfg: WorkerConfig, *, burst: bool = False) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        while True:
            worker = Worker(**_worker_kwargs(cfg), burst=burst)
            try:
                worker.run()
                return
            except Exception as exc:  # Redis gone for longer than the retries cover
                log.error("worker stopped (%s: %s); restarting in 2 s", type(exc).__name__, exc)
                time.sleep(2)
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def main() -> None:
    """`python -m workers.arq_worker`: a worker configured by the environment."""
    logging.basicConfig(
        level=os.environ.get("BT_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run_worker_config(WorkerConfig.from_env())


if __name__ == "__main__":
    main()
