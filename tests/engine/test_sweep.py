"""Sweeps report exactly (bit for bit) the metrics of full single runs."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import engine.sweep as sweep_mod
from engine.backtest import run_backtest
from engine.errors import EngineInputError
from engine.indicators import ema_nb
from engine.metrics import METRIC_KEYS
from engine.options import EngineOptions
from engine.sweep import sweep, sweep_ema_crossover, sweep_row, sweep_signals
from tests.engine.reference import random_bars

OPTIONS = [
    EngineOptions(),
    EngineOptions(direction="long_only", size_mode="units", size_value=3,
                  commission_pct=0.05, slippage_ticks=1, tick_size=0.05),
    EngineOptions(size_mode="lots", size_value=2, lot_size=25, option_delta=0.5,
                  stop_loss_atr=1.5, take_profit_pct=2.0, trailing_atr=2.0, atr_period=5,
                  square_off="10:30", no_entry_after="10:15", commission_fixed=20),
    EngineOptions(size_mode="percent", size_value=250, stop_loss_pct=0.7, trailing_pct=0.5,
                  slippage_bps=3),
]


@pytest.fixture(scope="module")
def bars():  # type: ignore[no-untyped-def]
    return random_bars(np.random.default_rng(11), 1500, per_day=25, gap=0.003)


@pytest.mark.parametrize("opts", OPTIONS)
def test_sweep_signals_equals_full_runs(bars, opts: EngineOptions) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2)
    n = len(bars)
    mats = [np.repeat(rng.choice(np.array([-1, 0, 1], np.int8), n // h + 1), h)[:n]
            for h in (1, 4, 9, 30, 200)]
    mats.append(np.zeros(n, np.int8))
    mats.append(np.ones(n, np.int8))
    matrix = np.stack(mats)
    out = sweep_signals(bars, matrix, opts)
    assert list(out) == list(METRIC_KEYS)
    assert all(v.dtype == np.float64 and v.shape == (len(mats),) for v in out.values())
    for j, sig in enumerate(mats):
        full = run_backtest(bars, sig, opts)
        assert sweep_row(out, j) == full.metrics, j


def _strategy_signals(bars, fast: int, slow: int, long_only: bool) -> np.ndarray:  # type: ignore[no-untyped-def]
    from strategies.registry import get_strategy

    return get_strategy("ema_crossover")(fast=fast, slow=slow, long_only=long_only).signals(bars)


@pytest.mark.parametrize("opts", OPTIONS[:3])
def test_ema_sweep_equals_strategy_runs(bars, opts: EngineOptions) -> None:  # type: ignore[no-untyped-def]
    fast = np.array([2, 5, 5, 8, 12, 20, 3])
    slow = np.array([3, 20, 30, 21, 50, 200, 1600])  # 1600 > bars: never defined
    long_only = np.array([False, True, False, False, True, False, False])
    out = sweep_ema_crossover(bars, fast, slow, long_only, opts)
    for j in range(len(fast)):
        sig = _strategy_signals(bars, int(fast[j]), int(slow[j]), bool(long_only[j]))
        full = run_backtest(bars, sig, opts)
        assert sweep_row(out, j) == full.metrics, j
    assert sweep_row(out, 6)["n_trades"] == 0


def test_ema_signals_rule_without_strategies(bars) -> None:  # type: ignore[no-untyped-def]
    f, s = ema_nb(bars.close, 4), ema_nb(bars.close, 15)
    sig = np.where(f > s, 1, np.where(f < s, -1, 0)).astype(np.int8)
    out = sweep_ema_crossover(bars, [4], [15])
    assert sweep_row(out, 0) == run_backtest(bars, sig).metrics


def test_ema_sweep_grouping_does_not_change_results(bars, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fast = np.arange(2, 14)
    slow = np.arange(20, 80, 5)
    whole = sweep_ema_crossover(bars, fast, slow, True)
    monkeypatch.setattr(sweep_mod, "_EMA_BYTES", 3 * 8 * len(bars))  # 3 EMAs per group
    grouped = sweep_ema_crossover(bars, fast, slow, True)
    for k in METRIC_KEYS:
        np.testing.assert_array_equal(whole[k], grouped[k])



def test_ema_sweep_tiles_a_shuffled_grid_without_changing_results(bars, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    grid_f, grid_s = np.meshgrid(np.arange(2, 9), np.array([3, 5, 20, 25, 30, 40]))
    perm = np.random.default_rng(5).permutation(grid_f.size)
    fast, slow = grid_f.ravel()[perm], grid_s.ravel()[perm]  # 3 and 5 are fast and slow
    long_only = np.arange(fast.size) % 3 == 0
    whole = sweep_ema_crossover(bars, fast, slow, long_only)
    for n_emas in (2, 3, 5, 8):
        tiles = sweep_mod._tiles(fast, slow, n_emas)
        assert np.array_equal(np.sort(np.concatenate(tiles)), np.arange(fast.size))
        assert all(np.union1d(fast[t], slow[t]).size <= n_emas for t in tiles)
        monkeypatch.setattr(sweep_mod, "_EMA_BYTES", n_emas * 8 * len(bars))
        grouped = sweep_ema_crossover(bars, fast, slow, long_only)
        for k in METRIC_KEYS:
            np.testing.assert_array_equal(whole[k], grouped[k])
    assert len(sweep_mod._tiles(fast, slow, 32)) == 1
    assert len(sweep_mod._tiles(np.repeat(np.arange(20), 20), np.tile(np.arange(20), 20) + 50,
                                32)) == 2  # 20 x 20: two tiles of 10 fast x 20 slow

def test_empty_and_bad_inputs(bars) -> None:  # type: ignore[no-untyped-def]
    empty = sweep_ema_crossover(bars, [], [])
    assert all(v.shape == (0,) for v in empty.values())
    assert sweep is sweep_signals
    with pytest.raises(EngineInputError, match="matrix"):
        sweep_signals(bars, np.zeros(len(bars)))
    with pytest.raises(EngineInputError, match="-1, 0 or \\+1"):
        sweep_signals(bars, np.full((2, len(bars)), 2, dtype=np.int8))
    with pytest.raises(EngineInputError, match="fast periods must be >= 1"):
        sweep_ema_crossover(bars, [0], [5])
    with pytest.raises(EngineInputError, match="slow"):
        sweep_ema_crossover(bars, [2, 3], [5])
    with pytest.raises(EngineInputError, match="whole numbers"):
        sweep_ema_crossover(bars, [2.5], [5])


def test_sweeps_from_many_threads_at_once(bars) -> None:  # type: ignore[no-untyped-def]
    fast = np.arange(2, 12)
    slow = np.arange(20, 70, 5)
    expected = sweep_ema_crossover(bars, fast, slow)
    mats = np.stack([np.repeat(np.array([1, -1, 0], np.int8), len(bars))[j : j + len(bars)]
                     for j in range(3)])
    expected_sig = sweep_signals(bars, mats)

    def job(j: int) -> tuple[dict, dict]:
        return sweep_ema_crossover(bars, fast, slow), sweep_signals(bars, mats)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(job, range(12)))
    for ema_out, sig_out in results:
        for k in METRIC_KEYS:
            np.testing.assert_array_equal(ema_out[k], expected[k])
            np.testing.assert_array_equal(sig_out[k], expected_sig[k])


def test_parallel_launches_take_turns(bars) -> None:  # type: ignore[no-untyped-def]
    """A sweep waits while another parallel launch of the process holds the cores."""
    sweep_ema_crossover(bars, [3], [9])  # compiled before the timing below
    with ThreadPoolExecutor(1) as pool, sweep_mod.launch_guard():
        pending = pool.submit(sweep_ema_crossover, bars, [3, 4], [9, 12])
        time.sleep(0.3)
        assert not pending.done()
    assert pending.result(timeout=30)["n_trades"].shape == (2,)
