"""Tests for engine.calendar: local clocks across DST, bars_per_year rules, timeframe labels."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from engine.calendar import (
    _day_counts,
    _local_day_counts,
    bars_per_year,
    infer_timeframe,
    local_clock,
    local_ns,
    trading_days_per_year,
)
from engine.synthetic import synthetic_daily, synthetic_intraday

MIN = 60_000_000_000
DAY = 1440 * MIN


def _reference(ts: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    idx = pd.DatetimeIndex(ts.view("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)
    local = idx.tz_localize(None)
    day = (local - pd.Timestamp("1970-01-01")).days.to_numpy()
    return day.astype(np.int64), (local.hour * 60 + local.minute).to_numpy()


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe"])
def test_local_clock_matches_pandas_across_dst(tz: str) -> None:
    # Every 7 minutes for ~2 years: crosses several DST transitions in each zone.
    ts = pd.Timestamp("2022-01-01", tz="UTC").value + np.arange(150_000, dtype=np.int64) * 7 * MIN
    day, minute = local_clock(ts, tz)
    ref_day, ref_min = _reference(ts, tz)
    np.testing.assert_array_equal(day, ref_day)
    np.testing.assert_array_equal(minute, ref_min)
    assert day.dtype == np.int64 and minute.dtype == np.int32


def _numpy_clock(ts: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    # The vectorized path that unsorted input takes; sorted input runs the numba pass.
    loc = local_ns(ts, tz)
    day = loc // DAY
    return day, ((loc - day * DAY) // MIN).astype(np.int32)


# Zones with DST, with transitions at local midnight (a day can be revisited), with
# non-hour offsets, and with a dateline jump (Pacific/Apia skipped 30 Dec 2011).
ZONES = ["UTC", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe", "America/Havana",
         "Asia/Beirut", "America/Santiago", "Asia/Kathmandu", "Pacific/Apia", "Etc/GMT+5"]


@pytest.mark.parametrize("tz", ZONES)
def test_sorted_fast_path_equals_vectorized_path(tz: str) -> None:
    rng = np.random.default_rng(ZONES.index(tz))
    for _ in range(12):
        n = int(rng.integers(1, 4000))
        start = int(rng.integers(-3 * 365, 60 * 365)) * DAY + int(rng.integers(0, 1440)) * MIN
        step = rng.choice([MIN, 37 * MIN, 6 * 60 * MIN, DAY + 7 * MIN])
        ts = start + np.cumsum(rng.integers(0, 3, n) * step).astype(np.int64)  # dupes too
        day, minute = local_clock(ts, tz)
        ref_day, ref_min = _numpy_clock(ts, tz)
        np.testing.assert_array_equal(day, ref_day)
        np.testing.assert_array_equal(minute, ref_min)
        days, counts = _local_day_counts(ts, tz)
        ref_days, ref_counts = _day_counts(ref_day)
        np.testing.assert_array_equal(days, ref_days)
        np.testing.assert_array_equal(counts, ref_counts)
        assert counts.dtype == ref_counts.dtype


@pytest.mark.parametrize("tz", ["America/Sitka", "America/Juneau"])
def test_local_dates_that_come_back(tz: str) -> None:
    # Alaska moved across the date line in October 1867: local dates ran backwards, so
    # the runs of equal days of the sorted fast path must be merged like np.unique does.
    ts = pd.Timestamp("1867-10-16", tz="UTC").value + np.arange(900, dtype=np.int64) * 10 * MIN
    day, minute = local_clock(ts, tz)
    ref_day, ref_min = _reference(ts, tz)
    np.testing.assert_array_equal(day, ref_day)
    np.testing.assert_array_equal(minute, ref_min)
    assert np.any(np.diff(day) < 0)  # the case under test really happens
    days, counts = _local_day_counts(ts, tz)
    ref_days, ref_counts = np.unique(ref_day, return_counts=True)
    np.testing.assert_array_equal(days, ref_days)
    np.testing.assert_array_equal(counts, ref_counts)


def test_unsorted_timestamps_take_the_vectorized_path() -> None:
    ts = pd.Timestamp("2023-03-01", tz="UTC").value + np.arange(3000, dtype=np.int64) * 61 * MIN
    rng = np.random.default_rng(0)
    for shuffled in (ts[::-1].copy(), rng.permutation(ts), np.concatenate((ts[5:], ts[:5]))):
        for tz in ("America/New_York", "Asia/Kolkata"):
            day, minute = local_clock(shuffled, tz)
            ref_day, ref_min = _reference(shuffled, tz)
            np.testing.assert_array_equal(day, ref_day)
            np.testing.assert_array_equal(minute, ref_min)
            assert bars_per_year(shuffled, tz) == bars_per_year(ts, tz)


def test_local_clock_nifty_open() -> None:
    ts = np.array([pd.Timestamp("2024-01-02 09:15", tz="Asia/Kolkata").value])
    day, minute = local_clock(ts, "Asia/Kolkata")
    assert minute[0] == 555
    assert pd.Timestamp("1970-01-01") + pd.Timedelta(days=int(day[0])) == pd.Timestamp("2024-01-02")
    e_day, e_min = local_clock(np.array([], dtype=np.int64), "Asia/Kolkata")
    assert e_day.size == 0 and e_min.size == 0


def test_local_clock_is_cheap() -> None:
    ts = pd.Timestamp("2020-01-01", tz="UTC").value + np.arange(1_000_000, dtype=np.int64) * MIN
    local_clock(ts[:10], "America/New_York")
    t = time.perf_counter()
    local_clock(ts, "America/New_York")
    bars_per_year(ts, "Asia/Kolkata")
    assert time.perf_counter() - t < 0.5  # ~30 ms on one core; generous for shared CI


def test_bars_per_year_intraday_sample() -> None:
    b = synthetic_intraday(60, seed=1)
    bpy = bars_per_year(b.ts, b.tz)
    # 375 bars a day; 60 of 61 weekdays traded (26 Jan is a holiday) -> 5 * 60/61 * 52.18.
    assert bpy == pytest.approx(375 * 5 * 60 / 61 * 365.25 / 7)


def test_bars_per_year_daily_weekly_crypto() -> None:
    d = synthetic_daily(5, seed=1)
    assert 245 < bars_per_year(d.ts, d.tz) < 261
    t0 = pd.Timestamp("2021-01-04", tz="UTC").value
    weekly = t0 + np.arange(200, dtype=np.int64) * 7 * DAY
    assert bars_per_year(weekly, "UTC") == pytest.approx(365.25 / 7)
    crypto = t0 + np.arange(60 * 1440, dtype=np.int64) * MIN
    assert bars_per_year(crypto, "UTC") == pytest.approx(1440 * 365.25)


def test_bars_per_year_short_samples() -> None:
    t0 = pd.Timestamp("2024-01-02 03:45", tz="UTC").value  # a Tuesday, 09:15 IST
    one_day = t0 + np.arange(375, dtype=np.int64) * MIN
    assert bars_per_year(one_day, "Asia/Kolkata") == pytest.approx(375 * 5 * 365.25 / 7)
    assert bars_per_year(one_day[:1], "Asia/Kolkata") == 252.0
    # A short 24/7 sample that includes a weekend assumes a 7-day week.
    weekend = pd.Timestamp("2024-01-05", tz="UTC").value + np.arange(3 * 1440) * MIN
    assert bars_per_year(weekend, "UTC") == pytest.approx(1440 * 365.25)


def test_trading_days_ignores_rare_special_sessions() -> None:
    weekdays = [d for d in range(19_000, 19_000 + 364) if (d + 3) % 7 < 5]
    special = next(d for d in range(19_100, 19_200) if (d + 3) % 7 == 5)  # one Saturday
    with_special = sorted([*weekdays, special])
    assert trading_days_per_year(np.array(weekdays)) == pytest.approx(5 * 365.25 / 7)
    assert trading_days_per_year(np.array(with_special)) == pytest.approx(5 * 365.25 / 7)


@pytest.mark.parametrize(
    ("step", "label"),
    [(MIN, "1min"), (5 * MIN, "5min"), (15 * MIN, "15min"), (60 * MIN, "1h"), (DAY, "1d")],
)
def test_infer_timeframe_with_session_gaps(step: int, label: str) -> None:
    if step < DAY:
        per_day = max(1, 375 * MIN // step)
        days = [i * DAY + np.arange(per_day) * step for i in range(10) if i % 7 < 5]
        ts = np.concatenate(days).astype(np.int64)
    else:
        ts = np.array([i * DAY for i in range(60) if i % 7 < 5], dtype=np.int64)
    assert infer_timeframe(ts) == label


def test_infer_timeframe_other_cases() -> None:
    rng = np.random.default_rng(0)
    assert infer_timeframe(np.cumsum(rng.integers(1, 10**9, 500))) == "irregular"
    assert infer_timeframe(np.array([0])) == "irregular"
    months = pd.date_range("2020-01-01", periods=24, freq="MS").as_unit("ns").asi8
    assert infer_timeframe(months) == "1mo"
    weeks = np.arange(20, dtype=np.int64) * 7 * DAY
    assert infer_timeframe(weeks) == "1w"
    assert infer_timeframe(synthetic_intraday(3, seed=0).ts) == "1min"
