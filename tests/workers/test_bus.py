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
