"""`Database`: dialects, commit/rollback sessions, SQLite pragmas, URL checks."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from store.db import Database, run_migrations
from store.models import BlobRow, utcnow


async def test_dialect_names(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    assert db.dialect == "sqlite"
    await db.dispose()
    assert Database("postgresql+asyncpg://u@localhost/x").dialect == "postgresql"


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        Database("mysql+aiomysql://u@localhost/x")


async def test_sqlite_pragmas(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 30_000
    finally:
        await db.dispose()


async def test_session_commits_or_rolls_back(db: Database) -> None:
    async with db.session() as s:
        s.add(BlobRow(key="a", data=b"1", size=1, created_at=utcnow()))
    with pytest.raises(RuntimeError):
        async with db.session() as s:
            s.add(BlobRow(key="b", data=b"2", size=1, created_at=utcnow()))
            await s.flush()
            raise RuntimeError("boom")
    async with db.session() as s:
        assert await s.get(BlobRow, "a") is not None
        assert await s.get(BlobRow, "b") is None


async def test_datetimes_come_back_aware_utc(db: Database) -> None:
    now = utcnow()
    async with db.session() as s:
        s.add(BlobRow(key="t", data=b"", size=0, created_at=now))
    async with db.session() as s:
        row = await s.get(BlobRow, "t")
    assert row is not None and row.created_at == now and row.created_at.utcoffset().total_seconds() == 0


async def test_run_migrations_refuses_a_running_loop(sqlite_url: str) -> None:
    with pytest.raises(RuntimeError, match="to_thread"):
        run_migrations(sqlite_url)


async def test_postgres_connections_are_pinged_only_after_sitting_idle(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection used moments ago is handed out without a ping (three round trips per
    request saved); one idle for IDLE_PING_S is pinged, and if the server closed it, the
    pool reconnects instead of failing the request."""
    import asyncio

    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
    from sqlalchemy.pool import NullPool

    import store.db as db_module

    pings: list[int] = []
    ping = AsyncAdapt_asyncpg_connection.ping

    def counting_ping(self: AsyncAdapt_asyncpg_connection) -> None:
        pings.append(1)
        ping(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counting_ping)
    monkeypatch.setattr(db_module, "IDLE_PING_S", 0.3)
    db, admin = Database(pg_url), Database(pg_url, poolclass=NullPool)

    async def backend_pid() -> int:
        async with db.session() as s:
            return int((await s.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    try:
        pids = {await backend_pid() for _ in range(10)}
        assert len(pids) == 1 and pings == []  # busy: no pings at all
        await asyncio.sleep(0.4)
        [pid] = pids
        assert await backend_pid() == pid and len(pings) == 1  # idle: pinged, still alive
        async with admin.session() as s:  # the server drops the pooled connection
            await s.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.sleep(0.4)
        assert await backend_pid() != pid and len(pings) == 2  # found dead, replaced
    finally:
        await db.dispose()
        await admin.dispose()
