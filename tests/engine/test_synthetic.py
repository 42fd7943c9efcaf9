"""Tests for engine.synthetic: determinism, session layout, tick rounding and stylised facts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.calendar import local_clock
from engine.synthetic import HOLIDAYS, main, synthetic_daily, synthetic_intraday, trading_days

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def intraday() -> pd.DataFrame:
    return synthetic_intraday(60, seed=42).to_frame()


def test_same_seed_same_bars_other_seed_differs() -> None:
    a, b, c = (synthetic_intraday(3, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.close, b.close)
    np.testing.assert_array_equal(a.ts, b.ts)
    assert not np.array_equal(a.close, c.close)


def test_session_layout(intraday: pd.DataFrame) -> None:
    idx = intraday.index
    assert str(idx.tz) == "Asia/Kolkata" and len(idx) == 60 * 375
    per_day = intraday.groupby(idx.date).size()
    assert (per_day == 375).all()
    minutes = idx.hour * 60 + idx.minute
    assert minutes.min() == 9 * 60 + 15 and minutes.max() == 15 * 60 + 29
    assert (idx.day_of_week < 5).all()
    assert not any((d.month, d.day) in HOLIDAYS for d in per_day.index)
    assert idx[0] == pd.Timestamp("2023-01-02 09:15", tz="Asia/Kolkata")


def test_trading_days_skip_weekends_and_holidays() -> None:
    days = trading_days("2023-01-20", 6)
    assert [d.isoformat() for d in days] == [
        "2023-01-20", "2023-01-23", "2023-01-24", "2023-01-25", "2023-01-27", "2023-01-30",
    ]  # fmt: skip


def test_prices_on_ticks_consistent_and_in_range(intraday: pd.DataFrame) -> None:
    for col in ("open", "high", "low", "close"):
        ticks = intraday[col].to_numpy() * 20
        np.testing.assert_allclose(ticks, np.round(ticks), atol=1e-6)
    assert (intraday.high >= intraday[["open", "close"]].max(axis=1)).all()
    assert (intraday.low <= intraday[["open", "close"]].min(axis=1)).all()
    assert intraday.low.min() > 17_000 and intraday.high.max() < 23_000
    assert (intraday.volume > 0).all()


def test_overnight_gaps_and_continuous_sessions(intraday: pd.DataFrame) -> None:
    day_id, _ = local_clock(intraday.index.as_unit("ns").asi8, "Asia/Kolkata")
    new_day = np.r_[False, np.diff(day_id) != 0]
    o, c = intraday.open.to_numpy(), intraday.close.to_numpy()
    within = ~new_day[1:]
    np.testing.assert_array_equal(o[1:][within], c[:-1][within])  # open = previous close
    assert np.mean(o[1:][~within] != c[:-1][~within]) > 0.8  # sessions open with a gap


def test_u_shaped_volume_and_volatility(intraday: pd.DataFrame) -> None:
    minute = intraday.index.hour * 60 + intraday.index.minute - 555
    vol = intraday.volume.groupby(minute).mean()
    assert vol[:15].mean() > 1.5 * vol[150:225].mean()
    assert vol[-15:].mean() > 1.3 * vol[150:225].mean()
    rng = (intraday.high - intraday.low).groupby(minute).mean()
    assert rng[:15].mean() > rng[150:225].mean()


def test_volatility_clusters_in_daily_returns() -> None:
    r = np.diff(np.log(synthetic_daily(20, seed=3).close))
    a = np.abs(r)
    assert np.corrcoef(a[:-1], a[1:])[0, 1] > 0.05  # |returns| are autocorrelated
    assert abs(np.corrcoef(r[:-1], r[1:])[0, 1]) < 0.1  # returns themselves are not
    assert 0.08 < r.std() * np.sqrt(250) < 0.3


def test_daily_bars() -> None:
    d = synthetic_daily(5, seed=7)
    assert 1200 <= len(d) <= 1300 and d.tz == "Asia/Kolkata"
    f = d.to_frame()
    assert (f.index.hour == 0).all() and (f.index.day_of_week < 5).all()


def test_shipped_samples_are_reproducible(tmp_path: Path) -> None:
    main(["--out", str(tmp_path)])
    for name in ("nifty_1min_sample.csv.gz", "nifty_daily_sample.csv.gz"):
        shipped = ROOT / "data" / name
        assert shipped.stat().st_size < 2_000_000
        assert (tmp_path / name).read_bytes() == shipped.read_bytes(), name
    head = pd.read_csv(ROOT / "data" / "nifty_1min_sample.csv.gz", nrows=2)
    assert list(head.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
    assert head.timestamp[0] == "2023-01-02T09:15:00+05:30"
    assert "SYNTHETIC" in (ROOT / "data" / "README.md").read_text()
