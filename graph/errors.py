"""The one place where exceptions become GraphQL errors with `extensions.code`.

Resolvers raise typed domain errors (from store, strategies, engine) or the `ApiError`s
below; the `ErrorCodes` schema extension rewrites every error of every result, queries,
mutations and subscription events alike. Anything it does not recognise is masked as
INTERNAL ("internal error; request id ...") and logged with its traceback.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import pydantic
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from engine.errors import EngineInputError
from engine.ingest.errors import IngestError
from store.auth import AuthError
from store.errors import ConflictError, ForbiddenError, NotFoundError, QuotaExceededError
from strategies.registry import UnknownStrategyError
from workers.limits import RateLimitedError

log = logging.getLogger("backtester.graph")


class ErrorCode(StrEnum):
    """Values of `extensions.code`; clients switch on these, never on messages."""

    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    TIMEOUT = "TIMEOUT"
    INTERNAL = "INTERNAL"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


class ApiError(Exception):
    """An error raised by the graph layer itself, already carrying its code."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


class BadUserInput(ApiError):
    code = ErrorCode.BAD_USER_INPUT


class NotFound(ApiError):
    code = ErrorCode.NOT_FOUND


class Conflict(ApiError):
    code = ErrorCode.CONFLICT


class Forbidden(ApiError):
    code = ErrorCode.FORBIDDEN


class Unauthenticated(ApiError):
    code = ErrorCode.UNAUTHENTICATED


class Timeout(ApiError):
    code = ErrorCode.TIMEOUT


def describe_validation_error(exc: pydantic.ValidationError, prefix: str = "") -> str:
    """`options.slippage_bps: Input should be ...` for the first few problems."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        where = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "input"
        parts.append(f"{where}: {err.get('msg', 'invalid value')}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def classify(exc: BaseException) -> tuple[ErrorCode, str, dict[str, Any]] | None:
    """Map a known exception to (code, message, extra extensions); None = unexpected."""
    if isinstance(exc, ApiError):
        return exc.code, exc.message, dict(exc.extensions)
    if isinstance(exc, NotFoundError):
        extra = {k: v for k in ("kind", "id") if (v := getattr(exc, k, None)) is not None}
        return ErrorCode.NOT_FOUND, str(exc), extra
    if isinstance(exc, ConflictError):
        return ErrorCode.CONFLICT, str(exc), {}
    if isinstance(exc, ForbiddenError):
        return ErrorCode.FORBIDDEN, str(exc), {}
    if isinstance(exc, AuthError):
        return ErrorCode.UNAUTHENTICATED, str(exc), {}
    if isinstance(exc, RateLimitedError):
        extra: dict[str, Any] = {"retryAfter": exc.retry_after}
        if exc.limit is not None:
            extra["limit"] = exc.limit
        return ErrorCode.RATE_LIMITED, exc.message, extra
    if isinstance(exc, QuotaExceededError):
        return ErrorCode.QUOTA_EXCEEDED, exc.message, {"quota": exc.quota, "limit": exc.limit}
    if isinstance(exc, UnknownStrategyError):
        return ErrorCode.BAD_USER_INPUT, str(exc), {"field": "strategy"}
    if isinstance(exc, IngestError):  # a rejected dataset file: where, and which rule
        extra = {"ingestCode": exc.code, "line": exc.line, "column": exc.column}
        if isinstance(limit := getattr(exc, "limit", None), int):
            extra["maxBytes"] = limit
        return ErrorCode.BAD_USER_INPUT, str(exc), extra
    if isinstance(exc, EngineInputError):
        param = getattr(exc, "param", None)
        return ErrorCode.BAD_USER_INPUT, str(exc), ({"field": param} if param else {})
    if isinstance(exc, pydantic.ValidationError):
        return ErrorCode.BAD_USER_INPUT, describe_validation_error(exc), {}
    return None


def _pre_execution_code(error: GraphQLError) -> ErrorCode | None:
    """Codes for graphql-core's own errors (syntax, validation, variable coercion)."""
    if error.path is not None:
        return None
    original = error.original_error
    if original is not None and not isinstance(original, GraphQLError):
        if error.message.startswith("Variable '$"):
            return ErrorCode.BAD_USER_INPUT
        return None
    if error.message.startswith("Syntax Error"):
        return ErrorCode.GRAPHQL_PARSE_FAILED
    if error.message.startswith("Variable '$"):
        return ErrorCode.BAD_USER_INPUT
    return ErrorCode.GRAPHQL_VALIDATION_FAILED


def to_graphql_error(error: GraphQLError, request_id: str | None = None) -> GraphQLError:
    """The client-facing version of one error: a code, an actionable message, no internals."""
    if isinstance((error.extensions or {}).get("code"), str) and error.original_error is None:
        return error  # already shaped (e.g. by an earlier pass)
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    known = classify(original) if original is not None else None
    if known is not None:
        code, message, extra = known
    elif (pre := _pre_execution_code(error)) is not None:
        code, message, extra = pre, error.message, {}
    else:
        rid = request_id or uuid.uuid4().hex[:12]
        log.error(
            "unexpected error in %s (request id %s): %s",
            ".".join(str(p) for p in error.path or ()) or "operation",
            rid,
            error.message,
            exc_info=original if isinstance(original, BaseException) else None,
        )
        code, message, extra = ErrorCode.INTERNAL, f"internal error; request id {rid}", {}
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions={"code": code.value, **extra},
    )


class ErrorCodes(SchemaExtension):
    """Rewrites every error of a result (and of each subscription event) via `classify`."""

    def _rewrite(self, result: object) -> None:
        errors = getattr(result, "errors", None)
        if errors:
            rid = getattr(self.execution_context.context, "request_id", None)
            result.errors = [to_graphql_error(e, rid) for e in errors]  # type: ignore[attr-defined]

    def on_operation(self) -> Iterator[None]:
        self._streamed = False
        yield
        if not self._streamed:
            self._rewrite(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        self._streamed = True
        self._rewrite(result)
        yield None
