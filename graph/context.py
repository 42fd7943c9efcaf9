"""The per-request (per-websocket) context every resolver receives as `info.context`.

`app/` builds it: the `Services` facade of the workers layer, a health probe, the
limits from settings and a request id for logs and masked errors. Nothing here reads
settings or the environment.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import strawberry

from graph.loaders import Loaders

if TYPE_CHECKING:
    from workers.service import Services

HealthCheck: TypeAlias = Callable[[], Awaitable[dict[str, Any]]]


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
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.services)


Info: TypeAlias = strawberry.Info[Context, None]
