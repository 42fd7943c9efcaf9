"""Every chart kind of a million-bar run: valid Plotly JSON, under 1.5 MB, extremes kept."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from engine.analysis import Analysis, analyze
from engine.analysis_periods import local_labels
from engine.charts import CHART_KINDS, all_charts, chart, comparison_chart
from engine.charts_data import chart_data, default_window
from engine.compare import CompareRun, compare_runs
from engine.errors import EngineInputError

MAX_BYTES = 1_500_000


@pytest.fixture(scope="module")
def figures(big_analysis: Analysis) -> dict[str, dict]:
    return all_charts(big_analysis)


def test_every_kind_is_valid_plotly_json_under_the_size_limit(figures: dict[str, dict]) -> None:
    assert list(figures) == list(CHART_KINDS)
    for kind, fig in figures.items():
        text = json.dumps(fig, allow_nan=False)
        assert len(text.encode()) < MAX_BYTES, kind
        go.Figure(fig)  # raises on any attribute plotly.js does not know
        assert pio.from_json(text).data, kind


def test_every_trace_respects_the_point_budget(big_analysis: Analysis) -> None:
    for points in (2000, 300):
        for kind in CHART_KINDS:
            fig = chart(big_analysis, kind, points=points)
            for trace in fig["data"]:
                for axis in ("x", "y"):
                    assert len(trace.get(axis, [])) <= points, (kind, trace.get("name"))


def _xy(fig: dict, name: str) -> tuple[list[str], list[float]]:
    trace = next(t for t in fig["data"] if t.get("name") == name)
    return trace["x"], trace["y"]


def test_max_drawdown_trough_and_equity_peak_survive(
    big_analysis: Analysis, figures: dict[str, dict]
) -> None:
    s = big_analysis.series
    trough, peak = s.trough_idx, s.peak_idx
    assert big_analysis.drawdowns[0]["trough_idx"] == trough
    tz = s.tz
    t_label, p_label = local_labels(s.ts[[trough, peak]], tz)
    x, y = _xy(figures["underwater"], "Drawdown")
    assert min(y) == float(s.drawdown_pct[trough]) == -big_analysis.risk["max_drawdown_pct"]
    assert x[y.index(min(y))] == t_label
    x, y = _xy(figures["equity"], "Strategy")
    assert max(y) == float(s.equity.max()) and x[y.index(max(y))] == p_label
    assert float(s.equity[trough]) in y and t_label in x
    _, by = _xy(figures["equity"], "Buy & hold")
    assert s.benchmark_equity is not None
    assert max(by) == float(s.benchmark_equity.max()) and min(by) == float(s.benchmark_equity.min())
    _, price = _xy(figures["trades"], "Close")
    assert s.close is not None and max(price) == float(s.close.max())


def test_trades_chart_keeps_the_biggest_win_and_loss(
    big_analysis: Analysis, figures: dict[str, dict]
) -> None:
    pnl = big_analysis.series.trades.pnl
    assert pnl.shape[0] > 2000  # the million-bar run has more trades than points
    _, exits = _xy(figures["trades"], "Exit")
    colors = next(t for t in figures["trades"]["data"] if t["name"] == "Exit")["marker"]["color"]
    assert len(exits) <= 2000
    assert max(colors) == float(pnl.max()) and min(colors) == float(pnl.min())
    d = chart_data(big_analysis, "pnl_vs_holding")
    assert d["n_trades"] == pnl.shape[0] and d["n_shown"] <= 2000
    assert max(d["pnl"]) == float(pnl.max())


def test_distribution_marks_var_and_cvar(big_analysis: Analysis, figures: dict[str, dict]) -> None:
    fig = figures["returns_distribution"]
    xs = sorted(shape["x0"] for shape in fig["layout"]["shapes"])
    r = big_analysis.risk
    assert xs == sorted(-r[k] for k in ("var_95", "cvar_95", "var_99", "cvar_99"))
    d = chart_data(big_analysis, "returns_distribution")
    assert sum(d["counts"]) + d["below"] + d["above"] == d["n"] == big_analysis.series.returns.shape[0]


def test_heatmap_is_the_monthly_table(big_analysis: Analysis, figures: dict[str, dict]) -> None:
    trace = figures["monthly_heatmap"]["data"][0]
    assert trace["z"] == big_analysis.monthly_table["values"]
    n_months = sum(v is not None for row in trace["z"] for v in row)
    assert n_months == len(big_analysis.monthly_returns)


def test_rolling_charts_use_the_default_window(big_analysis: Analysis) -> None:
    w = default_window(big_analysis)
    assert w.bars == round(big_analysis.series.bars_per_year / 12)
    d = chart_data(big_analysis, "rolling_sharpe", window="30D", points=500)
    assert d["window"] == "30D" and len(d["series"]["t"]) <= 500
    assert d["full_period"] == big_analysis.basic["sharpe"]


def test_chart_data_is_json_safe_for_every_kind(big_analysis: Analysis) -> None:
    for kind in CHART_KINDS:
        d = chart_data(big_analysis, kind)
        assert d["kind"] == kind and d["tz"] == "Asia/Kolkata"
        json.dumps(d, allow_nan=False)


@pytest.mark.parametrize("equity", [[100.0], [100.0, 100.0, 100.0], [100.0, 50.0, 0.0, -5.0]])
def test_degenerate_runs_still_chart(equity: list[float]) -> None:
    ts = np.datetime64("2024-01-01", "ns").astype(np.int64) + np.arange(len(equity)) * 60_000_000_000
    a = analyze(np.array(equity), ts, [], tz="UTC", bars_per_year=252.0,
                benchmark_close=np.linspace(10.0, 11.0, len(equity)))
    for kind, fig in all_charts(a).items():
        go.Figure(json.loads(json.dumps(fig, allow_nan=False)))
        assert fig["layout"]["title"]["text"], kind


def test_unknown_kind_says_what_exists(big_analysis: Analysis) -> None:
    with pytest.raises(EngineInputError, match="did you mean 'underwater'"):
        chart(big_analysis, "underwater_chart")
    with pytest.raises(EngineInputError, match="points"):
        chart(big_analysis, "equity", points=3)


def test_comparison_figures_are_valid(big_analysis: Analysis) -> None:
    s = big_analysis.series
    runs = [CompareRun("a", s.ts, s.equity, {"sharpe": 1.0}, "Strategy"),
            CompareRun("b", s.ts, s.benchmark_equity, {"sharpe": 0.5}, "Buy & hold")]  # type: ignore[arg-type]
    cmp = compare_runs(runs)
    for kind in ("equity", "correlation"):
        fig = comparison_chart(cmp, kind=kind)
        text = json.dumps(fig, allow_nan=False)
        assert len(text) < MAX_BYTES
        go.Figure(fig)
    with pytest.raises(EngineInputError):
        comparison_chart(cmp, kind="pie")


def test_comparison_chart_honours_points(big_analysis: Analysis) -> None:
    s = big_analysis.series
    cmp = compare_runs([CompareRun("a", s.ts, s.equity, {}, "A"),
                        CompareRun("b", s.ts, s.benchmark_equity, {}, "B")])  # type: ignore[arg-type]
    small = comparison_chart(cmp, kind="equity", points=200)
    assert all(0 < len(trace["y"]) <= 200 for trace in small["data"])
    full = comparison_chart(cmp, kind="equity", points=None)
    assert all(len(trace["y"]) == len(s.ts) for trace in full["data"])
