"""Identities at the API: tokens, scopes, the local user, rate limits, quotas, metrics.

The app runs in-process (httpx's ASGI transport); tests/e2e covers the same over real
HTTP and websockets, including every operation of the schema with another user's ids.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.graph.conftest import Api, _open, make_settings
from tests.graph.teams import Team, team_app
from tests.graph.test_upload import CSRF, UPLOAD, nse_csv

SUBMIT = "mutation($input: BacktestInput!) { submitBacktest(input: $input) { id } }"


@pytest.fixture
async def team(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Team]:
    async for t in team_app(
        sqlite_url, tmp_path / "var", rate_limit_requests=6, rate_limit_runs=2,
        rate_limit_window_seconds=1.0, max_datasets_per_user=1,
    ):
        yield t


async def test_who_may_call_what(team: Team) -> None:
    assert await team.code(None, "{ runs { totalCount } }") == "UNAUTHENTICATED"
    body = await team.post(None, "{ runs { totalCount } }")
    assert "backtester token create" in body["errors"][0]["message"] and body["data"] is None
    assert (await team.data(None, "{ health { ok } }"))["health"]["ok"]  # public
    forged = {"authorization": "Bearer bt_000000000000_" + "x" * 43}
    response = await team.api.client.post("/graphql", json={"query": "{ me { name } }"}, headers=forged)
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "unknown API token" in response.json()["errors"][0]["message"]

    me = (await team.data("reader", "{ me { name admin scopes tokenId local } }"))["me"]
    assert me == {"name": "bob", "admin": False, "scopes": ["read"],
                  "tokenId": team.token_ids["reader"], "local": False}
    nodes = (await team.data("reader", "{ datasets { nodes { id timeframe } } }"))["datasets"]["nodes"]
    dataset = next(d["id"] for d in nodes if d["timeframe"] == "1min")  # a shared sample
    variables = {"input": {"strategy": "ema_crossover", "datasetId": dataset}}
    assert await team.code("reader", SUBMIT, variables) == "FORBIDDEN"  # read scope only
    for who in ("reader", "bob"):
        assert await team.code(who, "{ auditLog { totalCount } }") == "FORBIDDEN"
        assert await team.code(who, "{ users { name } }") == "FORBIDDEN"
        assert await team.code(who, "mutation { syncStrategies { problems { path } } }") == "FORBIDDEN"
    assert (await team.data("root", "{ me { admin scopes } }"))["me"] == {
        "admin": True, "scopes": ["admin", "read", "run"]}
    assert {u["name"] for u in (await team.data("root", "{ users { name } }"))["users"]} == {
        "alice", "bob", "root"}

    # Revoking through the API: someone else's token is not found; one's own works at once.
    revoke = "mutation($id: ID!) { revokeApiToken(id: $id) { id active user } }"
    assert await team.code("alice", revoke, {"id": team.token_ids["bob"]}) == "NOT_FOUND"
    mine = (await team.data("reader", "{ apiTokens { id user scopes active } }"))["apiTokens"]
    assert {t["id"] for t in mine} == {team.token_ids["bob"], team.token_ids["reader"]}
    done = (await team.data("reader", revoke, {"id": team.token_ids["reader"]}))["revokeApiToken"]
    assert done == {"id": team.token_ids["reader"], "active": False, "user": "bob"}
    assert await team.code("reader", "{ me { name } }") == "UNAUTHENTICATED"
    log = (await team.data("root", '{ auditLog(action: "token.") { nodes { actor action targetId } } }'))
    assert log["auditLog"]["nodes"][0] == {
        "actor": "bob", "action": "token.revoke", "targetId": team.token_ids["reader"]}


async def test_rate_limits_answer_rate_limited_and_recover(team: Team) -> None:
    await asyncio.sleep(1.0 - (asyncio.get_running_loop().time() % 1.0))  # near a window start
    replies = [await team.api.client.post("/graphql", json={"query": "{ me { name } }"},
                                          headers=team.headers("alice")) for _ in range(10)]
    limited = [r for r in replies if "errors" in r.json()]
    assert 1 <= len(limited) <= 10 - 5, [r.json() for r in replies]
    error = limited[0].json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED" and error["extensions"]["retryAfter"] >= 1
    assert int(limited[0].headers["retry-after"]) == error["extensions"]["retryAfter"]
    assert (await team.data("bob", "{ me { name } }"))["me"]["name"] == "bob"  # per token
    await asyncio.sleep(error["extensions"]["retryAfter"] + 0.1)
    assert (await team.data("alice", "{ me { name } }"))["me"]["name"] == "alice"

    # Submitted work has its own budget (2 runs per window here).
    await asyncio.sleep(1.05)
    dataset = (await team.data("alice", "{ datasets { nodes { id } } }"))["datasets"]["nodes"][0]["id"]
    variables = {"input": {"strategy": "ema_crossover", "datasetId": dataset}}
    codes = []
    for _ in range(3):
        body = await team.post("alice", SUBMIT, variables)
        codes.append(body["errors"][0]["extensions"]["code"] if "errors" in body else "ok")
    assert codes.count("RATE_LIMITED") >= 1 and codes[0] == "ok", codes


async def test_upload_quota_per_user(team: Team) -> None:
    import json

    async def upload(who: str, seed: int) -> dict:  # type: ignore[type-arg]
        operations = {"query": UPLOAD, "variables": {"file": None, "timezone": "Asia/Kolkata"}}
        form = {"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})}
        files = {"0": ("x.csv", nse_csv(1, seed=seed), "text/csv")}
        response = await team.api.client.post(
            "/graphql", data=form, files=files, headers={**CSRF, **team.headers(who)})
        return response.json()  # type: ignore[no-any-return]

    assert "errors" not in await upload("alice", 1)
    second = await upload("alice", 2)
    assert second["errors"][0]["extensions"] == {"code": "QUOTA_EXCEEDED", "quota": "datasets", "limit": 1}
    assert "errors" not in await upload("bob", 2)  # a quota per user


@pytest.fixture
async def local(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async for api in _open(make_settings(sqlite_url, tmp_path / "var", metrics_token="s3cret")):
        yield api


async def test_no_users_means_the_local_user_for_local_clients_only(local: Api) -> None:
    me = (await local.data("{ me { name admin local tokenId } }"))["me"]
    assert me == {"name": "local", "admin": True, "local": True, "tokenId": None}
    remote = httpx.ASGITransport(app=local.app, client=("203.0.113.9", 4242))
    async with httpx.AsyncClient(transport=remote, base_url="http://testserver") as client:
        body = (await client.post("/graphql", json={"query": "{ runs { totalCount } }"})).json()
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "no users configured" in body["errors"][0]["message"]
        assert (await client.get("/runs/x/report.html")).status_code == 401


async def test_health_and_metrics_endpoints(local: Api) -> None:
    assert (await local.client.get("/health/live")).json() == {"ok": True}
    ready = await local.client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["ok"] and ready.json() == (
        await local.client.get("/health")).json() | {"queue_depth": ready.json()["queue_depth"]}
    await local.data("{ runs { totalCount } }")
    await local.post("{ run(id: \"nope\") { id } }")
    assert (await local.client.get("/metrics")).status_code == 401
    text = (await local.client.get("/metrics", headers={"authorization": "Bearer s3cret"})).text
    assert 'bt_graphql_operations_total{operation="query:runs",outcome="ok"} 1.0' in text
    assert 'bt_graphql_operations_total{operation="query:run",outcome="NOT_FOUND"} 1.0' in text
    assert 'bt_http_requests_total{method="POST",route="/graphql",status="200"}' in text
    assert 'bt_runs{status="QUEUED"} 0.0' in text and "bt_queue_depth 0.0" in text
    assert "bt_subscriptions_open 0.0" in text
