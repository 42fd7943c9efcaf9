"""Authorization: the single hook every root field passes through.

`guard_root_fields` attaches `Authorized` to every field of Query, Mutation and
Subscription when the schema is built, so no resolver can forget it. `authorize`
decides, from the request's `Principal` (`info.context.principal`):

1. who: anonymous callers get UNAUTHENTICATED (only `health` is public);
2. what: the token's scope must cover the operation: `read` for queries and
   subscriptions, `run` for mutations, `admin` for the fields in `ADMIN_FIELDS`;
3. how much: the token's request budget, and for fields in `WORK_COST` its budget of
   submitted runs (RATE_LIMITED with `retryAfter` when spent). An optimization's trials
   are charged by `charge_work` once its trial count is known: the context hands it to
   its scoped services (`Services.charge`), which call it before storing anything.

Which rows a caller sees is not decided per resolver either: the context's services
are scoped to the principal (`Services.scoped`), and every store query filters by that
`store.scope.Scope`. Subscriptions are wrapped so that a token revoked while they are
open ends them as soon as the server hears of it (at once; at worst within `RECHECK_S`
plus the token check's cache), and an expired one within `RECHECK_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import strawberry
from strawberry.permission import BasePermission, PermissionExtension

from graph.errors import Forbidden, Unauthenticated
from workers.limits import RateLimitedError

PUBLIC_FIELDS = frozenset({"health"})
"""Root fields anyone may call (load balancers probe them)."""
ADMIN_FIELDS = frozenset({"auditLog", "users", "syncStrategies"})
"""Root fields that need the `admin` scope (operators only)."""
READ_MUTATIONS = frozenset({"revokeApiToken"})
"""Mutations a `read` token may call (revoking one's own token)."""
WORK_COST: dict[str, Callable[[Mapping[str, Any]], int]] = {
    "submitBacktest": lambda args: 1,
    "runBacktest": lambda args: 1,
    "startOptimization": lambda args: 1,
    "promoteTrial": lambda args: 1,
}
"""Root fields that submit work, and how many runs each call costs the token's run
budget (an optimization's trials go to its own budget through `charge_work`)."""
WORK_KINDS = frozenset({"trials"})
"""Budgets the service layer charges through `charge_work` (see `RateLimits`)."""
RECHECK_S = 1.0
"""How often an open subscription re-checks that its token still works."""

HOW_TO_AUTHENTICATE = (
    "authentication required: send 'Authorization: Bearer <token>' (websockets: "
    "{\"Authorization\": \"Bearer <token>\"} in the connection_init payload); an operator "
    "creates tokens with `backtester token create --user NAME --scope read`"
)


def required_scope(operation: str, field: str) -> str | None:
    """The token scope root `field` of `operation` needs; None = public."""
    if field in PUBLIC_FIELDS:
        return None
    if field in ADMIN_FIELDS:
        return "admin"
    if operation == "mutation" and field not in READ_MUTATIONS:
        return "run"
    return "read"


def _retry_after_header(context: Any, seconds: int) -> None:
    headers = getattr(getattr(context, "response", None), "headers", None)
    if headers is not None and hasattr(headers, "__setitem__"):  # HTTP only, not websockets
        headers["Retry-After"] = str(seconds)


async def _spend(context: Any, kind: str, token_id: str, limit: int, cost: int = 1) -> None:
    window = context.rate_limits.window_s
    decision = await context.limiter.hit(kind, token_id, limit=limit, window_s=window, cost=cost)
    if not decision.allowed:
        what = {"requests": "requests", "trials": "optimization trials"}.get(kind, "submitted runs")
        error = RateLimitedError(
            f"rate limit: at most {limit} {what} per {window:g} s for this token; "
            "retry after the time in extensions.retryAfter",
            decision.retry_after,
            limit=limit,
        )
        _retry_after_header(context, error.retry_after)
        raise error


async def charge(context: Any, field: str, args: Mapping[str, Any]) -> None:
    """Count this call against the token's budgets (the embedded local user has none)."""
    principal = context.principal
    if getattr(context, "limiter", None) is None or principal is None or principal.token_id is None:
        return
    limits = context.rate_limits
    if context.websocket or not context.charged:  # one HTTP request = one request
        context.charged = True
        await _spend(context, "requests", principal.token_id, limits.requests)
    cost_of = WORK_COST.get(field)
    if cost_of is not None and (cost := int(cost_of(args))) > 0:
        await _spend(context, "runs", principal.token_id, limits.runs, cost)


async def charge_work(context: Any, kind: str, cost: int) -> None:
    """Count `cost` units of work of `kind` (one of `WORK_KINDS`) against the caller's
    token budget; RATE_LIMITED when it would exceed it (the local user has none)."""
    if kind not in WORK_KINDS:
        raise ValueError(f"unknown work budget {kind!r}")
    principal = getattr(context, "principal", None)
    if getattr(context, "limiter", None) is None or principal is None or principal.token_id is None:
        return
    if (cost := int(cost)) > 0:
        await _spend(context, kind, principal.token_id, getattr(context.rate_limits, kind), cost)


async def authorize(context: Any, *, operation: str, field: str, args: Mapping[str, Any]) -> bool:
    """Decide whether the caller in `context` may run root `field` of `operation`.

    `operation` is "query", "mutation" or "subscription"; `args` are the parsed
    arguments. Raises UNAUTHENTICATED, FORBIDDEN or RATE_LIMITED; True otherwise.
    """
    memo = getattr(context, "memo", None)
    if isinstance(memo, dict):  # the first root field names the operation in metrics
        memo.setdefault("operation", f"{operation}:{field}")
    needed = required_scope(operation, field)
    if needed is None:
        return True
    principal = getattr(context, "principal", None)
    if principal is None:
        raise Unauthenticated(getattr(context, "auth_failure", None) or HOW_TO_AUTHENTICATE)
    check = getattr(context, "token_check", None)
    if context.websocket and check is not None and not await check(principal):
        raise Unauthenticated("this API token was revoked or has expired")
    if not principal.allows(needed):
        have = ", ".join(sorted(principal.scopes)) or "none"
        raise Forbidden(f"{field} needs a token with the '{needed}' scope (this one has: {have})")
    await charge(context, field, args)
    return True


REVOKED_MESSAGE = "this API token was revoked or has expired; the subscription is closed"


async def watch_token(context: Any, source: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    """Relay a subscription's events, ending it with UNAUTHENTICATED as soon as its token
    stops working. With `context.token_watch` (the server's) the token is re-checked once
    per token, not per subscription, and a revocation interrupts the wait for the next
    event; relaying an event costs nothing more. Without it, it polls `token_check`."""
    principal = getattr(context, "principal", None)
    watch = getattr(context, "token_watch", None)
    if principal is None or principal.token_id is None:
        watch = None
    elif watch is None and getattr(context, "token_check", None) is not None:
        async for item in _poll_token(context, source):
            yield item
        return
    track = getattr(context, "on_subscription", None)
    if track is not None:
        track(+1)
    ended = False
    waiting: asyncio.Task[Any] | None = None

    def on_end() -> None:
        nonlocal ended
        ended = True
        if waiting is not None:  # it waits for the next event: interrupt that wait
            waiting.cancel(REVOKED_MESSAGE)

    unwatch = watch(principal, on_end) if watch is not None else None
    try:
        while True:
            if ended:
                raise Unauthenticated(REVOKED_MESSAGE)
            waiting = asyncio.current_task()
            try:
                item = await anext(source)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if ended and waiting is not None and waiting.uncancel() == 0:
                    raise Unauthenticated(REVOKED_MESSAGE) from None
                raise
            finally:
                waiting = None
            yield item
    finally:
        if unwatch is not None:
            unwatch()
        if track is not None:
            track(-1)
        await source.aclose()


async def _poll_token(context: Any, source: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    """`watch_token` for a context with only `token_check`: re-checked every `RECHECK_S`."""
    principal, check = context.principal, context.token_check
    track = getattr(context, "on_subscription", None)
    if track is not None:
        track(+1)
    pending: asyncio.Future[Any] | None = None
    checked = time.monotonic()
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(source))
            done, _ = await asyncio.wait({pending}, timeout=RECHECK_S)
            if done:
                finished, pending = pending, None
                try:
                    item = finished.result()
                except StopAsyncIteration:
                    return
                yield item
            if time.monotonic() - checked >= RECHECK_S:
                checked = time.monotonic()
                if not await check(principal):
                    raise Unauthenticated(REVOKED_MESSAGE)
    finally:
        if track is not None:
            track(-1)
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        await source.aclose()


class Authorized(BasePermission):
    """Adapter from strawberry's permission protocol to `authorize`."""

    message = "not allowed"

    async def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        operation = info.operation.operation.value
        return await authorize(info.context, operation=operation, field=info.field_name, args=kwargs)

    def on_unauthorized(self) -> None:
        raise Forbidden("you are not allowed to do this")


class AuthorizedField(PermissionExtension):
    """`Authorized`, plus the token watch around a subscription's event stream."""

    async def resolve_async(self, next_: Any, source: Any, info: strawberry.Info, **kwargs: Any) -> Any:
        result = await super().resolve_async(next_, source, info, **kwargs)
        if inspect.isasyncgen(result):
            return watch_token(info.context, result)
        return result


def is_guarded(field: Any) -> bool:
    return any(
        isinstance(ext, PermissionExtension)
        and any(isinstance(p, Authorized) for p in ext.permissions)
        for ext in field.extensions
    )


def guard_root_fields(*root_types: type) -> None:
    """Attach `Authorized` to every field of the given root types (idempotent)."""
    for root in root_types:
        for field in root.__strawberry_definition__.fields:  # type: ignore[attr-defined]
            if not is_guarded(field):
                field.extensions.append(AuthorizedField([Authorized()], use_directives=False))
