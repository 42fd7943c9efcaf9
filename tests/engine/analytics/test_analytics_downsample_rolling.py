"""Downsampling keeps the extremes and the point budget; rolling windows match plain loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.downsample import downsample, downsample_indices, minmax_indices
from engine.errors import EngineInputError
from engine.rolling import Window, parse_window, rolling_metrics

MIN = 60_000_000_000
DAY = 1440 * MIN


def walk(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.integers(1, 5, n)).astype(np.int64) * MIN
    return ts, 100 + np.cumsum(rng.normal(0, 1, n))


@pytest.mark.parametrize("points", [8, 9, 100, 2000])
def test_budget_and_extremes(points: int) -> None:
    ts, y = walk(50_000, 1)
    keep = [123, 40_000]
    idx = downsample_indices(ts, y, points, keep=keep)
    assert idx.shape[0] <= points
    assert np.all(np.diff(idx) > 0)
    for k in (0, y.shape[0] - 1, int(np.argmax(y)), int(np.argmin(y)), *keep):
        assert k in idx


def test_short_series_are_returned_whole() -> None:
    ts, y = walk(500, 2)
    x2, y2 = downsample(ts, y, 2000)
    assert np.array_equal(x2, ts) and np.array_equal(y2, y)


def test_non_finite_values_are_dropped_and_keep_indices_survive() -> None:
    ts, y = walk(10_000, 3)
    y[:300] = np.nan
    y[5000] = np.inf
    idx = downsample_indices(ts, y, 200, keep=[100, 7000])
    assert np.isfinite(y[idx]).all() and idx.shape[0] <= 200
    assert 7000 in idx and 100 not in idx and 300 in idx
    assert downsample_indices(ts, np.full(10_000, np.nan), 100).shape[0] == 0


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3000), points=st.integers(8, 400), seed=st.integers(0, 10_000))
def test_budget_property(n: int, points: int, seed: int) -> None:
    ts, y = walk(n, seed)
    trough = int(np.argmin(y - np.maximum.accumulate(y)))
    idx = downsample_indices(ts, y, points, keep=[trough])
    assert idx.shape[0] <= points and trough in idx
    assert int(np.argmax(y)) in idx and int(np.argmin(y)) in idx


def test_minmax_indices_keep_best_and_worst() -> None:
    rng = np.random.default_rng(4)
    pnl = rng.normal(0, 1, 20_000)
    idx = minmax_indices(pnl, 500)
    assert idx.shape[0] <= 500 and int(np.argmax(pnl)) in idx and int(np.argmin(pnl)) in idx
    assert np.array_equal(minmax_indices(pnl[:300], 500), np.arange(300))


def test_points_are_validated() -> None:
    ts, y = walk(100, 5)
    for bad in (0, 7, 10**9, 2.5, True):
        with pytest.raises(EngineInputError, match="points"):
            downsample_indices(ts, y, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "want"), [
    (200, Window("200 bars", bars=200)), ("200", Window("200 bars", bars=200)),
    ("30D", Window("30D", ns=30 * DAY)), ("4h", Window("4h", ns=240 * MIN)),
    ("15min", Window("15min", ns=15 * MIN)), ("2W", Window("2W", ns=14 * DAY)),
    ("90s", Window("90s", ns=90_000_000_000)), ("1.5d", Window("1.5d", ns=36 * 60 * MIN)),
])
def test_parse_window(text: int | str, want: Window) -> None:
    assert parse_window(text) == want


@pytest.mark.parametrize(("bad", "msg"), [
    (1, "at least 2"), ("3m", "ambiguous"), ("soon", "neither"), ("0D", "longer than zero"),
    (True, "number of bars"), ("5 fortnights", "neither"),
])
def test_bad_windows_are_explained(bad: object, msg: str) -> None:
    with pytest.raises(EngineInputError, match=msg):
        parse_window(bad)  # type: ignore[arg-type]


def naive_rolling(eq: np.ndarray, ts: np.ndarray, w: Window, bpy: float) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in ("sharpe", "volatility", "return", "drawdown")}
    for i in range(eq.shape[0]):
        if w.bars:
            lo, ok = max(i - w.bars + 1, 1), i >= w.bars
        else:
            lo = max(int(np.searchsorted(ts, ts[i] - w.ns, side="right")), 1)
            ok = ts[i] - ts[0] >= w.ns
        seg = eq[lo - 1:i + 1]
        r = seg[1:] / seg[:-1] - 1
        nan = math.nan
        sd = float(np.std(r, ddof=1)) if ok and r.shape[0] >= 2 else nan
        const = ok and r.shape[0] >= 2 and r.min() == r.max()
        out["volatility"].append(0.0 if const else sd * math.sqrt(bpy) * 100)
        out["sharpe"].append(nan if const or not sd > 0 else r.mean() / sd * math.sqrt(bpy))
        out["return"].append((seg[-1] / seg[0] - 1) * 100 if ok else nan)
        peak = np.maximum.accumulate(seg)
        out["drawdown"].append(float(np.max(1 - seg / peak)) * 100 if ok else nan)
    return out


@pytest.mark.parametrize("window", [2, 7, 50, "3h", "1D", "45min"])
def test_rolling_matches_a_plain_loop(window: int | str) -> None:
    ts, y = walk(1500, 6)
    eq = np.abs(y) + 10
    eq[700:760] = eq[699]  # a flat stretch: zero volatility, no Sharpe
    w = parse_window(window)
    got = rolling_metrics(eq, ts, w, bars_per_year=1000.0)
    want = naive_rolling(eq, ts, w, 1000.0)
    for key in want:
        np.testing.assert_allclose(got.series[key], want[key], rtol=1e-9, atol=1e-11,
                                   err_msg=key)


def test_rolling_to_dict_is_downsampled_and_json_safe() -> None:
    ts, y = walk(100_000, 7)
    rr = rolling_metrics(np.abs(y) + 10, ts, "1D", bars_per_year=100_000.0,
                         metrics=["sharpe", "drawdown"])
    d = rr.to_dict(points=500)
    assert set(d["series"]) == {"sharpe", "drawdown"} and d["window"] == "1D"
    assert d["window_seconds"] == 86_400 and d["window_bars"] is None
    for s in d["series"].values():
        assert len(s["t"]) == len(s["v"]) <= 500
        assert all(math.isfinite(v) for v in s["v"])
    with pytest.raises(EngineInputError, match="unknown rolling metric 'beta'"):
        rolling_metrics(y, ts, 10, bars_per_year=1.0, metrics=["beta"])
