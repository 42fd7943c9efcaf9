"""Sweeps' per-set block statistics of bar returns (for PBO by CSCV), and the lane buffers
that sweeps reuse from set to set (no set may see another's leftovers)."""

from __future__ import annotations

import numpy as np
import pytest

import engine.sweep as sweep_mod
from engine.backtest import run_backtest
from engine.errors import EngineInputError
from engine.indicators import ema_nb
from engine.metrics import METRIC_KEYS
from engine.options import EngineOptions
from engine.sweep import BLOCK_KEYS, sweep_ema_crossover, sweep_row, sweep_signals
from strategies.classic import EmaCrossover, RsiReversion
from tests.engine.reference import random_bars

STOPS = EngineOptions(size_mode="lots", size_value=2, lot_size=25, stop_loss_pct=0.4,
                      take_profit_atr=2.0, trailing_pct=0.3, atr_period=5,
                      square_off="10:30", no_entry_after="10:15", commission_fixed=20)


@pytest.fixture(scope="module")
def bars():  # type: ignore[no-untyped-def]
    return random_bars(np.random.default_rng(7), 1200, per_day=25, gap=0.003)


def numpy_blocks(equity: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rets = equity[1:] / equity[:-1] - 1.0
    parts = np.array_split(np.arange(equity.shape[0] - 1), s)
    return (np.array([len(p) for p in parts], dtype=np.float64),
            np.array([rets[p].sum() for p in parts]),
            np.array([(rets[p] ** 2).sum() for p in parts]))


def check_blocks(out: dict, j: int, equity: np.ndarray, s: int) -> None:
    n, total, sq = numpy_blocks(equity, s)
    assert out["block_n"].shape[1] == s
    np.testing.assert_array_equal(out["block_n"][j], n)
    np.testing.assert_allclose(out["block_sum"][j], total, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out["block_sumsq"][j], sq, rtol=1e-12, atol=1e-18)


def signal_rows(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(4)
    return [np.repeat(rng.choice(np.array([-1, 0, 1], np.int8), n // h + 1), h)[:n]
            for h in (1, 3, 17, 90)]


@pytest.mark.parametrize("opts", [EngineOptions(), STOPS])
@pytest.mark.parametrize("s", [1, 5, 16])
def test_sweep_signals_blocks_match_numpy_on_full_run_equity(bars, opts, s: int) -> None:  # type: ignore[no-untyped-def]
    rows = signal_rows(len(bars))
    out = sweep_signals(bars, np.stack(rows), opts, blocks=s)
    assert all(out[k].dtype == np.float64 and out[k].shape == (len(rows), s) for k in BLOCK_KEYS)
    for j, sig in enumerate(rows):
        full = run_backtest(bars, sig, opts)
        assert sweep_row(out, j) == full.metrics
        check_blocks(out, j, full.equity, s)
        assert out["block_n"][j].sum() == len(bars) - 1
        np.testing.assert_allclose(out["block_sum"][j].sum(),
                                   (full.equity[1:] / full.equity[:-1] - 1).sum(), rtol=1e-9)


def test_ema_sweep_and_strategy_sweeps_pass_blocks_through(bars) -> None:  # type: ignore[no-untyped-def]
    sets = [{"fast": f, "slow": s, "long_only": lo}
            for f, s, lo in ((3, 12, False), (5, 40, True), (8, 21, False))]
    out = EmaCrossover.sweep(bars, sets, STOPS, blocks=6)
    direct = sweep_ema_crossover(bars, [3, 5, 8], [12, 40, 21], [False, True, False], STOPS,
                                 blocks=6)
    for j, p in enumerate(sets):
        full = run_backtest(bars, EmaCrossover(**p).signals(bars), STOPS)
        check_blocks(out, j, full.equity, 6)
        for k in (*METRIC_KEYS, *BLOCK_KEYS):
            np.testing.assert_array_equal(out[k][j], direct[k][j])
    generic = [{"period": 6}, {"period": 14, "lower": 25.0}]
    g_out = RsiReversion.sweep(bars, generic, None, blocks=4)
    for j, p in enumerate(generic):
        check_blocks(g_out, j, run_backtest(bars, RsiReversion(**p).signals(bars)).equity, 4)


def test_blocks_off_by_default_more_blocks_than_returns_and_bad_values(bars) -> None:  # type: ignore[no-untyped-def]
    assert not set(BLOCK_KEYS) & set(sweep_ema_crossover(bars, [4], [9]))
    assert not set(BLOCK_KEYS) & set(EmaCrossover.sweep(bars, [{"fast": 4, "slow": 9}], None))
    short = bars.slice(0, 4)  # 3 returns in 5 blocks: two stay empty
    out = sweep_ema_crossover(short, [2], [3], blocks=5)
    np.testing.assert_array_equal(out["block_n"][0], [1, 1, 1, 0, 0])
    assert out["block_sum"][0, 3:].tolist() == [0.0, 0.0]
    empty = sweep_ema_crossover(bars, [], [], blocks=3)
    assert empty["block_n"].shape == (0, 3)
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(EngineInputError, match="blocks"):
            sweep_ema_crossover(bars, [4], [9], blocks=bad)  # type: ignore[arg-type]
        with pytest.raises(EngineInputError, match="blocks"):
            sweep_signals(bars, np.zeros((1, len(bars)), np.int8), blocks=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("n_bars", [1200, 9000])  # 9000: the sampled return-stats path
def test_reused_lane_buffers_leave_no_trace_between_sets(n_bars: int, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """One lane runs many sets in turn: busy ones (trade matrix grows past 64 rows) between
    idle ones, with and without stops, must each equal its own full run."""
    bars = random_bars(np.random.default_rng(n_bars), n_bars, per_day=25, gap=0.003)
    monkeypatch.setattr(sweep_mod, "_LANES_PER_THREAD", 1)
    fast = np.array([2, 30, 3, 40, 2, 5, 60, 2, 9])
    slow = np.array([3, 900, 4, 9000, 5, 7, 300, 3, 11])  # 9000: never defined (no trades)
    long_only = np.array([False, True, False, False, True, False, False, True, False])
    for opts in (EngineOptions(), STOPS):
        out = sweep_ema_crossover(bars, fast, slow, long_only, opts, blocks=3)
        for j in range(fast.size):
            f, s = ema_nb(bars.close, int(fast[j])), ema_nb(bars.close, int(slow[j]))
            sig = np.where(f > s, 1, np.where(f < s, 0 if long_only[j] else -1, 0))
            full = run_backtest(bars, sig.astype(np.int8), opts)
            assert sweep_row(out, j) == full.metrics, (opts, j)
            check_blocks(out, j, full.equity, 3)
        assert out["n_trades"].max() > 64


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_chunked_sets_equal_full_runs_for_every_chunk_size(bars, chunk: int, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Sets are simulated and scanned chunk by chunk: chunk edges (mid-trade, mid-session,
    at a square-off, while the trade matrix grows) must change no bit."""
    monkeypatch.setattr(sweep_mod, "_CHUNK_BARS", chunk)
    monkeypatch.setattr(sweep_mod, "_LANES_PER_THREAD", 1)
    rows = signal_rows(len(bars))
    fast, slow = np.array([2, 3, 6, 11]), np.array([3, 14, 25, 60])
    for opts in (EngineOptions(), STOPS,
                 EngineOptions(direction="short_only", size_mode="percent", size_value=80,
                               stop_loss_atr=1.0, atr_period=4, commission_pct=0.02)):
        sig_out = sweep_signals(bars, np.stack(rows), opts, blocks=4)
        ema_out = sweep_ema_crossover(bars, fast, slow, False, opts, blocks=4)
        for j, sig in enumerate(rows):
            full = run_backtest(bars, sig, opts)
            assert sweep_row(sig_out, j) == full.metrics, (chunk, opts, j)
            check_blocks(sig_out, j, full.equity, 4)
        for j in range(fast.size):
            f, s = ema_nb(bars.close, int(fast[j])), ema_nb(bars.close, int(slow[j]))
            sig = np.where(f > s, 1, np.where(f < s, -1, 0)).astype(np.int8)
            assert sweep_row(ema_out, j) == run_backtest(bars, sig, opts).metrics, (chunk, j)
