"""The real services the suite depends on are reachable and isolated per test."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


async def test_postgres_database_is_fresh_and_writable(pg_url: str) -> None:
    engine = create_async_engine(pg_url)
    try:
        async with engine.begin() as conn:
            tables = (await conn.execute(text(
                "select count(*) from information_schema.tables where table_schema='public'"
            ))).scalar_one()
            assert tables == 0
            await conn.execute(text("create table t (x int)"))
            await conn.execute(text("insert into t values (41), (1)"))
            assert (await conn.execute(text("select sum(x) from t"))).scalar_one() == 42
    finally:
        await engine.dispose()


async def test_redis_pubsub_roundtrip(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        pubsub = client.pubsub()
        await pubsub.subscribe("bt:test:probe")
        await client.publish("bt:test:probe", "hello")
        msg = None
        for _ in range(50):
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if msg:
                break
            await asyncio.sleep(0.01)
        assert msg is not None and msg["data"] == b"hello"
        await pubsub.aclose()
    finally:
        await client.aclose()
