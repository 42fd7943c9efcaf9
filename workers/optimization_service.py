"""`OptimizationService`: what graph resolvers call to estimate, start, follow and promote
optimizations (`Services.optimizations`).

Inputs are validated here by building the very `Optimizer` the coordinator will build
(engine `OptimInputError` becomes `BadInputError` naming the field); the row records the
dataset hash, the strategy code hash and the engine version, so a result can be traced
to exactly what produced it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pydantic

from engine.backtest import ENGINE_VERSION
from engine.bars import Bars
from engine.errors import EngineInputError
from engine.optim import OptimInputError
from engine.optim.heatmap import heatmap_figure
from engine.optim.validation import Segment
from engine.options import EngineOptions
from store import optimizations as opt_store
from store.datasets import get_dataset, load_bars
from store.errors import BadInputError, NotFoundError
from store.models import OptimizationRow, OptimizationTrialRow, RunRow
from store.optimization_stats import optimization_stats
from store.pagination import Page
from strategies.base import Strategy
from workers.optimization_jobs import make_optimizer, optimization_event
from workers.optimization_plan import Plan, make_plan, resolve_validation, windows_of

if TYPE_CHECKING:
    from workers.service import Services

__all__ = ["OptimizationService"]

log = logging.getLogger("backtester.optimizations")
_ID = re.compile(r"[0-9a-fA-F-]{1,36}")

SPEC_KEYS = ("method", "space", "constraints", "objectives", "result_constraints", "seed",
             "method_options")


class OptimizationService:
    """Optimizations seen through one `Services` facade (its scope, queue and bus)."""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def _prepare(self, spec: dict[str, Any], dataset_id: int
                       ) -> tuple[type[Strategy], dict[str, Any], Plan, Bars | None]:
        """(strategy class, the stored spec, plan, bars if loaded) or BadInputError."""
        cls, _ = await self.s.runnable_strategy(str(spec.get("strategy") or ""))
        clean = {k: spec.get(k) for k in SPEC_KEYS}
        clean["method"] = clean["method"] or "grid"
        clean["seed"] = int(clean["seed"] or 0)
        for key in ("space", "method_options"):
            if clean[key] is not None and not isinstance(clean[key], dict):
                raise BadInputError(key, "must be a JSON object")
        clean["budget"] = {"max_trials": spec.get("max_trials"),
                           "max_seconds": spec.get("max_seconds"),
                           "batch_size": spec.get("batch_size")}
        options = spec.get("options") or {}
        if not isinstance(options, dict):
            raise BadInputError("options", "must be a JSON object")
        try:
            clean["options"] = EngineOptions.model_validate(options).model_dump(mode="json")
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise BadInputError(f"options.{where}", str(first.get("msg"))) from None
        bars = None
        if spec.get("validation"):
            bars = await load_bars(self.s.db, self.s.blobs, dataset_id)
            clean["validation"] = await asyncio.to_thread(
                resolve_validation, spec["validation"], bars)
        n_bars = len(bars) if bars is not None else 0
        try:
            plan = await asyncio.to_thread(make_plan, lambda sp: make_optimizer(cls, sp), clean,
                                           clean.get("validation"), n_bars)
        except OptimInputError as exc:
            raise BadInputError(exc.field, str(exc)) from None
        except (EngineInputError, ValueError, TypeError) as exc:  # e.g. odd method options
            raise BadInputError("input", f"{type(exc).__name__}: {exc}") from None
        return cls, clean, plan, bars

    async def estimate(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Trial count and seconds, from the throughput of a small measured sweep."""
        dataset_id = int(spec["dataset_id"])
        await get_dataset(self.s.db, dataset_id, scope=self.s.scope)  # NOT_FOUND before work
        cls, clean, plan, bars = await self._prepare(spec, dataset_id)
        if bars is None:
            bars = await load_bars(self.s.db, self.s.blobs, dataset_id)
        first = plan.parts[0]
        if first.search.stop == 0:  # no validation: the plan was built without the bars
            first.search = Segment(0, len(bars))
        batch = first.opt.ask()
        sample = (batch.params if batch is not None else [])[:4]
        rate = seconds = None
        if sample:
            options = EngineOptions.model_validate(clean["options"])
            part = bars.slice(first.search.start, first.search.stop)
            t0 = time.perf_counter()
            await asyncio.to_thread(cls.sweep, part, sample, options)
            dt = max(time.perf_counter() - t0, 1e-6)
            rate = len(sample) / dt
            # Bar-trials per second, so windows and the hold-out pass scale by their bars.
            per_bar = len(sample) * len(first.search) / dt
            held = (clean.get("validation") or {}).get("out_of_sample")
            extra = (held[1] - held[0]) if held else 0
            seconds = sum(p.opt.total * (len(p.search) + extra) for p in plan.parts) / per_bar
            if first.opt.max_seconds is not None:
                seconds = min(seconds, first.opt.max_seconds * len(plan.parts))
        return {"trials": plan.total, "seconds": seconds, "trials_per_second": rate,
                "bars": len(bars), "windows": len(plan.parts) if plan.walk_forward else None}

    async def start(self, spec: dict[str, Any]) -> OptimizationRow:
        """Validate, charge its trials to the caller's budget (`Services.charge`), store a
        QUEUED optimization and enqueue its coordinator. A refused charge stores nothing."""
        dataset = await get_dataset(self.s.db, int(spec["dataset_id"]), scope=self.s.scope)
        cls, clean, plan, _ = await self._prepare(spec, dataset.id)
        if self.s.charge is not None:
            await self.s.charge("trials", int(plan.total))
        code_hash = await self._code_hash(cls)
        row = await opt_store.create_optimization(
            self.s.db, owner_id=self.s.scope.owner_id, strategy=cls.name, dataset_id=dataset.id,
            total=plan.total, dataset_hash=dataset.content_hash, code_hash=code_hash,
            engine_version=ENGINE_VERSION, **clean,
        )
        await self.s.audit("optimization.create", "optimization", row.id, strategy=cls.name,
                           dataset_id=dataset.id, method=clean["method"], total=plan.total)
        await self.s.bus.publish(row.id, optimization_event(row, "status"))
        try:
            await self.s.queue.enqueue_optimization(row.id)  # type: ignore[attr-defined]
        except Exception as exc:  # the reaper re-enqueues QUEUED optimizations nobody picked up
            log.warning("enqueue of optimization %s failed (%s); the reaper will retry", row.id, exc)
        return row

    async def _code_hash(self, cls: type[Strategy]) -> str | None:
        """The catalog's hash of the code that will run, else that of the class's file."""
        from store.strategy_catalog import code_hash, load_strategy_class

        try:
            _, stored = await load_strategy_class(self.s.db, cls.name)
        except Exception:
            stored = None
        return stored or await asyncio.to_thread(code_hash, cls)

    async def summary(self) -> dict[str, Any]:
        """`store.optimization_stats.optimization_stats` over what this scope sees."""
        return await optimization_stats(self.s.db, scope=self.s.scope)

    async def get(self, opt_id: str) -> OptimizationRow:
        """NOT_FOUND for ids that are not ours to see, and for anything not shaped like one."""
        if not _ID.fullmatch(str(opt_id)):
            raise NotFoundError("optimization", opt_id)
        return await opt_store.get_optimization(self.s.db, str(opt_id), scope=self.s.scope)

    async def list(self, *, first: int | None = 50, after: str | None = None,
                   status: str | None = None) -> Page[OptimizationRow]:
        return await opt_store.list_optimizations(self.s.db, status=status, first=first,
                                                  after=after, scope=self.s.scope)

    async def cancel(self, opt_id: str) -> OptimizationRow:
        """QUEUED: CANCELLED now; RUNNING: the coordinator ends it within ~1 s."""
        row = await opt_store.cancel_optimization(self.s.db, str(opt_id), scope=self.s.scope)
        await self.s.audit("optimization.cancel", "optimization", row.id)
        if row.terminal:
            await self.s.bus.publish(row.id, optimization_event(row, "terminal"))
        return row

    async def trials(self, opt_id: str, *, first: int | None = 50, after: str | None = None,
                     order_by: str | None = None,
                     window: int | None = None) -> Page[OptimizationTrialRow]:
        """A page of trials (walk-forward: of every window, or of `window`)."""
        row = await self.get(opt_id)
        return await opt_store.list_trials(self.s.db, row.id, first=first, after=after,
                                           order_by=order_by,
                                           window=_window(row, window, default_last=False))

    async def pareto(self, opt_id: str) -> list[OptimizationTrialRow]:
        """The finished optimization's Pareto front (multi-objective only), by number."""
        row = await self.get(opt_id)
        numbers = set((row.result or {}).get("pareto") or [])
        if not numbers:
            return []
        page = await opt_store.list_trials(self.s.db, row.id, first=1000)
        out = [t for t in page if t.number in numbers]
        while page.next_cursor and len(out) < len(numbers):
            page = await opt_store.list_trials(self.s.db, row.id, first=1000, after=page.next_cursor)
            out.extend(t for t in page if t.number in numbers)
        return out

    async def heatmap(self, opt_id: str, x: str, y: str, metric: str,
                      window: int | None = None) -> dict[str, Any]:
        """A Plotly heatmap of `metric` (best per cell) over parameters `x` and `y`; of one
        walk-forward window's trials (by default the last: its choice trades next)."""
        row = await self.get(opt_id)
        trials: list[dict[str, Any]] = []
        after = None
        only = _window(row, window, default_last=True)
        while True:
            page = await opt_store.list_trials(self.s.db, row.id, first=1000, after=after,
                                               window=only)
            trials.extend({"params": t.params, "metrics": t.metrics} for t in page)
            if not page.next_cursor:
                break
            after = page.next_cursor
        maximize = True
        for o in row.objectives or []:
            text = o if isinstance(o, str) else str((o or {}).get("metric", ""))
            if text.lstrip("+-") == metric and text.startswith("-"):
                maximize = False
        try:
            return heatmap_figure(trials, x, y, metric, maximize=maximize)
        except OptimInputError as exc:
            raise BadInputError(exc.field, str(exc)) from None

    async def promote(self, opt_id: str, trial: int) -> RunRow:
        """Re-run one trial as a full backtest (trades, equity, charts)."""
        row = await self.get(opt_id)
        page = await opt_store.list_trials(self.s.db, row.id, first=1, after=_after(trial))
        if not page.items or page.items[0].number != trial:
            raise BadInputError("trial", f"optimization {opt_id} has no trial {trial}")
        if row.dataset_id is None:
            raise BadInputError("optimizationId", "the optimization's dataset was deleted")
        return await self.s.submit_backtest(row.strategy, row.dataset_id,
                                            dict(page.items[0].params), dict(row.options or {}))

    async def events(self, opt_id: str, after_seq: int = 0) -> AsyncIterator[dict[str, Any]]:
        """Snapshot from the database, newer bus events, the terminal event, then the end."""
        await self.get(opt_id)
        poll = self.s.limits.poll_s
        async with self.s.bus.subscribe(opt_id) as sub:
            row = await self.get(opt_id)
            yield optimization_event(row, "snapshot")
            if row.terminal:
                yield optimization_event(row, "terminal")
                return
            last_seq, polled = max(int(after_seq), int(row.seq)), time.monotonic()
            while True:
                try:
                    event = await sub.get(poll)
                except StopAsyncIteration:
                    event = None
                    await asyncio.sleep(poll)
                if event is not None and event.get("type") != "terminal" \
                        and int(event.get("seq") or 0) > last_seq:
                    last_seq = int(event["seq"])
                    yield event
                if event is None or event.get("type") == "terminal" \
                        or time.monotonic() - polled >= poll:
                    polled = time.monotonic()
                    row = await self.get(opt_id)
                    if row.terminal:
                        yield optimization_event(row, "terminal")
                        return


def _window(row: OptimizationRow, window: int | None, *, default_last: bool) -> int | None:
    """A checked walk-forward window index for `row` (None: no window filter)."""
    n = len(windows_of(row.validation))
    if n == 0:
        if window is not None:
            raise BadInputError("window", f"optimization {row.id} has no walk-forward windows")
        return None
    if window is None:
        return n - 1 if default_last else None
    if not 0 <= window < n:
        raise BadInputError("window", f"window {window} does not exist: optimization {row.id} "
                            f"has walk-forward windows 0..{n - 1}")
    return window


def _after(trial: int) -> str | None:
    from store.pagination import encode_cursor

    return encode_cursor([int(trial) - 1]) if trial > 0 else None
