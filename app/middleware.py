"""Pure ASGI middleware: request ids, the request body cap, and a last-resort error handler.

They are plain ASGI (not Starlette's BaseHTTPMiddleware) so websockets and streaming
responses pass through untouched and nothing buffers a body it is about to refuse.
"""

from __future__ import annotations

import json
import logging
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from store.logctx import REQUEST_ID

log = logging.getLogger("backtester.app")

REQUEST_ID_HEADER = b"x-request-id"


def request_id_of(scope: Scope) -> str:
    """The id `RequestIdMiddleware` gave this request (or a fresh one)."""
    state = scope.setdefault("state", {})
    rid = state.get("request_id")
    if not isinstance(rid, str):
        rid = uuid.uuid4().hex[:12]
        state["request_id"] = rid
    return rid


class RequestIdMiddleware:
    """Give every request an id (echoed as `x-request-id`) that logs and errors cite."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        reset = REQUEST_ID.set(rid)  # log lines and audit entries of this request carry it

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id if scope["type"] == "http" else send)
        finally:
            REQUEST_ID.reset(reset)


class _BodyTooLarge(Exception):
    pass


def _json_error(status: int, code: str, message: str) -> tuple[Message, Message]:
    body = json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class BodyLimitMiddleware:
    """Refuse request bodies over the cap with 413, before anything parses them.

    A declared `content-length` over the cap is refused without reading a byte; a
    chunked body is counted as it streams and refused as soon as it crosses the cap.
    Multipart requests (dataset uploads) get their own, larger cap.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    def _limit_for(self, scope: Scope) -> int:
        for name, value in scope.get("headers", []):
            if name == b"content-type" and value.lower().startswith(b"multipart/"):
                return self.max_upload_bytes
        return self.max_body_bytes

    async def _refuse(self, send: Send, limit: int) -> None:
        start, body = _json_error(
            413, "PAYLOAD_TOO_LARGE", f"request body is larger than the limit of {limit} bytes"
        )
        await send(start)
        await send(body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._refuse(send, limit)
                return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send, limit)


class CatchAllMiddleware:
    """Turn an exception that escaped everything into a JSON 500 without a traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            rid = request_id_of(scope)
            log.exception("unhandled error (request id %s) on %s", rid, scope.get("path"))
            if started:
                raise
            start, body = _json_error(500, "INTERNAL", f"internal error; request id {rid}")
            await send(start)
            await send(body)
