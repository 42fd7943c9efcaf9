"""`app.auth.Authenticator`: verified tokens are cached only while revocations are heard.

On PostgreSQL it LISTENs for revoked token ids: a NOTIFY from anywhere (another server,
the CLI) drops a cached token at once and ends its subscriptions; while the feed is down
every request reads the database again. Re-checks of open subscriptions are one read per
token, not per subscription.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import event

from app.auth import Authenticator
from store import auth
from store.db import Database, run_migrations


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[Database]:
    await asyncio.to_thread(run_migrations, pg_url)
    db = Database(pg_url)
    try:
        yield db
    finally:
        await db.dispose()


def count_queries(db: Database) -> list[str]:
    seen: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: seen.append(statement))
    return seen


async def until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def raw_dsn(db: Database) -> str:
    return db.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def test_cached_while_listening_and_dropped_by_a_notify_from_elsewhere(pg: Database) -> None:
    await auth.create_user(pg, "alice")
    issued = await auth.create_token(pg, "alice", ["read"])
    authn = Authenticator(pg, cache_ttl_s=30)
    await authn.start()
    try:
        await until(lambda: authn.caching)
        queries = count_queries(pg)
        first, _ = await authn.identify(issued.secret, "127.0.0.1")
        assert first is not None and first.name == "alice"
        reads = len(queries)
        assert reads > 0
        for _ in range(5):
            again, _ = await authn.identify(issued.secret, "127.0.0.1")
            assert again == first
        assert len(queries) == reads, "answered from the cache"
        wrong, why = await authn.identify(issued.secret[:-4] + "AAAA", "127.0.0.1")
        assert wrong is None and why == "unknown API token"  # the cache is keyed by the whole token

        # Revoked by another process: only the NOTIFY can tell this one (no local hook runs).
        async with pg.session() as s:
            row = await s.get(auth.TokenRow, issued.row.id)
            assert row is not None
            row.revoked_at = auth.utcnow()
        other = await asyncpg.connect(raw_dsn(pg))
        try:
            await other.execute("SELECT pg_notify($1, $2)", auth.REVOCATION_CHANNEL, issued.row.id)
        finally:
            await other.close()
        await until(lambda: issued.row.id in authn._revoked, 2.0)
        refused, why = await authn.identify(issued.secret, "127.0.0.1")
        assert refused is None and why == "this API token was revoked"
    finally:
        await authn.close()


async def test_no_cache_while_the_feed_is_down(pg: Database) -> None:
    await auth.create_user(pg, "bob")
    issued = await auth.create_token(pg, "bob", ["read"])
    authn = Authenticator(pg, cache_ttl_s=30)
    await authn.start()
    try:
        await until(lambda: authn.caching)
        assert (await authn.identify(issued.secret, None))[0] is not None
        admin = await asyncpg.connect(raw_dsn(pg))
        try:  # cut the LISTEN connection, as a PostgreSQL restart would
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'")
        finally:
            await admin.close()
        await until(lambda: not authn.caching, 6.0)
        queries = count_queries(pg)
        assert (await authn.identify(issued.secret, None))[0] is not None
        assert queries, "read from the database while revocations cannot be heard"
        await until(lambda: authn.caching, 10.0)  # it reconnects by itself
    finally:
        await authn.close()


async def test_one_recheck_per_token_and_revocation_ends_every_watch(pg: Database) -> None:
    await auth.create_user(pg, "carol")
    issued = await auth.create_token(pg, "carol", ["read"])
    authn = Authenticator(pg, recheck_s=0.2, cache_ttl_s=0.1, check_ttl_s=0.1)
    await authn.start()
    try:
        principal, _ = await authn.identify(issued.secret, None)
        assert principal is not None
        ended: list[int] = []
        unwatch = [authn.watch(principal, lambda i=i: ended.append(i)) for i in range(50)]
        queries = count_queries(pg)
        await asyncio.sleep(1.1)
        checks = [q for q in queries if "api_tokens" in q or "token" in q.lower()]
        assert 2 <= len(checks) <= 12, len(checks)  # ~5 intervals, not 50 watches x 5
        assert ended == []
        await auth.revoke_token(pg, issued.row.id)  # this process: the hook, at once
        assert sorted(ended) == list(range(50))
        assert not await authn.still_valid(principal)
        for stop in unwatch:
            stop()
    finally:
        await authn.close()
