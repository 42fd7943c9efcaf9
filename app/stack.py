"""Composition root: turn `Settings` into the running pieces and close them cleanly.

Embedded: SQLite + file blobs + in-process queue (the worker runs in this process) +
in-memory bus. Team: PostgreSQL + blobs in the database + arq on Redis + Redis pub/sub;
the work then happens in `backtester worker` processes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from app.auth import Authenticator, check_bind
from app.settings import Settings
from store.blobs import BlobStore, blob_store_for
from store.datasets import ensure_sample_datasets
from store.db import Database, run_migrations
from workers.bus import InMemoryBus, ProgressBus, RedisBus
from workers.jobs import Faults, WorkerContext, default_worker_id
from workers.limits import MemoryRateLimiter, RateLimiter, RateLimits, RedisRateLimiter
from workers.queue import ArqQueue, InProcessQueue, JobQueue
from workers.reaper import reap_once
from workers.service import ServiceLimits, Services

log = logging.getLogger("backtester.app")


@dataclass
class Stack:
    """Everything a request may touch, opened once per process."""

    settings: Settings
    db: Database
    blobs: BlobStore
    queue: JobQueue
    bus: ProgressBus
    services: Services
    redis: Any = None  # a redis.asyncio client for health checks (team mode only)
    ready: bool = field(default=False)
    auth: Authenticator | None = None
    """Identifies callers (tokens, or the local user when no users exist)."""
    limiter: RateLimiter = field(default_factory=MemoryRateLimiter)
    """Per-token rate limits: in memory when embedded, in Redis for a team."""

    @property
    def rate_limits(self) -> RateLimits:
        s = self.settings
        return RateLimits(requests=s.rate_limit_requests, runs=s.rate_limit_runs,
                          trials=s.rate_limit_trials,
                          window_s=s.rate_limit_window_seconds)

    async def health(self) -> dict[str, Any]:
        """Probe each dependency; `ok` is true only when every one answers."""
        report: dict[str, Any] = {"ok": True, "mode": "embedded" if self.settings.embedded else "team"}
        try:
            async with asyncio.timeout(2):
                async with self.db.engine.connect() as conn:
                    await conn.exec_driver_sql("SELECT 1")
            report["database"] = "ok"
        except Exception as exc:
            report["ok"] = False
            report["database"] = f"error: {type(exc).__name__}"
        if self.redis is None:
            report["redis"] = "not configured"
        else:
            try:
                async with asyncio.timeout(2):
                    await self.redis.ping()
                report["redis"] = "ok"
            except Exception as exc:
                report["ok"] = False
                report["redis"] = f"error: {type(exc).__name__}"
        try:
            async with asyncio.timeout(2):
                report["queue_depth"] = await self.queue.depth()
            report["queue"] = "ok"
        except Exception as exc:
            report["ok"] = False
            report["queue"] = f"error: {type(exc).__name__}"
            report["queue_depth"] = None
        if not self.ready:
            report["ok"] = False
        return report


async def prepare_database(settings: Settings) -> None:
    """Create the data directory (embedded) and bring the schema to head."""
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(run_migrations, settings.effective_database_url)


def pool_options(settings: Settings) -> dict[str, Any]:
    """Engine options of the API process's database: a fixed PostgreSQL pool. SQLAlchemy's
    default (5 + 10 overflow) opened and closed a connection for ~8% of requests under 32
    concurrent clients, a third more CPU per request (bench/load_bench.py)."""
    if not settings.effective_database_url.startswith("postgresql"):
        return {}
    return {"pool_size": settings.database_pool_size, "max_overflow": 0}


@asynccontextmanager
async def open_stack(settings: Settings, *, in_process: bool | None = None) -> AsyncIterator[Stack]:
    """Open database, blobs, bus, queue and services; close them in reverse order.

    `in_process` forces the in-process queue and bus (the `demo` command uses it so it
    needs no worker); by default they follow the settings.
    """
    local = settings.embedded if in_process is None else in_process
    async with AsyncExitStack() as exits:
        if settings.should_migrate or settings.database_url is None:
            await prepare_database(settings)
        db = Database(settings.effective_database_url, **pool_options(settings))
        exits.push_async_callback(db.dispose)
        await check_bind(settings, db)  # no users: loopback only

        # The same rule as every worker: blobs in PostgreSQL, or files next to SQLite.
        blobs = blob_store_for(db, settings.data_dir)

        redis_client = None
        bus: ProgressBus
        queue: JobQueue
        if local:
            bus = InMemoryBus()
            exits.push_async_callback(bus.close)
            ctx = WorkerContext(
                db=db,
                blobs=blobs,
                bus=bus,
                worker_id=default_worker_id(),
                lease_s=settings.lease_seconds,
                heartbeat_s=settings.heartbeat_seconds,
                faults=Faults.from_env(),  # test-only slow-downs, off unless BT_TEST_FAULTS
            )
            queue = InProcessQueue(
                ctx,
                concurrency=settings.worker_concurrency,
                reap_interval_s=settings.reap_interval_seconds,
                queued_grace_s=settings.queued_grace_seconds,
                max_coordinators=settings.max_coordinators,
            )
        else:
            import redis.asyncio as aioredis

            assert settings.redis_url is not None
            redis_client = aioredis.Redis.from_url(settings.redis_url)
            exits.push_async_callback(redis_client.aclose)
            bus = RedisBus(settings.redis_url, prefix=settings.channel_prefix)
            exits.push_async_callback(bus.close)
            queue = ArqQueue(settings.redis_url)
        exits.push_async_callback(queue.close)

        limits = ServiceLimits(
            max_upload_bytes=settings.max_upload_bytes,
            max_decompressed_bytes=settings.max_decompressed_bytes,
            max_concurrent_runs=settings.max_concurrent_runs,
            queue_share=settings.queue_share,
            max_datasets_per_user=settings.max_datasets_per_user,
            max_dataset_bytes_per_user=settings.max_dataset_bytes_per_user,
        )
        services = Services(db, blobs, queue, bus, limits, strategy_paths=settings.strategy_paths)
        if settings.should_load_samples:
            await ensure_sample_datasets(db, blobs)
        synced = await services.sync_strategies()  # built-ins and STRATEGY_PATHS
        for problem in synced.errors:
            log.warning("strategy %s: %s failed: %s", problem.path, problem.step, problem.message)
        if local and settings.embedded:
            # The only process on this database: runs a previous start handed back (or
            # left queued) resume now instead of after the reaper's grace period.
            await reap_once(db, queue, bus, queued_grace_s=0)
        limiter: RateLimiter = (
            MemoryRateLimiter() if redis_client is None else RedisRateLimiter(redis_client)
        )
        stack = Stack(settings, db, blobs, queue, bus, services, redis=redis_client,
                      auth=Authenticator(db), limiter=limiter)
        stack.ready = True
        log.info("backtester stack open: %s", settings.describe())
        try:
            yield stack
        finally:
            stack.ready = False
            log.info("backtester stack closing")
    log.info("backtester stack closed")
