"""Identities: users, API tokens and the `Principal` a request acts as.

A token is `bt_<id>_<secret>`: the id finds the row, the secret (32 random bytes) is
checked against the sha256 stored there in constant time, and only that hash is kept;
the token itself is shown once, when created. Scopes nest: `admin` implies `run`,
which implies `read`. A token stops working the moment it is revoked or expires:
`revoke_token` tells this process's `on_revocation` hooks and, on PostgreSQL, every
process that `follow_revocations` (NOTIFY on `REVOCATION_CHANNEL`, sent at commit), so
servers may cache a verified token while they hear about revocations.
An admin user's token with the `admin` scope sees every row; any other token sees its
user's rows and the ones shared with the team.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from store.db import Database
from store.errors import BadInputError, ConflictError, NotFoundError, StoreError
from store.models import TokenRow, UserRow, utcnow
from store.notify import listen
from store.scope import SYSTEM, Scope

__all__ = [
    "LOCAL_PRINCIPAL",
    "REVOCATION_CHANNEL",
    "SCOPES",
    "AuthError",
    "IssuedToken",
    "Principal",
    "authenticate",
    "create_token",
    "create_user",
    "describe_token",
    "expand_scopes",
    "follow_revocations",
    "get_user",
    "has_users",
    "hash_token",
    "list_tokens",
    "list_users",
    "on_revocation",
    "parse_duration",
    "revoke_token",
    "token_active",
]

SCOPES = ("read", "run", "admin")
log = logging.getLogger("backtester.auth")

_IMPLIES = {"read": {"read"}, "run": {"read", "run"}, "admin": {"read", "run", "admin"}}
_TOKEN = re.compile(r"^bt_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class AuthError(StoreError):
    """A presented token is malformed, unknown, revoked or expired (UNAUTHENTICATED)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a user through one token, or the embedded local user."""

    user_id: int | None
    name: str
    admin: bool
    scopes: frozenset[str]
    token_id: str | None = None
    expires_at: datetime | None = None
    local: bool = False

    @property
    def scope(self) -> Scope:
        """The ownership scope of store queries made for this principal."""
        if self.local:
            return Scope.local()
        assert self.user_id is not None
        return Scope.user(self.user_id, admin=self.admin, name=self.name, token_id=self.token_id)

    def allows(self, needed: str) -> bool:
        return needed in self.scopes


LOCAL_PRINCIPAL = Principal(None, "local", True, frozenset(SCOPES), local=True)
"""The single user of an embedded server on loopback with no users configured."""


@dataclass(frozen=True)
class IssuedToken:
    """A new token: `secret` is the whole token, shown once and never stored."""

    row: TokenRow
    user: UserRow
    secret: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def expand_scopes(scopes: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    """Every scope the given ones imply; BadInputError for an unknown name."""
    out: set[str] = set()
    for name in scopes:
        if name not in _IMPLIES:
            raise BadInputError("scope", f"unknown scope {name!r}: use {', '.join(SCOPES)}")
        out |= _IMPLIES[name]
    return frozenset(out)


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w`, `45s` as a timedelta (BadInputError otherwise)."""
    match = _DURATION.match(text or "")
    if not match or int(match.group(1)) <= 0:
        raise BadInputError("expires", f"invalid duration {text!r}: use e.g. 30d, 12h, 90m or 2w")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


async def has_users(db: Database) -> bool:
    """Whether authentication is configured (any user exists)."""
    async with db.session() as s:
        return (await s.execute(select(func.count(UserRow.id)))).scalar_one() > 0


async def create_user(db: Database, name: str, *, admin: bool = False) -> UserRow:
    if not _NAME.match(name or ""):
        raise BadInputError("name", f"invalid user name {name!r}: letters, digits and . _ @ - only")
    async with db.session() as s:
        if (await s.execute(select(UserRow.id).where(UserRow.name == name))).first() is not None:
            raise ConflictError(f"user {name!r} exists already")
        row = UserRow(name=name, is_admin=bool(admin), created_at=utcnow())
        s.add(row)
    return row


async def get_user(db: Database, name: str) -> UserRow:
    async with db.session() as s:
        row = (await s.execute(select(UserRow).where(UserRow.name == name))).scalar_one_or_none()
    if row is None:
        raise NotFoundError("user", name)
    return row


async def list_users(db: Database) -> list[UserRow]:
    async with db.session() as s:
        return list((await s.execute(select(UserRow).order_by(UserRow.id))).scalars())


async def create_token(
    db: Database,
    user: str,
    scopes: list[str] | tuple[str, ...],
    *,
    expires_in: timedelta | None = None,
    note: str | None = None,
) -> IssuedToken:
    """A new token for `user`; only admin users may hold the `admin` scope."""
    owner = await get_user(db, user)
    granted = expand_scopes(list(scopes or ["read"]))
    wanted = sorted(set(scopes or ["read"]), key=SCOPES.index)
    if "admin" in granted and not owner.is_admin:
        raise BadInputError("scope", f"user {user!r} is not an admin: add it with --admin first")
    token_id = secrets.token_hex(6)
    secret = f"bt_{token_id}_{secrets.token_urlsafe(32)}"
    now = utcnow()
    row = TokenRow(
        id=token_id,
        user_id=owner.id,
        token_hash=hash_token(secret),
        scopes=wanted,
        note=(note or None) and note[:200],
        created_at=now,
        expires_at=None if expires_in is None else now + expires_in,
    )
    async with db.session() as s:
        s.add(row)
    return IssuedToken(row, owner, secret)


async def revoke_token(db: Database, token_id: str, *, scope: Scope = SYSTEM) -> TokenRow:
    """Revoke a token now (idempotent); a scope only reaches its own user's tokens.
    Every process caching it hears of it before this returns (PostgreSQL: NOTIFY, sent
    with the commit; this process: its `on_revocation` hooks)."""
    async with db.session() as s:
        row = await s.get(TokenRow, str(token_id))
        if row is None or not (scope.admin or row.user_id == scope.user_id) or scope.nobody:
            raise NotFoundError("token", token_id)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        if db.dialect == "postgresql":
            await s.execute(select(func.pg_notify(REVOCATION_CHANNEL, row.id)))
    for hook in list(_revocation_hooks):
        try:
            hook(row.id)
        except Exception:  # a hook's failure must not undo a committed revocation
            log.exception("revocation hook failed")
    return row


REVOCATION_CHANNEL = "bt_token_revoked"
"""PostgreSQL NOTIFY channel: the payload is a revoked token's id."""
_revocation_hooks: list[Callable[[str], None]] = []


def on_revocation(hook: Callable[[str], None]) -> Callable[[], None]:
    """Call `hook(token_id)` when this process revokes a token; returns the un-register."""
    _revocation_hooks.append(hook)

    def remove() -> None:
        with contextlib.suppress(ValueError):
            _revocation_hooks.remove(hook)

    return remove


async def follow_revocations(
    db: Database, on_revoked: Callable[[str], None], on_live: Callable[[bool], None],
    *, ping_s: float = 5.0,
) -> None:
    """LISTEN for revoked token ids on PostgreSQL until cancelled (returns at once on
    SQLite, whose one process hears `on_revocation`). `on_live(True)` once listening,
    `on_live(False)` as soon as the connection is lost (it reconnects by itself): only
    while live may a caller trust what it cached."""
    await listen(db, REVOCATION_CHANNEL, on_revoked, on_live, ping_s=ping_s,
                 what="token revocation feed")


async def list_tokens(
    db: Database, *, scope: Scope = SYSTEM, user: str | None = None
) -> list[tuple[TokenRow, str]]:
    """(token, user name) pairs, newest first; a scope sees its own user's tokens only."""
    q = select(TokenRow, UserRow.name).join(UserRow, UserRow.id == TokenRow.user_id)
    if scope.nobody:
        return []
    if not scope.admin:
        q = q.where(TokenRow.user_id == scope.user_id)
    if user is not None:
        q = q.where(UserRow.name == user)
    async with db.session() as s:
        return [(t, n) for t, n in (await s.execute(q.order_by(TokenRow.created_at.desc())))]


def _usable(row: TokenRow, now: datetime) -> str | None:
    if row.revoked_at is not None:
        return "this API token was revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "this API token has expired"
    return None


async def authenticate(db: Database, token: str, *, touch_after_s: float = 60.0) -> Principal:
    """The principal of a presented token, or AuthError saying what is wrong with it."""
    match = _TOKEN.match((token or "").strip())
    if match is None:
        raise AuthError("malformed API token: expected bt_<id>_<secret>")
    now = utcnow()
    async with db.read() as s:
        found = (
            await s.execute(
                select(TokenRow, UserRow).join(UserRow, UserRow.id == TokenRow.user_id)
                .where(TokenRow.id == match.group(1))
            )
        ).first()
    # Compare even when the id is unknown, so timing does not tell ids apart.
    expected = found[0].token_hash if found is not None else hash_token("unknown")
    if not hmac.compare_digest(expected, hash_token(match.group(0))) or found is None:
        raise AuthError("unknown API token")
    row, user = found
    if (why := _usable(row, now)) is not None:
        raise AuthError(why)
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > touch_after_s:
        async with db.session() as s:
            await s.execute(update(TokenRow).where(TokenRow.id == row.id).values(last_used_at=now))
    scopes = expand_scopes(row.scopes or [])
    if not user.is_admin:
        scopes -= {"admin"}
    return Principal(
        user_id=user.id,
        name=user.name,
        admin=user.is_admin and "admin" in scopes,
        scopes=scopes,
        token_id=row.id,
        expires_at=row.expires_at,
    )


async def token_active(db: Database, token_id: str) -> bool:
    """Whether a token still works (not revoked, not expired): open subscriptions re-check."""
    async with db.read() as s:
        row = await s.get(TokenRow, token_id)
    return row is not None and _usable(row, utcnow()) is None


def describe_token(row: TokenRow, user: str) -> dict[str, Any]:
    """A token's public facts (never its hash)."""
    return {
        "id": row.id, "user": user, "scopes": list(row.scopes or []), "note": row.note,
        "created_at": row.created_at, "expires_at": row.expires_at,
        "revoked_at": row.revoked_at, "last_used_at": row.last_used_at,
    }
