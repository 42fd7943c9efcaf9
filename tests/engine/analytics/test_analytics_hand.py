"""Analysis by hand: drawdown periods, ulcer index, streaks, breakdowns, benchmark, edge cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from engine.analysis import analyze
from engine.analysis_nb import drawdown_periods_nb
from engine.backtest import Trade
from engine.errors import EngineInputError
from tests.engine.analytics.synth_run import SynthRun

DAY = 86_400_000_000_000
HOUR = 3_600_000_000_000
T0 = int(np.datetime64("2024-01-01", "ns").astype(np.int64))  # a Monday


def days(n: int) -> np.ndarray:
    return T0 + np.arange(n, dtype=np.int64) * DAY


def trade(pnl: float, *, side: int = 1, reason: str = "signal", entry_ns: int = T0,
          held: int = 1, is_open: bool = False, entry_idx: int = 0, exit_idx: int = 1) -> Trade:
    return Trade(entry_ns, entry_ns + held * HOUR, entry_idx, exit_idx, side, 1.0, 100.0,
                 100.0 + side * pnl, pnl, 0.5, reason, is_open, held)


EQ = [100, 110, 99, 105, 121, 100, 90, 95, 130, 120]


def test_drawdown_periods_by_hand() -> None:
    a = analyze(np.array(EQ, float), days(len(EQ)), [], tz="UTC", bars_per_year=252.0)
    # Peaks 110 (bar 1) -> 99 -> back at bar 4; 121 (bar 4) -> 90 (bar 6) -> back at bar 8;
    # 130 (bar 8) -> 120, never recovered.
    rows = [(d["start_idx"], d["trough_idx"], d["end_idx"], d["length_bars"], d["recovery_bars"])
            for d in a.drawdowns]
    assert rows == [(4, 6, 8, 4, 2), (1, 2, 4, 3, 2), (8, 9, None, 1, None)]
    depths = [d["depth_pct"] for d in a.drawdowns]
    assert depths == pytest.approx([(1 - 90 / 121) * 100, (1 - 99 / 110) * 100, (1 - 120 / 130) * 100])
    assert a.drawdowns[0]["start"] == "2024-01-05T00:00:00+00:00"
    assert a.drawdowns[2]["end"] is None and a.drawdowns[2]["recovered"] is False
    assert a.drawdowns[0]["length_days"] == 4.0
    # The same numbers the engine's metrics report.
    assert depths[0] == pytest.approx(a.metrics["max_drawdown_pct"])
    assert max(d["length_bars"] for d in a.drawdowns) == a.metrics["max_drawdown_duration_bars"]
    assert a.risk["time_to_recovery_bars"] == 2 and a.risk["time_to_recovery_days"] == 2.0
    assert a.risk["max_drawdown_recovered"] is True
    assert a.risk["current_drawdown_pct"] == pytest.approx((1 - 120 / 130) * 100)


def test_ulcer_index_by_hand() -> None:
    a = analyze(np.array(EQ, float), days(len(EQ)), [], tz="UTC", bars_per_year=252.0)
    peak = 100.0
    sq = 0.0
    for e in EQ:
        peak = max(peak, e)
        sq += ((e / peak - 1) * 100) ** 2
    assert a.risk["ulcer_index"] == pytest.approx(math.sqrt(sq / len(EQ)), rel=1e-12)


def test_only_the_worst_five_periods_deepest_first() -> None:
    eq = [100.0]
    for k in range(8):  # 8 dips of growing depth, each recovered
        eq += [eq[-1] * (1 - 0.01 * (k + 1)), eq[-1] * 1.2]
    a = analyze(np.array(eq), days(len(eq)), [], tz="UTC", bars_per_year=252.0)
    assert [d["rank"] for d in a.drawdowns] == [1, 2, 3, 4, 5]
    assert [round(d["depth_pct"], 9) for d in a.drawdowns] == [8.0, 7.0, 6.0, 5.0, 4.0]


def test_drawdown_kernel_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        eq = 100 * np.cumprod(1 + rng.normal(0, 0.02, int(rng.integers(1, 200))))
        got = drawdown_periods_nb(eq, 100.0)
        want: list[tuple[int, int, int, float]] = []
        peak, pk, low, lk, under = 100.0, 0, 0.0, 0, False
        for i, e in enumerate(eq.tolist()):
            if e >= peak:
                if under:
                    want.append((pk, lk, i, 1 - low / peak))
                under, peak, pk = False, e, i
            elif not under or e < low:
                under, low, lk = True, e, i
        if under:
            want.append((pk, lk, -1, 1 - low / peak))
        assert list(zip(*(x.tolist() for x in got), strict=True)) == want


def test_streaks_and_trade_statistics_by_hand() -> None:
    pnls = [5.0, 3.0, -1.0, -2.0, -4.0, 0.0, 7.0]
    trades = [trade(p, entry_idx=i, exit_idx=i + 1) for i, p in enumerate(pnls)]
    trades.append(trade(2.5, is_open=True, entry_idx=7, exit_idx=9, held=2))
    eq = 100 + np.cumsum([0.0, *pnls, 1.0, 2.5])
    a = analyze(eq, days(len(eq)), trades, tz="UTC", bars_per_year=252.0)
    t = a.trade_analysis
    assert (t["max_win_streak"], t["max_loss_streak"]) == (2, 3)
    assert (t["n_trades"], t["n_open"], t["n_wins"], t["n_losses"]) == (7, 1, 3, 3)
    assert t["gross_profit"] == 15.0 and t["gross_loss"] == -7.0 and t["net_pnl"] == 8.0
    assert t["profit_factor"] == pytest.approx(15 / 7)
    assert t["payoff_ratio"] == pytest.approx(5.0 / (7 / 3))
    assert t["win_rate"] == pytest.approx(3 / 7 * 100)
    assert t["open_pnl"] == 2.5 and t["total_commission"] == 3.5
    assert t["largest_win"] == 7.0 and t["largest_loss"] == -4.0


def test_breakdowns_use_entry_time_in_the_exchange_zone() -> None:
    ist = "Asia/Kolkata"  # UTC+05:30
    mon_0915 = T0 + 3 * HOUR + 45 * 60_000_000_000  # Monday 09:15 IST = 03:45 UTC
    trades = [
        trade(10.0, entry_ns=mon_0915),
        trade(-4.0, entry_ns=mon_0915 + DAY, side=-1, reason="stop"),  # Tuesday 09:15
        trade(6.0, entry_ns=mon_0915 + DAY + HOUR, reason="target"),  # Tuesday 10:15
        trade(-2.0, entry_ns=T0 + 20 * HOUR, side=-1, reason="stop"),  # Tue 01:30 IST (Mon UTC)
    ]
    eq = np.full(5, 100.0)
    a = analyze(eq, days(5), trades, tz=ist, bars_per_year=252.0)
    t = a.trade_analysis
    by_day = {r["key"]: (r["n_trades"], r["total_pnl"]) for r in t["by_weekday"]}
    assert by_day == {"Mon": (1, 10.0), "Tue": (3, 0.0)}
    by_hour = {r["key"]: r["n_trades"] for r in t["by_hour"]}
    assert by_hour == {1: 1, 9: 2, 10: 1}
    sides = {r["key"]: r for r in t["by_side"]}
    assert sides["long"]["n_trades"] == 2 and sides["long"]["win_rate"] == 100.0
    assert sides["short"]["profit_factor"] == 0.0 and sides["long"]["profit_factor"] is None
    reasons = {r["key"]: (r["n_trades"], r["best"], r["worst"]) for r in t["by_exit_reason"]}
    assert reasons == {"signal": (1, 10.0, 10.0), "stop": (2, -2.0, -4.0), "target": (1, 6.0, 6.0)}


def test_trades_as_mappings_give_the_same_analysis(daily: SynthRun) -> None:
    r = daily.result
    kw = {"tz": daily.bars.tz, "bars_per_year": daily.bars_per_year,
          "benchmark_close": daily.bars.close}
    a = analyze(r.equity, r.ts, r.trades, **kw)
    b = analyze(r.equity, r.ts, [t.to_dict() for t in r.trades], **kw)
    assert a.to_dict()["trade_analysis"] == b.to_dict()["trade_analysis"]
    assert a.metrics == b.metrics == r.metrics


def test_benchmark_alpha_beta_by_hand() -> None:
    rng = np.random.default_rng(9)
    b = rng.normal(0.0002, 0.01, 500)
    c = 0.0001
    r = 2.0 * b + c  # beta 2, per-bar alpha c, perfectly correlated
    eq = 100.0 * np.concatenate(([1.0], np.cumprod(1 + r)))
    close = 50.0 * np.concatenate(([1.0], np.cumprod(1 + b)))
    bpy = 252.0
    a = analyze(eq, days(501), [], tz="UTC", bars_per_year=bpy, benchmark_close=close)
    bm = a.benchmark
    assert bm is not None
    assert bm["beta"] == pytest.approx(2.0, rel=1e-9)
    assert bm["alpha_pct"] == pytest.approx(((1 + c) ** bpy - 1) * 100, rel=1e-6)
    assert bm["correlation"] == pytest.approx(1.0, rel=1e-12)
    active = r - b
    ir = active.mean() / active.std(ddof=1) * math.sqrt(bpy)
    assert bm["information_ratio"] == pytest.approx(ir, rel=1e-9)
    assert bm["tracking_error_pct"] == pytest.approx(active.std(ddof=1) * math.sqrt(bpy) * 100)
    assert bm["return_pct"] == pytest.approx((close[-1] / close[0] - 1) * 100)
    assert bm["excess_return_pct"] == pytest.approx((eq[-1] - 100 * close[-1] / 50) / 100 * 100)


@pytest.mark.parametrize("equity", [
    [100.0],
    [100.0, 100.0, 100.0, 100.0],
    [100.0, 50.0, 0.0, -10.0, 5.0],
    [100.0, 101.0],
])
def test_degenerate_runs_are_json_safe(equity: list[float]) -> None:
    eq = np.array(equity)
    a = analyze(eq, days(len(eq)), [], tz="Asia/Kolkata", bars_per_year=252.0,
                benchmark_close=np.linspace(10, 12, len(eq)))
    text = json.dumps(a.to_dict(), allow_nan=False)
    assert "NaN" not in text and "Infinity" not in text


def test_flat_and_ruined_runs_say_undefined() -> None:
    flat = analyze(np.full(50, 100.0), days(50), [], tz="UTC", bars_per_year=252.0)
    assert flat.basic["sharpe"] is None and flat.risk["skew"] is None
    assert flat.risk["tail_ratio"] is None and flat.risk["ulcer_index"] == 0.0
    assert flat.drawdowns == []
    ruined = analyze(np.array([100.0, 50.0, 0.0, -10.0, 5.0]), days(5), [], tz="UTC",
                     bars_per_year=252.0, benchmark_close=np.arange(1.0, 6.0))
    assert ruined.risk["var_99"] is None and ruined.risk["kurtosis"] is None
    assert ruined.benchmark is not None and ruined.benchmark["beta"] is None


def test_bad_inputs_are_named() -> None:
    with pytest.raises(EngineInputError, match="benchmark_close has 3 values"):
        analyze(np.ones(4), days(4), [], tz="UTC", bars_per_year=252.0,
                benchmark_close=np.ones(3))
    with pytest.raises(EngineInputError, match="non-empty"):
        analyze(np.ones(0), days(0), [], tz="UTC", bars_per_year=252.0)
    with pytest.raises(EngineInputError, match="exit_reason"):
        analyze(np.ones(3), days(3), [{**trade(1.0).to_dict(), "exit_reason": "oops"}],
                tz="UTC", bars_per_year=252.0)


def test_bars_per_year_defaults_to_the_calendar(daily: SynthRun) -> None:
    r = daily.result
    a = analyze(r.equity, r.ts, r.trades, tz=daily.bars.tz, bars_per_year=None)
    assert a.basic["bars_per_year"] == daily.bars_per_year
    assert a.basic["sharpe"] == r.metrics["sharpe"]
