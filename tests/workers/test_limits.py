"""Rate limiters: the in-memory one and the Redis one (real Redis) behave alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from workers.limits import MemoryRateLimiter, RateLimiter, RedisRateLimiter


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        yield RedisRateLimiter(client)
    finally:
        await client.aclose()


async def test_a_burst_is_cut_at_the_limit_and_recovers(limiter: RateLimiter) -> None:
    subject = uuid.uuid4().hex
    results = [await limiter.hit("requests", subject, limit=5, window_s=1.0) for _ in range(8)]
    assert [r.allowed for r in results] == [True] * 5 + [False] * 3
    refused = results[-1]
    assert refused.count == 5 and refused.limit == 5 and 0 < refused.retry_after <= 1.0
    # Other subjects and kinds have their own budgets; a refused hit was never counted.
    assert (await limiter.hit("requests", uuid.uuid4().hex, limit=5, window_s=1.0)).allowed
    assert (await limiter.hit("runs", subject, limit=5, window_s=1.0)).allowed
    await asyncio.sleep(refused.retry_after + 0.05)
    assert (await limiter.hit("requests", subject, limit=5, window_s=1.0)).allowed


async def test_costs_count_in_full_or_not_at_all(limiter: RateLimiter) -> None:
    subject = uuid.uuid4().hex
    assert (await limiter.hit("runs", subject, limit=10, window_s=60, cost=7)).allowed
    big = await limiter.hit("runs", subject, limit=10, window_s=60, cost=4)
    assert not big.allowed and big.count == 7
    assert (await limiter.hit("runs", subject, limit=10, window_s=60, cost=3)).count == 10
    await limiter.close()


async def test_trials_are_a_budget_of_their_own(limiter: RateLimiter) -> None:
    from workers.limits import RateLimits

    subject, trials = uuid.uuid4().hex, RateLimits().trials
    assert trials >= 10_000  # the default fits a 10,000-trial grid
    assert (await limiter.hit("runs", subject, limit=1, window_s=60)).allowed
    grid = await limiter.hit("trials", subject, limit=trials, window_s=60, cost=10_000)
    assert grid.allowed and grid.count == 10_000
    over = await limiter.hit("trials", subject, limit=trials, window_s=60, cost=trials)
    assert not over.allowed and over.count == 10_000 and over.retry_after > 0


async def test_batched_budget_holds_across_processes(redis_url: str) -> None:
    """Two API processes (two limiters on one Redis) share a large request budget: single
    hits are reserved in batches, yet together they never exceed the limit, and they are
    refused at most one unused batch per process early."""
    import redis.asyncio as aioredis

    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    try:
        a, b = (RedisRateLimiter(c, batch_max=10) for c in clients)
        subject, limit = uuid.uuid4().hex, 1000  # batches of 10 (1/100 of the limit)
        calls = 0
        script = a._reserve

        async def counted(*args: object, **kwargs: object) -> object:
            nonlocal calls
            calls += 1
            return await script(*args, **kwargs)

        a._reserve = counted  # type: ignore[method-assign]
        allowed = 0
        for i in range(1200):
            limiter = a if i % 3 else b
            allowed += (await limiter.hit("requests", subject, limit=limit, window_s=60)).allowed
            if i == 899:
                assert allowed == 900 and calls <= 61  # 600 hits of `a`: one Redis call per 10
        assert limit - 2 * 9 <= allowed <= limit
        refused = await b.hit("requests", subject, limit=limit, window_s=60)
        assert not refused.allowed and refused.count == limit and refused.retry_after > 0
        # Small budgets stay exact: every hit is counted in Redis.
        runs = [await (a if i % 2 else b).hit("runs", subject, limit=5, window_s=60) for i in range(7)]
        assert [r.allowed for r in runs] == [True] * 5 + [False] * 2
    finally:
        for c in clients:
            await c.aclose()
