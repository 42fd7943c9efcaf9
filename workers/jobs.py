"""The backtest job: claim a run, compute it in chunks off the event loop, record it once.

`execute_run` is the same code in every deployment (arq worker or in-process queue).
Between engine chunks it heartbeats, checks for cancellation and publishes throttled
progress; a run-level problem (bad params, missing dataset, engine error) ends the run
FAILED with a readable message and never escapes to crash the worker.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pydantic
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from engine.backtest import Backtester
from engine.errors import EngineInputError
from engine.options import EngineOptions
from store import runs as run_store
from store.blobs import BlobStore
from store.datasets import get_dataset, load_bars
from store.db import Database
from store.errors import NotFoundError
from store.logctx import RUN_ID
from store.models import RunRow
from store.strategy_catalog import load_strategy_class
from strategies.base import merge_engine_options
from workers.bus import ProgressBus
from workers.events import equity_points, progress_event, row_event

__all__ = ["Faults", "RunFailure", "WorkerContext", "default_worker_id", "execute_run",
           "freeze_startup_objects"]

log = logging.getLogger("backtester.jobs")

INITIAL_CHUNK = 20_000
# Failures of our own storage, as opposed to the run's: they never mark a run FAILED.
INFRA_ERRORS: tuple[type[BaseException], ...] = (DBAPIError, SQLAlchemyTimeoutError, OSError)
MIN_CHUNK, MAX_CHUNK = 1_000, 20_000_000


def freeze_startup_objects() -> None:
    """Move what start-up built (modules, schema, engine, pools: some 300k objects that live
    as long as the process) out of the garbage collector's sight, in a process that only
    serves (`backtester serve`, `backtester worker`). A full collection then takes a few ms
    instead of over 100: in the API such pauses were the p99 of small queries, in a worker
    they took two thirds of telling a 1,000-trial batch (0.13 -> 0.04 s). Start-up garbage
    is kept; tests leave it off."""
    gc.collect()
    gc.freeze()


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Faults:
    """Test-only fault injection (from $BT_TEST_FAULTS as JSON); all off by default.

    chunk_bars: fixed chunk size; chunk_delay_s: extra wait after each chunk (a slow run)
    and after each optimization batch;
    exit_on_dataset: the worker process dies (os._exit) mid-run on a dataset of that name.
    """

    chunk_bars: int | None = None
    chunk_delay_s: float = 0.0
    exit_on_dataset: str | None = None

    @classmethod
    def from_env(cls) -> Faults:
        raw = os.environ.get("BT_TEST_FAULTS")
        return cls(**json.loads(raw)) if raw else cls()


@dataclass
class WorkerContext:
    """What a job needs; one per worker process (or per embedded server)."""

    db: Database
    blobs: BlobStore
    bus: ProgressBus
    worker_id: str = field(default_factory=default_worker_id)
    lease_s: float = 30.0
    heartbeat_s: float = 2.0
    control_s: float = 0.5
    """How often to check for a cancel request between heartbeats (cancel takes < 2 s)."""
    progress_interval_s: float = 0.2
    """At most ~5 progress events per second per run."""
    chunk_target_s: float = 0.075
    max_event_points: int = 500
    faults: Faults = field(default_factory=Faults)


class RunFailure(Exception):
    """A run-level problem: the run ends FAILED with this message."""


class _Job:
    def __init__(self, ctx: WorkerContext, run_id: str, attempt: int) -> None:
        self.ctx = ctx
        self.run_id = run_id
        self.attempt = attempt
        self.seq = 0
        self.stage = "starting"
        self.progress = 0.0
        self.code_hash: str | None = None
        """sha256 of the strategy's code, kept with the result (engine_info)."""

    async def publish_row(self, kind: str) -> RunRow:
        row = await run_store.get_run(self.ctx.db, self.run_id)
        await self.ctx.bus.publish(self.run_id, row_event(row, kind))
        return row

    async def prepare(self, row: RunRow) -> tuple[Backtester, str]:
        """Bars, signals and a Backtester; RunFailure with a readable message otherwise.

        Storage errors propagate (they are not the run's fault); anything the strategy
        or the engine raises becomes the run's error.
        """
        ctx = self.ctx
        if row.dataset_id is None:
            raise RunFailure("the run's dataset was deleted")
        try:
            dataset = await get_dataset(ctx.db, row.dataset_id)
            self.stage = "loading"
            bars = await load_bars(ctx.db, ctx.blobs, row.dataset_id)
        except NotFoundError as exc:
            raise RunFailure(f"{exc} (was it deleted?)") from None
        try:  # outside the catch-all below: a database error here is not the run's fault
            cls, self.code_hash = await load_strategy_class(ctx.db, row.strategy)
        except EngineInputError as exc:
            raise RunFailure(str(exc)) from None
        try:
            params = cls.validate_params(row.params)
            options = EngineOptions.model_validate(
                merge_engine_options(cls, params, dict(row.options or {}))
            )
            self.stage = "signals"
            signals = await asyncio.to_thread(cls(**params).signals, bars)
            bt = await asyncio.to_thread(Backtester, bars, signals, options)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise RunFailure(f"options.{where}: {first.get('msg')}") from None
        except EngineInputError as exc:
            raise RunFailure(str(exc)) from None
        except Exception as exc:
            raise RunFailure(f"{self.stage} failed: {type(exc).__name__}: {exc}") from None
        return bt, dataset.name

    async def control(self, now: float, last: dict[str, float]) -> run_store.Control | None:
        """Heartbeat or cancel check when due; None when neither was due or the database
        did not answer (a blip must not kill the run: the lease covers it)."""
        ctx = self.ctx
        try:
            if now - last["heartbeat"] >= ctx.heartbeat_s:
                last["heartbeat"] = last["control"] = now
                return await run_store.heartbeat(
                    ctx.db, self.run_id, self.attempt, lease_s=ctx.lease_s,
                    progress=self.progress, stage=self.stage, seq=self.seq,
                )
            if now - last["control"] >= ctx.control_s:
                last["control"] = now
                return await run_store.get_control(ctx.db, self.run_id, self.attempt)
        except INFRA_ERRORS as exc:
            log.warning("run %s: database check failed (%s); carrying on", self.run_id, exc)
        return None

    async def publish_progress(self, pending: list[tuple[np.ndarray, np.ndarray]]) -> None:
        if pending:
            ts = np.concatenate([p[0] for p in pending])
            eq = np.concatenate([p[1] for p in pending])
            pending.clear()
        else:
            ts, eq = np.empty(0, np.int64), np.empty(0)
        self.seq += 1
        await self.ctx.bus.publish(
            self.run_id,
            progress_event(
                self.run_id, self.seq, progress=self.progress, stage=self.stage,
                attempt=self.attempt, equity=equity_points(ts, eq, self.ctx.max_event_points),
            ),
        )

    async def run(self) -> None:
        ctx = self.ctx
        row = await self.publish_row("status")
        self.seq = int(row.seq)
        bt, dataset_name = await self.prepare(row)
        self.stage = "simulating"
        faults = ctx.faults
        chunk = faults.chunk_bars or INITIAL_CHUNK
        now = time.monotonic()
        last = {"heartbeat": now, "control": now, "publish": now}
        pending: list[tuple[np.ndarray, np.ndarray]] = []
        while True:
            t0 = time.perf_counter()
            info = await asyncio.to_thread(bt.step, chunk)
            elapsed = time.perf_counter() - t0
            if faults.chunk_bars is None:  # aim for chunks of ~chunk_target_s
                scale = ctx.chunk_target_s / max(elapsed, 1e-4)
                chunk = int(min(max(chunk * min(max(scale, 0.25), 4.0), MIN_CHUNK), MAX_CHUNK))
            self.progress = info.progress
            pending.append((info.equity_ts, info.equity))
            if faults.exit_on_dataset is not None and faults.exit_on_dataset == dataset_name:
                log.warning("test fault: worker exits mid-run %s", self.run_id)
                os._exit(137)
            if faults.chunk_delay_s:
                await asyncio.sleep(faults.chunk_delay_s)
            if info.done:
                break
            now = time.monotonic()
            ctl = await self.control(now, last)
            if ctl is not None and not ctl.owned:
                log.info("run %s attempt %d is no longer ours; stopping", self.run_id, self.attempt)
                return
            if ctl is not None and ctl.cancel_requested:
                if await run_store.mark_cancelled(ctx.db, self.run_id, self.attempt, seq=self.seq):
                    await self.publish_row("terminal")
                return
            if now - last["publish"] >= ctx.progress_interval_s:
                last["publish"] = now
                await self.publish_progress(pending)
        self.stage = "saving"
        await self.publish_progress(pending)
        result = await asyncio.to_thread(bt.result)
        if self.code_hash is not None:
            result.engine["strategy_code_hash"] = self.code_hash
        ctl = await self.control(time.monotonic() + ctx.heartbeat_s, last)  # fresh lease
        if ctl is not None and ctl.owned and ctl.cancel_requested:
            if await run_store.mark_cancelled(ctx.db, self.run_id, self.attempt, seq=self.seq):
                await self.publish_row("terminal")
            return
        if await run_store.finish_run(ctx.db, self.run_id, self.attempt, result, seq=self.seq):
            await self.publish_row("terminal")
        else:
            log.info("run %s attempt %d lost ownership before saving", self.run_id, self.attempt)

    async def fail(self, message: str) -> None:
        if await run_store.fail_run(self.ctx.db, self.run_id, self.attempt, message, seq=self.seq):
            await self.publish_row("terminal")


async def execute_run(ctx: WorkerContext | dict[str, Any], run_id: str) -> None:
    """Run one backtest job to a terminal state (or hand it back on shutdown); never raises
    for a run-level failure. `ctx` may be an arq ctx dict holding a WorkerContext at "bt"."""
    wctx: WorkerContext = ctx["bt"] if isinstance(ctx, dict) else ctx
    RUN_ID.set(str(run_id))  # JSON log lines of this job carry it (the job is its own task)
    attempt = await run_store.claim_run(wctx.db, run_id, wctx.worker_id, wctx.lease_s)
    if attempt is None:
        # Not ours to run (already running elsewhere, finished, or out of attempts just
        # now); if it is over, say so on the bus, which costs nothing if repeated.
        try:
            row = await run_store.get_run(wctx.db, run_id)
        except NotFoundError:
            log.warning("job for unknown run %s ignored", run_id)
            return
        if row.terminal:
            await wctx.bus.publish(run_id, row_event(row, "terminal"))
        return
    job = _Job(wctx, run_id, attempt)
    log.info("run %s attempt %d started on %s", run_id, attempt, wctx.worker_id)
    try:
        await job.run()
    except asyncio.CancelledError:  # worker shutting down: hand the run back untouched
        try:
            await asyncio.shield(run_store.release_run(wctx.db, run_id, attempt, seq=job.seq))
        except Exception as exc:  # then the lease expiry hands it back instead
            log.warning("could not release run %s on shutdown: %s", run_id, exc)
        raise
    except RunFailure as exc:
        await job.fail(str(exc))
    except INFRA_ERRORS as exc:
        # Our database or blob store failed, not the run: leave it RUNNING; when the
        # lease expires the reaper hands it to another attempt.
        log.error("run %s attempt %d interrupted by an infrastructure error: %r", run_id, attempt, exc)
    except Exception as exc:
        log.exception("run %s attempt %d failed", run_id, attempt)
        try:
            await job.fail(f"{job.stage} failed: {type(exc).__name__}: {exc}")
        except Exception:  # the database itself is unreachable: the lease will expire
            log.exception("could not record the failure of run %s", run_id)
