"""The async database handle (`Database`) and programmatic alembic migrations.

One code path for PostgreSQL (asyncpg) and SQLite (aiosqlite). SQLite connections
get WAL, a busy timeout and foreign keys, so the embedded server and its worker
threads can share one file.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from store import jsoncodec

__all__ = [
    "MIGRATIONS_DIR",
    "Database",
    "alembic_config",
    "async_url",
    "create_engine_for",
    "run_migrations",
]

MIGRATIONS_DIR = Path(importlib.util.find_spec("migrations").origin).parent  # type: ignore[union-attr, arg-type]
SQLITE_BUSY_TIMEOUT_MS = 30_000
IDLE_PING_S = 5.0
"""A pooled PostgreSQL connection idle this long is pinged before it is handed out (a
restart, a failover or a firewall may have closed it). One used moments ago is not:
SQLAlchemy's `pool_pre_ping` pings every checkout, three round trips (BEGIN, `;`,
ROLLBACK) that cost about a sixth of a small API request."""

Dialect = Literal["postgresql", "sqlite"]


def async_url(url: str | URL) -> URL:
    """The async-driver form of a database URL: postgresql:// -> postgresql+asyncpg://,
    sqlite:/// -> sqlite+aiosqlite:///; others are returned unchanged."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        return u.set(drivername="postgresql+asyncpg")
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        return u.set(drivername="sqlite+aiosqlite")
    return u


def _dialect_of(url: URL) -> Dialect:
    name = url.get_backend_name()
    if name == "postgresql":
        return "postgresql"
    if name == "sqlite":
        return "sqlite"
    raise ValueError(
        f"unsupported database {url.render_as_string(hide_password=True)!r}: "
        "use postgresql+asyncpg://... or sqlite+aiosqlite:///path"
    )


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _mark_idle(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Pool checkout hook: ping a connection that sat idle (a fresh one has no mark);
    a dead one invalidates the pool, like `pool_pre_ping`, and the pool reconnects."""
    since = record.info.get("idle_since")
    if since is None or time.monotonic() - since < IDLE_PING_S:
        return
    try:
        dbapi_connection.ping()
    except Exception as exc:
        raise InvalidatePoolError(f"idle connection failed its ping: {exc}") from exc


def _is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_engine_for(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An AsyncEngine with this project's per-dialect settings (used by alembic too)."""
    u = async_url(url)
    dialect = _dialect_of(u)
    opts: dict[str, Any] = dict(kwargs)
    opts.setdefault("json_serializer", jsoncodec.dumps)
    opts.setdefault("json_deserializer", jsoncodec.loads)
    if dialect == "sqlite":
        opts.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        if _is_memory_sqlite(u):
            opts.setdefault("poolclass", StaticPool)  # one shared in-memory database
        elif u.database:
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(u, **opts)
    if dialect == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    elif not opts.get("pool_pre_ping"):
        event.listen(engine.sync_engine, "checkin", _mark_idle)
        event.listen(engine.sync_engine, "checkout", _ping_if_idle)
    return engine


class Database:
    """An async engine plus session factories: `session()` (a transaction, committed on
    success) and `read()` (single-statement reads without a transaction)."""

    def __init__(self, url: str | URL, **engine_kwargs: Any) -> None:
        self.url = async_url(url)
        self.dialect: Dialect = _dialect_of(self.url)
        self.engine: AsyncEngine = create_engine_for(self.url, **engine_kwargs)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # PostgreSQL reads without BEGIN/COMMIT: asyncpg in autocommit mode (the same pool;
        # the level is a client-side flag of each checkout, reset on checkin, no round trip).
        # SQLite reads as before: its driver opens no transaction for a SELECT.
        reader = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql" else self.engine
        )
        self._reads = async_sessionmaker(reader, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed when the block succeeds, else rolled back."""
        async with self._sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for one read statement, outside any transaction: on PostgreSQL it
        saves the BEGIN and COMMIT round trips (~20% of a small API request's read).

        Reads only: each statement runs on its own (autocommit), so several statements
        do not see one snapshot, and a write would not wait for a commit. Use
        `session()` for writes and for reads that must agree with each other.
        """
        async with self._reads() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"


def alembic_config(url: str | URL) -> Any:
    """An alembic `Config` for our migrations folder, no alembic.ini needed."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not an ini option: passwords with '%' would break configparser.
    cfg.attributes["database_url"] = async_url(url)
    return cfg


def run_migrations(url: str | URL, revision: str = "head") -> None:
    """Upgrade the database to `revision` (sync; call it in a thread from async code)."""
    from alembic import command

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("run_migrations is synchronous: call it via asyncio.to_thread")
    command.upgrade(alembic_config(url), revision)
