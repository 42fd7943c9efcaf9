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
