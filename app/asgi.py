"""The ASGI application: `/graphql` (HTTP POST + graphql-transport-ws), `/health` (=
`/health/ready`), `/health/live`, `/metrics` (Prometheus), `/runs/{id}/report.html` (a
finished run's HTML report) and `/datasets/{id}/download` (an uploaded dataset's
original file); those non-GraphQL routes live in `app.routes`.

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

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from app.auth import token_from_params
from app.metrics import Metrics, MetricsMiddleware
from app.middleware import (
    BodyLimitMiddleware,
    CatchAllMiddleware,
    RequestIdMiddleware,
    request_id_of,
)
from app.routes import http_routes, identify
from app.settings import Settings
from app.stack import Stack, open_stack
from graph.context import Context, GraphLimits
from graph.errors import to_graphql_error
from graph.schema import build_schema
from store.strategy_snapshot import follow_catalog
from workers.jobs import freeze_startup_objects

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
            token_watch=stack.auth.watch if stack.auth else None,
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


def create_app_from_env() -> Starlette:
    """uvicorn's factory in each `backtester serve --workers N` process: settings from the
    environment, logging configured as the parent command did."""
    from app.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, json_lines=settings.json_logs)
    return create_app(settings, freeze_gc=True)


def create_app(settings: Settings | None = None, *, freeze_gc: bool = False) -> Starlette:
    """The whole service as one Starlette app; the lifespan opens and closes the stack.

    `freeze_gc`: the process serves only this app (`backtester serve`), so what start-up
    built is frozen out of garbage collection (`freeze_startup_objects`); tests leave it off.
    """
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
            if stack.auth is not None:
                await stack.auth.start()  # the revocation feed: verified tokens may be cached
            # the catalog change feed: the strategy list may be served from a snapshot
            catalog_feed = asyncio.create_task(follow_catalog(stack.db), name="catalog-feed")
            if freeze_gc:
                freeze_startup_objects()
            try:
                yield
            finally:
                app.state.stack = None
                catalog_feed.cancel()
                with contextlib.suppress(BaseException):
                    await catalog_feed
                if stack.auth is not None:
                    await stack.auth.close()

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
        *http_routes(),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.settings = settings
    app.state.stack = None
    app.state.metrics = metrics
    return app
