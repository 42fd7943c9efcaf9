"""RedisBus channel prefixes keep deployments on one Redis server apart, and a follower
that falls behind gets progress merged (never status or terminal events)."""

from __future__ import annotations

import uuid

from workers.bus import COALESCE_AFTER, InMemoryBus, RedisBus, prefixed
from workers.constants import ALL_RUNS_CHANNEL, run_channel


def ev(run_id: str, seq: int, kind: str = "progress", equity: list | None = None) -> dict:  # type: ignore[type-arg]
    return {"run_id": run_id, "seq": seq, "type": kind, "status": "RUNNING", "progress": seq / 100,
            "stage": "running", "equity": equity or [], "emitted_at": 1000.0 + seq}


def test_prefixed_names() -> None:
    assert prefixed(run_channel("r1"), "bt") == run_channel("r1")  # the default keeps the names
    assert prefixed(run_channel("r1"), "acme") == "acme:run:r1"
    assert prefixed(ALL_RUNS_CHANNEL, "acme") == "acme:runs"


async def test_prefixes_separate_deployments_even_across_database_numbers(redis_url: str) -> None:
    base = redis_url.rsplit("/", 1)[0]
    run_id = uuid.uuid4().hex
    mine = RedisBus(f"{base}/1", prefix="deploy-a")
    theirs = RedisBus(f"{base}/2", prefix="deploy-b")
    same = RedisBus(f"{base}/3", prefix="deploy-a")  # another db number, same deployment
    try:
        async with mine.subscribe(run_id) as sub, mine.subscribe_all() as every:
            await theirs.publish(run_id, ev(run_id, 1, "status"))
            assert await sub.get(0.5) is None and await every.get(0.1) is None
            await same.publish(run_id, ev(run_id, 2, "status"))
            got = await sub.get(2)
            assert got is not None and got["seq"] == 2
            got = await every.get(2)
            assert got is not None and got["seq"] == 2
    finally:
        for bus in (mine, theirs, same):
            await bus.close()


async def test_a_follower_behind_gets_progress_merged_and_every_status_event() -> None:
    bus = InMemoryBus()
    run_id = "r1"
    async with bus.subscribe(run_id) as sub:
        for seq in range(1, COALESCE_AFTER + 1):
            await bus.publish(run_id, ev(run_id, seq, equity=[[seq, float(seq)]]))
        # Behind now: these merge into the newest unread progress event ...
        for seq in range(COALESCE_AFTER + 1, COALESCE_AFTER + 4):
            await bus.publish(run_id, ev(run_id, seq, equity=[[seq, float(seq)]]))
        await bus.publish(run_id, ev(run_id, 50, "status"))  # ... but never a status event
        await bus.publish(run_id, ev(run_id, 51))
        await bus.publish(run_id, ev(run_id, 52, "terminal"))
        got = [await sub.get(1) for _ in range(sub.backlog)]
    events = [e for e in got if e is not None]
    assert [e["seq"] for e in events] == [*range(1, COALESCE_AFTER), COALESCE_AFTER + 3, 50, 51, 52]
    assert [e["type"] for e in events][-3:] == ["status", "progress", "terminal"]
    merged = events[COALESCE_AFTER - 1]
    # Nothing lost: every equity point arrives, in order; the delay shown is the oldest's.
    points = [p for e in events for p in e["equity"]]
    assert points == [[s, float(s)] for s in range(1, COALESCE_AFTER + 4)]
    assert merged["emitted_at"] == 1000.0 + COALESCE_AFTER
    assert merged["progress"] == (COALESCE_AFTER + 3) / 100
