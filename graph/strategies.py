"""Strategies: the catalog of what can be backtested (types and queries).

Rows come from the strategy catalog (`store.strategy_catalog`), which start-up and
`syncStrategies` fill from the built-ins and the STRATEGY_PATHS folders. Parameter
schemas are data (`StrategyParam` rows), so adding a strategy never changes the GraphQL
schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from engine.options import EngineOptions
from graph.context import Info
from graph.errors import NotFound
from graph.scalars import JSON, json_safe, to_utc
from store import strategy_catalog as catalog
from store import strategy_snapshot as snapshots
from strategies.base import did_you_mean


@strawberry.enum(description="How a parameter's value is given.")
class ParamType(Enum):
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    CHOICE = "choice"


@strawberry.enum(description="Whether a strategy passed validation; only UNVALIDATED and VALID run.")
class ValidationStatus(Enum):
    UNVALIDATED = "unvalidated"
    VALID = "valid"
    INVALID = "invalid"
    MISSING = "missing"


@strawberry.type(description="One tunable parameter of a strategy, with its bounds.")
class StrategyParam:
    name: str
    type: ParamType
    default: JSON
    min: float | None
    max: float | None
    step: float | None
    choices: list[JSON] | None
    help: str

    @classmethod
    def from_schema(cls, item: dict[str, Any]) -> StrategyParam:
        def num(key: str) -> float | None:
            value = item.get(key)
            return None if value is None else float(value)

        choices = item.get("choices")
        return cls(
            name=item["name"],
            type=ParamType(item.get("type", "float")),
            default=json_safe(item.get("default")),
            min=num("min"),
            max=num("max"),
            step=num("step"),
            choices=None if choices is None else [json_safe(c) for c in choices],
            help=item.get("help") or "",
        )


@strawberry.type(description="One validation step: import, instantiate, signals, values, look_ahead.")
class ValidationStep:
    name: str
    ok: bool
    message: str


@strawberry.type(description="A trading strategy that runs can use.")
class Strategy:
    name: str
    description: str
    module: str = strawberry.field(description="Python module (unique per user file version).")
    class_name: str
    path: str | None = strawberry.field(description="The user file; null for a built-in.")
    builtin: bool
    params: list[StrategyParam]
    params_schema: JSON = strawberry.field(
        description="The same parameter list as plain JSON (for form builders)."
    )
    default_params: JSON = strawberry.field(
        description="Every parameter's default, with the ones set by `updateStrategy` applied."
    )
    code_hash: str | None = strawberry.field(
        description="sha256 of the strategy's source file; runs record the hash they ran."
    )
    validation_status: ValidationStatus
    validation_error: str | None = strawberry.field(description="`step: message` of a failure.")
    validation_steps: list[ValidationStep] = strawberry.field(
        description="The last validation report (empty until validated)."
    )
    last_validated: datetime | None
    runnable: bool = strawberry.field(description="Whether `submitBacktest` accepts it now.")
    usage_total: strawberry.Private[int]
    best_all: strawberry.Private[Any]
    counted: strawberry.Private[bool]
    """`usage_total` and `best_all` are the row's; False (a shared catalog snapshot's
    object): they are read per request instead (`usage_counters`)."""
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    deleted: bool

    @strawberry.field(description="Runs submitted with this strategy (of the runs you can see).")
    async def usage_count(self, info: Info) -> int:
        scoped = await scoped_usage(info)
        if scoped is not None:
            return scoped.get(self.name, 0)
        if not self.counted:
            return (await usage_counters(info)).get(self.name, (0, None))[0]
        return self.usage_total

    @strawberry.field(
        description="Best value each key metric reached in a run: {metric: {value, run_id}} "
        "(of the runs you can see)."
    )
    async def best_metrics(self, info: Info) -> JSON | None:
        best = self.best_all
        if not self.counted:
            best = json_safe((await usage_counters(info)).get(self.name, (0, None))[1])
        best = best or {}
        scope = info.context.scope
        if not best or (scope.admin and not scope.nobody):
            return best or None
        ids = [str(v.get("run_id")) for v in best.values() if isinstance(v, dict)]
        visible = await info.context.services.visible_run_ids(ids)
        kept = {k: v for k, v in best.items() if isinstance(v, dict) and str(v.get("run_id")) in visible}
        return kept or None

    @classmethod
    def from_row(cls, row: Any, *, counted: bool = True) -> Strategy:
        """The API object of a catalog row; `counted=False` leaves out the usage counters
        (`usageCount` and `bestMetrics` then read them per request)."""
        schema = [json_safe(item) for item in row.params_schema or []]
        defaults = {item["name"]: item.get("default") for item in schema}
        defaults.update(json_safe(row.default_params or {}))
        return cls(
            name=row.name,
            description=row.description or "",
            module=row.module,
            class_name=row.class_name,
            path=row.path,
            builtin=row.path is None,
            params=[StrategyParam.from_schema(item) for item in schema],
            params_schema=schema,
            default_params=defaults,
            code_hash=row.code_hash,
            validation_status=ValidationStatus(row.validation_status),
            validation_error=row.validation_error,
            validation_steps=[
                ValidationStep(name=str(s["name"]), ok=bool(s["ok"]), message=str(s["message"]))
                for s in row.validation_steps or []
            ],
            last_validated=to_utc(row.last_validated_at),
            runnable=row.validation_status in catalog.RUNNABLE and not row.deleted,
            usage_total=int(row.usage_count) if counted else 0,
            best_all=json_safe(row.best_metrics) if counted else None,
            counted=counted,
            tags=list(row.tags or []),
            created_at=to_utc(row.created_at),  # type: ignore[arg-type]
            updated_at=to_utc(row.updated_at),  # type: ignore[arg-type]
            deleted=row.deleted,
        )


@strawberry.type
class StrategyStatusCount:
    status: ValidationStatus
    count: int


@strawberry.type
class StrategyUsage:
    name: str
    usage_count: int


@strawberry.type(description="The strategy catalog in numbers.")
class StrategyStats:
    total: int = strawberry.field(description="Strategies not deleted.")
    by_status: list[StrategyStatusCount] = strawberry.field(description="Every status, zeros included.")
    builtin: int
    user: int
    deleted: int
    total_runs: int
    most_used: list[StrategyUsage]

    @classmethod
    def from_dict(cls, stats: dict[str, Any]) -> StrategyStats:
        counts = stats["by_status"]
        return cls(
            total=stats["total"],
            by_status=[
                StrategyStatusCount(status=s, count=int(counts.get(s.value, 0))) for s in ValidationStatus
            ],
            builtin=stats["builtin"],
            user=stats["user"],
            deleted=stats["deleted"],
            total_runs=stats["total_runs"],
            most_used=[StrategyUsage(name=u["name"], usage_count=u["usage_count"]) for u in stats["most_used"]],
        )


def _once_per_operation(info: Info, key: str, read: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
    """`read()` once per operation, shared by every resolver of it that asks (they run
    concurrently, one per strategy). Keyed on the operation's variables object, not only
    the context: one context serves every operation of a websocket."""
    memo = info.context.memo
    held = memo.get(key)
    if held is None or held[0] is not info.variable_values:
        held = memo[key] = (info.variable_values, asyncio.ensure_future(read()))
    return held[1]  # type: ignore[no-any-return]


async def scoped_usage(info: Info) -> dict[str, int] | None:
    """Runs per strategy among the caller's visible runs (once per request); None = all."""
    db, scope = info.context.services.db, info.context.scope
    return await _once_per_operation(  # type: ignore[no-any-return]
        info, "strategy_usage", lambda: catalog.usage_by_strategy(db, scope=scope)
    )


async def usage_counters(info: Info) -> dict[str, tuple[int, Any]]:
    """{name: (usage count, best metrics)} of every strategy, read once per request."""
    db = info.context.services.db
    return await _once_per_operation(  # type: ignore[no-any-return]
        info, "strategy_counters", lambda: snapshots.usage_counters(db)
    )


_converted: tuple[snapshots.CatalogSnapshot, dict[str, Strategy]] | None = None
"""The API objects of the newest catalog snapshot (shared by every request while it lasts)."""


async def live_strategies(
    info: Info, status: ValidationStatus | None, search: str | None
) -> list[Strategy]:
    """The live strategies by name, from this process's catalog snapshot: converted once
    per snapshot, not per request (`store.strategy_snapshot` drops it on any change)."""
    global _converted
    snapshot = await snapshots.live_snapshot(info.context.services.db)
    if _converted is None or _converted[0] is not snapshot:
        _converted = snapshot, {row.name: Strategy.from_row(row, counted=False) for row in snapshot.rows}
    by_name = _converted[1]
    rows = catalog.filter_rows(
        snapshot.rows, status=None if status is None else status.value, search=search
    )
    return [by_name[row.name] for row in rows]


async def strategy_or_not_found(info: Info, name: str) -> Any:
    """The live row called `name`, or NOT_FOUND suggesting the closest live name."""
    db = info.context.services.db
    row = await catalog.find_strategy(db, name)
    if row is None or row.deleted:
        names = [r.name for r in await catalog.list_strategy_rows(db)]
        raise NotFound(f"unknown strategy {name!r}{did_you_mean(name, names)}", kind="strategy", id=name)
    return row


@strawberry.type
class StrategyQueries:
    @strawberry.field(
        description="Strategies by name; `status` filters on validation status, `search` "
        "matches name, description, class, module, file path or a tag."
    )
    async def strategies(
        self, info: Info, status: ValidationStatus | None = None, search: str | None = None
    ) -> list[Strategy]:
        return await live_strategies(info, status, search)

    @strawberry.field(description="One strategy by name; NOT_FOUND (with a suggestion) if unknown.")
    async def strategy(self, info: Info, name: str) -> Strategy:
        return Strategy.from_row(await strategy_or_not_found(info, name))

    @strawberry.field(description="Counts by validation status and the most used strategies.")
    async def strategy_stats(self, info: Info) -> StrategyStats:
        stats = await catalog.strategy_stats(info.context.services.db, scope=info.context.scope)
        return StrategyStats.from_dict(stats)

    @strawberry.field(
        description="JSON Schema of `BacktestInput.options` (sizing, costs, stops, sessions)."
    )
    async def engine_options_schema(self, info: Info) -> JSON:
        return json_safe(EngineOptions.json_schema())
