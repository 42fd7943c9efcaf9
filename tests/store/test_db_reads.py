"""`Database.read()`: single-statement reads outside a transaction (no BEGIN/COMMIT on
PostgreSQL), on the same pool as `session()`, which stays transactional."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from store.db import Database


async def test_reads_run_outside_a_transaction_and_sessions_stay_transactional(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1, max_overflow=0)  # one connection: both share it
    try:
        async with db.session() as s:
            await s.execute(text("CREATE TABLE t (id int PRIMARY KEY, v text)"))
            await s.execute(text("INSERT INTO t VALUES (1, 'x')"))
        for _ in range(2):
            async with db.read() as s:
                # No transaction: each statement has its own now() and no transaction id.
                first = (await s.execute(text("SELECT now()"))).scalar_one()
                await asyncio.sleep(0.02)
                second = (await s.execute(text("SELECT now()"))).scalar_one()
                assert second > first
                assert (await s.execute(text("SELECT v FROM t WHERE id = 1"))).scalar_one() == "x"
            async with db.session() as s:  # the connection went back in transaction mode
                first = (await s.execute(text("SELECT now()"))).scalar_one()
                await asyncio.sleep(0.02)
                assert (await s.execute(text("SELECT now()"))).scalar_one() == first
                await s.execute(text("INSERT INTO t VALUES (2, 'y')"))
            async with db.session() as s:
                await s.execute(text("DELETE FROM t WHERE id = 2"))
        # A failed session still rolls back on the connection a read used before.
        try:
            async with db.session() as s:
                await s.execute(text("INSERT INTO t VALUES (3, 'z')"))
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        async with db.read() as s:
            assert (await s.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
    finally:
        await db.dispose()


async def test_reads_work_on_sqlite(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        async with db.session() as s:
            await s.execute(text("CREATE TABLE t (id integer PRIMARY KEY, v text)"))
            await s.execute(text("INSERT INTO t VALUES (1, 'x')"))
        async with db.read() as s:
            assert (await s.execute(text("SELECT v FROM t WHERE id = 1"))).scalar_one() == "x"
        async with db.session() as s:  # a read left no lock or open transaction behind
            await s.execute(text("INSERT INTO t VALUES (2, 'y')"))
        async with db.read() as s:
            assert (await s.execute(text("SELECT count(*) FROM t"))).scalar_one() == 2
    finally:
        await db.dispose()
