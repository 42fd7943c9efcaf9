"""Authentication at the edge: who a request or websocket is, and whether it may listen at all.

`Authenticator.identify` turns an `Authorization: Bearer <token>` header (or the same in
a websocket's `connection_init` payload) into a `store.auth.Principal`. With no users in
the database the server runs as the single local user without login, but only for
clients on this machine; `check_bind` refuses to start on a non-loopback address until
a user exists. A verified token is cached for a second, only while revocations are
heard (PostgreSQL LISTEN, or this process's own), so a revoked one stops working at
once; open subscriptions are ended by the revocation, or by a re-check every second per
token (`Authenticator.watch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from app.settings import Settings, is_loopback
from store.auth import (
    LOCAL_PRINCIPAL,
    AuthError,
    Principal,
    authenticate,
    follow_revocations,
    has_users,
    hash_token,
    on_revocation,
    token_active,
)
from store.db import Database
from store.models import utcnow

__all__ = [
    "Authenticator",
    "BindRefused",
    "bearer_token",
    "bind_refusal",
    "check_bind",
    "token_from_params",
]

log = logging.getLogger("backtester.auth")

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
    """Identifies callers against the database of one stack.

    A verified token's principal is cached for `cache_ttl_s`, but only while the
    revocation feed is live (`store.auth.follow_revocations`; this process's own
    revocations arrive through `store.auth.on_revocation`): a revocation anywhere drops
    it at once, and without the feed every request reads the database as before. Open
    subscriptions `watch` their token: one re-check per token every `recheck_s`, shared
    by all its subscriptions, and revocations end them the moment they are heard.
    """

    def __init__(
        self, db: Database, *, cache_ttl_s: float = 1.0, check_ttl_s: float = 0.5,
        users_ttl_s: float = 1.0, recheck_s: float = 1.0,
    ) -> None:
        self.db = db
        self.cache_ttl_s = cache_ttl_s
        self.check_ttl_s = check_ttl_s
        self.users_ttl_s = users_ttl_s
        self.recheck_s = recheck_s
        self._users = False
        self._users_at = float("-inf")
        self._principals: dict[str, tuple[float, Principal]] = {}
        self._active: dict[str, tuple[float, bool]] = {}
        self._checks: dict[str, asyncio.Future[bool]] = {}
        self._verifying: dict[str, asyncio.Future[tuple[Principal | None, str | None]]] = {}
        self._revoked: set[str] = set()
        self._generation = 0
        """Bumped by every revocation and feed change: a read that straddles one is not cached."""
        self._live = False
        self._watchers: dict[str, dict[int, tuple[Principal, Callable[[], None]]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._unhook: Callable[[], None] | None = None

    @property
    def caching(self) -> bool:
        """Whether verified tokens are cached now (the revocation feed is live)."""
        return self._live

    async def start(self) -> None:
        """Follow revocations (PostgreSQL) and re-check watched tokens; `close` stops it."""
        if self._unhook is None:
            self._unhook = on_revocation(self.revoked)
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(follow_revocations(self.db, self.revoked, self._feed),
                                    name="token-revocations"),
                asyncio.create_task(self._recheck_loop(), name="token-recheck"),
            ]

    async def close(self) -> None:
        if self._unhook is not None:
            self._unhook()
            self._unhook = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks = []
        self._feed(False)

    def _feed(self, live: bool) -> None:
        self._live = live
        self._generation += 1
        if not live:
            self._principals.clear()

    def revoked(self, token_id: str) -> None:
        """A token was revoked (here or in another process): forget it, end its subscriptions."""
        self._generation += 1
        if len(self._revoked) > 100_000:
            self._revoked.clear()
        self._revoked.add(token_id)
        self._active[token_id] = (time.monotonic(), False)
        for key in [k for k, (_, p) in self._principals.items() if p.token_id == token_id]:
            del self._principals[key]
        self._end_watchers(token_id)

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
            return await self._verify(token)
        if await self.users_configured():
            return None, None
        if client_host is not None and not is_loopback(client_host):
            return None, NO_USERS_REMOTE
        return LOCAL_PRINCIPAL, None

    async def _verify(self, token: str) -> tuple[Principal | None, str | None]:
        key = hash_token(token)
        if not self._live:
            return await self._authenticate(key, token)
        hit = self._principals.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.cache_ttl_s and not _expired(hit[1]):
            return hit[1], None
        # Concurrent requests with one expired entry read the database once, not each.
        pending = self._verifying.get(key)
        if pending is None:
            pending = self._verifying[key] = asyncio.ensure_future(self._authenticate(key, token))
            pending.add_done_callback(lambda f, k=key: self._settled(self._verifying, k, f))
        return await asyncio.shield(pending)

    async def _authenticate(self, key: str, token: str) -> tuple[Principal | None, str | None]:
        generation, now = self._generation, time.monotonic()
        try:
            principal = await authenticate(self.db, token)
        except AuthError as exc:
            return None, exc.message
        if self._live and generation == self._generation and principal.token_id not in self._revoked:
            if len(self._principals) > 10_000:
                self._principals.clear()
            self._principals[key] = (now, principal)
        return principal, None

    async def still_valid(self, principal: Principal) -> bool:
        """Whether the principal's token still works: one database read per token per
        `check_ttl_s` (`cache_ttl_s` while the revocation feed is live), however many ask."""
        token_id = principal.token_id
        if token_id is None:
            return True
        if token_id in self._revoked or _expired(principal):
            return False
        cached = self._active.get(token_id)
        ttl = self.cache_ttl_s if self._live else self.check_ttl_s
        if cached is not None and time.monotonic() - cached[0] < ttl:
            return cached[1]
        pending = self._checks.get(token_id)
        if pending is None:
            pending = self._checks[token_id] = asyncio.ensure_future(self._check(token_id))
            pending.add_done_callback(lambda f, k=token_id: self._settled(self._checks, k, f))
        return await asyncio.shield(pending)

    @staticmethod
    def _settled(pending: dict[str, Any], key: str, future: asyncio.Future[Any]) -> None:
        """A shared read is done: forget it (the next caller reads again), and mark its
        error seen (each waiter got it; a read nobody awaits any more must not warn)."""
        if pending.get(key) is future:
            del pending[key]
        if not future.cancelled():
            future.exception()

    async def _check(self, token_id: str) -> bool:
        generation, now = self._generation, time.monotonic()
        valid = await token_active(self.db, token_id) and token_id not in self._revoked
        if generation == self._generation or not valid:
            if len(self._active) > 10_000:
                self._active.clear()
            self._active[token_id] = (now, valid)
        return valid

    def watch(self, principal: Principal, on_end: Callable[[], None]) -> Callable[[], None]:
        """Call `on_end()` once the principal's token is revoked or expires (checked every
        `recheck_s` per token, and at once on a revocation); returns the un-watch."""
        token_id = principal.token_id
        if token_id is None:
            return _nothing
        watchers = self._watchers.setdefault(token_id, {})
        key = id(on_end)
        watchers[key] = (principal, on_end)
        if token_id in self._revoked:
            self._end_watchers(token_id)

        def unwatch() -> None:
            found = self._watchers.get(token_id)
            if found is not None:
                found.pop(key, None)
                if not found:
                    del self._watchers[token_id]

        return unwatch

    def _end_watchers(self, token_id: str) -> None:
        for _, on_end in list(self._watchers.pop(token_id, {}).values()):
            try:
                on_end()
            except Exception:
                log.exception("ending a subscription of a revoked token failed")

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_s)
            for token_id, watchers in list(self._watchers.items()):
                principal = next(iter(watchers.values()))[0]
                try:
                    valid = await self.still_valid(principal)
                except Exception as exc:  # the database is away: keep them, try again
                    log.warning("could not re-check token %s (%s)", token_id, exc)
                    continue
                if not valid:
                    self._end_watchers(token_id)


def _expired(principal: Principal) -> bool:
    return principal.expires_at is not None and principal.expires_at <= utcnow()


def _nothing() -> None:
    pass
