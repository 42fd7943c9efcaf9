"""Mutations through the real app on SQLite and PostgreSQL: run, submit, cancel, and errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from store import runs as run_store
from tests.graph.conftest import Api, sample_id

RUN = """
mutation Run($input: BacktestInput!, $timeout: Float) {
  runBacktest(input: $input, timeoutSeconds: $timeout) {
    id status progress strategy params options error attempt terminal nBars nTrades
    createdAt startedAt finishedAt durationMs
    summary { sharpe totalReturnPct maxDrawdownPct nTrades nOpen finalEquity }
    metrics monthlyReturns { year month returnPct }
    dataset { id timeframe }
  }
}
"""
SUBMIT = "mutation($input: BacktestInput!) { submitBacktest(input: $input) { id status seq } }"
CANCEL = "mutation($id: ID!) { cancelRun(id: $id) { id status cancelRequested } }"
STATUS = "query($id: ID!) { run(id: $id) { status progress error cancelRequested } }"


async def wait_status(api: Api, run_id: str, wanted: set[str], timeout: float = 20) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            run = (await api.data(STATUS, {"id": run_id}))["run"]
            if run["status"] in wanted:
                return run  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)


async def test_run_backtest_returns_the_whole_result(api: Api) -> None:
    dataset = await sample_id(api, "1min")
    run = (await api.data(RUN, {"input": {
        "strategy": "ema_crossover", "datasetId": dataset, "params": {"fast": 8},
        "options": {"commission_pct": 0.01},
    }}))["runBacktest"]
    assert run["status"] == "SUCCEEDED" and run["terminal"] and run["error"] is None
    assert run["progress"] == 1.0 and run["attempt"] == 1
    assert run["params"] == {"fast": 8, "slow": 30, "long_only": False}
    assert run["options"]["commission_pct"] == 0.01
    assert run["dataset"] == {"id": dataset, "timeframe": "1min"}
    assert run["createdAt"] <= run["startedAt"] <= run["finishedAt"] and run["durationMs"] >= 0
    summary = run["summary"]
    assert summary["nTrades"] > 10 and summary["nTrades"] == run["metrics"]["n_trades"]
    assert summary["nTrades"] + summary["nOpen"] == run["nTrades"]
    assert summary["sharpe"] == pytest.approx(run["metrics"]["sharpe"])
    assert [(m["year"], m["month"]) for m in run["monthlyReturns"]] == [(2023, 1), (2023, 2), (2023, 3)]

    # Trades, a page at a time, add up to the stored list with no gaps or repeats.
    seen: list[int] = []
    after = None
    while True:
        page = (await api.data(
            "query($id: ID!, $after: String) { run(id: $id) { trades(first: 300, after: $after) {"
            " totalCount pageInfo { hasNextPage endCursor } nodes { index side qty pnl isOpen } } } }",
            {"id": run["id"], "after": after},
        ))["run"]["trades"]
        assert page["totalCount"] == run["nTrades"]
        seen += [t["index"] for t in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(range(run["nTrades"]))

    # The chart-sized equity curve keeps the true extremes and both ends.
    ts, equity = await run_store.get_equity(api.stack.db, run["id"])
    assert len(equity) == run["nBars"] > 10_000
    points = (await api.data(
        "query($id: ID!) { run(id: $id) { equity(points: 200) { t value } } }", {"id": run["id"]}
    ))["run"]["equity"]
    assert 100 <= len(points) <= 200
    values = [p["value"] for p in points]
    assert max(values) == equity.max() and min(values) == equity.min()
    assert points[0]["t"] == ts[0] // 1_000_000 and points[-1]["value"] == equity[-1]
    assert [p["t"] for p in points] == sorted(p["t"] for p in points)

    err = await api.error(
        "query($id: ID!) { run(id: $id) { equity(points: 1000000) { t } } }", {"id": run["id"]}
    )
    assert err["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("input_", "code", "field", "words"),
    [
        ({"strategy": "ema_crosover"}, "BAD_USER_INPUT", "strategy", "did you mean 'ema_crossover'"),
        ({"params": {"fast": 1}}, "BAD_USER_INPUT", "params.fast", ">= 2"),
        ({"params": {"fsat": 5}}, "BAD_USER_INPUT", "params.fsat", "did you mean 'fast'"),
        ({"params": [1, 2]}, "BAD_USER_INPUT", "params", "JSON object"),
        ({"options": {"slippage_bps": -5}}, "BAD_USER_INPUT", "options.slippage_bps", "slippage_bps"),
        ({"datasetId": "424242"}, "NOT_FOUND", None, "dataset 424242 not found"),
        ({"datasetId": "x1"}, "BAD_USER_INPUT", "datasetId", "dataset id"),
    ],
)
async def test_bad_input_gets_a_code_and_an_actionable_message(
    api: Api, input_: dict[str, Any], code: str, field: str | None, words: str
) -> None:
    payload = {"strategy": "ema_crossover", "datasetId": await sample_id(api), **input_}
    err = await api.error(SUBMIT, {"input": payload})
    assert err["extensions"]["code"] == code
    assert err["extensions"].get("field") == field
    assert words in err["message"]
    assert "Traceback" not in err["message"]
    stats = await api.data("{ stats { totalRuns } }")
    assert stats["stats"]["totalRuns"] == 0  # nothing was queued


async def test_submit_returns_a_queued_run_that_then_succeeds(api: Api) -> None:
    run = (await api.data(SUBMIT, {"input": {
        "strategy": "macd_trend", "datasetId": await sample_id(api, "1d")
    }}))["submitBacktest"]
    assert run["status"] == "QUEUED" and run["seq"] >= 1
    done = await wait_status(api, run["id"], {"SUCCEEDED", "FAILED"})
    assert done["status"] == "SUCCEEDED", done

    err = await api.error(CANCEL, {"id": run["id"]})
    assert err["extensions"]["code"] == "CONFLICT"
    assert "already succeeded" in err["message"]
    err = await api.error(CANCEL, {"id": "no-such-run"})
    assert err["extensions"]["code"] == "NOT_FOUND"


async def test_cancel_running_and_queued_runs(slow_api: Api) -> None:
    api = slow_api
    dataset = await sample_id(api)
    ids = [
        (await api.data(SUBMIT, {"input": {"strategy": "ema_crossover", "datasetId": dataset}}))[
            "submitBacktest"]["id"]
        for _ in range(3)
    ]
    running = await wait_status(api, ids[0], {"RUNNING"})
    assert running["progress"] < 1
    # Two slots (worker concurrency 2): the third run waits in the queue.
    queued = (await api.data(STATUS, {"id": ids[2]}))["run"]
    assert queued["status"] == "QUEUED"
    assert (await api.data("{ stats { queueDepth } }"))["stats"]["queueDepth"] == 1

    now = (await api.data(CANCEL, {"id": ids[2]}))["cancelRun"]
    assert now["status"] == "CANCELLED" and now["cancelRequested"]

    asked = (await api.data(CANCEL, {"id": ids[0]}))["cancelRun"]
    assert asked["cancelRequested"] and asked["status"] in {"RUNNING", "CANCELLED"}
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    ended = await wait_status(api, ids[0], {"CANCELLED", "SUCCEEDED", "FAILED"}, timeout=10)
    assert ended["status"] == "CANCELLED" and loop.time() - t0 < 5
    again = (await api.data(CANCEL, {"id": ids[0]}))["cancelRun"]
    assert again["status"] == "CANCELLED"  # cancelling twice is harmless
    await api.data(CANCEL, {"id": ids[1]})
    await wait_status(api, ids[1], {"CANCELLED", "SUCCEEDED", "FAILED"}, timeout=10)


async def test_run_backtest_times_out_with_the_run_id(slow_api: Api) -> None:
    api = slow_api
    body = await api.post(RUN, {
        "input": {"strategy": "ema_crossover", "datasetId": await sample_id(api)}, "timeout": 0.3,
    })
    [err] = body["errors"]
    assert err["extensions"]["code"] == "TIMEOUT"
    run_id = err["extensions"]["runId"]
    assert run_id in err["message"]
    run = (await api.data(STATUS, {"id": run_id}))["run"]
    assert run["status"] in {"QUEUED", "RUNNING"}  # it keeps going
    await api.data(CANCEL, {"id": run_id})
    await wait_status(api, run_id, {"CANCELLED", "SUCCEEDED"}, timeout=10)

    err = (await api.post(RUN, {
        "input": {"strategy": "ema_crossover", "datasetId": "1"}, "timeout": 10_000,
    }))["errors"][0]
    assert err["extensions"] == {"code": "BAD_USER_INPUT", "field": "timeoutSeconds"}
