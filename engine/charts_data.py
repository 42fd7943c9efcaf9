"""The raw, display-sized series behind each chart of a run, for custom frontends.

`chart_data(analysis, kind)` returns a JSON-safe dict; `engine.charts` turns the same
dicts into Plotly figures, so a chart and its data never disagree. Times are epoch
milliseconds UTC (`t`); long series are downsampled with `engine.downsample` to at
most `points` per series, always keeping the equity peak and the maximum drawdown's
trough. Trades beyond `points` are thinned per time bucket keeping the best and the
worst trade of each (so the largest win and loss always show).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine.analysis import Analysis, safe_list
from engine.analysis_nb import quantile_nb
from engine.downsample import DEFAULT_POINTS, check_points, downsample_indices, minmax_indices
from engine.errors import EngineInputError
from engine.rolling import RollingResult, Window, rolling_metrics

__all__ = ["CHART_KINDS", "chart_data", "check_kind", "default_window", "rolling_for_charts"]

CHART_KINDS = ("equity", "underwater", "returns_distribution", "trades", "pnl_vs_holding",
               "monthly_heatmap", "rolling_sharpe", "rolling_volatility")
HIST_BINS = 100
_NS_MS = 1_000_000


def _series(ts: np.ndarray, v: np.ndarray, idx: np.ndarray) -> dict[str, list[Any]]:
    return {"t": (ts[idx] // _NS_MS).tolist(), "v": safe_list(v[idx])}


def _point(a: Analysis, values: np.ndarray, i: int) -> dict[str, Any]:
    v = float(values[i])
    return {"t": int(a.series.ts[i]) // _NS_MS, "v": v if np.isfinite(v) else None}


def _equity(a: Analysis, points: int, _: RollingResult | None) -> dict[str, Any]:
    s = a.series
    mdd = a.drawdowns[0] if a.drawdowns else None
    keep = [s.peak_idx, s.trough_idx] + ([mdd["start_idx"]] if mdd else [])
    bench = None
    if s.benchmark_equity is not None:
        bench = _series(s.ts, s.benchmark_equity,
                        downsample_indices(s.ts, s.benchmark_equity, points))
    last = int(s.ts[-1]) // _NS_MS
    return {
        "equity": _series(s.ts, s.equity, downsample_indices(s.ts, s.equity, points, keep=keep)),
        "benchmark": bench,
        "peak": _point(a, s.equity, s.peak_idx),
        "trough": _point(a, s.equity, s.trough_idx) if mdd else None,
        "drawdowns": [{
            "rank": d["rank"],
            "start": int(s.ts[d["start_idx"]]) // _NS_MS,
            "end": int(s.ts[d["end_idx"]]) // _NS_MS if d["recovered"] else last,
            "recovered": d["recovered"],
            "depth_pct": d["depth_pct"],
        } for d in a.drawdowns],
    }


def _underwater(a: Analysis, points: int, _: RollingResult | None) -> dict[str, Any]:
    s = a.series
    dd = s.drawdown_pct
    return {
        "drawdown_pct": _series(s.ts, dd, downsample_indices(s.ts, dd, points, keep=[s.trough_idx])),
        "trough": _point(a, dd, s.trough_idx),
        "max_drawdown_pct": a.risk["max_drawdown_pct"],
    }


def _returns_distribution(a: Analysis, points: int, _: RollingResult | None) -> dict[str, Any]:
    r = a.series.returns
    r = r[np.isfinite(r)] * 100.0
    risk = {k: a.risk[k] for k in ("var_95", "cvar_95", "var_99", "cvar_99")}
    out: dict[str, Any] = {"n": int(r.shape[0]), "unit": "percent per bar", **risk,
                           "bins": [], "counts": [], "below": 0, "above": 0}
    if r.shape[0] == 0:
        return out
    # 0.1%-99.9% of returns (stretched to show CVaR 99) keeps the shape readable
    # under fat tails; the returns outside are counted, not drawn.
    lo = min(quantile_nb(r, 0.001), -(risk["cvar_99"] or 0.0), -(risk["var_99"] or 0.0))
    hi = quantile_nb(r, 0.999)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    n_bins = min(HIST_BINS, max(10, points // 4))
    counts, edges = np.histogram(r, bins=n_bins, range=(lo, hi))
    out.update(bins=safe_list(edges), counts=counts.tolist(),
               below=int((r < lo).sum()), above=int((r > hi).sum()))
    return out


def _trade_sample(a: Analysis, points: int) -> tuple[np.ndarray, int]:
    tr = a.series.trades
    return minmax_indices(tr.pnl, points), len(tr)


def _trades(a: Analysis, points: int, _: RollingResult | None) -> dict[str, Any]:
    s = a.series
    tr = s.trades
    idx, n = _trade_sample(a, points)
    price = None
    if s.close is not None:
        price = _series(s.ts, s.close, downsample_indices(s.ts, s.close, points))
    return {
        "price": price,
        "n_trades": n,
        "n_shown": int(idx.shape[0]),
        "trades": {
            "entry_t": (tr.entry_time[idx] // _NS_MS).tolist(),
            "exit_t": (tr.exit_time[idx] // _NS_MS).tolist(),
            "entry_price": safe_list(tr.entry_price[idx]),
            "exit_price": safe_list(tr.exit_price[idx]),
            "side": tr.side[idx].tolist(),
            "pnl": safe_list(tr.pnl[idx]),
            "is_open": tr.is_open[idx].tolist(),
        },
    }


def _holding_unit(seconds: np.ndarray) -> tuple[str, float]:
    med = float(np.median(seconds)) if seconds.size else 0.0
    if med < 2 * 3600:
        return "minutes", 60.0
    if med < 2 * 86400:
        return "hours", 3600.0
    return "days", 86400.0


def _pnl_vs_holding(a: Analysis, points: int, _: RollingResult | None) -> dict[str, Any]:
    tr = a.series.trades
    idx, n = _trade_sample(a, points)
    secs = (tr.exit_time - tr.entry_time) / 1e9
    unit, div = _holding_unit(secs)
    return {
        "n_trades": n,
        "n_shown": int(idx.shape[0]),
        "unit": unit,
        "holding": safe_list(secs[idx] / div),
        "holding_bars": tr.bars_held[idx].tolist(),
        "pnl": safe_list(tr.pnl[idx]),
        "side": tr.side[idx].tolist(),
    }


def _monthly_heatmap(a: Analysis, points: int, _: RollingResult | None) -> dict[str, Any]:
    return dict(a.monthly_table)


def default_window(a: Analysis) -> Window:
    """One month of bars (bars_per_year / 12), or a quarter of a run shorter than 4 months."""
    n = a.series.equity.shape[0]
    month = max(2, round(a.series.bars_per_year / 12.0))
    bars = month if n >= 4 * month else max(2, n // 4)
    return Window(label=f"{bars} bars", bars=bars)


def rolling_for_charts(a: Analysis, window: int | str | Window | None = None) -> RollingResult:
    """The rolling Sharpe and volatility the rolling charts show (default_window if None)."""
    w = default_window(a) if window is None else window
    return rolling_metrics(a.series.equity, a.series.ts, w,
                           bars_per_year=a.series.bars_per_year, metrics=("sharpe", "volatility"))


def _rolling(name: str, full_key: str) -> Callable[[Analysis, int, RollingResult | None],
                                                   dict[str, Any]]:
    def build(a: Analysis, points: int, rolled: RollingResult | None) -> dict[str, Any]:
        rr = rolled if rolled is not None else rolling_for_charts(a)
        v = rr.series[name]
        return {
            "window": rr.window.label,
            "window_bars": rr.window.bars or None,
            "series": _series(rr.ts, v, downsample_indices(rr.ts, v, points)),
            "full_period": a.risk.get(full_key, a.basic.get(full_key)),
        }
    return build


_BUILDERS: dict[str, Callable[[Analysis, int, RollingResult | None], dict[str, Any]]] = {
    "equity": _equity,
    "underwater": _underwater,
    "returns_distribution": _returns_distribution,
    "trades": _trades,
    "pnl_vs_holding": _pnl_vs_holding,
    "monthly_heatmap": _monthly_heatmap,
    "rolling_sharpe": _rolling("sharpe", "sharpe"),
    "rolling_volatility": _rolling("volatility", "volatility_pct"),
}


def check_kind(kind: str) -> str:
    """`kind` if it names a chart, else EngineInputError listing the kinds."""
    if kind not in _BUILDERS:
        close = [k for k in CHART_KINDS if kind and (kind in k or k in kind)]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise EngineInputError(
            f"unknown chart kind {kind!r}{hint}; expected one of {', '.join(CHART_KINDS)}")
    return kind


def chart_data(
    analysis: Analysis,
    kind: str,
    *,
    points: int = DEFAULT_POINTS,
    window: int | str | Window | None = None,
    rolled: RollingResult | None = None,
) -> dict[str, Any]:
    """JSON-safe raw series of one chart kind (see CHART_KINDS), with "kind" and "tz".

    `window` is the rolling charts' window (default: `default_window`); pass `rolled`
    (from `rolling_for_charts`) to reuse one rolling computation across charts.
    """
    check_kind(kind)
    points = check_points(points)
    if rolled is None and kind.startswith("rolling_"):
        rolled = rolling_for_charts(analysis, window)
    # Builders emit JSON-safe values already (safe_list), so no slow recursive pass here.
    return {"kind": kind, "tz": analysis.series.tz, **_BUILDERS[kind](analysis, points, rolled)}
