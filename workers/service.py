"""`Services`: the facade graph resolvers call to submit, cancel, wait for and follow runs.

Validation happens here (strategy exists, params within bounds, dataset exists, engine
options valid) and raises typed errors: `NotFoundError`, `BadInputError`,
`ConflictError`. Following a run reads the database first and last: the bus only makes
the middle live, so a lost message never loses a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
from sqlalchemy import func, select

from engine.options import EngineOptions
from store import runs as run_store
from store import strategy_catalog as catalog
from store.blobs import BlobStore
from store.datasets import get_dataset
from store.db import Database
from store.errors import BadInputError, ConflictError
from store.models import RunRow, RunStatus
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
        self.strategy_paths = tuple(Path(p) for p in strategy_paths)
        self._sync_lock = asyncio.Lock()
        self.analytics = RunAnalytics(db, blobs)
        """Analysis, charts, comparisons and reports of finished runs (`workers.analytics`)."""
        self.datasets = DatasetService(
            db,
            blobs,
            max_upload_bytes=self.limits.max_upload_bytes,
            max_decompressed_bytes=self.limits.max_decompressed_bytes,
        )
        """Dataset import, listing, preview, download and deletion (`workers.dataset_service`)."""

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
        await get_dataset(self.db, dataset_id)  # NotFoundError("dataset", id)
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
        )
        await catalog.bump_usage(self.db, strategy)
        await self.bus.publish(row.id, row_event(row, "status"))
        try:
            await self.queue.enqueue_run(row.id)
        except Exception as exc:  # the reaper re-enqueues QUEUED runs nobody picked up
            log.warning("enqueue of run %s failed (%s); the reaper will retry", row.id, exc)
        return row

    async def cancel_run(self, run_id: str) -> RunRow:
        """QUEUED: CANCELLED now. RUNNING: the worker stops within ~2 s. Finished: CONFLICT."""
        row = await run_store.cancel_run(self.db, run_id)
        if row.terminal:
            await self.bus.publish(row.id, row_event(row, "terminal"))
        return row

    async def run_events(self, run_id: str, after_seq: int = 0) -> AsyncIterator[dict[str, Any]]:
        """A snapshot from the database, live bus events newer than it (and `after_seq`),
        then the terminal event read from the database, then the end."""
        await run_store.get_run(self.db, run_id)  # NOT_FOUND before subscribing
        async with self.bus.subscribe(run_id) as sub:
            row = await run_store.get_run(self.db, run_id)
            yield row_event(row, "snapshot")
            if row.terminal:
                yield row_event(row, "terminal")
                return
            last_seq, status = max(int(after_seq), int(row.seq)), row.status
            polled, closed = time.monotonic(), False
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
                    polled = 0.0  # the database confirms (and words) the end
                elif event is not None and int(event.get("seq") or 0) > last_seq:
                    last_seq = int(event["seq"])
                    status = RunStatus(event.get("status", status))
                    yield event
                if time.monotonic() - polled < self.limits.poll_s:
                    continue
                polled = time.monotonic()
                row = await run_store.get_run(self.db, run_id)
                if row.terminal:
                    yield row_event(row, "terminal")
                    return
                if row.status != status and row.seq > last_seq:
                    last_seq, status = int(row.seq), row.status
                    yield row_event(row, "status")

    async def wait_for_run(self, run_id: str, timeout: float) -> RunRow:
        """The run once it is terminal; TimeoutError after `timeout` seconds (it keeps going)."""
        async with asyncio.timeout(timeout):
            async with contextlib.aclosing(self.run_events(run_id)) as events:
                async for event in events:
                    if event["type"] == "terminal":
                        break
        return await run_store.get_run(self.db, run_id)

    def subscribe_all(self) -> Subscription:
        """Every run's status and terminal events (for dashboards)."""
        return self.bus.subscribe_all()

