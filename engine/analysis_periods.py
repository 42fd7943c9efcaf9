"""Calendar views of a run: yearly returns, the month x year table, and time labels.

Monthly returns come from `engine.metrics.monthly_returns` (the one definition); yearly
returns use the same rule on exchange-local years: equity at the year's last bar over
equity at the previous year's last bar (the initial cash before the first year).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from engine.calendar import local_ns

__all__ = ["iso_local", "local_labels", "monthly_table", "to_ms", "yearly_returns"]

NS_PER_MS = 1_000_000


def to_ms(ts_ns: np.ndarray) -> list[int]:
    """Epoch milliseconds (UTC) as plain ints, for JSON."""
    return (np.asarray(ts_ns, dtype=np.int64) // NS_PER_MS).tolist()


def local_labels(ts_ns: np.ndarray, tz: str) -> list[str]:
    """Exchange-local wall-clock times as 'YYYY-MM-DD HH:MM:SS' (what Plotly date axes read)."""
    loc = local_ns(np.asarray(ts_ns, dtype=np.int64), tz)
    s = np.datetime_as_string(loc.view("datetime64[ns]"), unit="s")
    return np.char.replace(s, "T", " ").tolist()


def iso_local(ns: int | None, tz: str) -> str | None:
    """One instant as ISO-8601 local time with its UTC offset, e.g. 2024-01-02T09:15:00+05:30."""
    if ns is None:
        return None
    loc = int(local_ns(np.asarray([ns], dtype=np.int64), tz)[0])
    off_min = (loc - int(ns)) // 60_000_000_000
    sign = "+" if off_min >= 0 else "-"
    hh, mm = divmod(abs(off_min), 60)
    wall = str(np.datetime64(loc, "ns").astype("datetime64[s]"))
    return f"{wall}{sign}{hh:02d}:{mm:02d}"


def yearly_returns(
    equity: np.ndarray, ts: np.ndarray, tz: str, initial_cash: float
) -> list[dict[str, Any]]:
    """[{"year", "return_pct"}] per exchange-local calendar year that has bars."""
    n = int(equity.shape[0])
    if n == 0:
        return []
    t = np.asarray(ts, dtype=np.int64)
    first, final = (pd.Timestamp(int(x), tz="UTC").tz_convert(tz).year for x in (t[0], t[-1]))
    years = list(range(first, final + 1))
    # UTC instants of local midnight on 1 January of each following year.
    cuts = [pd.Timestamp(year=y + 1, month=1, day=1).tz_localize(
        tz, ambiguous=False, nonexistent="shift_forward").value for y in years[:-1]]
    ends = [*np.searchsorted(t, np.asarray(cuts, dtype=np.int64), side="left").tolist(), n]
    rows: list[dict[str, Any]] = []
    prev = float(initial_cash)
    begin = 0
    for year, stop in zip(years, ends, strict=True):
        if stop <= begin:
            continue
        end = float(equity[stop - 1])
        ret = (end / prev - 1.0) * 100.0 if prev > 0 else math.nan
        rows.append({"year": year, "return_pct": ret if math.isfinite(ret) else None})
        prev = end
        begin = stop
    return rows


def monthly_table(
    monthly: list[dict[str, Any]], yearly: list[dict[str, Any]]
) -> dict[str, Any]:
    """Monthly returns pivoted for a heatmap: {"years", "months", "values", "year_total"}.

    values[y][m] is the return of month m+1 of years[y] in percent, None where the run
    has no bars; year_total[y] is that year's return.
    """
    years = sorted({int(r["year"]) for r in monthly} | {int(r["year"]) for r in yearly})
    pos = {y: i for i, y in enumerate(years)}
    values: list[list[float | None]] = [[None] * 12 for _ in years]
    for r in monthly:
        values[pos[int(r["year"])]][int(r["month"]) - 1] = r["return_pct"]
    total: list[float | None] = [None] * len(years)
    for r in yearly:
        total[pos[int(r["year"])]] = r["return_pct"]
    return {"years": years, "months": list(range(1, 13)), "values": values, "year_total": total}
