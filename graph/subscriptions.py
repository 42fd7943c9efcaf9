"""Subscriptions: `runProgress(id)` for one run and `runEvents` for every run's status.

`runProgress` sends a snapshot read from the database, then the bus's live events in
`seq` order, then the terminal event (read from the database), then completes. The
following itself is `Services.run_events`; this module only shapes its events.

Fan-out is cheap per follower: one `RunEvent` per bus event is shared by every follower
in this process (`RunEvent.from_bus` remembers the last few), and
`SharedEventExecution` executes a subscription's selection once per event for all
followers with the same query, variables and scope (the server's schema uses it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections import OrderedDict
from collections.abc import AsyncGenerator
from enum import Enum
from typing import Any

import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graph.context import Info
from graph.runs import EquityPoint, Run, RunStatus
from graph.scalars import JSON, json_safe


@strawberry.enum
class RunEventType(Enum):
    SNAPSHOT = "snapshot"
    PROGRESS = "progress"
    STATUS = "status"
    TERMINAL = "terminal"


def _equity(root: RunEvent) -> list[EquityPoint]:
    return [
        EquityPoint(t=float(t), value=float(v))  # type: ignore[arg-type]
        for t, v in root.equity_points
        if v is not None
    ]


@strawberry.type(description="A change in a run: progress, new equity points, status, the end.")
class RunEvent:
    run_id: strawberry.ID
    seq: int = strawberry.field(description="Increases with every event of a run.")
    type: RunEventType
    status: RunStatus
    progress: float
    stage: str | None
    equity: list[EquityPoint] = strawberry.field(
        resolver=_equity,
        description="Equity points added since the previous event (epoch ms, value).",
    )
    metrics: JSON | None
    error: str | None
    emitted_at: float | None = strawberry.field(
        default=None,
        description="When the server built this event (epoch ms): receipt time minus this "
        "is the delivery delay.",
    )
    equity_points: strawberry.Private[list[Any]] = dataclasses.field(default_factory=list)
    """[[epoch ms, value], ...] as published: `equity` objects are built only when selected
    (built for every follower of every event, they cost a core at 500 followers)."""
    results: strawberry.Private[dict[Any, Any]] = dataclasses.field(default_factory=dict)
    """This event's executed selections, shared by its followers (`SharedEventExecution`)."""

    @strawberry.field(description="The run as stored now (read from the database).")
    async def run(self, info: Info) -> Run:
        return Run.from_row(await info.context.services.get_run(str(self.run_id)))

    @classmethod
    def from_bus(cls, event: dict[str, Any]) -> RunEvent:
        """The event as a GraphQL object; the followers of one run get the same object."""
        equity = event.get("equity") or []
        key = (event.get("run_id"), event.get("seq"), event.get("type"), event.get("status"),
               event.get("emitted_at"), event.get("progress"), len(equity))
        shared = _RECENT.get(key)
        if shared is not None and shared.equity_points == equity:
            return shared
        built = cls._build(event)
        _RECENT[key] = built
        if len(_RECENT) > _RECENT_SIZE:
            _RECENT.popitem(last=False)
        return built

    @classmethod
    def _build(cls, event: dict[str, Any]) -> RunEvent:
        return cls(
            run_id=strawberry.ID(str(event["run_id"])),
            seq=int(event.get("seq") or 0),
            type=RunEventType(event.get("type", "progress")),
            status=RunStatus(str(event.get("status", "RUNNING")).upper()),
            progress=float(event.get("progress") or 0.0),
            stage=event.get("stage"),
            equity_points=event.get("equity") or [],
            metrics=json_safe(event["metrics"]) if event.get("metrics") is not None else None,
            error=event.get("error"),
            emitted_at=float(event["emitted_at"]) if event.get("emitted_at") is not None else None,
        )


_RECENT: OrderedDict[tuple[Any, ...], RunEvent] = OrderedDict()
_RECENT_SIZE = 256


class SharedEventExecution(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, executing a subscription event's selection once for every
    follower with the same operation (the parser cache shares documents per query text),
    variables and scope: 500 followers of a run cost one execution per event, not 500.
    Results with errors, and events that are not `RunEvent`s, are executed per follower."""

    def execute_operation(self, serially: bool | None = None) -> Any:
        event = self.root_value
        if not isinstance(event, RunEvent):
            return super().execute_operation(serially)
        try:
            values = getattr(self.variable_values, "coerced", self.variable_values) or {}
            variables = tuple(sorted(values.items()))
            key = (id(self.operation), variables, getattr(self.context_value, "scope", None))
            hash(key)
        except Exception:  # e.g. unhashable variables: not shared
            return super().execute_operation(serially)
        hit = event.results.get(key)
        if hit is not None and hit[0] is self.operation:
            return hit[1]
        result = super().execute_operation(serially)
        if inspect.isawaitable(result):
            return self._keep(event, key, result)
        if not getattr(result, "errors", None):
            event.results[key] = (self.operation, result)
        return result

    async def _keep(self, event: RunEvent, key: Any, pending: Any) -> Any:
        result = await pending
        if not getattr(result, "errors", None):
            event.results[key] = (self.operation, result)
        return result


@strawberry.type
class RunSubscriptions:
    @strawberry.subscription(
        description="One run's progress: a snapshot, live events (progress with new equity "
        "points, status changes), the terminal event, then the stream completes. Pass "
        "`afterSeq` when resuming to skip events already seen."
    )
    async def run_progress(
        self, info: Info, id: strawberry.ID, after_seq: int = 0
    ) -> AsyncGenerator[RunEvent, None]:
        events = info.context.services.run_events(str(id), after_seq=after_seq)
        async with contextlib.aclosing(events):
            async for event in events:
                yield RunEvent.from_bus(event)

    @strawberry.subscription(
        description="Status changes of every run you can see (queued, running, finished), "
        "for dashboards."
    )
    async def run_events(self, info: Info) -> AsyncGenerator[RunEvent, None]:
        events = info.context.services.all_run_events()
        async with contextlib.aclosing(events):
            async for event in events:
                yield RunEvent.from_bus(event)
