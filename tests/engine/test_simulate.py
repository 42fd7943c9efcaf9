"""Hand-computed micro scenarios: exact trades and equity for every execution rule.

Bars are one-minute IST bars from 09:15; the default account is 10,000 cash trading 10
units, no costs. Numbers in comments are the by-hand derivation.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.backtest import BacktestResult, run_backtest
from engine.options import EngineOptions
from tests.engine.reference import make_bars

BASE = [  # (open, high, low, close)
    (100, 101, 99, 100),
    (101, 103, 100, 102),
    (103, 105, 102, 104),
    (104, 106, 103, 105),
    (106, 107, 105, 106),
]
DROP = [
    (100, 101, 99, 100),
    (101, 103, 100, 102),
    (100, 100.5, 98, 99),
    (99, 100, 98.5, 99.5),
    (99.5, 101, 99, 100.5),
    (100, 102, 99.5, 101),
]
LONG_THEN_FLAT = [1, 1, 0, 0, 0]


def run(rows: list, signals: list[int], per_day: int | None = None, **opts: Any) -> BacktestResult:
    base = {"initial_cash": 10_000.0, "size_mode": "units", "size_value": 10}
    base.update(opts)
    return run_backtest(make_bars(rows, per_day=per_day), signals, EngineOptions(**base))


def check(res: BacktestResult, equity: list[float], trades: list[dict]) -> None:
    assert res.equity.tolist() == pytest.approx(equity, rel=1e-12, abs=1e-9)
    assert len(res.trades) == len(trades)
    for got, want in zip(res.trades, trades, strict=True):
        d = got.to_dict()
        for key, value in want.items():
            if isinstance(value, float):
                assert d[key] == pytest.approx(value, rel=1e-12, abs=1e-9), key
            else:
                assert d[key] == value, key
    assert res.metrics["final_equity"] == pytest.approx(equity[-1], rel=1e-12)


def T(entry: int, exit_: int, side: int, qty: float, ep: float, xp: float, pnl: float,
      reason: str, held: int, comm: float = 0.0, is_open: bool = False) -> dict:
    return dict(entry_idx=entry, exit_idx=exit_, side=side, qty=float(qty), entry_price=float(ep),
                exit_price=float(xp), pnl=float(pnl), commission=float(comm),
                exit_reason=reason, bars_held=held, is_open=is_open)


def test_units_long_signal_exit_fills_next_open() -> None:
    # Signal at bar 0's close -> buy bar 1's open (101); flat signal at bar 2 -> sell bar 3's open.
    res = run(BASE, LONG_THEN_FLAT)
    check(res, [10_000, 10_010, 10_030, 10_030, 10_030],
          [T(1, 3, 1, 10, 101, 104, 30, "signal", 2)])


def test_lots_short_side() -> None:
    # 2 lots x 75 = 150 units short at 101, covered at 104: -3 x 150 = -450.
    res = run(BASE, [-1, -1, 0, 0, 0], size_mode="lots", size_value=2, lot_size=75)
    check(res, [10_000, 9_850, 9_550, 9_550, 9_550],
          [T(1, 3, -1, 150, 101, 104, -450, "signal", 2)])


def test_notional_rounds_down_to_whole_units() -> None:
    # 1000 / 101 = 9.90 -> 9 units; +3 x 9 = 27.
    res = run(BASE, LONG_THEN_FLAT, size_mode="notional", size_value=1000)
    check(res, [10_000, 10_009, 10_027, 10_027, 10_027],
          [T(1, 3, 1, 9, 101, 104, 27, "signal", 2)])


def test_notional_fractional() -> None:
    q = 1000 / 101
    res = run(BASE, LONG_THEN_FLAT, size_mode="notional", size_value=1000, allow_fractional=True)
    check(res, [10_000, 10_000 + q, 10_000 + 3 * q, 10_000 + 3 * q, 10_000 + 3 * q],
          [T(1, 3, 1, q, 101, 104, 3 * q, "signal", 2)])


def test_percent_uses_previous_close_equity_and_open_trade_at_end() -> None:
    rows = [*BASE, (107, 108, 106, 108)]
    # Trade 1: floor(10000 x 50% / 101) = 49 units, +3 -> 147.
    # Trade 2 at bar 4's open 106: floor(10147 x 50% / 106) = floor(47.86) = 47 units,
    # still open at the end: exit at the last close 108, pnl 47 x 2 = 94.
    res = run(rows, [1, 1, 0, 1, 1, 1], size_mode="percent", size_value=50)
    check(res, [10_000, 10_049, 10_147, 10_147, 10_147, 10_241],
          [T(1, 3, 1, 49, 101, 104, 147, "signal", 2),
           T(4, 5, 1, 47, 106, 108, 94, "end_of_data", 2, is_open=True)])
    assert res.metrics["n_trades"] == 1 and res.metrics["n_open"] == 1


def test_percent_rounds_to_lot_multiples() -> None:
    # 10000 x 50% / 101 = 49.5 units -> 25 (one lot of 25).
    res = run(BASE, LONG_THEN_FLAT, size_mode="percent", size_value=50, lot_size=25)
    check(res, [10_000, 10_025, 10_075, 10_075, 10_075],
          [T(1, 3, 1, 25, 101, 104, 75, "signal", 2)])


def test_commission_fixed() -> None:
    # 20 per order: pnl 30 - 40 = -10; cash pays 20 at entry.
    res = run(BASE, LONG_THEN_FLAT, commission_fixed=20)
    check(res, [10_000, 9_990, 10_010, 9_990, 9_990],
          [T(1, 3, 1, 10, 101, 104, -10, "signal", 2, comm=40)])


def test_commission_per_unit() -> None:
    res = run(BASE, LONG_THEN_FLAT, commission_per_unit=0.5)
    check(res, [10_000, 10_005, 10_025, 10_020, 10_020],
          [T(1, 3, 1, 10, 101, 104, 20, "signal", 2, comm=10)])


def test_commission_percent_of_notional() -> None:
    # 0.1% x 101 x 10 = 1.01 at entry, 0.1% x 104 x 10 = 1.04 at exit.
    res = run(BASE, LONG_THEN_FLAT, commission_pct=0.1)
    check(res, [10_000, 10_008.99, 10_028.99, 10_027.95, 10_027.95],
          [T(1, 3, 1, 10, 101, 104, 27.95, "signal", 2, comm=2.05)])


def test_slippage_bps() -> None:
    # Buy 101 x 1.005 = 101.505, sell 104 x 0.995 = 103.48: (103.48 - 101.505) x 10 = 19.75.
    res = run(BASE, LONG_THEN_FLAT, slippage_bps=50)
    check(res, [10_000, 10_004.95, 10_024.95, 10_019.75, 10_019.75],
          [T(1, 3, 1, 10, 101.505, 103.48, 19.75, "signal", 2)])


def test_slippage_ticks_short() -> None:
    # 2 ticks x 0.05: sell short at 100.9, buy back at 104.1: -3.2 x 10 = -32.
    res = run(BASE, [-1, -1, 0, 0, 0], slippage_ticks=2, tick_size=0.05)
    check(res, [10_000, 9_989, 9_969, 9_968, 9_968],
          [T(1, 3, -1, 10, 100.9, 104.1, -32, "signal", 2)])


def test_option_delta_scales_pnl() -> None:
    # 150 units x delta 0.5 x 3 points = 225.
    res = run(BASE, LONG_THEN_FLAT, size_mode="lots", size_value=2, lot_size=75, option_delta=0.5)
    check(res, [10_000, 10_075, 10_225, 10_225, 10_225],
          [T(1, 3, 1, 150, 101, 104, 225, "signal", 2)])


def test_stop_pct_intrabar_and_reentry_after_fresh_signal() -> None:
    # Stop 2% of 101 = 98.98; bar 2 opens 100 (above) and trades down to 98 -> fill 98.98.
    # The signal stays long at bar 2 -> no re-entry at bar 3; it leaves (0) at bar 3 and
    # returns at bar 4 -> enter bar 5's open 100 (stop 98, not hit), open at the end.
    res = run(DROP, [1, 1, 1, 0, 1, 1], stop_loss_pct=2)
    check(res, [10_000, 10_010, 9_979.8, 9_979.8, 9_979.8, 9_989.8],
          [T(1, 2, 1, 10, 101, 98.98, -20.2, "stop", 2),
           T(5, 5, 1, 10, 100, 101, 10, "end_of_data", 1, is_open=True)])


def test_take_profit_pct_intrabar() -> None:
    # Target 3% of 101 = 104.03; bar 2 opens 103 (below) and reaches 105 -> fill 104.03.
    res = run(BASE, [1, 1, 1, 1, 1], take_profit_pct=3)
    check(res, [10_000, 10_010, 10_030.3, 10_030.3, 10_030.3],
          [T(1, 2, 1, 10, 101, 104.03, 30.3, "target", 2)])


def test_trailing_pct_uses_extremes_of_earlier_bars() -> None:
    rows = [(100, 101, 99, 100), (101, 103, 100, 102), (102, 106, 101.5, 105),
            (105, 105.5, 103.5, 104), (104, 105, 103, 104.5)]
    # Distance 2% x 101 = 2.02. Bar 2's level uses the high of bar 1 (103): 100.98, not hit
    # (it would be with bar 2's own high 106). Bar 3: 106 - 2.02 = 103.98 >= low 103.5.
    res = run(rows, [1] * 5, trailing_pct=2)
    check(res, [10_000, 10_010, 10_040, 10_029.8, 10_029.8],
          [T(1, 3, 1, 10, 101, 103.98, 29.8, "trailing", 3)])


def test_stop_in_atr_multiples_uses_atr_before_entry() -> None:
    rows = [(100, 101, 99, 100), (101, 103, 100, 102), (102, 103, 101, 102.5),
            (101, 101.5, 98, 99), (99, 100, 98, 99.5)]
    # TR = 2, 3 -> ATR(2) at bar 1 = 2.5; entry bar 2 at 102, stop 102 - 1.5 x 2.5 = 98.25.
    res = run(rows, [0, 1, 1, 1, 1], stop_loss_atr=1.5, atr_period=2)
    check(res, [10_000, 10_000, 10_005, 9_962.5, 9_962.5],
          [T(2, 3, 1, 10, 102, 98.25, -37.5, "stop", 2)])


def test_gap_through_stop_fills_at_open() -> None:
    rows = [(100, 101, 99, 100), (101, 103, 100, 102), (97, 98, 96, 97.5)]
    res = run(rows, [1, 1, 1], stop_loss_pct=2)
    check(res, [10_000, 10_010, 9_960], [T(1, 2, 1, 10, 101, 97, -40, "stop", 1)])


def test_gap_through_target_fills_at_open() -> None:
    rows = [(100, 101, 99, 100), (101, 103, 100, 102), (106, 107, 105, 106)]
    res = run(rows, [1, 1, 1], take_profit_pct=3)
    check(res, [10_000, 10_010, 10_050], [T(1, 2, 1, 10, 101, 106, 50, "target", 1)])


def test_stop_wins_when_stop_and_target_hit_in_one_bar() -> None:
    rows = [(100, 101, 99, 100), (101, 103, 100, 102), (101, 105, 98, 104)]
    res = run(rows, [1, 1, 1], stop_loss_pct=2, take_profit_pct=3)
    check(res, [10_000, 10_010, 9_979.8], [T(1, 2, 1, 10, 101, 98.98, -20.2, "stop", 2)])


def test_short_stop_is_above_entry() -> None:
    # Short at 101, stop 103.02; bar 2 opens 103 (below it) and trades up to 105.
    res = run(BASE, [-1] * 5, stop_loss_pct=2)
    check(res, [10_000, 9_990, 9_979.8, 9_979.8, 9_979.8],
          [T(1, 2, -1, 10, 101, 103.02, -20.2, "stop", 2)])


def test_entry_bar_is_checked_intrabar() -> None:
    rows = [(100, 101, 99, 100), (101, 103, 99.5, 102), (102, 103, 101, 102)]
    # Stop 1% of 101 = 99.99, bar 1's own low 99.5 hits it.
    res = run(rows, [1, 1, 1], stop_loss_pct=1)
    check(res, [10_000, 9_989.9, 9_989.9], [T(1, 1, 1, 10, 101, 99.99, -10.1, "stop", 1)])


def test_square_off_at_open_blocks_reentry_next_day() -> None:
    rows = [(100 + i, 101 + i, 99 + i, 100.5 + i) for i in range(10)]
    # 5 bars a day from 09:15: bar 3 is 09:18 -> flatten at its open (103); no entry at or
    # after 09:18, and the next day the unchanged long signal is not a fresh one.
    res = run(rows, [1] * 10, per_day=5, square_off="09:18")
    check(res, [10_000, 10_005, 10_015, 10_020, 10_020, 10_020, 10_020, 10_020, 10_020, 10_020],
          [T(1, 3, 1, 10, 101, 103, 20, "square_off", 2)])


def test_square_off_at_last_bar_of_day_close() -> None:
    rows = [(100 + i, 101 + i, 99 + i, 100.5 + i) for i in range(6)]
    # 3 bars a day; square_off 15:30 is never reached, so the day's last bar (2) closes the
    # position at its close 102.5. The signal leaves long at bar 3 -> re-entry at bar 5.
    res = run(rows, [1, 1, 1, 0, 1, 1], per_day=3, square_off="15:30")
    check(res, [10_000, 10_005, 10_015, 10_015, 10_015, 10_020],
          [T(1, 2, 1, 10, 101, 102.5, 15, "square_off", 2),
           T(5, 5, 1, 10, 105, 105.5, 5, "end_of_data", 1, is_open=True)])


def test_no_entry_after() -> None:
    rows = [(100 + i, 101 + i, 99 + i, 100.5 + i) for i in range(8)]
    # 5 bars a day: the signal turns long at bar 2's close; bar 3 is 09:18 >= 09:17, so
    # the entry waits for the next day's first bar (5, 09:15) and then holds.
    res = run(rows, [0, 0, 1, 1, 1, 1, 1, 1], per_day=5, no_entry_after="09:17")
    check(res, [10_000] * 5 + [10_005, 10_015, 10_025],
          [T(5, 7, 1, 10, 105, 107.5, 25, "end_of_data", 3, is_open=True)])


def test_reversal_and_end_of_data_without_exit_commission() -> None:
    # Long 101 -> sell 104 at bar 3's open and go short there; the short is open at the
    # end: exit at the last close 106 with no exit commission.
    res = run(BASE, [1, 1, -1, -1, -1], commission_fixed=5)
    check(res, [10_000, 10_005, 10_025, 10_005, 9_995],
          [T(1, 3, 1, 10, 101, 104, 20, "signal", 2, comm=10),
           T(3, 4, -1, 10, 104, 106, -25, "end_of_data", 2, comm=5, is_open=True)])


def test_long_only_maps_shorts_to_flat() -> None:
    res = run(BASE, [-1, -1, 1, 1, -1], direction="long_only")
    check(res, [10_000, 10_000, 10_000, 10_010, 10_020],
          [T(3, 4, 1, 10, 104, 106, 20, "end_of_data", 2, is_open=True)])


def test_short_only_maps_longs_to_flat() -> None:
    res = run(BASE, [1, -1, -1, 0, 0], direction="short_only")
    check(res, [10_000, 10_000, 9_990, 9_980, 9_970],
          [T(2, 4, -1, 10, 103, 106, -30, "signal", 2)])


def test_tighter_of_stop_and_trailing_applies() -> None:
    rows = [(100, 101, 99, 100), (101, 103, 100, 102), (102, 104, 101.5, 103)]
    # Stop 98.98; trailing distance 1.01: level 99.99 on bar 1 (not hit), then
    # 103 - 1.01 = 101.99 on bar 2, above the stop, and bar 2's low 101.5 reaches it.
    res = run(rows, [1, 1, 1], stop_loss_pct=2, trailing_pct=1)
    check(res, [10_000, 10_010, 10_009.9], [T(1, 2, 1, 10, 101, 101.99, 9.9, "trailing", 2)])
