"""The ASGI application: `/graphql` (HTTP POST + graphql-transport-ws), `/health` (=
`/health/ready`), `/health/live`, `/metrics` (Prometheus), `/runs/{id}/report.html` (a
finished run's HTML report) and `/datasets/{id}/download` (an uploaded dataset's
original file).

Callers authenticate with `Authorization: Bearer <token>` (websockets: in the
`connection_init` payload, never the URL); `app.auth` turns it into the `Principal` the
GraphQL context, and so every resolver and store query, acts for.

`create_app(settings)` wires the hardening the API promises: query depth, alias and
token limits (schema extensions), a request body cap answered with 413 before any
parsing, queries over GET refused, multipart only with a CSRF preflight header, a short
websocket `connection_init` timeout, configurable CORS/websocket origins, and errors
that never carry a traceback.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from app.auth import bearer_token, token_from_params
from app.metrics import Metrics, MetricsMiddleware, metrics_endpoint
from app.middleware import (
    BodyLimitMiddleware,
    CatchAllMiddleware,
    RequestIdMiddleware,
    request_id_of,
)
from app.settings import Settings
from app.stack import Stack, open_stack
from graph.context import Context, GraphLimits
from graph.datasets import parse_dataset_id
from graph.errors import ErrorCode, classify, to_graphql_error
from graph.permissions import HOW_TO_AUTHENTICATE
from graph.schema import build_schema
from store.auth import Principal
from workers.service import Services

log = logging.getLogger("backtester.app")

# A browser cannot send these on a simple (non-preflighted) cross-site request, so
# requiring one on multipart requests stops CSRF uploads (Apollo's convention).
CSRF_HEADERS = ("apollo-require-preflight", "x-apollo-operation-name", "graphql-preflight")
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


def wants_graphql_response(request: Request) -> bool:
    """The client accepts the GraphQL-over-HTTP media type (then it gets it)."""
    return GRAPHQL_RESPONSE_JSON in request.headers.get("accept", "")


class GraphQLView(GraphQL):
    """strawberry's ASGI view with our context, CSRF check and error shaping."""

    def __init__(self, *args: Any, limits: GraphLimits, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stack: Stack | None = getattr(scope["app"].state, "stack", None)
        if stack is None or not stack.ready:  # only outside the lifespan (tests, shutdown)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1013, "reason": "not ready"})
            else:
                await JSONResponse(
                    {"errors": [{"message": "service is starting or stopping",
                                 "extensions": {"code": "UNAVAILABLE"}}]},
                    status_code=503,
                )(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        stack: Stack = request.app.state.stack
        websocket = isinstance(request, WebSocket)
        principal, failure = None, None
        if not websocket:  # a websocket says who it is in connection_init
            principal, failure = await identify(stack, request)
        context = Context(
            services=stack.services,
            health=stack.health,
            limits=self.limits,
            request_id=request_id_of(request.scope),
            request=request,
            response=response,
            principal=principal,
            auth_failure=failure,
            token_check=stack.auth.still_valid if stack.auth else None,
            limiter=stack.limiter,
            rate_limits=stack.rate_limits,
            websocket=websocket,
            on_subscription=self.metrics.subscription,
        )
        request.state.bt_context = context
        return context

    async def on_ws_connect(self, context: Context) -> Any:
        """Authenticate a websocket from its connection_init payload; refuse (4403) a bad
        token, or no token when users are configured."""
        stack: Stack = context.request.app.state.stack
        token = token_from_params(context.connection_params)
        principal, failure = await identify(stack, context.request, token=token)
        if principal is None:
            log.info("websocket refused (request id %s): %s", context.request_id,
                     failure or "no token")
            raise ConnectionRejectionError()
        context.act_as(principal)
        return UNSET

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        started = time.perf_counter()
        try:
            response = await super().run(request, context, root_value)
        finally:
            if isinstance(request, Request):
                await request.close()  # closes uploaded files' temporary files
                ctx = getattr(request.state, "bt_context", None)
                name = ctx.memo.get("operation", "invalid") if ctx is not None else "invalid"
                outcome = getattr(request.state, "graphql_outcome", "ok")
                self.metrics.operation(name, outcome, time.perf_counter() - started)
        if (
            isinstance(request, Request)
            and isinstance(response, Response)
            and response.media_type == "application/json"
            and wants_graphql_response(request)
        ):
            response.headers["content-type"] = GRAPHQL_RESPONSE_JSON
            response.status_code = getattr(request.state, "graphql_status", response.status_code)
        return response

    async def parse_multipart(self, request: Any) -> dict[str, str]:
        headers = request.headers
        if not any(headers.get(name) for name in CSRF_HEADERS):
            raise HTTPException(
                400,
                "multipart requests need a non-empty 'Apollo-Require-Preflight' header "
                "(CSRF protection)",
            )
        return await super().parse_multipart(request)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        # ErrorCodes already shaped these; this pass catches errors raised outside an
        # operation (e.g. by an extension hook) so nothing unshaped reaches a client.
        if result.errors:
            rid = request_id_of(request.scope)
            result.errors = [to_graphql_error(e, rid) for e in result.errors]
            request.state.graphql_outcome = str((result.errors[0].extensions or {}).get("code", "ERROR"))
        body = await super().process_result(request, result)
        failed_before_execution = (
            result.data is None
            and bool(result.errors)
            and all(e.path is None for e in result.errors or ())
        )
        if failed_before_execution and wants_graphql_response(request):
            # GraphQL over HTTP: no `data` entry and a 400 for a request that could not
            # run (syntax, validation, variables); `application/json` clients keep a 200.
            body.pop("data", None)  # type: ignore[misc]
            request.state.graphql_status = 400
        return body


async def identify(
    stack: Stack, request: Request | WebSocket, *, token: str | None = None
) -> tuple[Principal | None, str | None]:
    """The caller of an HTTP request (its Authorization header) or of a websocket (`token`)."""
    if stack.auth is None:
        return None, "authentication is not available"
    if not isinstance(request, WebSocket):
        token = bearer_token(request.headers.get("authorization"))
    client = request.client.host if request.client else None
    return await stack.auth.identify(token, client)


async def live_endpoint(request: Request) -> Response:
    """Liveness: the process answers (restart it if not); says nothing of dependencies."""
    return JSONResponse({"ok": True})


async def health_endpoint(request: Request) -> Response:
    stack: Stack | None = getattr(request.app.state, "stack", None)
    if stack is None:
        report: dict[str, Any] = {
            "ok": False, "database": "not started", "redis": "not started", "queue": "not started"
        }
    else:
        report = await stack.health()
    return JSONResponse(report, status_code=200 if report.get("ok") else 503)


_HTTP_STATUS = {
    ErrorCode.NOT_FOUND: 404, ErrorCode.CONFLICT: 409, ErrorCode.BAD_USER_INPUT: 400,
    ErrorCode.FORBIDDEN: 403,
}


def error_response(code: str, message: str, status_code: int, **extra: Any) -> JSONResponse:
    """A non-GraphQL route's error, shaped like a GraphQL error (`extensions.code`)."""
    body = {"errors": [{"message": message, "extensions": {"code": code, **extra}}]}
    return JSONResponse(body, status_code=status_code)


async def scoped_services(request: Request) -> Services | Response:
    """The stack's services acting for the caller, or the error response to send instead
    (503 while starting, 401 without a usable token)."""
    stack: Stack | None = getattr(request.app.state, "stack", None)
    if stack is None or not stack.ready:
        return error_response("UNAVAILABLE", "service is starting or stopping", 503)
    principal, failure = await identify(stack, request)
    if principal is None:
        response = error_response("UNAUTHENTICATED", failure or HOW_TO_AUTHENTICATE, 401)
        response.headers["www-authenticate"] = "Bearer"
        return response
    return stack.services.scoped(principal.scope)


async def report_endpoint(request: Request) -> Response:
    """GET /runs/{id}/report.html: the run's standalone HTML tear sheet (works offline)."""
    services = await scoped_services(request)
    if isinstance(services, Response):
        return services
    try:
        page = await services.analytics.report_html(request.path_params["run_id"])
    except Exception as exc:
        known = classify(exc)
        if known is None or known[0] not in _HTTP_STATUS:
            raise  # CatchAllMiddleware answers 500 without internals
        code, message, extra = known
        return error_response(code.value, message, _HTTP_STATUS[code], **extra)
    return HTMLResponse(page)


_DOWNLOAD_TYPES = {
    ".csv": "text/csv; charset=utf-8", ".txt": "text/plain; charset=utf-8",
    ".tsv": "text/tab-separated-values; charset=utf-8", ".gz": "application/gzip",
    ".zip": "application/zip",
}


def attachment(filename: str) -> str:
    """A Content-Disposition header for `filename`: an ASCII fallback plus the RFC 5987 form."""
    plain = re.sub(r'[^A-Za-z0-9._ ()+-]', "_", filename).strip() or "dataset.csv"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def download_endpoint(request: Request) -> Response:
    """GET /datasets/{id}/download: the file exactly as uploaded, under its own name."""
    services = await scoped_services(request)
    if isinstance(services, Response):
        return services
    try:
        dataset_id = parse_dataset_id(request.path_params["dataset_id"])
        row, data = await services.datasets.original(dataset_id)
    except Exception as exc:
        known = classify(exc)
        if known is None or known[0] not in _HTTP_STATUS:
            raise  # CatchAllMiddleware answers 500 without internals
        code, message, extra = known
        return error_response(code.value, message, _HTTP_STATUS[code], **extra)
    filename = row.source_name or f"dataset-{row.id}.csv"
    suffix = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
    headers = {"content-disposition": attachment(filename), "x-content-type-options": "nosniff"}
    if row.raw_hash:
        headers["etag"] = f'"{row.raw_hash}"'
    media = _DOWNLOAD_TYPES.get(suffix, "application/octet-stream")
    return Response(data, media_type=media, headers=headers)


def create_app(settings: Settings | None = None) -> Starlette:
    """The whole service as one Starlette app; the lifespan opens and closes the stack."""
    settings = settings or Settings()
    schema = build_schema(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_tokens,
    )
    limits = GraphLimits(
        run_wait_timeout_s=settings.run_wait_timeout_seconds,
        max_run_wait_s=settings.max_run_wait_seconds,
    )
    metrics = Metrics()
    graphql_app = GraphQLView(
        schema,
        limits=limits,
        metrics=metrics,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        allow_queries_via_get=False,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
        multipart_uploads_enabled=True,
        max_subscriptions_per_connection=50,
        allowed_origins=tuple(settings.allowed_origins),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_stack(settings) as stack:
            app.state.stack = stack
            try:
                yield
            finally:
                app.state.stack = None

    middleware = [
        Middleware(MetricsMiddleware, metrics=metrics),
        Middleware(CatchAllMiddleware),
        Middleware(RequestIdMiddleware),
        Middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["content-type", "authorization", *CSRF_HEADERS],
            max_age=600,
        ),
        Middleware(
            BodyLimitMiddleware,
            max_body_bytes=settings.max_body_bytes,
            # The file may use the whole upload cap; the other multipart fields get
            # what a JSON request may have. The service then checks the file itself.
            max_upload_bytes=settings.max_upload_bytes + settings.max_body_bytes,
        ),
    ]
    routes = [
        Route("/graphql", graphql_app, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql_app),
        Route("/health", health_endpoint, methods=["GET"]),
        Route("/health/ready", health_endpoint, methods=["GET"]),
        Route("/health/live", live_endpoint, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/runs/{run_id}/report.html", report_endpoint, methods=["GET"]),
        Route("/datasets/{dataset_id}/download", download_endpoint, methods=["GET"]),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.settings = settings
    app.state.stack = None
    app.state.metrics = metrics
    return app
