"""Optimizations in GraphQL: types, queries, mutations and the `optimizationProgress` stream.

Thin resolvers over `Services.optimizations` (`workers.optimization_service`): parse the
input, call the service, shape its rows. Validation errors arrive as `BadInputError`
naming the field (e.g. `space.fast`, `objectives[0]`), ownership as NOT_FOUND.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from graph.context import Info
from graph.datasets import parse_dataset_id
from graph.errors import BadUserInput
from graph.optimization_validation import (
    OptimizationOverfitStats,
    OptimizationStats,
    ValidationInput,
    WalkForward,
    parse_validation,
    summary_stats,
)
from graph.pagination import Connection, build_connection, page_size
from graph.runs import Run, RunStatus
from graph.scalars import JSON, json_safe, to_utc

__all__ = ["OptimizationMutations", "OptimizationQueries", "OptimizationSubscriptions"]

METHODS = ("grid", "random", "genetic", "tpe", "nsga2")


@strawberry.input(description="What to optimize: a strategy's parameters on a dataset.")
class OptimizationInput:
    strategy: str
    dataset_id: strawberry.ID
    method: str = strawberry.field(default="grid", description="grid, random, genetic, tpe, nsga2.")
    space: JSON | None = strawberry.field(
        default=None, description="Overrides of the strategy's parameter ranges: "
        "`{\"fast\": \"5:50:5\", \"slow\": [20, 50], \"long_only\": false}`; parameters not "
        "named are searched over their whole schema range.")
    constraints: list[str] | None = strawberry.field(
        default=None, description="Rules between parameters, e.g. `fast < slow`.")
    objectives: list[str] | None = strawberry.field(
        default=None, description="Metrics to maximise; `-max_drawdown_pct` minimises. "
        "Default `sharpe`.")
    result_constraints: list[str] | None = strawberry.field(
        default=None, description="Rules a trial's metrics must meet, e.g. `n_trades >= 10`.")
    max_trials: int | None = None
    max_seconds: float | None = None
    batch_size: int | None = None
    seed: int | None = 0
    options: JSON | None = strawberry.field(default=None, description="Engine options.")
    method_options: JSON | None = None
    validation: ValidationInput | None = strawberry.field(
        default=None, description="Out-of-sample validation: a hold-out split (the search "
        "sees only the in-sample bars; every trial also gets out-of-sample metrics) or "
        "walk-forward windows (one search per window, its best trial tested on the next).")


def parse_input(data: OptimizationInput) -> dict[str, Any]:
    """Keyword spec for the optimization service."""
    if data.method not in METHODS:
        raise BadUserInput(f"unknown method {data.method!r} (one of {', '.join(METHODS)})",
                           field="method")
    for name in ("space", "options", "method_options"):
        value = getattr(data, name)
        if value is not None and not isinstance(value, dict):
            raise BadUserInput(f"{name} must be a JSON object", field=name)
    return {
        "strategy": data.strategy.strip(), "dataset_id": parse_dataset_id(data.dataset_id, "datasetId"),
        "method": data.method, "space": data.space or {}, "constraints": data.constraints or [],
        "objectives": data.objectives or ["sharpe"],
        "result_constraints": data.result_constraints or [], "max_trials": data.max_trials,
        "max_seconds": data.max_seconds, "batch_size": data.batch_size, "seed": data.seed or 0,
        "options": data.options or {}, "method_options": data.method_options,
        "validation": parse_validation(data.validation),
    }


@strawberry.type(description="Trial count and time of an optimization, before it runs.")
class OptimizationEstimate:
    trials: int
    seconds: float | None = strawberry.field(description="From a measured sample's throughput.")
    trials_per_second: float | None
    bars: int
    windows: int | None = strawberry.field(description="Walk-forward windows (else null).")


@strawberry.type(description="One evaluated parameter set.")
class OptimizationTrial:
    number: int
    batch: int
    params: JSON
    metrics: JSON
    values: list[float | None] = strawberry.field(description="The objectives, in order.")
    feasible: bool
    violations: list[str]
    seconds: float
    window: int | None = strawberry.field(description="Walk-forward window it was searched in.")
    out_of_sample: JSON | None = strawberry.field(
        description="Metrics on the held-out bars (hold-out validation; else null).")

    @strawberry.field(description="Metrics on the bars searched (= `metrics`).")
    def in_sample(self) -> JSON:
        return self.metrics

    @classmethod
    def from_row(cls, row: Any) -> OptimizationTrial:
        return cls(number=int(row.number), batch=int(row.batch), params=json_safe(row.params),
                   metrics=json_safe(row.metrics), values=list(json_safe(row.values) or []),
                   feasible=bool(row.feasible), violations=list(row.violations or []),
                   seconds=float(row.seconds or 0.0), window=row.window,
                   out_of_sample=json_safe(row.oos_metrics))


@strawberry.type(description="A parameter optimization: inputs, progress, best trial, result.")
class Optimization:
    id: strawberry.ID
    status: RunStatus
    seq: int
    strategy: str
    dataset_id: strawberry.ID | None
    method: str
    space: JSON
    objectives: JSON
    constraints: JSON
    result_constraints: JSON
    options: JSON
    seed: int
    budget: JSON
    total: int
    completed: int
    best: JSON | None = strawberry.field(description="The best feasible trial so far.")
    result: JSON | None = strawberry.field(
        description="Summary, Pareto trial numbers, deflated Sharpe, parameter stability, "
        "PBO (`pbo`), the hold-out split (`holdout`) or the walk-forward summary.")
    dataset_hash: str | None
    code_hash: str | None
    engine_version: str | None
    error: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    validation: JSON | None = strawberry.field(
        description="The resolved split (`in_sample`/`out_of_sample` bar ranges) or windows.")
    _row: strawberry.Private[Any]

    @strawberry.field(description="Walk-forward outcome (null unless walk-forward; windows "
                      "without tests until it has succeeded).")
    def walk_forward(self) -> WalkForward | None:
        wf = self._row.walk_forward
        return None if wf is None else WalkForward.from_dict(wf)

    @strawberry.field(description="Deflated Sharpe, PBO, parameter stability, throughput.")
    def stats(self) -> OptimizationOverfitStats:
        return OptimizationOverfitStats.from_row(self._row)

    @strawberry.field
    def progress(self) -> float:
        return self.completed / self.total if self.total else 0.0

    @strawberry.field(description="Trials a page at a time, by number or `orderBy: \"-sharpe\"`; "
                      "`window`: one walk-forward window's only.")
    async def trials(self, info: Info, first: int | None = 50, after: str | None = None,
                     order_by: str | None = None,
                     window: int | None = None) -> Connection[OptimizationTrial]:
        size = page_size(first, maximum=info.context.limits.max_page)
        page = await info.context.services.optimizations.trials(
            str(self.id), first=size, after=after, order_by=order_by, window=window)
        return build_connection(page.items, page.cursors, shape=OptimizationTrial.from_row,
                                has_next=page.has_next, has_previous=after is not None,
                                total=page.total)

    @strawberry.field(description="Non-dominated trials of a multi-objective optimization.")
    async def pareto_front(self, info: Info) -> list[OptimizationTrial]:
        rows = await info.context.services.optimizations.pareto(str(self.id))
        return [OptimizationTrial.from_row(r) for r in rows]

    @strawberry.field(description="Plotly figure (JSON): `metric` over parameters `x` and `y`. "
                      "Walk-forward: one window's trials, by default the last window's.")
    async def heatmap(self, info: Info, x: str, y: str, metric: str = "sharpe",
                      window: int | None = None) -> JSON:
        return await info.context.services.optimizations.heatmap(str(self.id), x, y, metric,
                                                                 window)

    @classmethod
    def from_row(cls, row: Any) -> Optimization:
        return cls(
            id=strawberry.ID(row.id), status=RunStatus(str(getattr(row.status, "value", row.status))),
            seq=int(row.seq or 0), strategy=row.strategy,
            dataset_id=None if row.dataset_id is None else strawberry.ID(str(row.dataset_id)),
            method=row.method, space=json_safe(row.space or {}),
            objectives=json_safe(row.objectives or []), constraints=json_safe(row.constraints or []),
            result_constraints=json_safe(row.result_constraints or []),
            options=json_safe(row.options or {}), seed=int(row.seed or 0),
            budget=json_safe(row.budget or {}), total=int(row.total or 0),
            completed=int(row.completed or 0), best=json_safe(row.best),
            result=json_safe(row.result), dataset_hash=row.dataset_hash, code_hash=row.code_hash,
            engine_version=row.engine_version, error=row.error,
            cancel_requested=bool(row.cancel_requested),
            created_at=to_utc(row.created_at),  # type: ignore[arg-type]
            started_at=to_utc(row.started_at), finished_at=to_utc(row.finished_at),
            duration_ms=None if row.duration_ms is None else float(row.duration_ms),
            validation=json_safe(row.validation), _row=row,
        )


@strawberry.enum
class OptimizationEventType(Enum):
    SNAPSHOT = "snapshot"
    PROGRESS = "progress"
    STATUS = "status"
    TERMINAL = "terminal"


@strawberry.type(description="A change in an optimization: progress, best so far, the end.")
class OptimizationEvent:
    optimization_id: strawberry.ID
    seq: int
    type: OptimizationEventType
    status: RunStatus
    completed: int
    total: int
    trials_per_second: float | None
    eta_seconds: float | None
    best: JSON | None
    pareto: list[int] = strawberry.field(description="Trial numbers on the Pareto front now.")
    error: str | None
    emitted_at: float | None

    @classmethod
    def from_bus(cls, e: dict[str, Any]) -> OptimizationEvent:
        return cls(
            optimization_id=strawberry.ID(str(e["optimization_id"])), seq=int(e.get("seq") or 0),
            type=OptimizationEventType(e.get("type", "progress")),
            status=RunStatus(str(e.get("status", "RUNNING")).upper()),
            completed=int(e.get("completed") or 0), total=int(e.get("total") or 0),
            trials_per_second=e.get("trials_per_second"), eta_seconds=e.get("eta_seconds"),
            best=json_safe(e.get("best")), pareto=[int(n) for n in e.get("pareto") or []],
            error=e.get("error"), emitted_at=e.get("emitted_at"),
        )


@strawberry.type
class OptimizationQueries:
    @strawberry.field(description="One optimization (NOT_FOUND if unknown or not yours).")
    async def optimization(self, info: Info, id: strawberry.ID) -> Optimization:
        return Optimization.from_row(await info.context.services.optimizations.get(str(id)))

    @strawberry.field(description="Optimizations you can see, newest first.")
    async def optimizations(self, info: Info, first: int | None = 50, after: str | None = None,
                            status: RunStatus | None = None) -> Connection[Optimization]:
        size = page_size(first, maximum=info.context.limits.max_page)
        page = await info.context.services.optimizations.list(
            first=size, after=after, status=status.value if status else None)
        return build_connection(page.items, page.cursors, shape=Optimization.from_row,
                                has_next=page.has_next, has_previous=after is not None,
                                total=page.total)

    @strawberry.field(description="Counts by status, trials evaluated and throughput of the "
                      "optimizations you can see; one optimization's overfitting statistics "
                      "are `optimization(id) { stats }`.")
    async def optimization_stats(self, info: Info) -> OptimizationStats:
        return summary_stats(await info.context.services.optimizations.summary())

    @strawberry.field(description="Trials and estimated seconds of an optimization, from a "
                      "quick measured sweep; nothing is stored.")
    async def estimate_optimization(self, info: Info, input: OptimizationInput) -> OptimizationEstimate:
        est = await info.context.services.optimizations.estimate(parse_input(input))
        return OptimizationEstimate(**est)


@strawberry.type
class OptimizationMutations:
    @strawberry.mutation(description="Store and queue an optimization; follow it with "
                         "`optimizationProgress(id)`.")
    async def start_optimization(self, info: Info, input: OptimizationInput) -> Optimization:
        return Optimization.from_row(
            await info.context.services.optimizations.start(parse_input(input)))

    @strawberry.mutation(description="QUEUED: cancelled now; RUNNING: stops within 2 s.")
    async def cancel_optimization(self, info: Info, id: strawberry.ID) -> Optimization:
        return Optimization.from_row(await info.context.services.optimizations.cancel(str(id)))

    @strawberry.mutation(description="Re-run one trial as a full backtest (trades, charts).")
    async def promote_trial(self, info: Info, optimization_id: strawberry.ID, trial: int) -> Run:
        return Run.from_row(
            await info.context.services.optimizations.promote(str(optimization_id), trial))


@strawberry.type
class OptimizationSubscriptions:
    @strawberry.subscription(description="One optimization's progress: a snapshot, live "
                             "events (completed/total, trials/s, ETA, best so far), the "
                             "terminal event, then the stream completes.")
    async def optimization_progress(
        self, info: Info, id: strawberry.ID, after_seq: int = 0
    ) -> AsyncGenerator[OptimizationEvent, None]:
        events = info.context.services.optimizations.events(str(id), after_seq=after_seq)
        async with contextlib.aclosing(events):  # type: ignore[type-var]
            async for event in events:
                yield OptimizationEvent.from_bus(event)
