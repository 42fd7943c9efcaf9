"""The non-GraphQL HTTP routes: `/health` (= `/health/ready`), `/health/live`,
`/runs/{id}/report.html` (a finished run's HTML report) and `/datasets/{id}/download` (an
uploaded dataset's original file), plus `identify`, the caller check they share with the
GraphQL view (`app.asgi`)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket

from app.auth import bearer_token
from app.metrics import metrics_endpoint
from app.stack import Stack
from graph.datasets import parse_dataset_id
from graph.errors import ErrorCode, classify
from graph.permissions import HOW_TO_AUTHENTICATE
from store.auth import Principal
from workers.service import Services


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


def http_routes() -> list[Route]:
    """Every route but `/graphql`."""
    return [
        Route("/health", health_endpoint, methods=["GET"]),
        Route("/health/ready", health_endpoint, methods=["GET"]),
        Route("/health/live", live_endpoint, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/runs/{run_id}/report.html", report_endpoint, methods=["GET"]),
        Route("/datasets/{dataset_id}/download", download_endpoint, methods=["GET"]),
    ]
