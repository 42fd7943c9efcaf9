"""Validation through the real app on SQLite and PostgreSQL: hold-out trials with both metric
sets, walk-forward windows/equity/efficiency, progress over all windows, input errors naming
the field, `optimizationStats` and `Optimization.stats`."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from engine.optim.overfit import deflated_sharpe_ratio
from tests.graph.conftest import Api
from tests.graph.test_optimizations import ESTIMATE, START, finished, follow, input_for

TRIALS = """query($id: ID!) { optimization(id: $id) { validation
  trials(first: 50) { edges { node { number window metrics inSample outOfSample } } } } }"""
WALK = """query($id: ID!, $points: Int!) { optimization(id: $id) { status total completed
  walkForward { efficiency inSampleMeanReturn outOfSampleMeanReturn outOfSampleReturnPct
    returnMetric tested
    windows { index nTrials trial params inSample outOfSample efficiency deflatedSharpe stability
      train { start end startBar stopBar bars } test { start end startBar stopBar bars } }
    equity(points: $points) { t value } } } }"""
STATS = """query($id: ID!) { optimizationStats { total trialsEvaluated averageTrialsPerSecond
  averageSeconds byStatus { status count } }
  optimization(id: $id) { stats { trials feasibleTrials trialsPerSecond deflatedSharpe
    expectedMaxSharpe bestSharpe pbo probOosLoss stability details } } }"""
WINDOW = """query($id: ID!, $window: Int) { optimization(id: $id) {
  trials(first: 50, window: $window) { totalCount edges { node { number window metrics } } }
  heatmap(x: "fast", y: "slow", window: $window) } }"""
PROGRESS = """subscription($id: ID!) { optimizationProgress(id: $id) { type status completed total } }"""


async def test_holdout_trials_have_in_and_out_of_sample_metrics(api: Api) -> None:
    inp = await input_for(api, validation={"holdout": {"fraction": 0.25}})
    opt = (await api.data(START, {"input": inp}))["startOptimization"]
    done = await finished(api, opt["id"])
    assert done["status"] == "SUCCEEDED", done["error"]
    assert done["result"]["holdout"]["holdout"] == {"fraction": 0.25}
    got = (await api.data(TRIALS, {"id": opt["id"]}))["optimization"]
    ins, oos = got["validation"]["in_sample"], got["validation"]["out_of_sample"]
    assert ins[1] == oos[0] and oos[1] - oos[0] == round(oos[1] * 0.25)
    nodes = [e["node"] for e in got["trials"]["edges"]]
    assert len(nodes) == 9
    for n in nodes:
        assert n["inSample"] == n["metrics"] and n["window"] is None
        assert n["outOfSample"]["n_trades"] is not None
        assert n["outOfSample"]["final_equity"] != n["inSample"]["final_equity"]

    err = await api.error(WINDOW, {"id": opt["id"], "window": 0})
    assert err["extensions"]["code"] == "BAD_USER_INPUT"
    assert "has no walk-forward windows" in err["message"] and opt["id"] in err["message"]

    stats = await api.data(STATS, {"id": opt["id"]})
    one = stats["optimization"]["stats"]
    assert one["trials"] == 9 and one["feasibleTrials"] == 9
    assert one["deflatedSharpe"] is not None and 0 <= one["deflatedSharpe"] <= 1
    assert one["stability"] is not None and one["trialsPerSecond"] > 0
    assert 0 <= one["pbo"] <= 1 and one["details"]["pbo"]["n_trials"] == 9
    assert set(one["details"]) == {"deflated_sharpe", "pbo", "stability"}
    summary = stats["optimizationStats"]
    assert summary["total"] == 1 and summary["trialsEvaluated"] == 9
    assert {c["status"]: c["count"] for c in summary["byStatus"]}["SUCCEEDED"] == 1
    assert summary["averageTrialsPerSecond"] > 0 and summary["averageSeconds"] > 0


async def test_walk_forward_windows_equity_and_progress(api: Api) -> None:
    inp = await input_for(api, validation={"walkForward": {"train": "2Y", "test": "6M"}})
    est = (await api.data(ESTIMATE.replace("bars }", "bars windows }"), {"input": inp}))
    est = est["estimateOptimization"]
    assert est["windows"] >= 3 and est["trials"] == 9 * est["windows"]
    opt = (await api.data(START, {"input": inp}))["startOptimization"]
    assert opt["total"] == est["trials"]
    events = await follow(api, PROGRESS, opt["id"], 60)
    assert events[-1]["type"] == "TERMINAL" and events[-1]["status"] == "SUCCEEDED"
    assert events[-1]["completed"] == events[-1]["total"] == est["trials"]
    done = await finished(api, opt["id"])
    wf = (await api.data(WALK, {"id": opt["id"], "points": 40}))["optimization"]["walkForward"]
    assert wf["tested"] and len(wf["windows"]) == est["windows"]
    assert wf["returnMetric"] == "cagr_pct"
    tz = ZoneInfo((await api.data("query($id: ID!) { dataset(id: $id) { timezone } }",
                                  {"id": inp["datasetId"]}))["dataset"]["timezone"])
    prev_test_end = None
    for w in wf["windows"]:
        train_end = datetime.fromisoformat(w["train"]["end"])
        assert train_end.utcoffset() == train_end.astimezone(tz).utcoffset()  # exchange time
        test_start = datetime.fromisoformat(w["test"]["start"])
        assert train_end < test_start and w["train"]["stopBar"] <= w["test"]["startBar"]
        if prev_test_end is not None:
            assert datetime.fromisoformat(w["test"]["start"]) > prev_test_end
        prev_test_end = datetime.fromisoformat(w["test"]["end"])
        assert w["nTrials"] == 9 and w["params"] is not None
        assert w["inSample"]["n_trades"] is not None and w["outOfSample"] is not None
    eq = wf["equity"]
    assert 2 <= len(eq) <= 40
    assert eq[0]["t"] >= datetime.fromisoformat(wf["windows"][0]["test"]["start"]).timestamp() * 1000
    assert done["best"]["window"] == len(wf["windows"]) - 1  # what would trade next

    # Each window is its own search: trials, heatmap and statistics per window.
    last = len(wf["windows"]) - 1
    for w in (wf["windows"][1], wf["windows"][last]):
        got = (await api.data(WINDOW, {"id": opt["id"], "window": w["index"]}))["optimization"]
        nodes = [e["node"] for e in got["trials"]["edges"]]
        assert got["trials"]["totalCount"] == len(nodes) == w["nTrials"] == 9
        assert {n["window"] for n in nodes} == {w["index"]} and w["trial"] in {n["number"]
                                                                            for n in nodes}
        chosen = next(n for n in nodes if n["number"] == w["trial"])["metrics"]
        want = deflated_sharpe_ratio(
            chosen["sharpe"], n_obs=w["train"]["bars"] - 1,
            trial_sharpes=[n["metrics"]["sharpe"] for n in nodes],
            periods_per_year=chosen["bars_per_year"])
        assert w["deflatedSharpe"] == pytest.approx(want.dsr) and 0 <= want.dsr <= 1
        assert w["stability"] is not None
        z = got["heatmap"]["data"][0]["z"]
        assert max(v for row in z for v in row if v is not None) == pytest.approx(chosen["sharpe"])
    default = (await api.data(WINDOW, {"id": opt["id"], "window": None}))["optimization"]
    assert default["trials"]["totalCount"] == 9 * len(wf["windows"])  # every window's trials
    assert default["heatmap"] == got["heatmap"]  # the last window's: its choice trades next
    for bad in (len(wf["windows"]), -1):
        err = await api.error(WINDOW, {"id": opt["id"], "window": bad})
        assert err["extensions"]["code"] == "BAD_USER_INPUT" and "window" in err["message"]


async def test_validation_errors_name_the_field(api: Api) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"walkForward": {"train": "6Q", "test": "1M"}}, "validation.walkForward.train"),
        ({"walkForward": {"train": "1Y", "test": "1M", "step": "1W"}}, "validation.walkForward.step"),
        ({"walkForward": {"train": "40Y", "test": "1Y"}}, "validation.walkForward"),
        ({"walkForward": {"train": True, "test": "1M"}}, "validation.walkForward.train"),
        ({"holdout": {"fraction": 0}}, "validation.holdout.fraction"),
        ({"holdout": {"start": "yesterday"}}, "validation.holdout.start"),
        ({"holdout": {"fraction": 0.2}, "walkForward": {"train": 10, "test": 5}}, "validation"),
        ({}, "validation"),
    ]
    for validation, field in cases:
        inp = await input_for(api, validation=validation)
        for op in (ESTIMATE, START):
            err = await api.error(op, {"input": inp})
            assert err["extensions"]["code"] == "BAD_USER_INPUT", (validation, err)
            assert err["extensions"]["field"] == field, (validation, err)
    err = await api.error(START, {"input": await input_for(
        api, validation={"walkForward": {"train": "40Y", "test": "1Y"}})})
    assert "no window fits in this dataset" in err["message"]
    count = (await api.data("{ optimizations { totalCount } }"))["optimizations"]["totalCount"]
    assert count == 0  # nothing half-written
