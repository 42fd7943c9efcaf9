"""Fan-out: followers of one run share each event's object and its executed selection."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from graph import subscriptions
from graph.context import Context
from graph.schema import build_schema
from graph.subscriptions import SharedEventExecution
from store.auth import LOCAL_PRINCIPAL
from tests.graph.conftest import Api
from tests.graph.test_subscriptions import PROGRESS, submit


async def follow(api: Api, schema: Any, run_id: str) -> list[dict[str, Any]]:
    context = Context(services=api.stack.services, health=api.stack.health,
                      principal=LOCAL_PRINCIPAL)
    results = await schema.subscribe(PROGRESS, variable_values={"id": run_id},
                                     context_value=context)
    events = []
    async with asyncio.timeout(60), contextlib.aclosing(results):
        async for result in results:
            assert not result.errors, result.errors
            events.append(result.data["runProgress"])
    return events


async def test_followers_of_a_run_share_one_execution_per_event(slow_api: Api) -> None:
    schema = build_schema()
    assert schema.execution_context_class is SharedEventExecution
    run_id = await submit(slow_api)
    first, second = await asyncio.gather(*(follow(slow_api, schema, run_id) for _ in range(2)))
    live = [e for e in first if e["type"] == "PROGRESS"]
    assert len(live) >= 3
    assert live == [e for e in second if e["type"] == "PROGRESS"]  # the same events, in order
    assert first[-1]["type"] == second[-1]["type"] == "TERMINAL"
    shared = [ev for ev in subscriptions._RECENT.values()
              if str(ev.run_id) == run_id and ev.type.value == "progress"]
    assert shared, "bus events become one RunEvent per event"
    # Each event's selection ran once for both followers (same query, variables, scope).
    assert all(len(ev.results) == 1 for ev in shared), [len(ev.results) for ev in shared]
