"""Fuzzing the GraphQL schema in-process with schemathesis: no query or mutation, from any
caller (admin, user, read-only token, anonymous, a forged token), answers INTERNAL.

schemathesis generates valid operations from the schema (its GraphQL support is built on
hypothesis-graphql); each is sent through the real ASGI app (middleware, authentication,
permissions, store) on a team deployment with users. Bounded: 200 examples, no deadline.
Hypothesis runs in a worker thread and hands each request to the test's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path
from typing import Any

import graphql
import pytest
import schemathesis
from graphql import get_introspection_query
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.graphql import nodes

from graph.schema import schema as app_schema
from tests.graph.teams import Team, team_app

EXAMPLES = 200
CALLERS = ("root", "alice", "reader", None, "forged")
KEYS = st.one_of(
    st.sampled_from(["fast", "slow", "period", "initial_cash", "size_mode", "stop_loss_pct",
                     "square_off", "commission_pct", "direction"]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
)


def _node(value: Any) -> graphql.ValueNode:
    """A JSON value as a GraphQL literal."""
    if value is None:
        return nodes.Null
    if isinstance(value, bool):
        return nodes.Boolean(value)
    if isinstance(value, int):
        return nodes.Int(value)
    if isinstance(value, float):
        return nodes.Float(value)
    if isinstance(value, str):
        return nodes.String(value)
    if isinstance(value, list):
        return nodes.List([_node(v) for v in value])
    return nodes.Object([
        graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=_node(v)) for k, v in value.items()
    ])


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6)
    | st.floats(allow_nan=False, allow_infinity=False, width=32) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=8,
)
schemathesis.graphql.scalar("JSON", JSON_VALUES.map(_node))
schemathesis.graphql.scalar(
    "DateTime", st.datetimes(timezones=st.just(UTC)).map(lambda d: nodes.String(d.isoformat())))
schemathesis.graphql.scalar("EpochMs", st.integers(0, 2**42).map(nodes.Int))
schemathesis.graphql.scalar("Upload", st.just(nodes.Null))


@pytest.fixture
async def team(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Team]:
    async for t in team_app(sqlite_url, tmp_path / "var", rate_limit_requests=100_000,
                            rate_limit_runs=100_000, run_wait_timeout_seconds=5.0):
        yield t


def operations() -> Any:
    introspection = app_schema.execute_sync(get_introspection_query())
    assert introspection.data is not None
    loaded = schemathesis.graphql.from_dict(introspection.data)
    ops = [result.ok() for result in loaded.get_all_operations()]
    assert {op.label for op in ops} >= {"Query.runs", "Mutation.submitBacktest", "Query.auditLog"}
    # Multipart uploads are not JSON requests; tests/graph/test_upload.py covers them.
    return st.one_of(*(op.as_strategy() for op in ops if op.label != "Mutation.uploadDataset"))


async def test_fuzzed_operations_never_answer_internal(team: Team) -> None:
    loop = asyncio.get_running_loop()
    team.tokens["forged"] = "bt_0123456789ab_" + "A" * 43
    seen: dict[str, int] = {}

    async def send(who: str | None, query: str) -> tuple[int, dict[str, Any]]:
        response = await team.api.client.post("/graphql", json={"query": query},
                                              headers=team.headers(who))
        return response.status_code, response.json()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operations(), who=st.sampled_from(CALLERS))
    def check(case: Any, who: str | None) -> None:
        status, body = asyncio.run_coroutine_threadsafe(send(who, case.body), loop).result(120)
        assert status < 500, (case.body, body)
        codes = [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
        assert "INTERNAL" not in codes, (who, case.body, body)
        if who in (None, "forged") and case.operation.label != "Query.health":
            assert "UNAUTHENTICATED" in codes or "GRAPHQL_VALIDATION_FAILED" in codes, body
        for code in codes or ["ok"]:
            seen[str(code)] = seen.get(str(code), 0) + 1

    await asyncio.to_thread(check)
    assert seen.get("ok", 0) > 0 and seen.get("UNAUTHENTICATED", 0) > 0, seen
