"""Exchange-local clocks and the trading calendar implied by a series of bar timestamps.

Everything here is vectorized numpy over int64 nanoseconds: time zone offsets are
looked up once per UTC day (pandas on a few thousand grid points) and only bars
inside a day that contains a DST transition are converted one by one by pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.errors import EngineInputError

__all__ = [
    "DAYS_PER_WEEK_YEAR",
    "bars_per_year",
    "infer_timeframe",
    "local_clock",
    "local_ns",
    "trading_days_per_year",
]

NS_PER_MIN = 60_000_000_000
NS_PER_HOUR = 60 * NS_PER_MIN
NS_PER_DAY = 24 * NS_PER_HOUR
WEEKS_PER_YEAR = 365.25 / 7.0
DAYS_PER_WEEK_YEAR = WEEKS_PER_YEAR  # alias kept public for documentation/tests


def _offsets_at(points_ns: np.ndarray, tz: str) -> np.ndarray:
    """UTC offset (ns) of `tz` at each UTC instant, via pandas (call on small arrays)."""
    try:
        idx = pd.DatetimeIndex(points_ns.view("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)
    except Exception as exc:  # unknown zone names surface here
        raise EngineInputError(f"unknown time zone {tz!r}: {exc}") from None
    return idx.tz_localize(None).as_unit("ns").asi8 - points_ns


def local_ns(ts: np.ndarray, tz: str) -> np.ndarray:
    """Exchange-local wall-clock time as int64 ns since 1970-01-01 local midnight."""
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    if ts.shape[0] == 0:
        return ts.copy()
    if tz in ("UTC", "Etc/UTC", "GMT"):
        return ts.copy()
    day = ts // NS_PER_DAY
    d0, d1 = int(day.min()), int(day.max())
    grid = np.arange(d0, d1 + 2, dtype=np.int64) * NS_PER_DAY
    off = _offsets_at(grid, tz)
    if np.all(off == off[0]):
        return ts + off[0]
    k = day - d0
    o0 = off[k]
    out = ts + o0
    # Bars in a UTC day whose offset differs at its two ends straddle a transition.
    edge = np.flatnonzero(o0 != off[k + 1])
    if edge.size:
        out[edge] = ts[edge] + _offsets_at(ts[edge], tz)
    return out


def local_clock(ts: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """(day_id int64[], minute_of_day int32[]) of each bar in exchange-local time.

    day_id is the local calendar date as days since 1970-01-01 (so day_id % 7 == 3 is
    a Monday); minute_of_day is minutes since local midnight (09:15 -> 555).
    """
    loc = local_ns(ts, tz)
    day_id = loc // NS_PER_DAY
    minute = ((loc - day_id * NS_PER_DAY) // NS_PER_MIN).astype(np.int32)
    return day_id, minute


def _day_counts(day_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct local days, bars in each); day_id is sorted whenever ts is."""
    if day_id.shape[0] > 1 and np.any(day_id[1:] < day_id[:-1]):
        return np.unique(day_id, return_counts=True)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(day_id)) + 1))
    counts = np.diff(np.concatenate((starts, [day_id.shape[0]])))
    return day_id[starts], counts


def trading_days_per_year(day_ids: np.ndarray) -> float:
    """Trading days per year implied by a set of local day ids (days since 1970-01-01).

    Rule: the trading weekdays are those seen in at least a quarter of the spanned
    weeks (so a rare special Saturday session does not make a 6-day week); coverage is
    the share of those weekdays between the first and last date that actually traded
    (holidays lower it). Result = n_weekdays x coverage x 365.25/7: ~250 for an
    exchange with ~10 holidays, 365.25 for 24/7 markets, 52.18 for weekly bars.
    Samples spanning under 4 weeks are too short to see holidays: coverage is taken
    as 1 and a 5-day week is assumed (7 days if a weekend day traded).
    """
    days = np.asarray(day_ids, dtype=np.int64)
    if days.shape[0] > 1 and np.any(days[1:] <= days[:-1]):
        days = np.unique(days)
    if days.shape[0] == 0:
        return 5 * WEEKS_PER_YEAR
    weekday = (days + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    week = (days + 3) // 7
    n_weeks = int(week[-1] - week[0] + 1)
    seen = np.bincount(weekday, minlength=7)
    active = seen >= max(1.0, 0.25 * n_weeks)
    n_active = int(active.sum())
    if n_weeks < 4:
        return (7 if active[5] or active[6] else max(n_active, 5)) * WEEKS_PER_YEAR
    first, last = int(days[0]), int(days[-1])
    full_weeks, rest = divmod(last - first + 1, 7)
    expected = full_weeks * n_active + sum(
        bool(active[(first + full_weeks * 7 + j + 3) % 7]) for j in range(rest)
    )
    traded = int(seen[active].sum())
    return n_active * min(1.0, traded / max(expected, 1)) * WEEKS_PER_YEAR


def bars_per_year(ts: np.ndarray, tz: str = "UTC") -> float:
    """Annualisation factor from the data itself: bars per trading day x trading days per year.

    * bars per trading day = median number of bars per exchange-local date (so a
      partial first day or a half session does not move it); for daily bars this
      is 1, for NIFTY 1-minute bars 375, for 24/7 crypto minutes 1440.
    * trading days per year = `trading_days_per_year` of the observed dates (about
      250-261 for exchange data, 365.25 for 24/7 markets; weekly bars give 52.18).
    Fewer than 2 bars: 252 (the conventional daily factor).
    """
    ts = np.asarray(ts, dtype=np.int64)
    if ts.shape[0] < 2:
        return 252.0
    day_id, _ = local_clock(ts, tz)
    days, counts = _day_counts(day_id)
    return float(np.median(counts)) * trading_days_per_year(days)


_NAMED_STEPS: list[tuple[int, str]] = [
    *((s * 1_000_000_000, f"{s}s") for s in (1, 2, 5, 10, 15, 20, 30)),
    *((m * NS_PER_MIN, f"{m}min") for m in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 45)),
    *((h * NS_PER_HOUR, f"{h}h") for h in (1, 2, 3, 4, 6, 8, 12)),
    (NS_PER_DAY, "1d"),
    (7 * NS_PER_DAY, "1w"),
]


def infer_timeframe(ts: np.ndarray) -> str:
    """Bar spacing as a label ("1min", "5min", "1h", "1d", "1w", "1mo") or "irregular".

    The step is the median gap between bars; it is named when it is one of the usual
    bar sizes and at least 90% of gaps are whole multiples of it (overnight, weekend
    and holiday gaps are). Monthly bars are gaps of 28-31 days.
    """
    ts = np.asarray(ts, dtype=np.int64)
    if ts.shape[0] < 2:
        return "irregular"
    gaps = np.diff(ts)
    if np.any(gaps <= 0):
        return "irregular"
    step = int(np.median(gaps))
    share_28_31 = np.mean((gaps >= 28 * NS_PER_DAY) & (gaps <= 31 * NS_PER_DAY))
    if share_28_31 >= 0.9:
        return "1mo"
    names = dict(_NAMED_STEPS)
    # Daily bars stamped at varying times of day (or across DST) still count as daily.
    if step not in names and abs(step - NS_PER_DAY) <= NS_PER_HOUR:
        near = np.abs(gaps - np.round(gaps / NS_PER_DAY) * NS_PER_DAY) <= NS_PER_HOUR
        return "1d" if np.mean(near) >= 0.9 else "irregular"
    if step not in names:
        return "irregular"
    if np.mean(gaps % step == 0) < 0.9:
        return "irregular"
    return names[step]
