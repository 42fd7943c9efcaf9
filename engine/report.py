"""Standalone HTML tear sheet of one run: headline metrics, tables and every chart, offline.

plotly.js is embedded from the installed plotly package (no CDN), figures and tables
are inlined, and a Content-Security-Policy forbids any network access, so the file
opens the same on a plane as on the server.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.analysis import Analysis, json_safe
from engine.charts import CHART_KINDS, CHART_TITLES, MONTHS, all_charts
from engine.downsample import DEFAULT_POINTS

__all__ = ["plotly_js", "render_report", "write_report"]

LABELS = {
    "total_return_pct": "Total return", "cagr_pct": "CAGR", "sharpe": "Sharpe ratio",
    "max_drawdown_pct": "Max drawdown", "final_equity": "Final equity",
    "initial_cash": "Initial cash", "n_trades": "Closed trades", "n_open": "Open positions",
    "exposure_pct": "Exposure", "n_bars": "Bars", "bars_per_year": "Bars per year",
    "volatility_pct": "Volatility (ann.)", "sortino": "Sortino ratio", "calmar": "Calmar ratio",
    "var_95": "VaR 95% (bar)", "cvar_95": "CVaR 95% (bar)", "var_99": "VaR 99% (bar)",
    "cvar_99": "CVaR 99% (bar)", "skew": "Skew", "kurtosis": "Excess kurtosis",
    "tail_ratio": "Tail ratio", "ulcer_index": "Ulcer index",
    "max_drawdown_duration_bars": "Longest drawdown (bars)",
    "max_drawdown_duration_days": "Longest drawdown (days)",
    "time_to_recovery_bars": "Max DD recovery (bars)",
    "time_to_recovery_days": "Max DD recovery (days)", "win_rate": "Win rate",
    "avg_holding_bars": "Avg holding (bars)", "avg_holding_days": "Avg holding (days)",
    "sqn": "SQN", "kelly": "Kelly fraction", "return_pct": "Return", "alpha_pct": "Alpha (ann.)",
    "beta": "Beta", "information_ratio": "Information ratio",
    "tracking_error_pct": "Tracking error (ann.)", "excess_return_pct": "Excess return",
    "best_bar_pct": "Best bar", "worst_bar_pct": "Worst bar",
    "current_drawdown_pct": "Current drawdown", "max_drawdown_recovered": "Max DD recovered",
    "n_wins": "Winning trades", "n_losses": "Losing trades", "net_pnl": "Net P&L",
    "open_pnl": "Open P&L", "total_pnl": "Total P&L", "avg_pnl": "Avg P&L",
    "key": "", "depth_pct": "Depth", "length_bars": "Length (bars)",
    "length_days": "Length (days)", "recovery_bars": "Recovery (bars)",
}
_CSP = ("default-src 'none'; script-src 'unsafe-inline'; "
        "style-src 'unsafe-inline'; img-src data: blob:; font-src data:")
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#222;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
.sub{color:#666;font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;margin:16px 0}
.card{background:#fff;border-radius:8px;padding:10px 12px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card .k{font-size:12px;color:#666}.card .v{font-size:20px;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:14px}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px;
box-shadow:0 1px 2px rgba(0,0,0,.08);border-radius:8px;overflow:hidden}
th,td{padding:5px 9px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#fafafa;font-weight:600}
.neg{color:#c62828}.pos{color:#2e7d32}
.chart{background:#fff;border-radius:8px;box-shadow:0 1px 2px rgba(0,0,0,.08);
margin:0 0 14px;min-height:360px}
"""


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """The plotly.js bundle shipped inside the installed plotly package."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().replace("</script", "<\\/script")


def _label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " ").capitalize())


def _fmt(key: str, v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if key.endswith("_pct") or key in ("win_rate", "var_95", "cvar_95", "var_99", "cvar_99",
                                           "ulcer_index"):
            return f"{v:,.2f}%"
        if abs(v) >= 1000:
            return f"{v:,.2f}"
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.2f}"
    return html.escape(str(v))


def _cls(v: Any) -> str:
    if isinstance(v, int | float) and not isinstance(v, bool) and v:
        return ' class="neg"' if v < 0 else ' class="pos"'
    return ""


def _kv_table(title: str, d: Mapping[str, Any] | None, skip: Sequence[str] = ()) -> str:
    if not d:
        return f"<div><h2>{html.escape(title)}</h2><p class='sub'>not available</p></div>"
    rows = "".join(
        f"<tr><td>{html.escape(_label(k))}</td><td>{_fmt(k, v)}</td></tr>"
        for k, v in d.items() if k not in skip and not isinstance(v, list | dict))
    return f"<div><h2>{html.escape(title)}</h2><table><tbody>{rows}</tbody></table></div>"


def _rows_table(title: str, rows: Sequence[Mapping[str, Any]], cols: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(_label(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td{_cls(r.get(c)) if c.endswith('pnl') else ''}>"
                         f"{_fmt(c, r.get(c))}</td>" for c in cols) + "</tr>"
        for r in rows) or f"<tr><td colspan='{len(cols)}'>none</td></tr>"
    return (f"<div><h2>{html.escape(title)}</h2><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>")


def _monthly(table: Mapping[str, Any]) -> str:
    head = "<th>Year</th>" + "".join(f"<th>{m}</th>" for m in MONTHS) + "<th>Year</th>"
    body = ""
    for y, row, total in zip(table["years"], table["values"], table["year_total"], strict=True):
        cells = "".join(f"<td{_cls(v)}>{'' if v is None else f'{v:.2f}'}</td>" for v in row)
        tot = "" if total is None else f"{total:.2f}"
        body += f"<tr><td>{y}</td>{cells}<td{_cls(total)}><b>{tot}</b></td></tr>"
    return (f"<h2>Monthly and yearly returns (%)</h2><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _script_json(obj: Any) -> str:
    return json.dumps(json_safe(obj), separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def render_report(
    analysis: Analysis,
    *,
    title: str = "Backtest report",
    run_info: Mapping[str, Any] | None = None,
    charts: Mapping[str, dict[str, Any]] | None = None,
    points: int = DEFAULT_POINTS,
) -> str:
    """The tear sheet as one self-contained HTML document (UTF-8 text).

    run_info: optional facts shown under the title (run id, strategy, params, dataset...).
    charts: figures to show (default: `engine.charts.all_charts(analysis, points=points)`).
    """
    a = analysis.to_dict()
    figs = dict(charts) if charts is not None else all_charts(analysis, points=points)
    b, r, t = a["basic"], a["risk"], a["trade_analysis"]
    cards = [("total_return_pct", b), ("cagr_pct", b), ("sharpe", b), ("max_drawdown_pct", b),
             ("volatility_pct", r), ("final_equity", b), ("n_trades", b), ("win_rate", t),
             ("profit_factor", t)]
    cards_html = "".join(
        f"<div class='card'><div class='k'>{html.escape(_label(k))}</div>"
        f"<div class='v'>{_fmt(k, src.get(k))}</div></div>" for k, src in cards)
    info = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in (run_info or {}).items())
    info_html = f"<table><tbody>{info}</tbody></table>" if info else ""
    group_cols = ["key", "n_trades", "win_rate", "total_pnl", "avg_pnl", "best", "worst",
                  "profit_factor", "avg_holding_bars"]
    dd_cols = ["rank", "start", "trough", "end", "depth_pct", "length_bars", "length_days",
               "recovery_bars"]
    chart_divs = "".join(f"<div class='chart' id='chart-{k}' data-kind='{k}'></div>"
                         for k in CHART_KINDS if k in figs)
    tables = "".join([
        "<div class='grid'>",
        _kv_table("Performance", b, skip=("tz",)),
        _kv_table("Risk", r),
        _kv_table("Trades", t),
        _kv_table("Benchmark: buy and hold", a["benchmark"]),
        "</div>",
        _rows_table("Worst drawdown periods", a["drawdowns"], dd_cols),
        "<div class='grid'>",
        _rows_table("By side", t["by_side"], group_cols),
        _rows_table("By exit reason", t["by_exit_reason"], group_cols),
        "</div><div class='grid'>",
        _rows_table("By weekday (entry, exchange time)", t["by_weekday"], group_cols),
        _rows_table("By hour of day (entry, exchange time)", t["by_hour"], group_cols),
        "</div>",
        _monthly(a["monthly_table"]),
    ])
    span = f"{b['start']} to {b['end']} ({b['tz']}), {b['n_bars']:,} bars"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style>
<script>{plotly_js()}</script></head>
<body><main>
<h1>{html.escape(title)}</h1><div class="sub">{html.escape(span)}</div>
{info_html}<div class="cards">{cards_html}</div>
<h2>Charts</h2>{chart_divs}
{tables}
<p class="sub">Generated offline; charts show at most {points:,} points per series
(extremes kept). Titles: {html.escape(", ".join(CHART_TITLES[k] for k in figs if k in CHART_TITLES))}.</p>
</main>
<script>
const FIGURES = {_script_json(figs)};
for (const [kind, fig] of Object.entries(FIGURES)) {{
  const el = document.getElementById("chart-" + kind);
  if (el) Plotly.newPlot(el, fig.data, fig.layout, {{responsive: true, displaylogo: false}});
}}
</script>
</body></html>
"""


def write_report(path: str | Path, analysis: Analysis, **kwargs: Any) -> Path:
    """Render the tear sheet (see render_report) and write it to `path` as UTF-8."""
    out = Path(path)
    out.write_text(render_report(analysis, **kwargs), encoding="utf-8")
    return out
