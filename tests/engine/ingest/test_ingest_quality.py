"""quality_report: each check on purpose-built bars, the session inference and the score."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.bars import Bars
from engine.ingest import Codes, IngestWarning, quality_report
from engine.ingest.quality import WEIGHTS
from engine.ingest.sessions import analyze_gaps

MIN = 60_000_000_000


def _sessions(
    dates: list[str] | pd.DatetimeIndex,
    spans: list[tuple[str, str]],
    tz: str,
    step_min: int = 1,
) -> np.ndarray:
    """Bars every `step_min` minutes in each [start, end] span of each date (local time)."""
    out = []
    for d in dates:
        day = pd.Timestamp(d).strftime("%Y-%m-%d")
        for a, b in spans:
            rng = pd.date_range(f"{day} {a}", f"{day} {b}", freq=f"{step_min}min", tz=tz)
            out.append(rng.tz_convert("UTC").as_unit("ns").asi8)
    return np.sort(np.concatenate(out))


def _bars(ts: np.ndarray, tz: str = "UTC", seed: int = 0, volume: np.ndarray | None = None) -> Bars:
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, ts.size)))
    o = np.concatenate(([c[0]], c[:-1]))
    h = np.maximum(o, c) * 1.0005
    lo = np.minimum(o, c) * 0.9995
    v = rng.integers(100, 1000, ts.size).astype(float) if volume is None else volume
    return Bars.from_arrays(ts, o, h, lo, c, v, tz=tz)


def _check(report: object, name: str) -> object:
    return next(c for c in report.checks if c.name == name)  # type: ignore[attr-defined]


WEEKDAYS = pd.bdate_range("2024-01-01", "2024-03-29")


def test_clean_intraday_scores_100_and_is_json_able() -> None:
    b = _bars(_sessions(WEEKDAYS, [("09:15", "15:29")], "Asia/Kolkata"), "Asia/Kolkata")
    r = quality_report(b, [])
    assert r.score == 100 and r.status == "pass"
    assert [c.name for c in r.checks] == list(WEIGHTS)
    assert sum(WEIGHTS.values()) == 100
    d = json.loads(json.dumps(r.to_dict()))
    assert d["score"] == 100 and len(d["checks"]) == 8
    gaps = _check(r, "timestamp_gaps")
    assert gaps.values["session"] == "09:15-15:29"  # type: ignore[attr-defined]


def test_gap_inside_the_session_counts_exactly() -> None:
    ts = _sessions(WEEKDAYS, [("09:15", "15:29")], "Asia/Kolkata")
    keep = np.ones(ts.size, dtype=bool)
    keep[1000:1030] = False  # 30 bars inside one day
    g = analyze_gaps(ts[keep], "Asia/Kolkata")
    assert (g.mode, g.missing, g.missing_days) == ("intraday", 30, 0)
    assert g.expected == ts.size
    assert g.worst[0][1] == 30


def test_lunch_break_weekends_and_single_holidays_are_not_gaps() -> None:
    days = [d for d in WEEKDAYS if d.strftime("%m-%d") not in ("01-08", "02-12", "03-20")]
    ts = _sessions(days, [("09:00", "11:29"), ("12:30", "14:59")], "Asia/Tokyo", 5)
    g = analyze_gaps(ts, "Asia/Tokyo")
    assert g.missing == 0 and g.missing_days == 0
    assert g.session == "09:00-14:55"


def test_a_missing_week_counts_but_isolated_holidays_do_not() -> None:
    days = [d for d in WEEKDAYS if not ("2024-02-05" <= d.strftime("%Y-%m-%d") <= "2024-02-09")]
    ts = _sessions(days, [("09:30", "15:59")], "America/New_York", 5)
    g = analyze_gaps(ts, "America/New_York")
    assert g.missing_days == 5
    assert g.missing == 5 * 78


def test_round_the_clock_market_with_one_missing_hour() -> None:
    ts = pd.date_range("2024-01-01", "2024-02-01", freq="1min", tz="UTC", inclusive="left")
    ts = ts.as_unit("ns").asi8
    drop = (ts >= pd.Timestamp("2024-01-10 23:30", tz="UTC").value) & (
        ts < pd.Timestamp("2024-01-11 00:30", tz="UTC").value
    )
    g = analyze_gaps(ts[~drop], "UTC")
    assert g.missing == 60
    assert g.session == "00:00-23:59"


def test_fx_week_from_sunday_evening_to_friday_evening() -> None:
    idx = pd.date_range("2024-01-07 22:00", "2024-03-01 21:59", freq="5min", tz="UTC")
    wd, hour = idx.day_of_week, idx.hour
    open_ = ~(((wd == 4) & (hour >= 22)) | (wd == 5) | ((wd == 6) & (hour < 22)))
    open_ &= hour != 21  # daily maintenance hour
    g = analyze_gaps(idx[open_].as_unit("ns").asi8, "UTC")
    assert g.missing == 0 and g.missing_days == 0


def test_special_evening_session_is_not_scored() -> None:
    ts = _sessions(WEEKDAYS, [("09:15", "15:29")], "Asia/Kolkata")
    extra = _sessions(["2024-03-03"], [("18:15", "19:14")], "Asia/Kolkata")  # a Sunday
    g = analyze_gaps(np.sort(np.concatenate([ts, extra])), "Asia/Kolkata")
    assert g.missing == 0


def test_daily_bars_with_holidays_and_a_hole() -> None:
    days = pd.bdate_range("2022-01-03", "2023-12-29")
    ts = days.tz_localize("Asia/Kolkata").tz_convert("UTC").as_unit("ns").asi8
    holidays = np.isin(np.arange(ts.size), [10, 60, 61, 150, 300])
    g = analyze_gaps(ts[~holidays], "Asia/Kolkata")
    assert (g.mode, g.missing) == ("daily", 0)
    hole = holidays | ((np.arange(ts.size) >= 400) & (np.arange(ts.size) < 415))
    g = analyze_gaps(ts[~hole], "Asia/Kolkata")
    assert g.missing == 15


def test_weekly_bars_skip_the_gap_check() -> None:
    ts = pd.date_range("2020-01-06", periods=100, freq="7D", tz="UTC").as_unit("ns").asi8
    r = quality_report(_bars(ts), [])
    assert _check(r, "timestamp_gaps").values["mode"] == "skipped"  # type: ignore[attr-defined]


def test_price_spike_is_an_outlier() -> None:
    ts = _sessions(WEEKDAYS[:20], [("09:15", "15:29")], "Asia/Kolkata")
    b = _bars(ts, "Asia/Kolkata")
    c = b.close.copy()
    c[3000] *= 1.5
    spiked = Bars.from_arrays(b.ts, b.open, np.maximum(b.high, c), b.low, c, b.volume, tz=b.tz)
    check = _check(quality_report(spiked, []), "price_outliers")
    assert check.values["outliers"] >= 2  # type: ignore[attr-defined]
    first = check.values["examples"][0]  # type: ignore[attr-defined]
    assert abs(first["return_pct"]) > 30
    assert check.score == 100  # two bars of 7,500: within the allowance


def test_volume_all_zero_and_constant_runs() -> None:
    ts = _sessions(WEEKDAYS[:5], [("09:15", "15:29")], "Asia/Kolkata")
    zero = quality_report(_bars(ts, "Asia/Kolkata", volume=np.zeros(ts.size)), [])
    assert _check(zero, "volume_consistency").score == 50
    v = np.arange(ts.size, dtype=float) + 1
    v[100:400] = 777.0
    runs = _check(quality_report(_bars(ts, "Asia/Kolkata", volume=v), []), "volume_consistency")
    assert runs.values["constant_run_bars"] == 300  # type: ignore[attr-defined]
    assert runs.status == "fail"


def test_broken_ohlc_from_another_source() -> None:
    ts = _sessions(WEEKDAYS[:5], [("09:15", "15:29")], "Asia/Kolkata")
    b = _bars(ts, "Asia/Kolkata")
    h = b.high.copy()
    h[:5] = b.low[:5] * 0.99
    bad = Bars.from_arrays(b.ts, b.open, h, b.low, b.close, b.volume, tz=b.tz, check_ohlc=False)
    check = _check(quality_report(bad, []), "ohlc_consistency")
    assert check.values["broken"] == 5 and check.status == "warn"  # type: ignore[attr-defined]


def test_parser_warnings_feed_the_checks_and_the_weighted_score() -> None:
    ts = _sessions(WEEKDAYS[:10], [("09:15", "15:29")], "Asia/Kolkata")
    b = _bars(ts, "Asia/Kolkata")
    n = len(b)
    warnings = [
        IngestWarning(Codes.NO_VOLUME, "no volume", None, None, 1),
        IngestWarning(Codes.MISSING_ROWS, "dropped", 5, None, n // 50),  # ~2%
        IngestWarning(Codes.DUPLICATE_ROWS, "dups", 9, None, n // 100),  # ~1%
        IngestWarning(Codes.TZ_ASSUMED, "utc", None, "Date", 1),
    ]
    r = quality_report(b, warnings)
    scores = {c.name: c.score for c in r.checks}
    assert scores["required_columns"] == 70
    assert scores["data_types"] == 85
    assert 75 <= scores["missing_data"] <= 85
    assert 75 <= scores["duplicates"] <= 85
    want = round(sum(WEIGHTS[k] * s for k, s in scores.items()) / 100)
    assert r.score == want < 100
    for c in r.checks:
        assert c.status == ("pass" if c.score >= 90 else "warn" if c.score >= 60 else "fail")


@pytest.mark.parametrize("n", [1, 2, 5])
def test_tiny_datasets_do_not_break(n: int) -> None:
    ts = pd.date_range("2024-01-01", periods=n, freq="1D", tz="UTC").as_unit("ns").asi8
    r = quality_report(_bars(ts), [])
    assert 0 <= r.score <= 100
    json.dumps(r.to_dict())
