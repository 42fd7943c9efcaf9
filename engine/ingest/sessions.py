"""Missing bars measured against the trading session the data itself shows.

Intraday: the bar step is the median spacing inside a day; a time slot (step-wide,
exchange-local) belongs to the session of a weekday when at least half of that
weekday's trading days have a bar in it. So lunch breaks, overnight closes, weekend
hours and a futures maintenance hour are never gaps, while a slot empty on one day
but traded on most is. Days whose bars mostly fall outside the usual slots (a
special evening session) are not scored. Whole missing weekdays are holidays when
they come in runs of at most two and, in all, at most 20 per year of data; beyond
that they count as missing days. Daily bars use the same day rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.calendar import NS_PER_DAY, infer_timeframe, local_ns

__all__ = ["GapAnalysis", "analyze_gaps"]

HOLIDAY_RUN = 2
HOLIDAYS_PER_YEAR = 20
MAX_SLOTS = 100_000
NS_PER_MIN = 60_000_000_000


@dataclass(frozen=True)
class GapAnalysis:
    """Expected vs missing bars, and where the worst holes are."""

    mode: str  # intraday | daily | skipped
    step_ns: int
    expected: int
    missing: int
    missing_days: int
    session: str  # e.g. "09:15-15:29" (local), "" when not intraday
    worst: list[tuple[str, int]] = field(default_factory=list)  # (local date, missing bars)
    note: str = ""

    @property
    def share(self) -> float:
        return self.missing / self.expected if self.expected else 0.0


def _unique(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, counts); linear when `a` is already sorted (the usual case)."""
    if a.size and np.all(a[1:] >= a[:-1]):
        starts = np.concatenate(([0], np.flatnonzero(a[1:] != a[:-1]) + 1))
        return a[starts], np.diff(np.concatenate((starts, [a.size])))
    return np.unique(a, return_counts=True)


def _weekday(day: np.ndarray) -> np.ndarray:
    return (day + 3) % 7  # 0 = Monday; 1970-01-01 was a Thursday


def _missing_days(days: np.ndarray) -> tuple[np.ndarray, int]:
    """Active-weekday dates absent from `days` that are not excused as holidays."""
    wd = _weekday(days)
    weeks = max(int((days[-1] + 3) // 7 - (days[0] + 3) // 7 + 1), 1)
    active = np.bincount(wd, minlength=7) >= max(1.0, 0.25 * weeks)
    span = np.arange(days[0], days[-1] + 1)
    absent = span[active[_weekday(span)] & ~np.isin(span, days)]
    if absent.size == 0:
        return absent, 0
    # Runs of consecutive absent trading weekdays (a weekend between does not break a run).
    pos = np.searchsorted(span[active[_weekday(span)]], absent)
    run_start = np.concatenate(([True], np.diff(pos) != 1))
    run_id = np.cumsum(run_start) - 1
    run_len = np.bincount(run_id)
    short = run_len[run_id] <= HOLIDAY_RUN
    budget = int(np.round(HOLIDAYS_PER_YEAR * (days[-1] - days[0] + 1) / 365.25))
    excused = np.flatnonzero(short)[:budget]
    keep = np.ones(absent.size, dtype=bool)
    keep[excused] = False
    return absent[keep], int(keep.sum())


def _date(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def analyze_gaps(ts: np.ndarray, tz: str) -> GapAnalysis:
    """Missing bars inside the inferred session (see module docstring)."""
    ts = np.asarray(ts, dtype=np.int64)
    if ts.shape[0] < 3:
        return GapAnalysis("skipped", 0, 0, 0, 0, "", note="fewer than 3 bars")
    tf = infer_timeframe(ts)
    if tf in ("1w", "1mo"):
        return GapAnalysis("skipped", 0, 0, 0, 0, "", note=f"{tf} bars: no session to check")
    loc = local_ns(ts, tz)
    day = loc // NS_PER_DAY
    tod = loc - day * NS_PER_DAY
    same_day = day[1:] == day[:-1]
    inside = np.diff(ts)[same_day]
    inside = inside[inside > 0]
    days, per_day = _unique(day)
    if inside.size == 0 or np.median(per_day) < 2:
        absent, n_missing = _missing_days(days)
        worst = [(_date(d), 1) for d in absent[:5].tolist()]
        return GapAnalysis(
            "daily", NS_PER_DAY, days.size + n_missing, n_missing, n_missing, "", worst
        )
    step = int(np.median(inside))
    n_slots = -(-NS_PER_DAY // step)
    if n_slots > MAX_SLOTS:
        return GapAnalysis("skipped", step, 0, 0, 0, "", note="bar spacing under 1 second")
    phase = int(np.median(tod % step))
    slot = (tod - phase) // step
    slot = np.clip(slot, 0, n_slots - 1)
    # One entry per (day, slot) actually traded.
    key = _unique(np.searchsorted(days, day) * n_slots + slot)[0]
    k_day, k_slot = key // n_slots, key % n_slots
    wd_of_day = _weekday(days)
    days_per_wd = np.bincount(wd_of_day, minlength=7)
    seen = np.bincount(wd_of_day[k_day] * n_slots + k_slot, minlength=7 * n_slots)
    seen = seen.reshape(7, n_slots)
    pooled = seen.sum(axis=0) >= 0.5 * days.size
    session = np.where(
        (days_per_wd >= 3)[:, None], seen >= 0.5 * np.maximum(days_per_wd, 1)[:, None], pooled
    )
    in_session = session[wd_of_day[k_day], k_slot]
    present = np.bincount(k_day, weights=in_session, minlength=days.size).astype(np.int64)
    traded = np.bincount(k_day, minlength=days.size)
    need = session.sum(axis=1)[wd_of_day]
    scored = present >= 0.5 * traded  # else a special session outside the usual hours
    per_day_missing = np.where(scored, need - present, 0)
    absent, n_missing_days = _missing_days(days)
    missing = int(per_day_missing.sum()) + int(session.sum(axis=1)[_weekday(absent)].sum())
    expected = int(need[scored].sum()) + int(session.sum(axis=1)[_weekday(absent)].sum())
    order = np.argsort(-per_day_missing, kind="stable")[:5]
    worst = [(_date(days[i]), int(per_day_missing[i])) for i in order if per_day_missing[i] > 0]
    common = int(np.argmax(days_per_wd))
    slots = np.flatnonzero(session[common])
    span = ""
    if slots.size:
        lo = (int(slots[0]) * step + phase) // NS_PER_MIN
        hi = (int(slots[-1]) * step + phase) // NS_PER_MIN
        span = f"{_clock(lo)}-{_clock(hi)}"
    return GapAnalysis(
        "intraday",
        step,
        expected,
        missing,
        n_missing_days,
        span,
        worst,
    )
