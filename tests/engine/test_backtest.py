"""Backtester / run_backtest API: chunked stepping, results, Trade JSON, input errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from engine.backtest import Backtester, BacktestResult, StepInfo, Trade, run_backtest
from engine.errors import EngineError, EngineInputError
from engine.metrics import METRIC_KEYS
from engine.options import EngineOptions
from tests.engine.reference import random_bars


@pytest.fixture(scope="module")
def bars():  # type: ignore[no-untyped-def]
    return random_bars(np.random.default_rng(7), 300, per_day=30)


@pytest.fixture(scope="module")
def signals(bars) -> np.ndarray:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    return np.repeat(rng.choice(np.array([-1, 0, 1], dtype=np.int8), 60), 5)[: len(bars)]


def test_step_reports_progress_and_chunk_equity(bars, signals) -> None:  # type: ignore[no-untyped-def]
    bt = Backtester(bars, signals, EngineOptions(stop_loss_pct=1.0))
    infos: list[StepInfo] = []
    while not bt.done:
        infos.append(bt.step(64))
    assert [i.bars_done for i in infos] == [64, 128, 192, 256, 300]
    assert [i.done for i in infos] == [False] * 4 + [True]
    assert infos[-1].progress == 1.0 and infos[0].progress == pytest.approx(64 / 300)
    assert all(i.n_bars == 300 for i in infos)
    res = bt.result()
    assert np.array_equal(np.concatenate([i.equity for i in infos]), res.equity)
    assert np.array_equal(np.concatenate([i.equity_ts for i in infos]), bars.ts)
    assert bt.result() is res


def test_result_before_done_raises(bars, signals) -> None:  # type: ignore[no-untyped-def]
    bt = Backtester(bars, signals)
    bt.step(10)
    with pytest.raises(EngineError, match="10 of 300"):
        bt.result()
    with pytest.raises(EngineInputError, match="max_bars"):
        bt.step(0)


def test_result_shape_and_json_safety(bars, signals) -> None:  # type: ignore[no-untyped-def]
    res = run_backtest(bars, signals, {"commission_fixed": 1.0, "trailing_pct": 0.8})
    assert isinstance(res, BacktestResult)
    assert res.equity.dtype == np.float64 and res.equity.shape == (300,)
    assert np.array_equal(res.ts, bars.ts)
    assert set(METRIC_KEYS) <= set(res.metrics)
    json.dumps(res.metrics, allow_nan=False)
    json.dumps(res.monthly_returns, allow_nan=False)
    json.dumps([t.to_dict() for t in res.trades], allow_nan=False)
    assert res.engine["bars"] == 300 and res.engine["version"]
    assert res.engine["seconds"] > 0 and res.engine["bars_per_second"] > 0
    closed = [t for t in res.trades if not t.is_open]
    assert res.metrics["n_trades"] == len(closed)
    assert all(not t.is_open for t in res.trades[:-1])
    assert sum(t.pnl for t in res.trades) == pytest.approx(
        res.equity[-1] - 100_000.0, rel=1e-9, abs=1e-6
    )


def test_trade_to_dict_iso_times() -> None:
    t = Trade(1_704_166_500_000_000_000, 1_704_166_560_000_000_000, 3, 4, -1, 2.0, 100.0,
              99.0, 2.0, 0.0, "target", False, 1)
    d = t.to_dict()
    assert d["entry_time"] == "2024-01-02T03:35:00+00:00"
    assert d["exit_time"] == "2024-01-02T03:36:00+00:00"
    assert d["side"] == -1 and d["exit_reason"] == "target" and d["bars_held"] == 1
    bad = Trade(0, 0, 0, 0, 1, 1.0, 1.0, 1.0, math.inf, 0.0, "signal", False, 0)
    assert bad.to_dict()["pnl"] is None


def test_no_trades_gives_flat_equity_and_none_metrics(bars) -> None:  # type: ignore[no-untyped-def]
    res = run_backtest(bars, np.zeros(len(bars), dtype=np.int8))
    assert res.trades == []
    assert np.all(res.equity == 100_000.0)
    m = res.metrics
    assert m["n_trades"] == 0 and m["n_open"] == 0 and m["total_return_pct"] == 0.0
    assert m["win_rate"] is None and m["profit_factor"] is None and m["sharpe"] is None
    assert m["max_drawdown_pct"] == 0.0 and m["exposure_pct"] == 0.0


def test_single_bar(bars) -> None:  # type: ignore[no-untyped-def]
    one = bars.slice(0, 1)
    res = run_backtest(one, [1])
    assert res.equity.tolist() == [100_000.0] and res.trades == []
    assert res.metrics["cagr_pct"] is None and res.metrics["final_equity"] == 100_000.0


@pytest.mark.parametrize(
    ("sig", "match"),
    [
        (np.zeros(5), "one value per bar"),
        (np.full(300, 2), "row 0: expected -1, 0 or \\+1"),
        (np.r_[np.zeros(299), np.nan], "row 299: expected -1, 0 or \\+1, got nan"),
        (np.r_[np.zeros(10, np.int8), np.int8(3), np.zeros(289, np.int8)], "row 10"),
    ],
)
def test_bad_signals_name_the_row(bars, sig, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EngineInputError, match=match):
        Backtester(bars, sig)


def test_float_and_bool_signals_are_accepted(bars, signals) -> None:  # type: ignore[no-untyped-def]
    a = run_backtest(bars, signals)
    b = run_backtest(bars, signals.astype(np.float64))
    assert np.array_equal(a.equity, b.equity)
    c = run_backtest(bars, signals > 0)
    d = run_backtest(bars, (signals > 0).astype(np.int8))
    assert np.array_equal(c.equity, d.equity)


def test_options_as_dict_are_validated(bars, signals) -> None:  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="stop_loss_pct"):
        run_backtest(bars, signals, {"stop_loss_pct": -1})


def test_trades_buffer_growth_is_invisible() -> None:
    # Far more trades than the initial buffer: alternate every bar.
    b = random_bars(np.random.default_rng(1), 3000, per_day=100)
    sig = np.tile(np.array([1, -1], dtype=np.int8), 1500)
    res = run_backtest(b, sig, chunk_size=7)
    assert len(res.trades) == 2999 and res.metrics["n_trades"] == 2998
    assert res.trades == run_backtest(b, sig).trades


def test_ruined_account_stops_entering() -> None:
    # 10x leverage on a falling market: equity goes negative, no new entries after that.
    rows = [(100.0 - 9 * i, 101.0 - 9 * i, 90.0 - 9 * i, 91.0 - 9 * i) for i in range(10)]
    from tests.engine.reference import make_bars

    b = make_bars(rows)
    res = run_backtest(b, [1, 0, 1, 0, 1, 0, 1, 0, 1, 0],
                       EngineOptions(size_mode="percent", size_value=1000))
    assert res.equity.min() < 0
    first_ruin = int(np.argmax(res.equity <= 0))
    assert all(t.entry_idx <= first_ruin for t in res.trades)
    assert res.metrics["sharpe"] is None and res.metrics["cagr_pct"] == -100.0


def test_result_pickles_with_its_trades(bars, signals) -> None:  # type: ignore[no-untyped-def]
    import pickle

    res = run_backtest(bars, signals)
    back = pickle.loads(pickle.dumps(res))
    assert back.trades == res.trades and back.metrics == res.metrics
    assert np.array_equal(back.equity, res.equity)
