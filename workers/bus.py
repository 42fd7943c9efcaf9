"""The progress bus: run events from workers to subscribers (in memory, or Redis pub/sub).

The bus is for liveness only; the database holds every result. Publishing never raises
for a lost connection (it logs), and Redis subscriptions reconnect and resubscribe on
their own, so a Redis restart costs at most the events published while it was down.

Event dict: {"run_id", "seq", "type": "snapshot"|"progress"|"status"|"terminal",
"status", "progress", "stage", "equity": [[ts_ms, value], ...], "emitted_at" (epoch ms),
"metrics"?, "error"?}.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from workers.constants import ALL_RUNS_CHANNEL, KEY_PREFIX, run_channel

__all__ = [
    "COALESCE_AFTER",
    "InMemoryBus",
    "ProgressBus",
    "RedisBus",
    "Subscription",
    "channels_for",
    "coalesce",
    "prefixed",
]

log = logging.getLogger("backtester.bus")

Event = dict[str, Any]
_CLOSED: Any = object()
BROADCAST_TYPES = frozenset({"status", "terminal"})


def channels_for(run_id: str, event: Event) -> list[str]:
    """A run's own channel always; status and terminal events also go to the all-runs channel."""
    if event.get("type") in BROADCAST_TYPES:
        return [run_channel(run_id), ALL_RUNS_CHANNEL]
    return [run_channel(run_id)]


COALESCE_AFTER = 1
"""A follower with this many events unread has fallen behind: a new progress event is
merged into the newest unread progress event instead of queued behind it."""


def coalesce(older: Event, newer: Event) -> Event | None:
    """`newer` with `older`'s equity points in front and `older`'s `emitted_at` (the age
    of the oldest news in it), when both are progress events of one run; else None.
    Status and terminal events are never merged, and `seq` stays the newest."""
    if older.get("type") != "progress" or newer.get("type") != "progress":
        return None
    if older.get("run_id") != newer.get("run_id"):
        return None
    merged = dict(newer)
    merged["equity"] = list(older.get("equity") or ()) + list(newer.get("equity") or ())
    if older.get("emitted_at") is not None:
        merged["emitted_at"] = older["emitted_at"]
    return merged


class Subscription(AsyncIterator[Event]):
    """Events of one channel. Use `async with` to be subscribed before reading anything else.

    Iterate it, or call `get(timeout)` (None on timeout) to wait without ending the
    subscription. It never blocks publishers: a reader `COALESCE_AFTER` events behind has
    new progress merged into its newest unread one (`coalesce`), and past `max_buffer`
    the oldest buffered events are lost.
    """

    def __init__(self, channel: str, max_buffer: int = 1000) -> None:
        self.channel = channel
        self.max_buffer = max_buffer
        self._items: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._started = False
        self._closed = False

    async def _open(self) -> None:  # subclasses subscribe here
        pass

    async def _close(self) -> None:
        pass

    def push(self, event: Any) -> None:
        items = self._items
        merged = None
        if len(items) >= COALESCE_AFTER and event is not _CLOSED and items[-1] is not _CLOSED:
            merged = coalesce(items[-1], event)
        if merged is not None:
            items[-1] = merged
        else:
            if len(items) >= self.max_buffer:
                items.popleft()
            items.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def backlog(self) -> int:
        """Events buffered and not read yet."""
        return len(self._items)

    async def start(self) -> Self:
        if not self._started:
            self._started = True
            await self._open()
        return self

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after `timeout` seconds; StopAsyncIteration once closed."""
        if not self._started:
            await self.start()
        if not self._items:
            if self._closed:
                raise StopAsyncIteration
            # One future per wait, no task (wait_for costs a task per call, per follower).
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                if timeout is None:
                    await waiter
                else:
                    async with asyncio.timeout(timeout):
                        await waiter
            except TimeoutError:
                return None
            finally:
                self._waiter = None
            if not self._items:  # woken without an event: cannot happen, but never hang
                return None
        item = self._items.popleft()
        if item is _CLOSED:
            self._closed = True
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]

    async def __anext__(self) -> Event:
        event = await self.get(None)
        assert event is not None
        return event

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self.push(_CLOSED)
            await self._close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


@runtime_checkable
class ProgressBus(Protocol):
    async def publish(self, run_id: str, event: Event) -> None: ...

    def subscribe(self, run_id: str) -> Subscription: ...

    def subscribe_all(self) -> Subscription: ...

    async def close(self) -> None: ...


class _MemorySubscription(Subscription):
    def __init__(self, bus: InMemoryBus, channel: str) -> None:
        super().__init__(channel)
        self._bus = bus

    async def _open(self) -> None:
        self._bus._subs.setdefault(self.channel, set()).add(self)

    async def _close(self) -> None:
        subs = self._bus._subs.get(self.channel)
        if subs is not None:
            subs.discard(self)
            if not subs:
                del self._bus._subs[self.channel]


class InMemoryBus:
    """One process: publishers and subscribers share the event loop (embedded default)."""

    def __init__(self) -> None:
        self._subs: dict[str, set[_MemorySubscription]] = {}

    async def publish(self, run_id: str, event: Event) -> None:
        for channel in channels_for(run_id, event):
            for sub in list(self._subs.get(channel, ())):
                sub.push(dict(event))

    def subscribe(self, run_id: str) -> Subscription:
        return _MemorySubscription(self, run_channel(run_id))

    def subscribe_all(self) -> Subscription:
        return _MemorySubscription(self, ALL_RUNS_CHANNEL)

    async def close(self) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                await sub.aclose()


def _redis_client(url: str) -> Any:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=5,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, OSError],
    )


class _RedisChannel:
    """One pub/sub connection per channel, shared by this process's subscriptions to it:
    an event is received and decoded once, then copied into each buffer (500 followers of
    one run cost one connection, not 500). Its pump reconnects and resubscribes by itself.
    """

    def __init__(self, bus: RedisBus, channel: str) -> None:
        self.bus = bus
        self.channel = channel
        self.subs: set[_RedisSubscription] = set()
        self.ready = asyncio.Event()
        self.pump = asyncio.create_task(self._run(), name=f"redis-sub {channel}")

    async def _run(self) -> None:
        delay = 0.1
        while True:
            pubsub = self.bus._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.ready.set()
                delay = 0.1
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    try:
                        event = json.loads(msg["data"])
                    except (TypeError, ValueError):
                        log.warning("ignoring a malformed event on %s", self.channel)
                        continue
                    for sub in list(self.subs):
                        sub.push(dict(event))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: wait, then subscribe again
                log.warning("subscription to %s lost (%s); reconnecting", self.channel, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


class _RedisSubscription(Subscription):
    """A buffer fed by its channel's shared connection (`_RedisChannel`)."""

    def __init__(self, bus: RedisBus, channel: str) -> None:
        super().__init__(channel)
        self._bus = bus

    async def _open(self) -> None:
        self._bus._subs.add(self)
        shared = self._bus._channels.get(self.channel)
        if shared is None:
            shared = self._bus._channels[self.channel] = _RedisChannel(self._bus, self.channel)
        shared.subs.add(self)
        # Wait (briefly) until SUBSCRIBE is sent, so nothing published after `start()`
        # returns is missed; if Redis is down the pump keeps retrying.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(shared.ready.wait(), 3.0)

    async def _close(self) -> None:
        self._bus._subs.discard(self)
        shared = self._bus._channels.get(self.channel)
        if shared is None or self not in shared.subs:
            return
        shared.subs.discard(self)
        if not shared.subs:  # the last one out closes the connection
            del self._bus._channels[self.channel]
            shared.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await shared.pump


def prefixed(channel: str, prefix: str) -> str:
    """`channel` (named with `KEY_PREFIX`, "bt:") under a deployment's own prefix."""
    if prefix == KEY_PREFIX.rstrip(":"):
        return channel
    return f"{prefix}:{channel.removeprefix(KEY_PREFIX)}"


class RedisBus:
    """Redis pub/sub: one channel per run plus one for every run's status changes.

    Pub/sub is server-wide (Redis database numbers do not separate it), so deployments
    sharing a Redis server pass each their own `prefix` (the `bus_prefix` setting):
    channels are `<prefix>:run:<id>` and `<prefix>:runs`; the default "bt" keeps the
    names of `workers.constants`. Every server and worker of a deployment must agree.
    """

    def __init__(self, redis_url: str, *, prefix: str = "bt") -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self._client = _redis_client(redis_url)
        self._subs: set[_RedisSubscription] = set()
        self._channels: dict[str, _RedisChannel] = {}
        self._last_warning = 0.0

    async def publish(self, run_id: str, event: Event) -> None:
        data = json.dumps(event, separators=(",", ":"), allow_nan=False)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for channel in channels_for(run_id, event):
                    pipe.publish(prefixed(channel, self.prefix), data)
                await pipe.execute()
        except Exception as exc:  # liveness only: the database has the truth
            now = time.monotonic()
            if now - self._last_warning > 5:
                self._last_warning = now
                log.warning("could not publish run event (%s); subscribers fall back to polling", exc)

    def subscribe(self, run_id: str) -> Subscription:
        return _RedisSubscription(self, prefixed(run_channel(run_id), self.prefix))

    def subscribe_all(self) -> Subscription:
        return _RedisSubscription(self, prefixed(ALL_RUNS_CHANNEL, self.prefix))

    async def close(self) -> None:
        for sub in list(self._subs):
            await sub.aclose()
        await self._client.aclose()
