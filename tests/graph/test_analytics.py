"""Analytics through the real app on SQLite and PostgreSQL: `Run.analysis`, charts,
rolling metrics, `compareRuns`, `analyticsSummary`, the HTML report route and CLI."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import plotly.io

from engine.synthetic import synthetic_daily
from store.datasets import save_dataset
from store.runs import create_run
from tests.graph.conftest import Api, sample_id
from workers.analytics import AnalysisCache

ROOT = Path(__file__).resolve().parents[2]
RUN = """
mutation Run($input: BacktestInput!) {
  runBacktest(input: $input, timeoutSeconds: 120) { id status metrics monthlyReturns { year month returnPct } }
}
"""
ANALYSIS = """
query($id: ID!) { run(id: $id) { analysis {
  basic { totalReturnPct sharpe maxDrawdownPct finalEquity nTrades nOpen exposurePct barsPerYear tz start end }
  risk { volatilityPct sortino var95 cvar95 var99 cvar99 skew kurtosis tailRatio ulcerIndex
         maxDrawdownDurationBars timeToRecoveryBars maxDrawdownRecovered }
  tradeAnalysis { nTrades winRate profitFactor maxWinStreak maxLossStreak avgHoldingBars
                  bySide byExitReason byWeekday byHour }
  benchmark { returnPct alphaPct beta correlation informationRatio }
  drawdowns { rank start trough end recovered depthPct lengthBars troughIdx }
  monthlyReturns { year month returnPct }
  yearlyReturns { year returnPct }
  monthlyTable metrics
} } }
"""


async def backtest(api: Api, strategy: str, dataset: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    run = (await api.data(RUN, {"input": {
        "strategy": strategy, "datasetId": dataset, "params": params or {}}}))["runBacktest"]
    assert run["status"] == "SUCCEEDED", run
    return run  # type: ignore[no-any-return]


def trace_lengths(fig: dict[str, Any]) -> list[int]:
    return [len(t.get("x") or t.get("z") or []) for t in fig["data"]]


async def test_analysis_charts_rolling_and_report(api: Api) -> None:
    run = await backtest(api, "ema_crossover", await sample_id(api, "1min"), {"fast": 5, "slow": 20})
    a = (await api.data(ANALYSIS, {"id": run["id"]}))["run"]["analysis"]
    m = run["metrics"]
    assert math.isclose(a["basic"]["sharpe"], m["sharpe"], rel_tol=1e-12)
    assert math.isclose(a["basic"]["finalEquity"], m["final_equity"], rel_tol=1e-12)
    assert a["basic"]["nTrades"] == m["n_trades"] and a["basic"]["tz"] == "Asia/Kolkata"
    assert a["basic"]["start"].endswith("+05:30") and a["basic"]["barsPerYear"] > 10_000
    assert a["risk"]["var99"] >= a["risk"]["var95"] and a["risk"]["ulcerIndex"] > 0
    assert a["benchmark"] is not None and -1 <= a["benchmark"]["correlation"] <= 1
    assert {row["key"] for row in a["tradeAnalysis"]["bySide"]} <= {"long", "short"}
    assert sum(r["n_trades"] for r in a["tradeAnalysis"]["byWeekday"]) == m["n_trades"]
    depths = [d["depthPct"] for d in a["drawdowns"]]
    assert 1 <= len(depths) <= 5 and depths == sorted(depths, reverse=True)
    assert math.isclose(depths[0], m["max_drawdown_pct"], rel_tol=1e-9)
    assert a["monthlyReturns"] == run["monthlyReturns"]
    assert [y["year"] for y in a["yearlyReturns"]] == [2023] and a["monthlyTable"]["years"] == [2023]
    assert a["metrics"]["sharpe"] == m["sharpe"]
    # Trades read back from the store (bars_held included) give the engine's own numbers.
    for ours, key in ((a["tradeAnalysis"]["avgHoldingBars"], "avg_holding_bars"),
                      (a["basic"]["exposurePct"], "exposure_pct")):
        assert math.isclose(ours, m[key], rel_tol=1e-12), key
    cache = api.stack.services.analytics.cache
    assert len(cache) == 1  # computed once, then served from the cache
    again = (await api.data(ANALYSIS, {"id": run["id"]}))["run"]["analysis"]
    assert again == a and len(cache) == 1
    cache.clear()  # concurrent requests share one computation
    analytics = api.stack.services.analytics
    first, *rest = await asyncio.gather(*(analytics.run_analysis(run["id"]) for _ in range(3)))
    assert all(r is first for r in rest) and len(cache) == 1

    charts = (await api.data(
        """query($id: ID!) { run(id: $id) {
             equity: chart(kind: EQUITY, points: 300)
             heatmap: chart(kind: MONTHLY_HEATMAP)
             rolling: chart(kind: ROLLING_SHARPE, points: 200, window: "2D")
             charts(points: 400)
             data: chartData(kind: UNDERWATER, points: 100)
             roll: rolling(window: "1D", metrics: ["sharpe", "drawdown"], points: 150) {
               window windowBars windowSeconds series }
             bars: rolling(window: "500") { window windowBars series }
        } }""", {"id": run["id"]}))["run"]
    equity = charts["equity"]
    plotly.io.from_json(json.dumps(equity))  # a valid Plotly figure
    assert equity["layout"]["title"]["text"] and max(trace_lengths(equity)) <= 300
    assert charts["heatmap"]["data"][0]["type"] == "heatmap"
    assert "2D" in charts["rolling"]["layout"]["title"]["text"]
    assert max(trace_lengths(charts["rolling"])) <= 200
    assert set(charts["charts"]) == {
        "equity", "underwater", "returns_distribution", "trades", "pnl_vs_holding",
        "monthly_heatmap", "rolling_sharpe", "rolling_volatility"}
    assert all(max(trace_lengths(f), default=0) <= 400 for f in charts["charts"].values())
    under = charts["data"]["drawdown_pct"]
    assert len(under["t"]) <= 100 and math.isclose(-min(under["v"]), m["max_drawdown_pct"])
    roll = charts["roll"]
    assert roll["window"] == "1D" and roll["windowBars"] is None and roll["windowSeconds"] == 86400
    assert set(roll["series"]) == {"sharpe", "drawdown"}
    assert 0 < len(roll["series"]["sharpe"]["t"]) <= 150
    assert charts["bars"]["windowBars"] == 500 and len(charts["bars"]["series"]) == 4

    page = await api.client.get(f"/runs/{run['id']}/report.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "Plotly.newPlot" in html and "<script src=" not in html  # plotly.js inlined
    assert run["id"] in html and "ema_crossover" in html
    assert f"{m['sharpe']:,.3f}" in html and f"{m['total_return_pct']:,.2f}%" in html


async def test_compare_runs_and_summary(api: Api) -> None:
    intraday, daily = await sample_id(api, "1min"), await sample_id(api, "1d")
    later = await save_dataset(api.stack.db, api.stack.blobs,
                               synthetic_daily(1, seed=5, start="2025-01-06"),
                               name="synthetic 2025", symbol="SYN")
    a = await backtest(api, "ema_crossover", intraday, {"fast": 5, "slow": 20})
    b = await backtest(api, "rsi_reversion", daily)
    c = await backtest(api, "ema_crossover", str(later.id), {"fast": 5, "slow": 20})

    query = """query($ids: [ID!]!, $points: Int) { compareRuns(ids: $ids, points: $points) {
      overlap message timezone start end nPoints correlation correlationPoints equity chart
      correlationChart runs { id label timezone nBars start end overlapReturnPct }
      metrics { metric values best } } }"""
    cmp = (await api.data(query, {"ids": [a["id"], b["id"]], "points": 200}))["compareRuns"]
    assert cmp["overlap"] and cmp["message"] is None
    assert cmp["start"].startswith("2023-01-02") and cmp["end"].startswith("2023-03-2")
    assert [r["id"] for r in cmp["runs"]] == [a["id"], b["id"]]
    corr = cmp["correlation"]
    assert len(corr) == 2 and corr[0][0] == 1.0 and -1 <= corr[0][1] <= 1
    assert cmp["correlationPoints"] > 10 and cmp["correlationChart"]["data"][0]["type"] == "heatmap"
    assert all(len(e["t"]) <= 200 and e["v"][0] == 100.0 for e in cmp["equity"])
    assert len(cmp["chart"]["data"]) == 2
    sharpe = next(row for row in cmp["metrics"] if row["metric"] == "sharpe")
    assert sharpe["values"] == [a["metrics"]["sharpe"], b["metrics"]["sharpe"]]

    apart = (await api.data(query, {"ids": [a["id"], c["id"]]}))["compareRuns"]
    assert apart["overlap"] is False and apart["correlation"] is None
    assert "do not overlap" in apart["message"] and apart["equity"] == [None, None]
    assert "No overlap" in apart["chart"]["layout"]["title"]["text"]
    assert len(apart["metrics"][0]["values"]) == 2

    summary_q = """query($metric: String, $limit: Int) { analyticsSummary(metric: $metric, limit: $limit) {
      totalRuns byStatus { status count } averageRunSeconds metric lowerIsBetter
      byStrategy { strategy total byStatus { status count } averageRunSeconds lastRunAt }
      datasets { datasetId name symbol timeframe runs }
      bestRuns { rank value run { id strategy } } } }"""
    s = (await api.data(summary_q, {"limit": 2}))["analyticsSummary"]
    assert s["totalRuns"] == 3 and s["metric"] == "sharpe" and not s["lowerIsBetter"]
    assert {x["status"]: x["count"] for x in s["byStatus"]}["SUCCEEDED"] == 3
    assert s["averageRunSeconds"] is not None and s["averageRunSeconds"] >= 0
    assert [(x["strategy"], x["total"]) for x in s["byStrategy"]] == [
        ("ema_crossover", 2), ("rsi_reversion", 1)]
    assert s["byStrategy"][0]["lastRunAt"] is not None
    assert sorted(int(d["datasetId"]) for d in s["datasets"]) == sorted(
        [int(intraday), int(daily), later.id])
    sharpes = sorted((r["metrics"]["sharpe"] for r in (a, b, c) if r["metrics"]["sharpe"] is not None),
                     reverse=True)
    assert [r["value"] for r in s["bestRuns"]] == sharpes[:2]
    assert [r["rank"] for r in s["bestRuns"]] == [1, 2]

    dd = (await api.data(summary_q, {"metric": "max_drawdown_pct", "limit": 5}))["analyticsSummary"]
    assert dd["lowerIsBetter"]
    values = [r["value"] for r in dd["bestRuns"]]
    assert len(values) == 3 and values == sorted(values)


async def test_errors(api: Api) -> None:
    daily = await sample_id(api, "1d")
    run = await backtest(api, "ema_crossover", daily)
    one = "query($id: ID!, $kind: ChartKind!) { run(id: $id) { chart(kind: $kind) } }"

    err = await api.error(one, {"id": run["id"], "kind": "PIE"})
    assert err["extensions"]["code"] == "BAD_USER_INPUT" and "PIE" in err["message"]
    err = await api.error('query($id: ID!) { run(id: $id) { chart(kind: PIE) } }', {"id": run["id"]})
    assert err["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    err = await api.error('query($id: ID!) { run(id: $id) { chart(kind: EQUITY, points: 3) } }',
                          {"id": run["id"]})
    assert err["extensions"] == {"code": "BAD_USER_INPUT", "field": "points"}
    for window, words in (("3 fortnights", "neither a number of bars"), ("5m", "ambiguous"),
                          ("1", "at least 2 bars")):
        err = await api.error('query($id: ID!, $w: String!) { run(id: $id) { rolling(window: $w) '
                              '{ window } } }', {"id": run["id"], "w": window})
        assert err["extensions"]["code"] == "BAD_USER_INPUT" and words in err["message"], err
    err = await api.error('query($id: ID!) { run(id: $id) { rolling(window: "20", metrics: ["sharp"]) '
                          '{ window } } }', {"id": run["id"]})
    assert err["extensions"]["code"] == "BAD_USER_INPUT" and "sharp" in err["message"]
    err = await api.error('{ analyticsSummary(metric: "sharp") { totalRuns } }')
    assert err["extensions"]["code"] == "BAD_USER_INPUT" and "did you mean 'sharpe'" in err["message"]
    err = await api.error("{ compareRuns(ids: []) { overlap } }")
    assert err["extensions"]["code"] == "BAD_USER_INPUT"

    # A run that has not finished: every analytics field says so (CONFLICT), as does the page.
    queued = await create_run(api.stack.db, strategy="ema_crossover", dataset_id=int(daily),
                              params={}, options={})
    body = await api.post('query($id: ID!) { run(id: $id) { id status analysis { basic { sharpe } } '
                          'chart(kind: EQUITY) rolling(window: "20") { window } } }', {"id": queued.id})
    assert body["data"]["run"] == {"id": queued.id, "status": "QUEUED", "analysis": None,
                                   "chart": None, "rolling": None}
    assert len(body["errors"]) == 3
    for e in body["errors"]:
        assert e["extensions"]["code"] == "CONFLICT" and "not finished" in e["message"], e
    err = await api.error('query($ids: [ID!]!) { compareRuns(ids: $ids) { overlap } }',
                          {"ids": [run["id"], queued.id]})
    assert err["extensions"]["code"] == "CONFLICT" and queued.id in err["message"]
    page = await api.client.get(f"/runs/{queued.id}/report.html")
    assert page.status_code == 409
    assert page.json()["errors"][0]["extensions"]["code"] == "CONFLICT"

    unknown = "00000000-0000-0000-0000-000000000000"
    err = await api.error('query($ids: [ID!]!) { compareRuns(ids: $ids) { overlap } }',
                          {"ids": [run["id"], unknown]})
    assert err["extensions"]["code"] == "NOT_FOUND"
    page = await api.client.get(f"/runs/{unknown}/report.html")
    assert page.status_code == 404
    assert page.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def backtester(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=120)


async def test_cli_report_and_backtest_report(sqlite_api: Api, tmp_path: Path) -> None:
    api = sqlite_api
    run = await backtest(api, "ema_crossover", await sample_id(api, "1d"))
    env = {"DATABASE_URL": api.settings.effective_database_url,
           "BT_DATA_DIR": str(api.settings.data_dir)}
    out = tmp_path / "report.html"
    done = backtester("report", run["id"], "-o", str(out), env=env)
    assert done.returncode == 0, done.stderr
    html = out.read_text(encoding="utf-8")
    assert "Plotly.newPlot" in html and run["id"] in html
    assert f"{run['metrics']['sharpe']:,.3f}" in html

    missing = backtester("report", "no-such-run", "-o", str(tmp_path / "x.html"), env=env)
    assert missing.returncode == 2 and missing.stderr.startswith("error: run 'no-such-run' not found")
    assert not (tmp_path / "x.html").exists()

    written = tmp_path / "cli.html"
    done = backtester("backtest", "--data", str(ROOT / "data" / "nifty_daily_sample.csv.gz"),
                      "--strategy", "ema_crossover", "--json", "--report", str(written))
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)["metrics"]
    html = written.read_text(encoding="utf-8")
    assert "Plotly.newPlot" in html and f"{metrics['sharpe']:,.3f}" in html


def test_analysis_cache_is_bounded() -> None:
    class Item:
        def __init__(self, nbytes: int) -> None:
            self.nbytes = nbytes

    cache = AnalysisCache(max_entries=2, max_bytes=100)
    for i in range(3):
        cache.put((f"run{i}", 1), Item(10))  # type: ignore[arg-type]
    assert len(cache) == 2 and cache.get(("run0", 1)) is None
    assert cache.get(("run1", 1)) is not None  # now the most recently used
    cache.put(("big", 1), Item(95))  # type: ignore[arg-type]
    assert len(cache) == 1 and cache.get(("big", 1)) is not None
