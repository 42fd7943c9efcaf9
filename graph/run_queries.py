"""Run queries: `runs` (filters, sorting by a metric, cursor pages), `run`, `stats`, `health`."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from graph.context import Info
from graph.datasets import parse_dataset_id
from graph.errors import BadUserInput
from graph.pagination import Connection, build_connection, page_size
from graph.runs import Run, RunStatus
from graph.scalars import to_utc


@strawberry.enum
class SortDirection(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.enum
class RunOrderField(Enum):
    CREATED_AT = "created_at"
    METRIC = "metric"


@strawberry.input(description="Which runs to list; every given condition must hold.")
class RunFilterInput:
    status: list[RunStatus] | None = None
    strategy: str | None = None
    dataset_id: strawberry.ID | None = None
    created_after: datetime | None = strawberry.field(default=None, description="Inclusive.")
    created_before: datetime | None = strawberry.field(default=None, description="Exclusive.")


@strawberry.input(description="Sort order; runs without the metric sort last.")
class RunOrderInput:
    by: RunOrderField = RunOrderField.CREATED_AT
    metric: str | None = strawberry.field(
        default=None, description="Metric name when `by` is METRIC, e.g. `sharpe`."
    )
    direction: SortDirection = SortDirection.DESC


def sort_key(order: RunOrderInput | None) -> str:
    """The store's sort string: `-created_at`, `metrics.sharpe`, ..."""
    if order is None:
        return "-created_at"
    sign = "-" if order.direction is SortDirection.DESC else ""
    if order.by is RunOrderField.CREATED_AT:
        if order.metric is not None:
            raise BadUserInput("metric is only used with by: METRIC", field="order.metric")
        return f"{sign}created_at"
    if not order.metric:
        raise BadUserInput("by: METRIC needs a metric name, e.g. sharpe", field="order.metric")
    return f"{sign}metrics.{order.metric}"


@strawberry.type
class StatusCount:
    status: RunStatus
    count: int


@strawberry.type(description="Service-wide numbers for dashboards.")
class Stats:
    total_runs: int
    by_status: list[StatusCount]
    average_run_seconds: float | None = strawberry.field(
        description="Mean duration of succeeded runs."
    )
    queue_depth: int = strawberry.field(description="Jobs waiting in the queue.")


@strawberry.type(description="Whether the service and its dependencies answer.")
class Health:
    ok: bool
    mode: str = strawberry.field(description="`embedded` or `team`.")
    database: str
    redis: str
    queue: str
    queue_depth: int | None


@strawberry.type
class RunQueries:
    @strawberry.field(description="Runs, newest first unless `order` says otherwise.")
    async def runs(
        self,
        info: Info,
        filter: RunFilterInput | None = None,
        order: RunOrderInput | None = None,
        first: int | None = 50,
        after: str | None = None,
    ) -> Connection[Run]:
        f = filter or RunFilterInput()
        size = page_size(first, maximum=info.context.limits.max_page)
        page = await info.context.services.list_runs(
            status=[s.value for s in f.status] if f.status else None,
            strategy=f.strategy,
            dataset_id=None
            if f.dataset_id is None
            else parse_dataset_id(f.dataset_id, "filter.datasetId"),
            created_after=to_utc(f.created_after),  # a time without offset means UTC
            created_before=to_utc(f.created_before),
            sort=sort_key(order),
            first=size,
            after=after,
        )
        return build_connection(
            page.items,
            page.cursors,
            shape=Run.from_row,
            has_next=page.has_next,
            has_previous=after is not None,
            total=page.total,
        )

    @strawberry.field(description="One run by id; NOT_FOUND if there is none.")
    async def run(self, info: Info, id: strawberry.ID) -> Run:
        return Run.from_row(await info.context.services.read_run(str(id)))

    @strawberry.field(description="Counts by status, average run time and queue depth.")
    async def stats(self, info: Info) -> Stats:
        services = info.context.services
        raw = await services.run_stats()
        avg_ms = raw.get("avg_duration_ms")
        return Stats(
            total_runs=int(raw["total"]),
            by_status=[
                StatusCount(status=RunStatus(name), count=int(count))
                for name, count in raw["by_status"].items()
            ],
            average_run_seconds=None if avg_ms is None else float(avg_ms) / 1000.0,
            queue_depth=int(await services.queue.depth()),
        )

    @strawberry.field(description="Database, Redis and queue status (also at GET /health).")
    async def health(self, info: Info) -> Health:
        report = await info.context.health()
        return Health(
            ok=bool(report.get("ok")),
            mode=str(report.get("mode", "unknown")),
            database=str(report.get("database", "unknown")),
            redis=str(report.get("redis", "unknown")),
            queue=str(report.get("queue", "unknown")),
            queue_depth=report.get("queue_depth"),
        )
