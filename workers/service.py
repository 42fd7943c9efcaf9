"""`Services`: the facade graph resolvers call to submit, cancel, wait for and follow runs.

Validation happens here (strategy exists, params within bounds, dataset exists, engine
options valid) and raises typed errors: `NotFoundError`, `BadInputError`,
`ConflictError`. Following a run reads the database first and last: the bus only makes
the middle live, so a lost message never loses a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
from sqlalchemy import func, select

from engine.options import EngineOptions
from store import runs as run_store
from store import strategy_catalog as catalog
from store.audit import record as audit
from store.blobs import BlobStore
from store.datasets import get_dataset
from store.db import Database
from store.errors import BadInputError, ConflictError
from store.models import RunRow, RunStatus
from store.pagination import Page
from store.scope import SYSTEM, Scope, set_shared
from strategies.base import ParamError, Strategy, merge_engine_options
from strategies.registry import UnknownStrategyError, get_strategy
from workers.analytics import RunAnalytics
from workers.bus import ProgressBus, Subscription
from workers.dataset_service import (
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    DEFAULT_MAX_UPLOAD_BYTES,
    DatasetService,
)
from workers.events import row_event
from workers.limits import RateLimitedError
from workers.optimization_service import OptimizationService
from workers.queue import JobQueue
from workers.strategy_service import StrategyServices

__all__ = ["ServiceLimits", "Services"]

log = logging.getLogger("backtester.service")


@dataclass(frozen=True)
class ServiceLimits:
    """Guards for the facade; `app/` builds them from settings."""

    max_active_runs: int = 10_000
    """QUEUED + RUNNING runs before `submit_backtest` answers CONFLICT (queue full)."""
    max_attempts: int = 3
    poll_s: float = 1.0
    """How often followers re-read the database while the bus is quiet."""
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    """Largest dataset file an import accepts (settings.max_upload_bytes)."""
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    """Largest gzip/zip content once decompressed (zip bombs)."""
    max_concurrent_runs: int = 100
    """QUEUED + RUNNING runs one user may have (RATE_LIMITED beyond)."""
    queue_share: float = 0.5
    """While other users' runs wait too, one user's share of the waiting runs stays under
    this (RATE_LIMITED beyond); a user alone may fill the queue up to its own limit."""
    max_datasets_per_user: int = 500
    max_dataset_bytes_per_user: int = 8 << 30
    """Original upload bytes one user may keep stored."""


def _options_error(exc: pydantic.ValidationError) -> BadInputError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    more = exc.error_count() - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
    return BadInputError(f"options.{where}" if where else "options", f"{first.get('msg')}{tail}")


class Services(StrategyServices):
    """What resolvers call; holds the database, blob store, queue and bus of this process.

    `strategy_paths` are the user strategy folders (STRATEGY_PATHS) that
    `sync_strategies` discovers; the strategy methods live in `workers.strategy_service`.
    """

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        queue: JobQueue,
        bus: ProgressBus,
        limits: ServiceLimits | None = None,
        *,
        strategy_paths: Sequence[str | Path] = (),
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.queue = queue
        self.bus = bus
        self.limits = limits or ServiceLimits()
        self.scope: Scope = SYSTEM
        """Whose runs and datasets this facade reads and writes (`scoped`)."""
        self.charge: Callable[[str, int], Awaitable[None]] | None = None
        """Counts submitted work against the caller's budget (`charge(kind, cost)`, e.g.
        "trials"; raises RateLimitedError); None = unlimited (workers, CLI, tests)."""
        self.strategy_paths = tuple(Path(p) for p in strategy_paths)
        self._sync_lock = asyncio.Lock()
        self._follower_reads: dict[tuple[str, Scope], tuple[float, asyncio.Future[RunRow]]] = {}
        """Followers' periodic reads of their run, shared per (run, scope) (`_poll_run`)."""
        self.analytics = RunAnalytics(db, blobs)
        """Analysis, charts, comparisons and reports of finished runs (`workers.analytics`)."""
        self.datasets = DatasetService(
            db,
            blobs,
            max_upload_bytes=self.limits.max_upload_bytes,
            max_decompressed_bytes=self.limits.max_decompressed_bytes,
            max_datasets_per_user=self.limits.max_datasets_per_user,
            max_bytes_per_user=self.limits.max_dataset_bytes_per_user,
        )
        """Dataset import, listing, preview, download and deletion (`workers.dataset_service`)."""

    def scoped(
        self, scope: Scope, *, charge: Callable[[str, int], Awaitable[None]] | None = None
    ) -> Services:
        """This facade acting for `scope`: every read is filtered to the rows it sees,
        every write checked and owned by it (the queue, bus, caches and locks are shared);
        `charge` counts the work it submits against the caller's budget."""
        clone = copy.copy(self)
        clone.scope = scope
        clone.charge = charge
        clone.analytics = self.analytics.scoped(scope)
        clone.datasets = self.datasets.scoped(scope)
        return clone

    @property
    def optimizations(self) -> OptimizationService:
        """Parameter optimizations as this facade's scope (`workers.optimization_service`)."""
        return OptimizationService(self)

    async def audit(self, action: str, kind: str, target: object = None, **detail: Any) -> None:
        """Append to the audit log as this facade's scope (never fails the action itself)."""
        try:
            await audit(self.db, self.scope, action, kind, target, **detail)
        except Exception:
            log.exception("could not write the audit entry %s %s %s", action, kind, target)

    # -- reads, filtered to what the scope sees ----------------------------------------
    async def get_run(self, run_id: str) -> RunRow:
        return await run_store.get_run(self.db, str(run_id), scope=self.scope)

    async def read_run(self, run_id: str) -> run_store.RunView:
        """`get_run` for display only: a read-only row with `RunRow`'s column attributes."""
        return await run_store.read_run(self.db, str(run_id), scope=self.scope)

    async def list_runs(self, **filters: Any) -> Page[RunRow]:
        return await run_store.list_runs(self.db, scope=self.scope, **filters)

    async def run_stats(self) -> dict[str, Any]:
        return await run_store.run_stats(self.db, scope=self.scope)

    async def visible_run_ids(self, ids: Sequence[str]) -> set[str]:
        return await run_store.visible_run_ids(self.db, ids, scope=self.scope)

    async def share_run(self, run_id: str, shared: bool = True) -> RunRow:
        """Show a run to the whole team (or stop); only its owner or an admin may."""
        row = await set_shared(self.db, RunRow, str(run_id), shared, self.scope, "run")
        await self.audit("run.share" if shared else "run.unshare", "run", row.id)
        return row

    async def _check_user_limits(self) -> None:
        """Concurrent runs and queue share of the submitting user (RateLimitedError)."""
        if self.scope.user_id is None:  # system and the embedded local user
            return
        mine = RunRow.owner_id == self.scope.user_id
        active = RunRow.status.in_([RunStatus.QUEUED, RunStatus.RUNNING])
        queued = RunRow.status == RunStatus.QUEUED
        async with self.db.session() as s:
            my_active, my_queued, all_queued = (
                await s.execute(
                    select(
                        func.count(RunRow.id).filter(mine, active),
                        func.count(RunRow.id).filter(mine, queued),
                        func.count(RunRow.id).filter(queued),
                    )
                )
            ).one()
        cap = self.limits.max_concurrent_runs
        if my_active >= cap:
            raise RateLimitedError(
                f"you have {my_active} runs queued or running (limit {cap}); wait for some to "
                "finish", retry_after=5, limit=cap,
            )
        others = all_queued - my_queued
        if others > 0 and my_queued + 1 > max(2.0, self.limits.queue_share * (all_queued + 1)):
            raise RateLimitedError(
                f"your runs already hold {my_queued} of the {all_queued} waiting in the queue "
                f"(share limit {self.limits.queue_share:.0%} while others wait); try again soon",
                retry_after=5,
            )

    def validate_backtest(
        self,
        strategy: str,
        params: dict[str, Any] | None,
        options: dict[str, Any] | None,
        *,
        cls: type[Strategy] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(validated params with defaults, full engine options) or BadInputError."""
        if cls is None:
            try:
                cls = get_strategy(strategy)
            except UnknownStrategyError as exc:
                raise BadInputError("strategy", str(exc)) from None
        if params is not None and not isinstance(params, dict):
            raise BadInputError("params", "must be a JSON object")
        if options is not None and not isinstance(options, dict):
            raise BadInputError("options", "must be a JSON object")
        try:
            clean = cls.validate_params(params or {})
        except ParamError as exc:
            raise BadInputError(f"params.{exc.param}", str(exc)) from None
        try:
            merged = merge_engine_options(cls, clean, dict(options or {}))
        except ParamError as exc:  # an option the strategy also sets from its params
            raise BadInputError(f"options.{exc.param}", str(exc)) from None
        try:
            engine_options = EngineOptions.model_validate(merged)
        except pydantic.ValidationError as exc:
            raise _options_error(exc) from None
        return clean, engine_options.model_dump(mode="json")

    async def submit_backtest(
        self,
        strategy: str,
        dataset_id: int,
        params: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> RunRow:
        """Validate, insert a QUEUED run and enqueue it; returns the new run.

        The strategy must be runnable (not deleted, missing or failed validation); its
        user default params (updateStrategy) lie under `params`.
        """
        cls, defaults = await self.runnable_strategy(strategy)
        if defaults and isinstance(params, dict | None):
            params = {**defaults, **(params or {})}
        clean, engine_options = self.validate_backtest(strategy, params, options, cls=cls)
        await get_dataset(self.db, dataset_id, scope=self.scope)  # NotFoundError("dataset", id)
        await self._check_user_limits()
        async with self.db.session() as s:
            active = (
                await s.execute(
                    select(func.count(RunRow.id)).where(
                        RunRow.status.in_([RunStatus.QUEUED, RunStatus.RUNNING])
                    )
                )
            ).scalar_one()
        if active >= self.limits.max_active_runs:
            raise ConflictError(
                f"{active} runs are already queued or running (limit "
                f"{self.limits.max_active_runs}); wait for some to finish"
            )
        row = await run_store.create_run(
            self.db, strategy=strategy, dataset_id=dataset_id, params=clean,
            options=engine_options, max_attempts=self.limits.max_attempts,
            owner_id=self.scope.owner_id,
        )
        await self.audit("run.create", "run", row.id, strategy=strategy, dataset_id=dataset_id)
        await catalog.bump_usage(self.db, strategy)
        await self.bus.publish(row.id, row_event(row, "status"))
        try:
            await self.queue.enqueue_run(row.id)
        except Exception as exc:  # the reaper re-enqueues QUEUED runs nobody picked up
            log.warning("enqueue of run %s failed (%s); the reaper will retry", row.id, exc)
        return row

    async def cancel_run(self, run_id: str) -> RunRow:
        """QUEUED: CANCELLED now. RUNNING: the worker stops within ~2 s. Finished: CONFLICT."""
        row = await run_store.cancel_run(self.db, run_id, scope=self.scope)
        await self.audit("run.cancel", "run", row.id)
        if row.terminal:
            await self.bus.publish(row.id, row_event(row, "terminal"))
        return row

    async def run_events(self, run_id: str, after_seq: int = 0) -> AsyncIterator[dict[str, Any]]:
        """A snapshot from the database, live bus events newer than it (and `after_seq`),
        then the terminal event read from the database, then the end."""
        await self.get_run(run_id)  # NOT_FOUND (also for a run it may not see) before subscribing
        async with self.bus.subscribe(run_id) as sub:
            row = await self.get_run(run_id)
            yield row_event(row, "snapshot")
            if row.terminal:
                yield row_event(row, "terminal")
                return
            last_seq, status = max(int(after_seq), int(row.seq)), row.status
            polled, closed, confirm = time.monotonic(), False, False
            while True:
                event = None
                if closed:
                    await asyncio.sleep(self.limits.poll_s)
                else:
                    try:
                        event = await sub.get(self.limits.poll_s)
                    except StopAsyncIteration:  # the bus closed: poll the database only
                        closed = True
                if event is not None and event.get("type") == "terminal":
                    polled, confirm = 0.0, True  # the database confirms (and words) the end
                elif event is not None and int(event.get("seq") or 0) > last_seq:
                    last_seq = int(event["seq"])
                    status = RunStatus(event.get("status", status))
                    # The bus is live: the database is read only once it has been quiet
                    # for poll_s (500 followers polling every second cost a core).
                    polled = time.monotonic()
                    yield event
                if time.monotonic() - polled < self.limits.poll_s or (sub.backlog and not closed):
                    continue  # events are waiting: the bus is live (a timeout raced them)
                polled = time.monotonic()
                row = await (self.get_run(run_id) if confirm else self._poll_run(run_id))
                confirm = False
                if row.terminal:
                    yield row_event(row, "terminal")
                    return
                if row.status != status and row.seq > last_seq:
                    last_seq, status = int(row.seq), row.status
                    yield row_event(row, "status")

    async def _poll_run(self, run_id: str) -> RunRow:
        """A follower's periodic re-read of its run, shared with every follower of that run
        (and scope) in this process for poll_s / 2: 500 followers of one run cost one
        database read per poll instead of 500."""
        key, now = (run_id, self.scope), time.monotonic()
        entry = self._follower_reads.get(key)
        if entry is None or now - entry[0] > self.limits.poll_s / 2:
            if len(self._follower_reads) >= 1000:  # forget runs nobody polls any more
                for old in [k for k, (at, _) in self._follower_reads.items() if now - at > 60]:
                    del self._follower_reads[old]
            read = asyncio.ensure_future(self.get_run(run_id))
            read.add_done_callback(lambda f: f.cancelled() or f.exception())  # seen by someone
            entry = self._follower_reads[key] = (now, read)
        return await asyncio.shield(entry[1])

    async def wait_for_run(self, run_id: str, timeout: float) -> RunRow:
        """The run once it is terminal; TimeoutError after `timeout` seconds (it keeps going)."""
        async with asyncio.timeout(timeout):
            async with contextlib.aclosing(self.run_events(run_id)) as events:
                async for event in events:
                    if event["type"] == "terminal":
                        break
        return await self.get_run(run_id)

    def subscribe_all(self) -> Subscription:
        """Every run's status and terminal events (for dashboards), unfiltered: use
        `all_run_events` to see only the runs of this facade's scope."""
        return self.bus.subscribe_all()

    async def all_run_events(self) -> AsyncIterator[dict[str, Any]]:
        """Status and terminal events of every run this scope sees (visibility is looked
        up once per run and refreshed every few seconds, so sharing shows up)."""
        seen: dict[str, tuple[float, bool]] = {}
        async with self.bus.subscribe_all() as subscription:
            async for event in subscription:
                run_id = str(event.get("run_id"))
                if not self.scope.admin or self.scope.nobody:
                    cached = seen.get(run_id)
                    if cached is None or time.monotonic() - cached[0] > 5.0:
                        visible = run_id in await self.visible_run_ids([run_id])
                        cached = seen[run_id] = (time.monotonic(), visible)
                        if len(seen) > 10_000:
                            seen.clear()
                    if not cached[1]:
                        continue
                yield event

