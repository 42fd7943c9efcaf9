"""Optimizations through the real app on SQLite and PostgreSQL: estimate, start, follow,
trials, Pareto front, heatmap, promote, errors and ownership."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from graph.context import Context
from graph.schema import schema
from store.auth import LOCAL_PRINCIPAL
from tests.graph.conftest import Api, sample_id
from tests.graph.teams import team_app

FIELDS = "id status total completed best result datasetHash codeHash engineVersion error"
ESTIMATE = """query($input: OptimizationInput!) {
  estimateOptimization(input: $input) { trials seconds trialsPerSecond bars } }"""
START = f"mutation($input: OptimizationInput!) {{ startOptimization(input: $input) {{ {FIELDS} }} }}"
GET = f"query($id: ID!) {{ optimization(id: $id) {{ {FIELDS} }} }}"
TRIALS = """query($id: ID!, $order: String, $after: String) { optimization(id: $id) {
  trials(first: 5, orderBy: $order, after: $after) { totalCount
    edges { cursor node { number params metrics values feasible } }
    pageInfo { hasNextPage endCursor } } } }"""
PROGRESS = """subscription($id: ID!) { optimizationProgress(id: $id) {
  optimizationId seq type status completed total trialsPerSecond etaSeconds best } }"""
GRID = {"fast": "4:12:4", "slow": "20:40:10", "long_only": False}


async def input_for(api: Api, **extra: Any) -> dict[str, Any]:
    return {"strategy": "ema_crossover", "datasetId": await sample_id(api, "1d"),
            "space": GRID, "objectives": ["sharpe"], **extra}


async def finished(api: Api, opt_id: str, timeout: float = 30) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            opt = (await api.data(GET, {"id": opt_id}))["optimization"]
            if opt["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                return opt  # type: ignore[no-any-return]
            await asyncio.sleep(0.1)


async def follow(api: Api, subscription: str, opt_id: str, timeout: float) -> list[Any]:
    """Every `optimizationProgress` event of `subscription` for `opt_id`, to its end."""
    context = Context(services=api.stack.services, health=api.stack.health,
                      principal=LOCAL_PRINCIPAL)
    events = []
    async with asyncio.timeout(timeout):
        results = await schema.subscribe(subscription, variable_values={"id": opt_id},
                                         context_value=context)
        async with contextlib.aclosing(results):  # type: ignore[type-var]
            async for result in results:  # type: ignore[union-attr]
                assert not result.errors, result.errors
                events.append(result.data["optimizationProgress"])
    return events


async def test_estimate_start_follow_and_query(api: Api) -> None:
    inp = await input_for(api)
    est = (await api.data(ESTIMATE, {"input": inp}))["estimateOptimization"]
    assert est["trials"] == 9 and est["seconds"] >= 0 and est["bars"] > 0
    opt = (await api.data(START, {"input": inp}))["startOptimization"]
    assert opt["status"] == "QUEUED" and opt["total"] == 9
    events = await follow(api, PROGRESS, opt["id"], 30)
    assert events[0]["type"] == "SNAPSHOT" and events[-1]["type"] == "TERMINAL"
    assert events[-1]["status"] == "SUCCEEDED" and events[-1]["completed"] == 9
    seqs = [e["seq"] for e in events[:-1]]
    assert seqs == sorted(seqs)
    done = await finished(api, opt["id"])
    assert done["datasetHash"] and done["codeHash"] and done["engineVersion"]
    assert done["result"]["n_trials"] == 9 and "deflated_sharpe" in done["result"]

    page = (await api.data(TRIALS, {"id": opt["id"], "order": "-sharpe"}))["optimization"]["trials"]
    sharpes = [e["node"]["metrics"]["sharpe"] for e in page["edges"]]
    assert page["totalCount"] == 9 and sharpes == sorted(sharpes, reverse=True)
    assert sharpes[0] == done["best"]["metrics"]["sharpe"]
    rest = (await api.data(TRIALS, {"id": opt["id"], "order": "-sharpe",
                                    "after": page["pageInfo"]["endCursor"]}))
    more = [e["node"]["metrics"]["sharpe"] for e in rest["optimization"]["trials"]["edges"]]
    assert len(more) == 4 and max(more) <= min(sharpes)

    heat = (await api.data("""query($id: ID!) { optimization(id: $id) {
        heatmap(x: "fast", y: "slow", metric: "sharpe") } }""", {"id": opt["id"]}))
    fig = heat["optimization"]["heatmap"]
    assert fig["data"][0]["x"] == [4, 8, 12] and fig["data"][0]["y"] == [20, 30, 40]

    run = (await api.data("""mutation($id: ID!) { promoteTrial(optimizationId: $id, trial: 4) {
        id params } }""", {"id": opt["id"]}))["promoteTrial"]
    trial4 = (await api.data(TRIALS, {"id": opt["id"]}))["optimization"]["trials"]["edges"][4]
    assert {k: run["params"][k] for k in ("fast", "slow")} == {
        k: trial4["node"]["params"][k] for k in ("fast", "slow")}
    listed = (await api.data("{ optimizations(first: 5) { totalCount nodes { id } } }"))
    assert listed["optimizations"]["totalCount"] == 1


async def test_nsga2_pareto_front(api: Api) -> None:
    inp = await input_for(api, method="nsga2", maxTrials=16, seed=3,
                          objectives=["sharpe", "-max_drawdown_pct"])
    inp["space"] = {"fast": "4:20:2", "slow": "20:60:5", "long_only": False}
    opt = (await api.data(START, {"input": inp}))["startOptimization"]
    done = await finished(api, opt["id"], 60)
    assert done["status"] == "SUCCEEDED", done["error"]
    front = (await api.data("""query($id: ID!) { optimization(id: $id) {
        paretoFront { number values feasible } } }""", {"id": opt["id"]}))
    points = front["optimization"]["paretoFront"]
    assert points and all(p["feasible"] for p in points)
    for a in points:  # no point dominates another
        for b in points:
            assert not (a["values"][0] >= b["values"][0] and a["values"][1] <= b["values"][1]
                        and a["values"] != b["values"])


async def test_errors_name_the_field(api: Api) -> None:
    inp = await input_for(api)
    err = await api.error(START, {"input": {**inp, "space": {"fastt": "4:8:2"}}})
    assert err["extensions"]["code"] == "BAD_USER_INPUT" and "fast" in err["message"]
    err = await api.error(START, {"input": {**inp, "method": "annealing"}})
    assert err["extensions"]["code"] == "BAD_USER_INPUT"
    err = await api.error(START, {"input": {**inp, "method": "random"}})
    assert err["extensions"]["code"] == "BAD_USER_INPUT"  # needs maxTrials
    err = await api.error(GET, {"id": "00000000-0000-0000-0000-000000000000"})
    assert err["extensions"]["code"] == "NOT_FOUND"


async def test_other_users_optimizations_are_not_found(db_url: str, tmp_path: Path) -> None:
    async for team in team_app(db_url, tmp_path / "var"):
        samples = (await team.data("alice", "{ datasets { nodes { id timeframe } } }"))
        daily = next(d["id"] for d in samples["datasets"]["nodes"] if d["timeframe"] == "1d")
        inp = {"strategy": "ema_crossover", "datasetId": daily, "space": GRID}
        opt = (await team.data("alice", START, {"input": inp}))["startOptimization"]
        assert await team.code("bob", GET, {"id": opt["id"]}) == "NOT_FOUND"
        assert await team.code("bob", "mutation($id: ID!) { cancelOptimization(id: $id) { id } }",
                               {"id": opt["id"]}) == "NOT_FOUND"
        listed = await team.data("bob", "{ optimizations { totalCount } }")
        assert listed["optimizations"]["totalCount"] == 0
        assert (await team.data("root", GET, {"id": opt["id"]}))["optimization"]["id"] == opt["id"]


async def test_trials_have_a_per_token_budget(db_url: str, tmp_path: Path) -> None:
    async for team in team_app(db_url, tmp_path / "var", rate_limit_trials=10,
                               rate_limit_window_seconds=3600.0):
        samples = (await team.data("alice", "{ datasets { nodes { id timeframe } } }"))
        daily = next(d["id"] for d in samples["datasets"]["nodes"] if d["timeframe"] == "1d")
        big = {"strategy": "ema_crossover", "datasetId": daily,
               "space": {"fast": "4:20:2", "slow": "20:60:5", "long_only": False}}  # 81 trials
        body = await team.post("alice", START, {"input": big})
        error = body["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED", body
        assert error["extensions"]["retryAfter"] >= 1 and error["extensions"]["limit"] == 10
        assert "optimization trials" in error["message"]
        count = "{ optimizations { totalCount } }"
        assert (await team.data("root", count))["optimizations"]["totalCount"] == 0  # nothing stored

        small = {**big, "space": GRID}  # 9 trials fit the budget of 10
        opt = (await team.data("alice", START, {"input": small}))["startOptimization"]
        assert opt["total"] == 9
        assert await team.code("alice", START, {"input": small}) == "RATE_LIMITED"  # 18 > 10
        assert (await team.data("bob", START, {"input": small}))["startOptimization"]["total"] == 9
        assert (await team.data("root", count))["optimizations"]["totalCount"] == 2
