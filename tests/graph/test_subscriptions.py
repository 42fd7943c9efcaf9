"""Subscriptions executed by the schema against the real stack, on both databases.

The websocket transport itself (graphql-transport-ws against a live server) is
covered in tests/e2e; here the order and content of the events are the point.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from graph.context import Context
from graph.schema import schema
from store.auth import LOCAL_PRINCIPAL
from tests.graph.conftest import Api, sample_id

PROGRESS = """
subscription($id: ID!, $after: Int! = 0) {
  runProgress(id: $id, afterSeq: $after) {
    runId seq type status progress stage equity { t value } metrics error
    run { status nTrades }
  }
}
"""
EVENTS = "subscription { runEvents { runId seq type status } }"
SUBMIT = "mutation($input: BacktestInput!) { submitBacktest(input: $input) { id } }"
CANCEL = "mutation($id: ID!) { cancelRun(id: $id) { id } }"


async def stream(api: Api, query: str, variables: dict[str, Any]) -> AsyncIterator[Any]:
    # In-process, so no HTTP layer identifies the caller: act as the embedded local user.
    context = Context(services=api.stack.services, health=api.stack.health,
                      principal=LOCAL_PRINCIPAL)
    results = await schema.subscribe(query, variable_values=variables, context_value=context)
    async with contextlib.aclosing(results):  # type: ignore[type-var]
        async for result in results:  # type: ignore[union-attr]
            yield result


async def progress_events(api: Api, run_id: str, after: int = 0) -> list[dict[str, Any]]:
    events = []
    async with asyncio.timeout(60):
        async for result in stream(api, PROGRESS, {"id": run_id, "after": after}):
            assert not result.errors, result.errors
            events.append(result.data["runProgress"])
    return events


async def submit(api: Api) -> str:
    data = await api.data(SUBMIT, {"input": {
        "strategy": "ema_crossover", "datasetId": await sample_id(api)
    }})
    return data["submitBacktest"]["id"]  # type: ignore[no-any-return]


async def test_snapshot_then_live_progress_then_terminal(slow_api: Api) -> None:
    run_id = await submit(slow_api)
    events = await progress_events(slow_api, run_id)
    assert events[0]["type"] == "SNAPSHOT" and events[0]["status"] in {"QUEUED", "RUNNING"}
    final = events[-1]
    assert final["type"] == "TERMINAL" and final["status"] == "SUCCEEDED"
    assert final["metrics"]["n_trades"] > 0 and final["run"]["nTrades"] > 0
    live = [e for e in events if e["type"] == "PROGRESS"]
    assert len(live) >= 3
    seqs = [e["seq"] for e in events[1:]]
    assert seqs == sorted(seqs) and len(set(seqs[:-1])) == len(seqs[:-1])
    progress = [e["progress"] for e in live]
    assert progress == sorted(progress) and progress[-1] <= 1
    times = [p["t"] for e in live for p in e["equity"]]
    assert len(times) > 20 and times == sorted(times)

    # A finished run: the snapshot, the terminal event, and the stream ends.
    again = await progress_events(slow_api, run_id, after=seqs[-1])
    assert [e["type"] for e in again] == ["SNAPSHOT", "TERMINAL"]
    assert again[1]["metrics"] == final["metrics"]


async def test_cancelled_run_ends_the_stream_and_run_events_see_it(slow_api: Api) -> None:
    api = slow_api
    seen: list[dict[str, Any]] = []

    async def watch_all() -> None:
        async for result in stream(api, EVENTS, {}):
            seen.append(result.data["runEvents"])

    watcher = asyncio.create_task(watch_all())
    await asyncio.sleep(0.1)
    run_id = await submit(api)
    events = []
    async with asyncio.timeout(30):
        async for result in stream(api, PROGRESS, {"id": run_id}):
            event = result.data["runProgress"]
            events.append(event)
            if event["type"] == "PROGRESS" and len(events) == 3:
                await api.data(CANCEL, {"id": run_id})
    assert events[-1]["type"] == "TERMINAL" and events[-1]["status"] == "CANCELLED"
    async with asyncio.timeout(10):
        while not any(e["status"] == "CANCELLED" for e in seen):
            await asyncio.sleep(0.05)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    mine = [e["status"] for e in seen if e["runId"] == run_id]
    assert mine[0] == "QUEUED" and "RUNNING" in mine and mine[-1] == "CANCELLED"


async def test_unknown_run_is_not_found(api: Api) -> None:
    results = [r async for r in stream(api, PROGRESS, {"id": "no-such-run"})]
    [result] = results
    [error] = result.errors
    assert error.extensions["code"] == "NOT_FOUND"
    assert "no-such-run" in error.message


async def test_events_carry_the_time_they_were_emitted(slow_api: Api) -> None:
    """`emittedAt` (epoch ms, stamped where the event is built) lets a client measure
    delivery delay; bench/load_bench.py uses it for the subscriber fan-out."""
    run_id = await submit(slow_api)
    query = "subscription($id: ID!) { runProgress(id: $id) { type emittedAt } }"
    received: list[tuple[float, dict[str, Any]]] = []
    async with asyncio.timeout(60):
        async for result in stream(slow_api, query, {"id": run_id}):
            assert not result.errors, result.errors
            received.append((time.time() * 1000.0, result.data["runProgress"]))
    live = [(at, e["emittedAt"]) for at, e in received if e["type"] == "PROGRESS"]
    assert len(live) >= 3
    assert all(emitted is not None and 0 <= at - emitted < 5_000 for at, emitted in live)
    assert [emitted for _, emitted in live] == sorted(emitted for _, emitted in live)
    assert all(e["emittedAt"] is not None for _, e in received)
