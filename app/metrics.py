"""Prometheus metrics of one app: GET /metrics in the text exposition format.

Counted as they happen: HTTP requests and their latency by route, GraphQL operations
(named by their first root field, e.g. `query:runs`) with outcome and latency, and open
subscriptions. Read from the stack when scraped: queue depth, runs by status, the
progress of every running run, worker heartbeats (from the leases of the runs they
hold: a worker heartbeats by extending them) and the engine's bars per second (of the
runs that finished last). Each app has its own registry, so tests can build many apps.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from store.models import RunRow, RunStatus, utcnow

if TYPE_CHECKING:
    from app.stack import Stack

__all__ = ["Metrics", "MetricsMiddleware", "metrics_endpoint", "route_of"]

_ROUTES = (
    (re.compile(r"^/runs/[^/]+/report\.html$"), "/runs/{run_id}/report.html"),
    (re.compile(r"^/datasets/[^/]+/download$"), "/datasets/{dataset_id}/download"),
)
_KNOWN = frozenset({"/graphql", "/health", "/health/live", "/health/ready", "/metrics"})
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def route_of(path: str) -> str:
    """A bounded label for a request path (ids replaced by their placeholders)."""
    if path in _KNOWN:
        return path
    for pattern, name in _ROUTES:
        if pattern.match(path):
            return name
    return "other"


class Metrics:
    """The registry and instruments of one app."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "bt_http_requests", "HTTP requests by route, method and status.",
            ["route", "method", "status"], registry=r)
        self.http_latency = Histogram(
            "bt_http_request_duration_seconds", "HTTP request latency by route.", ["route"],
            buckets=_LATENCY_BUCKETS, registry=r)
        self.operations = Counter(
            "bt_graphql_operations", "GraphQL operations by first root field and outcome "
            "(ok or the first error's code).", ["operation", "outcome"], registry=r)
        self.operation_latency = Histogram(
            "bt_graphql_operation_duration_seconds", "GraphQL operation latency (HTTP).",
            ["operation"], buckets=_LATENCY_BUCKETS, registry=r)
        self.subscriptions_open = Gauge(
            "bt_subscriptions_open", "GraphQL subscriptions open now.", registry=r)
        self.subscriptions_started = Counter(
            "bt_subscriptions_started", "GraphQL subscriptions started.", registry=r)
        self.queue_depth = Gauge("bt_queue_depth", "Jobs waiting in the queue.", registry=r)
        self.runs = Gauge("bt_runs", "Runs by status.", ["status"], registry=r)
        self.run_progress = Gauge(
            "bt_run_progress", "Progress (0..1) of each running run.", ["run_id", "strategy"],
            registry=r)
        self.workers_active = Gauge(
            "bt_workers_active", "Workers holding a live run lease.", registry=r)
        self.worker_heartbeat_age = Gauge(
            "bt_worker_heartbeat_age_seconds", "Seconds since each worker's last heartbeat "
            "on a run it holds.", ["worker"], registry=r)
        self.engine_bars_per_second = Gauge(
            "bt_engine_bars_per_second", "Engine throughput of the most recent succeeded run.",
            registry=r)
        self.runs_succeeded_bars = Gauge(
            "bt_engine_bars_last_run", "Bars of the most recent succeeded run.", registry=r)

        self._children: dict[tuple[Any, ...], Any] = {}
        """Labelled instruments already looked up (`labels()` costs more than counting)."""

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._child(self.http_requests, route, method, str(status)).inc()
        self._child(self.http_latency, route).observe(seconds)

    def subscription(self, delta: int) -> None:
        """`Context.on_subscription`: +1 when one opens, -1 when it ends."""
        if delta > 0:
            self.subscriptions_started.inc()
        self.subscriptions_open.inc(delta)

    def operation(self, name: str, outcome: str, seconds: float | None = None) -> None:
        self._child(self.operations, name, outcome).inc()
        if seconds is not None:
            self._child(self.operation_latency, name).observe(seconds)

    async def refresh(self, stack: Stack) -> None:
        """Read the gauges that live in the database and the queue."""
        try:
            self.queue_depth.set(await stack.queue.depth())
        except Exception:  # a scrape must not fail because Redis blinked
            self.queue_depth.set(float("nan"))
        now = utcnow()
        lease_s = stack.settings.lease_seconds
        async with stack.db.session() as s:
            counts = dict((await s.execute(select(RunRow.status, func.count()).group_by(RunRow.status))).all())
            running = (await s.execute(
                select(RunRow.id, RunRow.strategy, RunRow.progress, RunRow.lease_owner,
                       RunRow.lease_expires_at).where(RunRow.status == RunStatus.RUNNING)
            )).all()
            last = (await s.execute(
                select(RunRow.engine_info).where(RunRow.status == RunStatus.SUCCEEDED)
                .order_by(RunRow.finished_at.desc()).limit(1)
            )).first()
        for status in RunStatus:
            self.runs.labels(status.value).set(int(counts.get(status, 0)))
        self.run_progress.clear()
        self.worker_heartbeat_age.clear()
        beats: dict[str, float] = {}
        for run_id, strategy, progress, owner, expires in running:
            self.run_progress.labels(run_id, strategy).set(float(progress or 0.0))
            if owner and expires is not None:
                age = max(0.0, (now - expires).total_seconds() + lease_s)
                beats[owner] = min(age, beats.get(owner, age))
        for worker, age in beats.items():
            self.worker_heartbeat_age.labels(worker).set(age)
        self.workers_active.set(sum(1 for age in beats.values() if age < lease_s))
        info: dict[str, Any] = (last[0] if last else None) or {}
        if isinstance(bps := info.get("bars_per_second"), int | float):
            self.engine_bars_per_second.set(float(bps))
        if isinstance(bars := info.get("bars"), int | float):
            self.runs_succeeded_bars.set(float(bars))

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics (Bearer `metrics_token` when configured)."""
    metrics: Metrics = request.app.state.metrics
    expected = request.app.state.settings.metrics_token
    if expected:
        import hmac

        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
            return JSONResponse({"errors": [{"message": "metrics need the metrics token",
                                             "extensions": {"code": "UNAUTHENTICATED"}}]},
                                status_code=401)
    stack = getattr(request.app.state, "stack", None)
    if stack is not None and stack.ready:
        await metrics.refresh(stack)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts every HTTP request and its latency by route, method and status."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            self.metrics.http_request(route_of(scope.get("path", "")), scope.get("method", ""),
                                      status, time.perf_counter() - started)
