"""Authentication at the edge: who a request or websocket is, and whether it may listen at all.

`Authenticator.identify` turns an `Authorization: Bearer <token>` header (or the same in
a websocket's `connection_init` payload) into a `store.auth.Principal`. With no users in
the database the server runs as the single local user without login, but only for
clients on this machine; `check_bind` refuses to start on a non-loopback address until
a user exists. Tokens are checked against the database on every request, so a revoked
one stops working at once; open subscriptions re-check theirs (`still_valid`, cached for
`check_ttl_s`) about every second.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from app.settings import Settings, is_loopback
from store.auth import LOCAL_PRINCIPAL, AuthError, Principal, authenticate, has_users, token_active
from store.db import Database

__all__ = [
    "Authenticator",
    "BindRefused",
    "bearer_token",
    "bind_refusal",
    "check_bind",
    "token_from_params",
]

NO_USERS_REMOTE = (
    "this server has no users configured, so it only answers clients on its own machine; "
    "create a user and a token (`backtester user add NAME --admin`, then `backtester token "
    "create --user NAME --scope admin`) and send it as 'Authorization: Bearer <token>'"
)


class BindRefused(RuntimeError):
    """Serving on a non-loopback address without any user configured."""


def bind_refusal(host: str) -> str:
    return (
        f"refusing to serve on {host} without authentication: no users are configured. "
        "Create one with `backtester user add NAME --admin` and a token with `backtester token "
        "create --user NAME --scope admin` (then send 'Authorization: Bearer <token>'), or bind "
        "to 127.0.0.1"
    )


async def check_bind(settings: Settings, db: Database) -> None:
    """BindRefused when the server would listen beyond this machine with no users."""
    if settings.loopback:
        return
    try:
        configured = await has_users(db)
    except Exception as exc:  # no users table yet: not migrated
        raise BindRefused(bind_refusal(settings.host) + f" (could not read users: {type(exc).__name__}; "
                          "run `backtester migrate` first)") from None
    if not configured:
        raise BindRefused(bind_refusal(settings.host))


def bearer_token(value: object) -> str | None:
    """The token of an `Authorization` value: `Bearer <token>` (or the bare token)."""
    if not isinstance(value, str) or not value.strip():
        return None
    scheme, _, rest = value.strip().partition(" ")
    if not rest:
        return scheme
    return rest.strip() if scheme.lower() == "bearer" else None


def token_from_params(params: Mapping[str, Any] | None) -> str | None:
    """A websocket's token: `Authorization` (any case) or `token` in connection_init."""
    for key, value in (params or {}).items():
        if isinstance(key, str) and key.lower() in ("authorization", "token"):
            return bearer_token(value)
    return None


class Authenticator:
    """Identifies callers against the database of one stack."""

    def __init__(self, db: Database, *, check_ttl_s: float = 0.5, users_ttl_s: float = 1.0) -> None:
        self.db = db
        self.check_ttl_s = check_ttl_s
        self.users_ttl_s = users_ttl_s
        self._users = False
        self._users_at = float("-inf")
        self._active: dict[str, tuple[float, bool]] = {}

    async def users_configured(self) -> bool:
        """Whether any user exists (then every request needs a token). Users are never
        removed, so a yes is kept; a no is re-read at most every `users_ttl_s`."""
        if self._users:
            return True
        now = time.monotonic()
        if now - self._users_at >= self.users_ttl_s:
            self._users, self._users_at = await has_users(self.db), now
        return self._users

    async def identify(self, token: str | None, client_host: str | None) -> tuple[Principal | None, str | None]:
        """(principal, None), or (None, why) for a refused token, or (None, None) anonymous."""
        if token:
            try:
                return await authenticate(self.db, token), None
            except AuthError as exc:
                return None, exc.message
        if await self.users_configured():
            return None, None
        if client_host is not None and not is_loopback(client_host):
            return None, NO_USERS_REMOTE
        return LOCAL_PRINCIPAL, None

    async def still_valid(self, principal: Principal) -> bool:
        """Whether the principal's token still works (cached for `check_ttl_s`)."""
        if principal.token_id is None:
            return True
        now = time.monotonic()
        cached = self._active.get(principal.token_id)
        if cached is not None and now - cached[0] < self.check_ttl_s:
            return cached[1]
        valid = await token_active(self.db, principal.token_id)
        if len(self._active) > 10_000:
            self._active.clear()
        self._active[principal.token_id] = (now, valid)
        return valid
