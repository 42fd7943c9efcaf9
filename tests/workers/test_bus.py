"""Both progress buses: run channels, the all-runs channel, timeouts, Redis restarts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.workers.servers import RedisServer
from workers.bus import InMemoryBus, ProgressBus, RedisBus


@pytest.fixture(params=["memory", "redis"])
async def bus(request) -> AsyncIterator[ProgressBus]:  # type: ignore[no-untyped-def]
    b: ProgressBus
    b = InMemoryBus() if request.param == "memory" else RedisBus(request.getfixturevalue("redis_url"))
    try:
        yield b
    finally:
        await b.close()


def ev(run_id: str, seq: int, kind: str = "progress") -> dict:
    return {"run_id": run_id, "seq": seq, "type": kind, "status": "RUNNING", "progress": 0.5,
            "stage": "simulating", "equity": [[1, 2.0]]}


async def test_run_and_all_channels(bus: ProgressBus) -> None:
    run_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    async with bus.subscribe(run_id) as sub, bus.subscribe_all() as everything:
        await bus.publish(run_id, ev(run_id, 1))
        await bus.publish(other, ev(other, 1))
        await bus.publish(run_id, ev(run_id, 2, "status"))
        await bus.publish(run_id, ev(run_id, 3, "terminal"))
        got = [await sub.get(2) for _ in range(3)]
        assert [(e["seq"], e["type"]) for e in got] == [(1, "progress"), (2, "status"), (3, "terminal")]
        assert got[0]["equity"] == [[1, 2.0]]
        assert await sub.get(0.1) is None  # a quiet channel times out, it does not end
        broadcast = [await everything.get(2) for _ in range(2)]
        assert [e["type"] for e in broadcast] == ["status", "terminal"]
        assert await everything.get(0.1) is None


async def test_iteration_ends_when_closed(bus: ProgressBus) -> None:
    run_id = str(uuid.uuid4())
    sub = bus.subscribe(run_id)
    await sub.start()
    await bus.publish(run_id, ev(run_id, 1))

    async def read() -> list[int]:
        return [e["seq"] async for e in sub]

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.3)
    await sub.aclose()
    assert await asyncio.wait_for(reader, 5) == [1]


async def test_redis_subscribers_survive_a_restart() -> None:
    server = RedisServer().start()
    bus = RedisBus(server.url)
    run_id = str(uuid.uuid4())
    try:
        async with bus.subscribe(run_id) as sub:
            await bus.publish(run_id, ev(run_id, 1))
            assert (await sub.get(2))["seq"] == 1
            server.kill()
            await bus.publish(run_id, ev(run_id, 2))  # lost, but never raises
            await asyncio.sleep(0.5)
            server.start()
            seen = None
            for seq in range(3, 60):  # until the subscription is back
                await bus.publish(run_id, ev(run_id, seq))
                seen = await sub.get(0.2)
                if seen is not None:
                    break
            assert seen is not None and seen["seq"] >= 3
    finally:
        await bus.close()
        server.kill()


async def test_redis_subscriptions_to_one_channel_share_a_connection(redis_url: str) -> None:
    """Followers of one run are one Redis subscriber: each event is received and decoded
    once per process, then copied to every follower (500 followers, bench/load_bench.py)."""
    import redis.asyncio as aioredis

    from workers.constants import run_channel

    bus = RedisBus(redis_url)
    admin = aioredis.Redis.from_url(redis_url)
    run_id = str(uuid.uuid4())

    async def redis_subscribers() -> int:
        return int((await admin.pubsub_numsub(run_channel(run_id)))[0][1])

    try:
        subs = [await bus.subscribe(run_id).start() for _ in range(50)]
        assert await redis_subscribers() == 1
        await bus.publish(run_id, ev(run_id, 1))
        got = [await sub.get(2) for sub in subs]
        assert all(event is not None and event["seq"] == 1 for event in got)
        got[0]["seq"] = 99  # each follower has its own copy
        assert got[1]["seq"] == 1  # type: ignore[index]
        for sub in subs[:-1]:
            await sub.aclose()
        await bus.publish(run_id, ev(run_id, 2))
        assert (await subs[-1].get(2))["seq"] == 2  # type: ignore[index]
        await subs[-1].aclose()  # the last one out unsubscribes
        async with asyncio.timeout(5):
            while await redis_subscribers():
                await asyncio.sleep(0.05)
        async with bus.subscribe(run_id) as again:  # and a new follower starts afresh
            await bus.publish(run_id, ev(run_id, 3))
            assert (await again.get(2))["seq"] == 3  # type: ignore[index]
    finally:
        await bus.close()
        await admin.aclose()
