"""Exchange-local clocks and the trading calendar implied by a series of bar timestamps.

Time zone offsets are looked up once per UTC day (pandas on a few thousand grid
points) and only bars inside a day that contains a DST transition are converted one by
one by pandas. For sorted timestamps (every `Bars`) that gives a handful of runs of
constant offset, and one numba pass over the bars does the rest (`bars_per_year` never
materializes per-bar local times); unsorted input takes a vectorized numpy path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

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
        idx = pd.DatetimeIndex(points_ns.view("datetime64[ns]"), tz="UTC").tz_convert(tz)
    except Exception as exc:  # unknown zone names surface here
        raise EngineInputError(f"unknown time zone {tz!r}: {exc}") from None
    return idx.tz_localize(None).asi8 - points_ns


def _is_utc(tz: str) -> bool:
    return tz in ("UTC", "Etc/UTC", "GMT")


def _offset_runs(ts: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """(first bar index, UTC offset ns) of each run of constant offset; ts sorted, non-empty.

    Same rule as the unsorted path of `local_ns`: the offset at each UTC midnight from
    the first bar's day to the day after the last; bars of a UTC day whose offset differs
    at its two ends are converted exactly by pandas. Runs may be empty (same start).
    """
    if _is_utc(tz):
        return np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    d0, d1 = int(ts[0]) // NS_PER_DAY, int(ts[-1]) // NS_PER_DAY
    grid = np.arange(d0, d1 + 2, dtype=np.int64) * NS_PER_DAY
    off = _offsets_at(grid, tz)
    changes = np.flatnonzero(off[:-1] != off[1:])
    if changes.size == 0:  # a fixed-offset zone, or no transition in the span
        return np.zeros(1, dtype=np.int64), off[:1].copy()
    # Bars inside each transition day: converted one by one (in one pandas call).
    lo = np.searchsorted(ts, grid[changes])
    hi = np.searchsorted(ts, grid[changes + 1])
    edge = np.concatenate([np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist(), strict=True)])
    exact = _offsets_at(ts[edge], tz) if edge.size else edge
    starts, values = [0], [int(off[0])]
    pos = 0
    for j, (a, b) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
        e = exact[pos : pos + b - a]
        pos += b - a
        if e.size:
            step = np.flatnonzero(e[1:] != e[:-1]) + 1
            starts += [a, *(a + step).tolist()]
            values += [int(e[0]), *e[step].tolist()]
        starts.append(b)
        values.append(int(off[changes[j] + 1]))
    return np.array(starts, dtype=np.int64), np.array(values, dtype=np.int64)


@njit(nogil=True, cache=True)
def _local_clock_nb(
    ts: np.ndarray, run_start: np.ndarray, run_off: np.ndarray,
    day_out: np.ndarray, minute_out: np.ndarray,
) -> bool:
    """Local day id and minute of day of each bar from `_offset_runs`; False if unsorted."""
    n = ts.shape[0]
    n_runs = run_start.shape[0]
    prev = ts[0]
    for r in range(n_runs):
        off = run_off[r]
        for i in range(run_start[r], run_start[r + 1] if r + 1 < n_runs else n):
            t = ts[i]
            if t < prev:
                return False
            prev = t
            loc = t + off
            day = loc // NS_PER_DAY
            day_out[i] = day
            minute_out[i] = (loc - day * NS_PER_DAY) // NS_PER_MIN
    return True


@njit(nogil=True, cache=True)
def _day_runs_nb(
    ts: np.ndarray, run_start: np.ndarray, run_off: np.ndarray
) -> tuple[np.ndarray, np.ndarray, bool]:
    """(local day of each run of equal days, bars in it, ok); ok is False if ts is unsorted.

    One pass, no per-bar output: a bar's day is recomputed only when its local time
    leaves the current day.
    """
    n = ts.shape[0]
    n_runs = run_start.shape[0]
    # Local days only move back at an offset change, so this bounds the runs of sorted ts.
    cap = max(1, min(n, (ts[n - 1] - ts[0]) // NS_PER_DAY + 2 + 2 * n_runs))
    days = np.empty(cap, dtype=np.int64)
    counts = np.empty(cap, dtype=np.int64)
    k = -1
    first = 0  # first bar of the current run of equal days
    day = np.int64(0)
    day_lo = np.int64(1)  # empty range: the first bar starts a run
    day_hi = np.int64(0)
    prev = ts[0]
    for r in range(n_runs):
        off = run_off[r]
        for i in range(run_start[r], run_start[r + 1] if r + 1 < n_runs else n):
            t = ts[i]
            if t < prev:
                return days[:0], counts[:0], False
            prev = t
            loc = t + off
            if loc < day_lo or loc >= day_hi:
                d = loc // NS_PER_DAY
                day_lo = d * NS_PER_DAY
                day_hi = day_lo + NS_PER_DAY
                if k < 0 or d != day:
                    if k + 1 >= cap:
                        return days[:0], counts[:0], False
                    if k >= 0:
                        counts[k] = i - first
                    k += 1
                    days[k] = d
                    day = d
                    first = i
    counts[k] = n - first
    return days[: k + 1], counts[: k + 1], True


def local_ns(ts: np.ndarray, tz: str) -> np.ndarray:
    """Exchange-local wall-clock time as int64 ns since 1970-01-01 local midnight."""
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    if ts.shape[0] == 0:
        return ts.copy()
    if _is_utc(tz):
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
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    if ts.shape[0] and ts[-1] >= ts[0]:
        run_start, run_off = _offset_runs(ts, tz)
        day_id = np.empty(ts.shape[0], dtype=np.int64)
        minute = np.empty(ts.shape[0], dtype=np.int32)
        if _local_clock_nb(ts, run_start, run_off, day_id, minute):
            return day_id, minute
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


def _local_day_counts(ts: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """`_day_counts` of the bars' local days, in one pass when ts is sorted."""
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    if ts[-1] >= ts[0]:
        run_start, run_off = _offset_runs(ts, tz)
        days, counts, ok = _day_runs_nb(ts, run_start, run_off)
        if ok:
            if days.shape[0] > 1 and np.any(days[1:] <= days[:-1]):
                # A transition at local midnight can revisit a day: merge its runs.
                uniq, inv = np.unique(days, return_inverse=True)
                return uniq, np.bincount(inv, weights=counts).astype(np.int64)
            return days, counts
    return _day_counts(local_clock(ts, tz)[0])


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
    days, counts = _local_day_counts(ts, tz)
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
