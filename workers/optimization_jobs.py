"""Optimization jobs: the coordinator (ask, enqueue batches, tell, finish) and the batch job.

`execute_optimization` holds the optimization's lease. It rebuilds the `Optimizer` from the
stored inputs and drives it: every batch it asks for is stored (or found stored by an
earlier coordinator, whose told metrics are replayed) and enqueued as its own job; it
polls the database every `poll_s` for finished batches, tells them, writes their trials
and publishes progress. `execute_batch` claims one batch under the runs' lease/attempt
rule, evaluates it with one `Strategy.sweep` call in a thread and stores its metrics
once. A killed worker costs only its batch: the reaper re-enqueues expired leases.

Validation (`workers.optimization_plan`): the coordinator drives a `Plan` of one optimizer
(hold-out: over the in-sample bars, each batch also evaluated out of sample) or one per
walk-forward window (windows' batches interleave, so they run concurrently). At the end
it stores the deflated Sharpe, stability and PBO (`workers.optimization_results`), or the
walk-forward outcome (each window's choice tested, stitched equity, efficiency).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from engine.bars import Bars
from engine.errors import EngineError
from engine.optim import Batch, Optimizer, SearchSpace
from engine.options import EngineOptions
from store import optimizations as opt_store
from store.datasets import load_bars
from store.models import OptimizationRow, RunStatus
from store.results import json_safe
from store.strategy_catalog import load_strategy_class
from strategies.base import Strategy
from workers.events import emitted_at_ms
from workers.jobs import INFRA_ERRORS, WorkerContext
from workers.optimization_plan import Part, Plan, batch_segments, make_plan
from workers.optimization_results import (
    PBO_SPLITS,
    pack_blocks,
    pbo_of,
    sweep_blocks,
    trial_statistics,
    walk_forward_outcome,
    walk_forward_summary,
)

__all__ = ["BatchQueue", "execute_batch", "execute_optimization", "finish_result",
           "make_optimizer", "optimization_event", "plan_outcome"]

log = logging.getLogger("backtester.optimizations")
POLL_S = 0.2
MAX_OUTSTANDING = 8


class BatchQueue(Protocol):
    async def enqueue_batch(self, opt_id: str, number: int, *, attempt: int = 0) -> None: ...

    async def wait_batch(self, opt_id: str, timeout: float) -> None:
        """Return when one of `opt_id`'s batch jobs of this process may have ended, or
        after `timeout` (the coordinator then polls the database)."""
        ...


def strategy_check(cls: type[Strategy]) -> Callable[[dict[str, Any]], bool]:
    """The strategy's own parameter rules as a search-space constraint."""
    def ok(params: dict[str, Any]) -> bool:
        try:
            cls.check(cls.validate_params(params))
        except EngineError:
            return False
        return True
    return ok


SERVICE_MAX_GRID = 250_000
"""Largest grid the service enumerates: counting feasible points runs the strategy's own
parameter check per point (~12 us), so a larger grid would hold a request for seconds.
Bigger searches use the random, genetic or Bayesian methods (or the local CLI)."""


def make_optimizer(cls: type[Strategy], spec: dict[str, Any]) -> Optimizer:
    """An Optimizer from stored (or requested) inputs; OptimInputError names the field."""
    budget = spec.get("budget") or {}
    space = SearchSpace.from_schema(
        cls.params_schema(), spec.get("space") or {},
        [*(spec.get("constraints") or []), strategy_check(cls)],
        search_all=bool(spec.get("search_all", True)), max_grid=SERVICE_MAX_GRID,
    )
    return Optimizer(
        space, spec.get("objectives") or ["sharpe"], spec.get("method") or "grid",
        result_constraints=spec.get("result_constraints") or [], seed=int(spec.get("seed") or 0),
        max_trials=budget.get("max_trials"), max_seconds=budget.get("max_seconds"),
        batch_size=budget.get("batch_size"), method_options=spec.get("method_options"),
    )


def row_spec(row: OptimizationRow) -> dict[str, Any]:
    """The optimizer inputs stored on an optimization row."""
    return {k: getattr(row, k) for k in ("space", "constraints", "objectives", "method",
                                         "result_constraints", "seed", "budget",
                                         "method_options")}


def optimization_event(row: OptimizationRow, kind: str, **extra: Any) -> dict[str, Any]:
    """A bus event from the database's view of an optimization."""
    event = {
        "optimization_id": row.id, "seq": int(row.seq), "type": kind,
        "status": RunStatus(row.status).value, "completed": int(row.completed or 0),
        "total": int(row.total or 0), "best": row.best, "error": row.error,
        "trials_per_second": None, "eta_seconds": None, "pareto": [],
        "emitted_at": emitted_at_ms(),
    }
    event.update(extra)
    return event


def finish_result(opt: Optimizer, n_bars: int, batches: Sequence[Any] | None = None,
                  *, validation: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stored result: summary, Pareto trial numbers, deflated Sharpe, stability and,
    given the batches (with PBO blocks), the probability of backtest overfitting."""
    result = opt.result().to_dict(with_trials=False)
    result.update(trial_statistics(opt, n_bars))
    if batches is not None:
        try:
            result["pbo"] = pbo_of(opt, batches)
        except Exception as exc:
            result["pbo"] = {"error": str(exc)}
    if validation and validation.get("kind") == "holdout":
        result["holdout"] = {k: validation[k] for k in ("holdout", "in_sample", "out_of_sample")}
    return json_safe(result)


def plan_outcome(plan: Plan, cls: type[Strategy], bars: Bars, options: EngineOptions,
                 batches: Sequence[Any] | None, *, test: bool) -> tuple[dict[str, Any], Any]:
    """(result, walk_forward) of a finished (or, test=False, cancelled) plan."""
    if not plan.walk_forward:
        part = plan.parts[0]
        return finish_result(part.opt, len(part.search), batches,
                             validation=plan.validation), None
    wf = (walk_forward_outcome(plan, cls, bars, options) if test
          else walk_forward_summary(plan, bars))
    first = plan.parts[0].opt.result()
    result = {
        "method": first.method, "seed": first.seed,
        "objectives": [{"metric": o.metric, "direction": o.direction} for o in first.objectives],
        "n_trials": plan.completed, "n_feasible": sum(t.feasible for p in plan.parts
                                                      for t in p.opt.trials),
        "n_windows": len(plan.parts), "stop_reason": "cancelled" if not test else "exhausted",
        "walk_forward": {k: wf[k] for k in ("efficiency", "oos_return_pct", "is_mean_return",
                                            "oos_mean_return", "return_metric")},
        "best": plan.best(), "pareto": [],
    }
    return json_safe(result), json_safe(wf)


def _metrics_in(stored: dict[str, list[Any]]) -> dict[str, np.ndarray]:
    return {k: np.asarray([np.nan if v is None else v for v in vals], dtype=np.float64)
            for k, vals in stored.items()}


@dataclass(frozen=True, slots=True)
class _Told:
    trials: list[dict[str, Any]]  # as stored
    best: dict[str, Any] | None
    pareto: list[int]  # the part's Pareto trial numbers (multi-objective searches)


def _tell(plan: Plan, part: Part, batch: Batch, metrics: dict[str, list[Any]], seconds: float,
          oos: dict[str, list[Any]] | None) -> _Told:
    """Tell the plan one finished batch's stored metrics (CPU work: the coordinator runs it
    in a thread) and gather what the coordinator records and publishes."""
    trials = plan.tell(part, batch, _metrics_in(metrics), seconds,
                       _metrics_in(oos) if oos else None)
    pareto = ([t.number for t in part.opt.pareto()]
              if len(part.opt.objectives) > 1 and not plan.walk_forward else [])
    return _Told([plan.trial_dict(part, t) for t in trials], plan.best(), pareto)


async def _in_thread_with_lease(ctx: WorkerContext, beat: Callable[[], Awaitable[Any]],
                                fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` in a thread, renewing a lease with `beat()` while it runs."""
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    while not work.done():
        await asyncio.wait({work}, timeout=ctx.heartbeat_s)
        if not work.done():
            await beat()
    return work.result()


async def execute_optimization(ctx: WorkerContext, queue: BatchQueue, opt_id: str,
                               *, poll_s: float = POLL_S) -> None:
    """Coordinate one optimization to its end (see the module docstring); never raises for
    an optimization-level failure (it records FAILED)."""
    attempt = await opt_store.claim_optimization(ctx.db, opt_id, ctx.worker_id, ctx.lease_s)
    if attempt is None:
        return
    row = await opt_store.get_optimization(ctx.db, opt_id)
    seq = int(row.seq)

    async def publish(kind: str, **extra: Any) -> None:
        r = await opt_store.get_optimization(ctx.db, opt_id)
        await ctx.bus.publish(opt_id, optimization_event(r, kind, **extra))

    async def end(status: RunStatus, **kw: Any) -> None:
        if await opt_store.finish_optimization(ctx.db, opt_id, attempt, status, seq=seq, **kw):
            await publish("terminal")

    async def beat() -> None:
        await opt_store.heartbeat_optimization(ctx.db, opt_id, attempt, lease_s=ctx.lease_s)

    try:
        if row.dataset_id is None:
            raise EngineError("the optimization's dataset was deleted")
        cls, _ = await load_strategy_class(ctx.db, row.strategy)
        bars = await load_bars(ctx.db, ctx.blobs, row.dataset_id)
        options = EngineOptions.model_validate(dict(row.options or {}))
        plan = await asyncio.to_thread(make_plan, lambda spec: make_optimizer(cls, spec),
                                       row_spec(row), row.validation, len(bars))
    except INFRA_ERRORS:
        raise
    except Exception as exc:
        await end(RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        return

    async def finish(status: RunStatus) -> None:
        if status is RunStatus.CANCELLED:
            plan.cancel()
        test = status is RunStatus.SUCCEEDED
        batches = (await opt_store.get_batches(ctx.db, opt_id)
                   if test and not plan.walk_forward else None)
        try:
            result, wf = await _in_thread_with_lease(
                ctx, beat, functools.partial(plan_outcome, test=test), plan, cls, bars, options,
                batches)
        except INFRA_ERRORS:
            raise
        except Exception as exc:  # e.g. a window's test run raised
            await end(RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
            return
        await end(status, best=plan.best(), result=result, walk_forward=wf)

    await publish("status")
    outstanding: dict[int, tuple[Part, Batch]] = {}
    t_start, told_trials = time.monotonic(), 0
    last_beat = time.monotonic()
    while True:
        now = time.monotonic()
        if now - last_beat >= min(ctx.heartbeat_s, 0.5):
            last_beat = now
            owned, cancel = await opt_store.heartbeat_optimization(
                ctx.db, opt_id, attempt, lease_s=ctx.lease_s, seq=seq)
            if not owned:
                return
            if cancel:
                await finish(RunStatus.CANCELLED)
                return
        # The search's ask/tell (Optuna's TPE takes milliseconds a trial) run in a thread:
        # the event loop serves the API and other coordinators meanwhile.
        while (len(outstanding) < MAX_OUTSTANDING
               and (asked := await asyncio.to_thread(plan.ask)) is not None):
            part, batch = asked
            number = plan.batch_number(part, batch.number)
            stored = await opt_store.add_batch(ctx.db, opt_id, number,
                                               part.offset + batch.first_trial, batch.params,
                                               window=part.window)
            if stored.params != json_safe(batch.params):  # replay diverged (e.g. max_seconds)
                await end(RunStatus.FAILED, error=f"batch {number} no longer matches the "
                          "stored one: the search cannot be resumed reproducibly")
                return
            outstanding[number] = (part, batch)
            if stored.status != RunStatus.SUCCEEDED:
                await queue.enqueue_batch(opt_id, number, attempt=int(stored.attempt))
        if outstanding:
            ended = await opt_store.ended_batches(ctx.db, opt_id, list(outstanding))
            done = await opt_store.get_batches(ctx.db, opt_id, ended) if ended else []
            if any(b.status == RunStatus.CANCELLED for b in done):  # cancelOptimization
                await finish(RunStatus.CANCELLED)
                return
            failed = [b for b in done if b.status == RunStatus.FAILED]
            if failed:
                await end(RunStatus.FAILED, error=f"batch {failed[0].number}: {failed[0].error}")
                return
            for b in done:
                part, batch = outstanding.pop(b.number)
                told = await asyncio.to_thread(_tell, plan, part, batch, b.metrics or {},
                                               float(b.seconds or 0), b.oos_metrics)
                told_trials += len(told.trials)
                seq += 1
                if not await opt_store.record_trials(
                        ctx.db, opt_id, attempt, told.trials,
                        completed=plan.completed, total=plan.total, best=told.best, seq=seq):
                    return
                elapsed = max(time.monotonic() - t_start, 1e-6)
                rate = told_trials / elapsed
                left = max(plan.total - plan.completed, 0)
                await publish("progress", pareto=told.pareto, trials_per_second=rate,
                              eta_seconds=left / rate if rate > 0 else None)
            if done:
                continue
        if plan.done:
            await finish(RunStatus.SUCCEEDED)
            return
        await queue.wait_batch(opt_id, poll_s)


async def execute_batch(ctx: WorkerContext, opt_id: str, number: int) -> None:
    """Claim, evaluate (one sweep call in a thread, on the bars the batch searches; a second
    on the hold-out bars) and store one batch; a no-op when the batch is done, taken by a
    live worker, or its optimization is over."""
    attempt = await opt_store.claim_batch(ctx.db, opt_id, number, ctx.worker_id, ctx.lease_s)
    if attempt is None:
        return
    row = await opt_store.get_optimization(ctx.db, opt_id)
    (batch,) = await opt_store.get_batches(ctx.db, opt_id, [number])
    try:
        if row.dataset_id is None:
            raise EngineError("the optimization's dataset was deleted")
        cls, _ = await load_strategy_class(ctx.db, row.strategy)
        bars = await load_bars(ctx.db, ctx.blobs, row.dataset_id)
        options = EngineOptions.model_validate(dict(row.options or {}))
        search, oos = batch_segments(row.validation, batch.window, len(bars))
    except INFRA_ERRORS:
        raise
    except Exception as exc:
        await opt_store.fail_batch(ctx.db, opt_id, number, attempt, f"{type(exc).__name__}: {exc}")
        return
    blocks = PBO_SPLITS if batch.window is None and sweep_blocks(cls) else None

    def evaluate() -> tuple[dict[str, Any], dict[str, Any] | None, float]:
        t0 = time.perf_counter()
        part = bars.slice(search.start, search.stop) if len(search) != len(bars) else bars
        kw = {"blocks": blocks} if blocks else {}
        metrics = cls.sweep(part, list(batch.params), options, **kw)
        seconds = time.perf_counter() - t0
        held = (cls.sweep(bars.slice(oos.start, oos.stop), list(batch.params), options)
                if oos is not None else None)
        return metrics, held, seconds

    async def extend() -> None:
        await opt_store.extend_batch(ctx.db, opt_id, number, attempt, ctx.lease_s)

    try:
        metrics, held, seconds = await _in_thread_with_lease(ctx, extend, evaluate)
    except INFRA_ERRORS:
        raise
    except Exception as exc:
        await opt_store.fail_batch(ctx.db, opt_id, number, attempt, f"{type(exc).__name__}: {exc}")
        return
    if ctx.faults.chunk_delay_s:  # test-only: a slow batch, so a worker can die mid-way
        await asyncio.sleep(ctx.faults.chunk_delay_s)
    await opt_store.finish_batch(ctx.db, opt_id, number, attempt, _flat(metrics), seconds,
                                 oos_metrics=_flat(held) if held is not None else None,
                                 blocks=pack_blocks(metrics))


def _flat(metrics: dict[str, Any]) -> dict[str, list[Any]]:
    """The per-set metrics (1-D arrays) as JSON lists; block arrays are stored apart."""
    return {k: np.asarray(v, dtype=np.float64).tolist() for k, v in metrics.items()
            if np.asarray(v).ndim == 1}
