"""Queries through the real app on SQLite and PostgreSQL: datasets, strategies, runs, stats."""

from __future__ import annotations

from datetime import datetime

from tests.graph.conftest import Api, sample_id

RUN = """
mutation Run($input: BacktestInput!) {
  runBacktest(input: $input, timeoutSeconds: 120) { id status strategy metrics }
}
"""


async def test_datasets_and_strategies(api: Api) -> None:
    data = await api.data(
        """{
          datasets { nodes { id name symbol exchange timezone timeframe rows start end startMs endMs } }
          strategies { name description params { name type default min max help } defaultParams }
          strategy(name: "ema_crossover") { name paramsSchema }
        }"""
    )
    by_tf = {d["timeframe"]: d for d in data["datasets"]["nodes"]}
    assert set(by_tf) == {"1min", "1d"}
    intraday = by_tf["1min"]
    assert intraday["rows"] > 10_000 and intraday["timezone"] == "Asia/Kolkata"
    start = datetime.fromisoformat(intraday["start"])
    assert start.utcoffset() is not None and intraday["start"] < intraday["end"]
    assert intraday["startMs"] == start.timestamp() * 1000  # epoch ms, not a 32-bit Int

    one = await api.data("query($id: ID!) { dataset(id: $id) { id name } }", {"id": intraday["id"]})
    assert one["dataset"] == {"id": intraday["id"], "name": intraday["name"]}

    names = [s["name"] for s in data["strategies"]]
    assert names == sorted(names) and "ema_crossover" in names
    ema = next(s for s in data["strategies"] if s["name"] == "ema_crossover")
    fast = next(p for p in ema["params"] if p["name"] == "fast")
    assert fast["type"] == "INT" and fast["min"] >= 2 and fast["help"]
    assert ema["defaultParams"]["fast"] == fast["default"] and ema["description"]
    assert data["strategy"]["paramsSchema"][0]["name"] == ema["params"][0]["name"]


async def test_lookups_of_missing_things(api: Api) -> None:
    err = await api.error('{ strategy(name: "ema_crosover") { name } }')
    assert err["extensions"]["code"] == "NOT_FOUND"
    assert "did you mean 'ema_crossover'" in err["message"]

    err = await api.error('{ dataset(id: "424242") { name } }')
    assert err["extensions"]["code"] == "NOT_FOUND"

    err = await api.error('{ dataset(id: "abc") { name } }')
    assert err["extensions"]["code"] == "BAD_USER_INPUT"

    err = await api.error('{ run(id: "00000000-0000-0000-0000-000000000000") { id } }')
    assert err["extensions"]["code"] == "NOT_FOUND" and err["path"] == ["run"]


async def test_runs_filters_sorting_and_pages(api: Api) -> None:
    intraday = await sample_id(api, "1min")
    daily = await sample_id(api, "1d")
    made = []
    for strategy, dataset, params in [
        ("ema_crossover", intraday, {"fast": 5, "slow": 20}),
        ("ema_crossover", daily, {"fast": 10, "slow": 30}),
        ("rsi_reversion", daily, {}),
    ]:
        run = (await api.data(RUN, {"input": {
            "strategy": strategy, "datasetId": dataset, "params": params
        }}))["runBacktest"]
        assert run["status"] == "SUCCEEDED", run
        made.append(run)

    page1 = (await api.data("{ runs(first: 2) { totalCount edges { cursor node { id } } "
                            "pageInfo { hasNextPage endCursor } } }"))["runs"]
    assert page1["totalCount"] == 3 and page1["pageInfo"]["hasNextPage"]
    newest_first = [e["node"]["id"] for e in page1["edges"]]
    assert newest_first == [made[2]["id"], made[1]["id"]]
    page2 = (await api.data(
        "query($after: String) { runs(first: 2, after: $after) { edges { node { id } } "
        "pageInfo { hasNextPage } } }", {"after": page1["pageInfo"]["endCursor"]}
    ))["runs"]
    assert [e["node"]["id"] for e in page2["edges"]] == [made[0]["id"]]
    assert page2["pageInfo"]["hasNextPage"] is False

    filtered = (await api.data(
        "query($f: RunFilterInput) { runs(filter: $f) { totalCount nodes { strategy datasetId } } }",
        {"f": {"strategy": "ema_crossover", "datasetId": daily, "status": ["SUCCEEDED"]}},
    ))["runs"]
    assert filtered["totalCount"] == 1
    assert filtered["nodes"] == [{"strategy": "ema_crossover", "datasetId": daily}]

    none_yet = (await api.data(
        'query { runs(filter: {createdBefore: "2000-01-01T00:00:00+00:00"}) { totalCount } }'
    ))["runs"]
    assert none_yet["totalCount"] == 0
    naive = (await api.data(
        'query { runs(filter: {createdAfter: "2000-01-01T00:00:00"}) { totalCount } }'
    ))["runs"]
    assert naive["totalCount"] == 3  # a time without an offset is taken as UTC

    by_sharpe = (await api.data(
        "{ runs(order: {by: METRIC, metric: \"sharpe\", direction: DESC}) { nodes { metrics } } }"
    ))["runs"]["nodes"]
    sharpes = [n["metrics"]["sharpe"] for n in by_sharpe if n["metrics"]["sharpe"] is not None]
    assert sharpes == sorted(sharpes, reverse=True) and len(sharpes) >= 2

    err = await api.error('{ runs(order: {by: METRIC}) { totalCount } }')
    assert err["extensions"]["code"] == "BAD_USER_INPUT"
    err = await api.error('{ runs(first: 100000) { totalCount } }')
    assert err["extensions"]["code"] == "BAD_USER_INPUT"
    err = await api.error('{ runs(after: "not-a-cursor") { totalCount } }')
    assert err["extensions"]["code"] == "BAD_USER_INPUT"


async def test_stats_and_health(api: Api) -> None:
    before = (await api.data("{ stats { totalRuns queueDepth byStatus { status count } } }"))
    assert before["stats"]["totalRuns"] == 0 and before["stats"]["queueDepth"] == 0
    statuses = {s["status"] for s in before["stats"]["byStatus"]}
    assert statuses == {"QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"}

    await api.data(RUN, {"input": {"strategy": "ema_crossover", "datasetId": await sample_id(api)}})
    stats = (await api.data("{ stats { totalRuns averageRunSeconds byStatus { status count } } }"))
    assert stats["stats"]["totalRuns"] == 1 and stats["stats"]["averageRunSeconds"] > 0
    assert {"status": "SUCCEEDED", "count": 1} in stats["stats"]["byStatus"]

    health = (await api.data("{ health { ok mode database redis queue queueDepth } }"))["health"]
    assert health == {
        "ok": True, "mode": "embedded", "database": "ok", "redis": "not configured",
        "queue": "ok", "queueDepth": 0,
    }
    response = await api.client.get("/health")
    assert response.status_code == 200 and response.json()["ok"] is True


async def test_run_by_id_reads_what_the_list_reads(api: Api) -> None:
    """`run(id)` reads a plain row (raw asyncpg on PostgreSQL), `runs` ORM objects: every
    field of a finished run must come out the same."""
    fields = (
        "id status seq progress stage strategy datasetId params options metrics error attempt "
        "cancelRequested createdAt startedAt finishedAt durationMs nBars nTrades engine shared "
        "terminal monthlyReturns { year month returnPct } summary { sharpe nTrades }"
    )
    done = await api.data(RUN, {"input": {"strategy": "ema_crossover", "datasetId": await sample_id(api)}})
    run_id = done["runBacktest"]["id"]
    one = (await api.data(f"query($id: ID!) {{ run(id: $id) {{ {fields} }} }}", {"id": run_id}))["run"]
    listed = (await api.data(f"{{ runs(first: 50) {{ edges {{ node {{ {fields} }} }} }} }}"))["runs"]
    assert one == next(e["node"] for e in listed["edges"] if e["node"]["id"] == run_id)
    assert one["status"] == "SUCCEEDED" and one["terminal"] and one["metrics"] and one["engine"]
    assert datetime.fromisoformat(one["finishedAt"]).utcoffset() is not None
