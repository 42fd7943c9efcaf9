"""Rate limits per API token: requests and submitted work per time window.

`RateLimiter` is the plug-in point: `MemoryRateLimiter` for the embedded server (one
process), `RedisRateLimiter` for a team (every API process shares the counters; keys
from `workers.constants.rate_key`). Both count fixed windows and never count a refused
hit, so a client that waits `retry_after` seconds gets through again. A refusal is a
`RateLimitedError` carrying that wait, which the API answers with RATE_LIMITED and
`retryAfter`.

`RedisRateLimiter` takes single hits against a large budget (the request budget) from
Redis in batches: one script call reserves up to `batch_max` hits (at most 1/100 of the
limit) for this process and the next ones are counted locally. The limit is never
exceeded across processes; the approximation is that hits a process reserved but has not
used yet count as spent, so a client spread over P processes may be refused up to
P x (batch - 1) hits early in a window (at most P% of its limit). Budgets under 200 and
hits costing more than one are counted in Redis one by one, exactly.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

from workers.constants import rate_key

__all__ = [
    "MemoryRateLimiter",
    "RateDecision",
    "RateLimitedError",
    "RateLimiter",
    "RateLimits",
    "RedisRateLimiter",
]


@dataclass(frozen=True)
class RateLimits:
    """Per-token budgets per `window_s` (settings: BT_RATE_LIMIT_*)."""

    requests: int = 600
    """GraphQL operations (each root field of an HTTP request counts once per request)."""
    runs: int = 60
    """Runs submitted (starting an optimization counts as one)."""
    trials: int = 1_000_000
    """Optimization trials submitted (an optimization costs its trial count)."""
    window_s: float = 60.0


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    count: int
    limit: int
    retry_after: float
    """Seconds until the window resets (0 when allowed)."""


class RateLimitedError(Exception):
    """Too many requests or runs for one token: try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float, *, limit: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = max(1, math.ceil(retry_after))
        self.limit = limit


class RateLimiter(Protocol):
    async def hit(
        self, kind: str, subject: str, *, limit: int, window_s: float, cost: int = 1
    ) -> RateDecision:
        """Count `cost` against `subject`'s `kind` budget unless that would exceed `limit`."""
        ...

    async def close(self) -> None: ...


def _window(window_s: float, now: float) -> tuple[int, float]:
    index = int(now // window_s)
    return index, (index + 1) * window_s - now


class MemoryRateLimiter:
    """Counters in this process (embedded deployment)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}
        self._lock = asyncio.Lock()

    async def hit(
        self, kind: str, subject: str, *, limit: int, window_s: float, cost: int = 1
    ) -> RateDecision:
        index, left = _window(window_s, time.time())
        async with self._lock:
            key = (kind, subject)
            window, count = self._counts.get(key, (index, 0))
            if window != index:
                count = 0
            if count + cost > limit:
                return RateDecision(False, count, limit, left)
            self._counts[key] = (index, count + cost)
            if len(self._counts) > 10_000:  # forget finished windows now and then
                self._counts = {k: v for k, v in self._counts.items() if v[0] == index}
        return RateDecision(True, count + cost, limit, 0.0)

    async def close(self) -> None:
        self._counts.clear()


# Atomic check-and-add: a refused hit leaves the counter alone.
_HIT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[1])
if current + cost > tonumber(ARGV[2]) then
  return {0, current}
end
current = redis.call('INCRBY', KEYS[1], cost)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, current}
"""


# Reserve up to ARGV[1] hits at once, as many as the limit leaves; none left: refused.
_RESERVE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - current)
if grant < 1 then
  return {0, current}
end
current = redis.call('INCRBY', KEYS[1], grant)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {grant, current}
"""

BATCH_MAX = 50
"""Most single hits one Redis call reserves for a process (`RedisRateLimiter`)."""
BATCH_SHARE = 100
"""A batch is at most 1/BATCH_SHARE of the limit (so limits under 200 are exact)."""


@dataclass
class _Batch:
    key: str
    """The Redis counter (of one window) the hits were reserved from."""
    left: int
    counted: int
    """The counter's value right after the reservation."""


class RedisRateLimiter:
    """Counters in Redis, shared by every API process of a team deployment."""

    def __init__(self, redis: Any, *, batch_max: int = BATCH_MAX) -> None:
        self.redis = redis
        self.batch_max = batch_max
        self._script = redis.register_script(_HIT)
        self._reserve = redis.register_script(_RESERVE)
        self._batches: dict[tuple[str, str], _Batch] = {}
        self._reserving: dict[tuple[str, str], asyncio.Future[None]] = {}

    async def hit(
        self, kind: str, subject: str, *, limit: int, window_s: float, cost: int = 1
    ) -> RateDecision:
        index, left = _window(window_s, time.time())
        key = f"{rate_key(kind, subject)}:{index}"
        ttl_ms = math.ceil((left + 1) * 1000)
        batch = min(self.batch_max, limit // BATCH_SHARE) if cost == 1 else 1
        if batch > 1:
            return await self._hit_batched((kind, subject), key, batch, limit, left, ttl_ms)
        allowed, count = await self._script(keys=[key], args=[cost, limit, ttl_ms])
        if int(allowed):
            return RateDecision(True, int(count), limit, 0.0)
        return RateDecision(False, int(count), limit, left)

    async def _hit_batched(
        self, slot: tuple[str, str], key: str, batch: int, limit: int, left: float, ttl_ms: int
    ) -> RateDecision:
        while True:
            held = self._batches.get(slot)
            if held is not None and held.key == key and held.left > 0:
                held.left -= 1
                return RateDecision(True, held.counted - held.left, limit, 0.0)
            pending = self._reserving.get(slot)
            if pending is None:
                break
            await asyncio.shield(pending)  # a reservation is under way: share it
        done = self._reserving[slot] = asyncio.get_running_loop().create_future()
        try:
            granted, count = await self._reserve(keys=[key], args=[batch, limit, ttl_ms])
        finally:
            del self._reserving[slot]
            done.set_result(None)
        if not int(granted):
            self._batches.pop(slot, None)
            return RateDecision(False, int(count), limit, left)
        if len(self._batches) > 10_000:  # forget the batches of idle tokens now and then
            self._batches.clear()
        self._batches[slot] = _Batch(key, int(granted) - 1, int(count))
        return RateDecision(True, int(count) - int(granted) + 1, limit, 0.0)

    async def close(self) -> None:
        self._batches.clear()
