"""Plotly figures of a run (and of a run comparison) as plain JSON-able dicts.

Each figure is `{"data": [...], "layout": {...}}`, built directly as dicts (no
plotly.graph_objects validation on the hot path) from `engine.charts_data.chart_data`,
so a chart shows exactly its data. Times on the x axes are the exchange's local
wall-clock times. Every trace holds at most `points` points (default 2,000), which
keeps any figure of a million-bar run far below 1.5 MB of JSON.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.analysis import Analysis
from engine.analysis_periods import local_labels
from engine.charts_data import CHART_KINDS, chart_data, check_kind, rolling_for_charts
from engine.downsample import DEFAULT_POINTS
from engine.errors import EngineInputError
from engine.rolling import RollingResult, Window

if TYPE_CHECKING:
    from engine.compare import Comparison

__all__ = ["CHART_KINDS", "CHART_TITLES", "all_charts", "chart", "comparison_chart"]

CHART_TITLES = {
    "equity": "Equity curve",
    "underwater": "Underwater (drawdown)",
    "returns_distribution": "Distribution of bar returns",
    "trades": "Trades on price",
    "pnl_vs_holding": "Trade P&L vs holding time",
    "monthly_heatmap": "Monthly returns (%)",
    "rolling_sharpe": "Rolling Sharpe ratio",
    "rolling_volatility": "Rolling volatility (% annualized)",
}
STRATEGY = "#1f77b4"
BENCHMARK = "#7f7f7f"
LOSS = "#d62728"
GAIN = "#2ca02c"
SHORT = "#ff7f0e"
DIVERGING = [[0.0, "#b2182b"], [0.5, "#f7f7f7"], [1.0, "#1a9850"]]
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_NS_MS = 1_000_000


def _x(ms: Sequence[int], tz: str) -> list[str]:
    return local_labels(np.asarray(ms, dtype=np.int64) * _NS_MS, tz) if len(ms) else []


def _axis(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "gridcolor": "#ececec", "zerolinecolor": "#cccccc",
            "automargin": True, **extra}


def _layout(title: str, xaxis: dict[str, Any], yaxis: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.01, "xanchor": "left"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
        "margin": {"l": 60, "r": 30, "t": 60, "b": 50},
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
        "xaxis": xaxis,
        "yaxis": yaxis,
        **extra,
    }


def _line(name: str, x: list[Any], y: list[Any], color: str, **extra: Any) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines", "name": name, "x": x, "y": y,
            "line": {"color": color, "width": 1.5}, **extra}


def _hline(y: float, color: str, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    shape = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": y, "y1": y,
             "line": {"color": color, "width": 1, "dash": "dot"}}
    note = {"xref": "paper", "x": 1, "xanchor": "right", "yref": "y", "y": y, "yanchor": "bottom",
            "text": text, "showarrow": False, "font": {"size": 10, "color": color}}
    return shape, note


def _equity_fig(d: dict[str, Any]) -> dict[str, Any]:
    tz = d["tz"]
    eq = d["equity"]
    data = [_line("Strategy", _x(eq["t"], tz), eq["v"], STRATEGY)]
    if d["benchmark"]:
        b = d["benchmark"]
        data.append(_line("Buy & hold", _x(b["t"], tz), b["v"], BENCHMARK,
                          line={"color": BENCHMARK, "width": 1.2, "dash": "dot"}))
    marks = [("Equity peak", d["peak"], GAIN)] + ([("Max drawdown trough", d["trough"], LOSS)]
                                                  if d["trough"] else [])
    data.append({
        "type": "scatter", "mode": "markers", "name": "Peak / trough", "showlegend": False,
        "x": _x([m[1]["t"] for m in marks], tz), "y": [m[1]["v"] for m in marks],
        "text": [m[0] for m in marks], "marker": {"color": [m[2] for m in marks], "size": 9},
        "hovertemplate": "%{text}<br>%{x}<br>%{y:,.2f}<extra></extra>",
    })
    shapes, notes = [], []
    for dd in d["drawdowns"]:
        x0, x1 = _x([dd["start"], dd["end"]], tz)
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": x0, "x1": x1,
                       "y0": 0, "y1": 1, "fillcolor": "rgba(214, 39, 40, 0.10)",
                       "line": {"width": 0}, "layer": "below"})
        notes.append({"xref": "x", "x": x0, "xanchor": "left", "yref": "paper", "y": 1,
                      "yanchor": "top", "showarrow": False, "font": {"size": 10, "color": LOSS},
                      "text": f"#{dd['rank']} -{dd['depth_pct']:.1f}%"})
    layout = _layout("Equity curve (shaded: 5 worst drawdowns)", _axis("", type="date"),
                     _axis("Equity"), shapes=shapes, annotations=notes, hovermode="x")
    return {"data": data, "layout": layout}


def _underwater_fig(d: dict[str, Any]) -> dict[str, Any]:
    tz = d["tz"]
    dd = d["drawdown_pct"]
    tr = d["trough"]
    data = [
        _line("Drawdown", _x(dd["t"], tz), dd["v"], LOSS, fill="tozeroy",
              fillcolor="rgba(214, 39, 40, 0.25)", hovertemplate="%{x}<br>%{y:.2f}%<extra></extra>"),
        {"type": "scatter", "mode": "markers", "name": "Max drawdown", "x": _x([tr["t"]], tz),
         "y": [tr["v"]], "marker": {"color": LOSS, "size": 9, "line": {"color": "black", "width": 1}},
         "hovertemplate": "Max drawdown %{y:.2f}%<br>%{x}<extra></extra>"},
    ]
    layout = _layout(CHART_TITLES["underwater"], _axis("", type="date"),
                     _axis("Drawdown (%)", ticksuffix="%"), hovermode="x")
    return {"data": data, "layout": layout}


def _distribution_fig(d: dict[str, Any]) -> dict[str, Any]:
    edges = d["bins"]
    centers = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
    width = (edges[1] - edges[0]) if len(edges) > 1 else 1.0
    data = [{"type": "bar", "name": "Bars", "x": centers, "y": d["counts"], "width": width,
             "marker": {"color": STRATEGY, "line": {"width": 0}}, "showlegend": False,
             "hovertemplate": "%{x:.4f}%: %{y} bars<extra></extra>"}]
    shapes, notes = [], []
    marks = [("var_95", "VaR 95", "#e6550d", "dash"), ("cvar_95", "CVaR 95", "#e6550d", "dot"),
             ("var_99", "VaR 99", LOSS, "dash"), ("cvar_99", "CVaR 99", LOSS, "dot")]
    for i, (key, label, color, dash) in enumerate(marks):
        v = d[key]
        if v is None:
            continue
        shapes.append({"type": "line", "xref": "x", "x0": -v, "x1": -v, "yref": "paper",
                       "y0": 0, "y1": 1, "line": {"color": color, "width": 1.5, "dash": dash}})
        notes.append({"xref": "x", "x": -v, "yref": "paper", "y": 1 - 0.07 * i, "xanchor": "right",
                      "showarrow": False, "text": f"{label}: {-v:.3f}%",
                      "font": {"size": 10, "color": color}})
    hidden = d["below"] + d["above"]
    sub = f" ({hidden} outside the range shown)" if hidden else ""
    layout = _layout(f"{CHART_TITLES['returns_distribution']}{sub}",
                     _axis("Bar return (%)", ticksuffix="%"), _axis("Bars"),
                     shapes=shapes, annotations=notes, bargap=0)
    return {"data": data, "layout": layout}


def _trades_fig(d: dict[str, Any]) -> dict[str, Any]:
    tz = d["tz"]
    t = d["trades"]
    pnl = np.asarray(t["pnl"], dtype=np.float64)
    side = np.asarray(t["side"])
    span = float(np.max(np.abs(pnl))) if pnl.size else 1.0
    span = span if span > 0 else 1.0
    size = 8 if pnl.shape[0] <= 300 else 5
    data = []
    if d["price"]:
        data.append(_line("Close", _x(d["price"]["t"], tz), d["price"]["v"], BENCHMARK,
                          line={"color": "#555555", "width": 1}))

    def markers(name: str, sel: np.ndarray, when: str, price: str, symbol: str,
                scale: bool) -> dict[str, Any]:
        marker = {"color": pnl[sel].tolist(), "colorscale": DIVERGING, "cmin": -span,
                  "cmax": span, "size": size, "symbol": symbol,
                  "line": {"color": "#333333", "width": 0.5}, "showscale": scale}
        if scale:
            marker["colorbar"] = {"title": {"text": "P&L"}, "thickness": 12}
        return {"type": "scatter", "mode": "markers", "name": name,
                "x": _x(np.asarray(t[when])[sel].tolist(), tz),
                "y": np.asarray(t[price])[sel].tolist(), "marker": marker,
                "hovertemplate": f"{name} %{{x}}<br>price %{{y:,.2f}}<br>P&L %{{marker.color:,.2f}}"
                                 "<extra></extra>"}

    everything = np.arange(pnl.shape[0])
    data.append(markers("Long entry", np.flatnonzero(side > 0), "entry_t", "entry_price",
                        "triangle-up", True))
    data.append(markers("Short entry", np.flatnonzero(side < 0), "entry_t", "entry_price",
                        "triangle-down", False))
    data.append(markers("Exit", everything, "exit_t", "exit_price", "x", False))
    shown = "" if d["n_shown"] == d["n_trades"] else (
        f" (best and worst of each period: {d['n_shown']} of {d['n_trades']} trades)")
    layout = _layout(f"{CHART_TITLES['trades']}{shown}", _axis("", type="date"),
                     _axis("Price"), hovermode="closest")
    return {"data": data, "layout": layout}


def _pnl_holding_fig(d: dict[str, Any]) -> dict[str, Any]:
    side = np.asarray(d["side"])
    hold = np.asarray(d["holding"], dtype=np.float64)
    pnl = np.asarray(d["pnl"], dtype=np.float64)
    data = []
    for name, sel, color in (("Long", side > 0, STRATEGY), ("Short", side < 0, SHORT)):
        data.append({"type": "scatter", "mode": "markers", "name": name,
                     "x": hold[sel].tolist(), "y": pnl[sel].tolist(),
                     "marker": {"color": color, "size": 6, "opacity": 0.7},
                     "hovertemplate": f"{name}: %{{x:.2f}} {d['unit']}<br>P&L %{{y:,.2f}}"
                                      "<extra></extra>"})
    zero = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": 0, "y1": 0,
            "line": {"color": "#999999", "width": 1}}
    shown = "" if d["n_shown"] == d["n_trades"] else f" ({d['n_shown']} of {d['n_trades']} trades)"
    layout = _layout(f"{CHART_TITLES['pnl_vs_holding']}{shown}",
                     _axis(f"Holding time ({d['unit']})"), _axis("P&L"), shapes=[zero],
                     hovermode="closest")
    return {"data": data, "layout": layout}


def _heatmap_fig(d: dict[str, Any]) -> dict[str, Any]:
    years = [f"{y} ({t:+.1f}%)" if t is not None else str(y)
             for y, t in zip(d["years"], d["year_total"], strict=True)]
    z = d["values"]
    text = [["" if v is None else f"{v:.1f}" for v in row] for row in z]
    finite = [abs(v) for row in z for v in row if v is not None]
    span = max(finite) if finite and max(finite) > 0 else 1.0
    data = [{"type": "heatmap", "x": list(MONTHS), "y": years, "z": z, "text": text,
             "texttemplate": "%{text}", "colorscale": DIVERGING, "zmin": -span, "zmax": span,
             "hoverongaps": False, "xgap": 2, "ygap": 2,
             "colorbar": {"title": {"text": "%"}, "thickness": 12},
             "hovertemplate": "%{y} %{x}: %{z:.2f}%<extra></extra>"}]
    layout = _layout(CHART_TITLES["monthly_heatmap"], _axis("", side="top"),
                     _axis("", autorange="reversed", type="category"),
                     height=max(260, 60 + 28 * len(years)))
    return {"data": data, "layout": layout}


def _rolling_fig(d: dict[str, Any]) -> dict[str, Any]:
    tz = d["tz"]
    s = d["series"]
    is_vol = d["kind"] == "rolling_volatility"
    unit = "%" if is_vol else ""
    data = [_line(f"Rolling ({d['window']})", _x(s["t"], tz), s["v"], STRATEGY,
                  hovertemplate=f"%{{x}}<br>%{{y:.2f}}{unit}<extra></extra>")]
    shapes, notes = [], []
    if d["full_period"] is not None:
        shape, note = _hline(d["full_period"], LOSS, f"whole run: {d['full_period']:.2f}{unit}")
        shapes.append(shape)
        notes.append(note)
    title = f"{CHART_TITLES[d['kind']]}, window {d['window']}"
    layout = _layout(title, _axis("", type="date"),
                     _axis("Volatility (%)" if is_vol else "Sharpe", ticksuffix=unit),
                     shapes=shapes, annotations=notes, hovermode="x")
    return {"data": data, "layout": layout}


_FIGURES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "equity": _equity_fig,
    "underwater": _underwater_fig,
    "returns_distribution": _distribution_fig,
    "trades": _trades_fig,
    "pnl_vs_holding": _pnl_holding_fig,
    "monthly_heatmap": _heatmap_fig,
    "rolling_sharpe": _rolling_fig,
    "rolling_volatility": _rolling_fig,
}


def chart(
    analysis: Analysis,
    kind: str,
    *,
    points: int = DEFAULT_POINTS,
    window: int | str | Window | None = None,
    rolled: RollingResult | None = None,
) -> dict[str, Any]:
    """One Plotly figure dict of `kind` (see CHART_KINDS), at most `points` per trace."""
    check_kind(kind)
    return _FIGURES[kind](chart_data(analysis, kind, points=points, window=window, rolled=rolled))


def all_charts(
    analysis: Analysis,
    *,
    points: int = DEFAULT_POINTS,
    window: int | str | Window | None = None,
) -> dict[str, dict[str, Any]]:
    """Every chart kind -> figure dict (the rolling metrics are computed once)."""
    rolled = rolling_for_charts(analysis, window)
    return {k: chart(analysis, k, points=points, rolled=rolled) for k in CHART_KINDS}


def comparison_chart(comparison: Comparison, *, kind: str = "equity",
                     points: int | None = DEFAULT_POINTS) -> dict[str, Any]:
    """Figure of a run comparison: "equity" (rebased to 100, each curve downsampled to
    `points`; None keeps every point) or "correlation" (heatmap)."""
    d = comparison.to_dict(points)
    labels = [r["label"] for r in d["runs"]]
    if kind == "correlation":
        z = d["correlation"] or []
        text = [["" if v is None else f"{v:.2f}" for v in row] for row in z]
        data = [{"type": "heatmap", "x": labels, "y": labels, "z": z, "text": text,
                 "texttemplate": "%{text}", "colorscale": DIVERGING, "zmin": -1, "zmax": 1,
                 "colorbar": {"thickness": 12}}]
        return {"data": data, "layout": _layout("Correlation of returns", _axis(""),
                                                _axis("", autorange="reversed"))}
    if kind != "equity":
        raise EngineInputError(
            f"unknown comparison chart kind {kind!r}; expected 'equity' or 'correlation'")
    data = []
    for i, (label, s) in enumerate(zip(labels, d["equity"], strict=True)):
        if s is None:
            continue
        x = local_labels(np.asarray(s["t"], dtype=np.int64) * _NS_MS, d["tz"])
        data.append(_line(label, x, s["v"], PALETTE[i % len(PALETTE)]))
    title = "Equity rebased to 100" if d["overlap"] else f"No overlap: {d['message']}"
    return {"data": data, "layout": _layout(title, _axis("", type="date"), _axis("Rebased (100)"),
                                            hovermode="x")}
