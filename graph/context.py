"""The per-request (per-websocket) context every resolver receives as `info.context`.

`app/` builds it: the `Services` facade of the workers layer (scoped here to the caller:
`Services.scoped(principal.scope)`), the caller's `Principal` (None = anonymous,
with `auth_failure` saying why a presented token was refused), a health probe, the
limits from settings, the rate limiter and a request id for logs and masked errors.
Nothing here reads settings or the environment.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import strawberry

from graph import permissions
from graph.loaders import Loaders
from store.auth import Principal
from store.scope import NOBODY, Scope
from workers.limits import RateLimiter, RateLimits

if TYPE_CHECKING:
    from workers.service import Services

HealthCheck: TypeAlias = Callable[[], Awaitable[dict[str, Any]]]
TokenCheck: TypeAlias = Callable[[Principal], Awaitable[bool]]
"""Whether a principal's token still works."""
TokenWatch: TypeAlias = Callable[[Principal, Callable[[], None]], Callable[[], None]]
"""`watch(principal, on_end)`: call `on_end()` once the token is revoked or expires;
returns the un-watch (open subscriptions are ended by it)."""


async def _no_health() -> dict[str, Any]:
    return {"ok": True, "database": "unknown", "redis": "unknown", "queue": "unknown"}


@dataclass(frozen=True)
class GraphLimits:
    """Bounds on what one request may ask for."""

    run_wait_timeout_s: float = 60.0
    max_run_wait_s: float = 300.0
    max_equity_points: int = 10_000
    max_page: int = 500


@dataclass
class Context:
    services: Services
    health: HealthCheck = _no_health
    limits: GraphLimits = field(default_factory=GraphLimits)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None
    principal: Principal | None = None
    """Who is asking; None = anonymous (every root field but `health` refuses it)."""
    auth_failure: str | None = None
    """Why a presented token was refused (the UNAUTHENTICATED message)."""
    token_check: TokenCheck | None = None
    token_watch: TokenWatch | None = None
    limiter: RateLimiter | None = None
    rate_limits: RateLimits = field(default_factory=RateLimits)
    websocket: bool = False
    """One context serves a whole websocket: every operation on it is charged and re-checked."""
    on_subscription: Callable[[int], None] | None = None
    """Told +1 when a subscription opens and -1 when it ends (metrics)."""
    charged: bool = False
    """This HTTP request's operation was counted against the token's request budget."""
    memo: dict[str, Any] = field(default_factory=dict)
    """Per-request results shared by resolvers (e.g. scoped strategy usage counts)."""
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.services = self.services.scoped(self.scope, charge=self.charge_work)
        self.loaders = Loaders(self.services)

    @property
    def scope(self) -> Scope:
        """The ownership scope of everything this request reads and writes."""
        return NOBODY if self.principal is None else self.principal.scope

    async def charge_work(self, kind: str, cost: int) -> None:
        """Charge submitted work (e.g. an optimization's trials) to the caller's token
        budget; the decision is `graph.permissions.charge_work`'s."""
        await permissions.charge_work(self, kind, cost)

    def act_as(self, principal: Principal | None, failure: str | None = None) -> None:
        """Set the caller (websockets learn it at `connection_init`) and scope the services."""
        self.principal = principal
        self.auth_failure = failure
        self.services = self.services.scoped(self.scope, charge=self.charge_work)
        self.loaders = Loaders(self.services)


Info: TypeAlias = strawberry.Info[Context, None]
