"""Metrics by hand: drawdowns, streaks, ratios, VaR, undefined values, monthly table."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from engine.backtest import Trade, run_backtest
from engine.calendar import bars_per_year
from engine.metrics import METRIC_KEYS, compute_metrics, monthly_returns
from engine.metrics_nb import _return_stats_general_nb, kth_smallest_nb, return_stats_nb
from tests.engine.reference import make_bars

DAY = 86_400_000_000_000
T0 = np.datetime64("2024-01-01", "ns").astype(np.int64)


def days(n: int) -> np.ndarray:
    return T0 + np.arange(n, dtype=np.int64) * DAY


def trade(pnl: float, entry: int = 0, exit_: int = 1, held: int = 1, is_open: bool = False) -> Trade:
    return Trade(int(T0 + entry * DAY), int(T0 + exit_ * DAY), entry, exit_, 1, 1.0, 100.0,
                 100.0 + pnl, pnl, 0.0, "end_of_data" if is_open else "signal", is_open, held)


def metrics(equity: list[float], trades: list[Trade], bpy: float = 252.0) -> dict:
    eq = np.array(equity, dtype=np.float64)
    return compute_metrics(eq, days(len(eq)), trades, initial_cash=100.0, bars_per_year=bpy)


def test_drawdown_depth_and_durations() -> None:
    m = metrics([100, 110, 99, 105, 121, 100], [])
    # Peak 110 (bar 1) -> trough 99 -> recovered at bar 4 (3 bars, 3 days); then peak 121
    # -> 100 and not recovered (1 bar). Deepest: 1 - 100/121.
    assert m["max_drawdown_pct"] == pytest.approx((1 - 100 / 121) * 100)
    assert m["max_drawdown_duration_bars"] == 3
    assert m["max_drawdown_duration_days"] == pytest.approx(3.0)
    assert m["total_return_pct"] == 0.0 and m["cagr_pct"] == 0.0 and m["calmar"] == 0.0
    assert m["final_equity"] == 100.0


def test_unrecovered_drawdown_lasts_to_the_end() -> None:
    m = metrics([100, 120, 90, 95, 100, 110], [])
    assert m["max_drawdown_pct"] == pytest.approx(25.0)
    assert m["max_drawdown_duration_bars"] == 4
    assert m["max_drawdown_duration_days"] == pytest.approx(4.0)


def test_return_ratios_against_plain_formulas() -> None:
    eq = [100, 101, 99.5, 102, 103, 101, 104, 106, 105, 108]
    r = np.diff(eq) / np.array(eq[:-1])
    bpy = 365.0
    m = metrics(eq, [], bpy)
    sd = statistics.stdev(r.tolist())
    assert m["volatility_pct"] == pytest.approx(sd * math.sqrt(bpy) * 100, rel=1e-12)
    assert m["sharpe"] == pytest.approx(r.mean() / sd * math.sqrt(bpy), rel=1e-12)
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))
    assert m["sortino"] == pytest.approx(r.mean() / down * math.sqrt(bpy), rel=1e-12)
    years = 9 / bpy
    cagr = ((108 / 100) ** (1 / years) - 1) * 100
    assert m["cagr_pct"] == pytest.approx(cagr, rel=1e-12)
    mdd = (1 - 101 / 103) * 100
    assert m["max_drawdown_pct"] == pytest.approx(mdd)
    assert m["calmar"] == pytest.approx(cagr / mdd, rel=1e-12)
    assert m["bars_per_year"] == bpy


def test_var_and_cvar_use_the_k_worst_returns() -> None:
    rng = np.random.default_rng(5)
    eq = 100 * np.cumprod(1 + rng.normal(0, 0.01, 41))
    eq = np.concatenate(([100.0], eq))
    r = np.sort(eq[1:] / eq[:-1] - 1)  # 41 returns -> K = ceil(2.05) = 3
    m = metrics(eq.tolist(), [])
    assert m["var_95"] == pytest.approx(-r[2] * 100, rel=1e-12)
    assert m["cvar_95"] == pytest.approx(-r[:3].mean() * 100, rel=1e-12)


def test_trade_statistics() -> None:
    pnls = [10, -5, 0, 20, 30, -10, -10, -10, 5]
    trades = [trade(p, entry=j, exit_=j + 1, held=1) for j, p in enumerate(pnls)]
    m = metrics([100.0] * 12, trades)
    assert m["n_trades"] == 9 and m["n_open"] == 0
    assert m["win_rate"] == pytest.approx(400 / 9)
    assert m["profit_factor"] == pytest.approx(65 / 35)
    assert m["expectancy"] == pytest.approx(30 / 9)
    assert m["avg_win"] == pytest.approx(16.25) and m["avg_loss"] == pytest.approx(-8.75)
    assert m["largest_win"] == 30 and m["largest_loss"] == -10
    assert m["max_win_streak"] == 2 and m["max_loss_streak"] == 3
    assert m["sqn"] == pytest.approx(3 * statistics.mean(pnls) / statistics.stdev(pnls))
    w = 4 / 9
    assert m["kelly"] == pytest.approx(w - (1 - w) / (16.25 / 8.75))
    assert m["avg_holding_bars"] == 1.0 and m["avg_holding_days"] == pytest.approx(1.0)
    assert m["exposure_pct"] == pytest.approx(75.0)


def test_no_losses_leaves_loss_ratios_undefined() -> None:
    m = metrics([100, 101, 103, 104], [trade(1), trade(2), trade(1)])
    assert m["profit_factor"] is None and m["kelly"] is None
    assert m["avg_loss"] is None and m["largest_loss"] is None
    assert m["max_loss_streak"] == 0 and m["max_win_streak"] == 3 and m["win_rate"] == 100.0


def test_open_trade_counts_in_exposure_not_in_trade_stats() -> None:
    m = metrics([100, 100, 101, 102], [trade(-1, 0, 1, 1), trade(5, 2, 3, 2, is_open=True)])
    assert m["n_trades"] == 1 and m["n_open"] == 1
    assert m["expectancy"] == -1.0 and m["win_rate"] == 0.0
    assert m["exposure_pct"] == pytest.approx(75.0)


def test_undefined_values_are_none_never_nan() -> None:
    m = metrics([100.0], [])
    assert set(m) == set(METRIC_KEYS)
    for key, value in m.items():
        assert value is None or math.isfinite(value), key
    assert m["cagr_pct"] is None and m["sharpe"] is None and m["volatility_pct"] is None
    flat = metrics([100.0] * 5, [])
    assert flat["sharpe"] is None and flat["sortino"] is None and flat["volatility_pct"] == 0.0
    assert flat["calmar"] is None and flat["var_95"] == 0.0


def test_ruin_makes_return_statistics_undefined() -> None:
    m = metrics([100, 50, -10, 5], [])
    assert m["sharpe"] is None and m["var_95"] is None and m["volatility_pct"] is None
    assert m["cagr_pct"] is not None and m["max_drawdown_pct"] == pytest.approx(110.0)


def test_kth_smallest_matches_sort() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 7, 300, 5000, 40_000):
        for x in (rng.normal(size=n), np.round(rng.normal(size=n), 1),
                  np.where(rng.random(n) < 0.7, 0.0, rng.standard_t(2, n)), np.full(n, 3.0)):
            s = np.sort(x)
            for k in {0, n // 20, n // 2, n - 1}:
                assert kth_smallest_nb(x, k) == s[k]


@pytest.mark.parametrize("kind", ["normal", "half_flat", "mostly_flat", "fat_tails", "rounded",
                                  "seasonal", "constant"])
def test_return_stats_fast_path_equals_general_path_bit_for_bit(kind: str) -> None:
    # Long series take the sampled-threshold path; its fallbacks (ties at the threshold,
    # a constant series) must land on the same numbers as the full histogram path.
    rng = np.random.default_rng(len(kind))
    for m in (8191, 8192, 8195, 50_001, 200_000):
        r = rng.normal(0, 1e-3, m)
        if kind == "half_flat":
            r[rng.random(m) < 0.5] = 0.0
        elif kind == "mostly_flat":
            r[rng.random(m) < 0.97] = 0.0
        elif kind == "fat_tails":
            r = rng.standard_t(2, m) * 1e-3
        elif kind == "rounded":
            r = np.round(r, 4)
        elif kind == "seasonal":
            r = np.sin(np.arange(m) * 2 * np.pi / 375) * 1e-3 + r * 1e-2
        elif kind == "constant":
            r[:] = 1e-4
        eq = 1e5 * np.concatenate(([1.0], np.cumprod(1 + r)))
        assert return_stats_nb(eq) == _return_stats_general_nb(eq), (kind, m)


@pytest.mark.parametrize("m", [3, 4_000, 8_192, 100_003])
@pytest.mark.parametrize("kind", ["normal", "drift", "trend", "constant", "spike"])
def test_return_stdev_in_one_pass_matches_two_pass_reference(kind: str, m: int) -> None:
    # The stdev sums squares about the strided sample's mean and corrects to the mean;
    # it must equal the textbook value (statistics.stdev, exact rational arithmetic
    # underneath) even where the mean dwarfs the spread. The absolute slack is the
    # rounding of the mean itself (a constant series' spread is below it; a two-pass
    # stdev about that rounded mean errs by as much the other way).
    rng = np.random.default_rng(m)
    r = rng.normal(0, 1e-3, m)
    if kind == "drift":  # mean 100x the standard deviation
        r = 1e-3 + rng.normal(0, 1e-5, m)
    elif kind == "trend":  # the mean moves: the sample's mean is not the whole mean
        r = np.linspace(-2e-3, 4e-3, m) + rng.normal(0, 1e-6, m)
    elif kind == "constant":
        r[:] = 2.5e-4
    elif kind == "spike":
        r[m // 2] = 0.5
    eq = 1e5 * np.concatenate(([1.0], np.cumprod(1 + r)))
    rets = eq[1:] / eq[:-1] - 1.0
    sd = return_stats_nb(eq)[1]
    ref = statistics.stdev(rets.tolist())
    assert sd >= 0.0
    assert sd == pytest.approx(ref, rel=1e-12, abs=1e-12 * float(np.abs(rets).max()))
    assert return_stats_nb(eq) == _return_stats_general_nb(eq)


def test_monthly_returns_in_exchange_time() -> None:
    # 2024-01-31 20:00 UTC is already 1 February in India (01:30 IST).
    ts = np.array(["2024-01-30T10:00", "2024-01-31T10:00", "2024-01-31T20:00",
                   "2024-02-15T10:00", "2024-04-02T10:00"], dtype="datetime64[ns]").astype(np.int64)
    eq = np.array([100.0, 110.0, 99.0, 121.0, 133.1])
    rows = monthly_returns(eq, ts, "Asia/Kolkata", 100.0)
    assert [(r["year"], r["month"]) for r in rows] == [(2024, 1), (2024, 2), (2024, 4)]
    assert [r["return_pct"] for r in rows] == pytest.approx([10.0, 10.0, 10.0])
    utc = monthly_returns(eq, ts, "UTC", 100.0)
    assert [r["return_pct"] for r in utc] == pytest.approx([-1.0, 121 / 99 * 100 - 100, 10.0])


def test_full_run_annualizes_with_the_data_calendar() -> None:
    rows = [(100 + i, 101 + i, 99 + i, 100.5 + i) for i in range(40)]
    b = make_bars(rows, per_day=8, step_min=15)
    res = run_backtest(b, [1] * 40)
    assert res.metrics["bars_per_year"] == bars_per_year(b.ts, b.tz)
    assert res.metrics["bars_per_year"] != 252.0
