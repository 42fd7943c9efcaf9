"""A dataset's first rows and its summary statistics (prices, volume, dates, returns).

Pure numpy over `Bars`, called in a thread by `workers.dataset_service`: a million
bars take a few milliseconds. Values that are undefined (returns of a one-bar
dataset) are None, never NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.bars import Bars
from engine.calendar import bars_per_year, local_clock

__all__ = ["MAX_PREVIEW_ROWS", "DatasetPreview", "bar_statistics", "preview", "preview_rows"]

MAX_PREVIEW_ROWS = 1000


@dataclass(frozen=True)
class DatasetPreview:
    """`rows`: the first bars as dicts (ts in int64 ns); `stats`: `bar_statistics`."""

    rows: list[dict[str, Any]]
    stats: dict[str, Any]


def _num(value: Any) -> float | None:
    f = float(value)
    return f if math.isfinite(f) else None


def preview_rows(bars: Bars, n: int) -> list[dict[str, Any]]:
    """The first `n` bars: ts (int64 ns UTC), open, high, low, close, volume."""
    k = max(0, min(int(n), len(bars)))
    cols = {
        c: getattr(bars, c)[:k].tolist() for c in ("ts", "open", "high", "low", "close", "volume")
    }
    return [{c: cols[c][i] for c in cols} for i in range(k)]


def _return_stats(bars: Bars) -> dict[str, Any]:
    close = bars.close
    if len(close) < 2:
        return {
            "count": 0,
            "mean_pct": None,
            "std_pct": None,
            "min_pct": None,
            "max_pct": None,
            "positive_share": None,
            "annualized_volatility_pct": None,
        }
    r = np.diff(close) / close[:-1]
    std = float(np.std(r, ddof=1)) if len(r) > 1 else None
    per_year = bars_per_year(bars.ts, bars.tz)
    return {
        "count": len(r),
        "mean_pct": _num(100 * np.mean(r)),
        "std_pct": None if std is None else _num(100 * std),
        "min_pct": _num(100 * np.min(r)),
        "max_pct": _num(100 * np.max(r)),
        "positive_share": _num(np.mean(r > 0)),
        "annualized_volatility_pct": None if std is None else _num(100 * std * math.sqrt(per_year)),
    }


def bar_statistics(bars: Bars) -> dict[str, Any]:
    """Price range, volume, date range, trading days and close-to-close return statistics."""
    n = len(bars)
    if n == 0:
        return {"rows": 0}
    day_id, _ = local_clock(bars.ts, bars.tz)
    first_close, last_close = float(bars.close[0]), float(bars.close[-1])
    return {
        "rows": n,
        "start_ts": int(bars.ts[0]),
        "end_ts": int(bars.ts[-1]),
        "trading_days": int(np.unique(day_id).size),
        "price_low": float(np.min(bars.low)),
        "price_high": float(np.max(bars.high)),
        "first_close": first_close,
        "last_close": last_close,
        "change_pct": _num(100 * (last_close / first_close - 1)),
        "average_volume": _num(np.mean(bars.volume)),
        "total_volume": _num(np.sum(bars.volume)),
        "zero_volume_bars": int(np.count_nonzero(bars.volume == 0)),
        "returns": _return_stats(bars),
    }


def preview(bars: Bars, n: int) -> DatasetPreview:
    """The first `n` rows (at most `MAX_PREVIEW_ROWS`) and the statistics of all bars."""
    return DatasetPreview(preview_rows(bars, min(n, MAX_PREVIEW_ROWS)), bar_statistics(bars))
