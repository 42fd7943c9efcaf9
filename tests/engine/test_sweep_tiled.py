"""The tiled EMA sweep (options without levels or clock rules) on series long enough for
its streamed return statistics: bit for bit the metrics of full runs, and the same
metrics and block statistics as the set-by-set kernel."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import engine.sweep as sweep_mod
from engine.backtest import run_backtest
from engine.indicators import ema_nb
from engine.metrics import METRIC_KEYS
from engine.options import EngineOptions
from engine.sweep import BLOCK_KEYS, sweep_ema_crossover, sweep_row
from tests.engine.reference import random_bars

PLAIN = [
    EngineOptions(),
    EngineOptions(direction="long_only", size_mode="percent", size_value=80,
                  commission_pct=0.03, slippage_bps=2),
    EngineOptions(direction="short_only", size_mode="units", size_value=3, slippage_ticks=1,
                  tick_size=0.05, commission_fixed=5),
]


@pytest.fixture(scope="module")
def bars():  # type: ignore[no-untyped-def]
    return random_bars(np.random.default_rng(21), 20_000, per_day=75, gap=0.002)


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fast = np.array([2, 3, 3, 5, 8, 8, 13, 21, 40, 40, 3])
    slow = np.array([9, 9, 30, 30, 30, 90, 90, 90, 300, 900, 30_000])  # last: never defined
    long_only = np.arange(fast.size) % 3 == 1
    return fast, slow, long_only


@pytest.mark.parametrize("opts", PLAIN)
def test_tiled_sweep_equals_full_runs(bars, opts: EngineOptions) -> None:  # type: ignore[no-untyped-def]
    assert sweep_mod._plain(sweep_mod.sim_params(opts))
    fast, slow, long_only = _grid()
    out = sweep_ema_crossover(bars, fast, slow, long_only, opts)
    for j in range(fast.size):
        f, s = ema_nb(bars.close, int(fast[j])), ema_nb(bars.close, int(slow[j]))
        sig = np.where(f > s, 1, np.where(f < s, 0 if long_only[j] else -1, 0)).astype(np.int8)
        assert sweep_row(out, j) == run_backtest(bars, sig, opts).metrics, j
    assert sweep_row(out, fast.size - 1)["n_trades"] == 0


def test_tiled_sweep_with_accounts_blown(bars, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """9x leverage on a volatile walk: equity goes below zero, entries are then refused
    bar after bar (return statistics undefined); same as full runs and the other kernel."""
    opts = EngineOptions(size_mode="percent", size_value=900, allow_fractional=True)
    fast, slow, long_only = _grid()
    out = sweep_ema_crossover(bars, fast, slow, long_only, opts, blocks=5)
    assert np.any(out["final_equity"] <= 0.0) and np.any(np.isnan(out["sharpe"]))
    for j in range(fast.size):
        f, s = ema_nb(bars.close, int(fast[j])), ema_nb(bars.close, int(slow[j]))
        sig = np.where(f > s, 1, np.where(f < s, 0 if long_only[j] else -1, 0)).astype(np.int8)
        assert sweep_row(out, j) == run_backtest(bars, sig, opts).metrics, j
    monkeypatch.setattr(sweep_mod, "_plain", lambda p: False)
    one_by_one = sweep_ema_crossover(bars, fast, slow, long_only, opts, blocks=5)
    for k in (*METRIC_KEYS, *BLOCK_KEYS):
        np.testing.assert_array_equal(out[k], one_by_one[k], err_msg=k)


@pytest.mark.parametrize("opts", PLAIN[:2])
def test_tiled_sweep_equals_set_by_set_kernel(bars, opts: EngineOptions, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fast = np.repeat(np.arange(2, 12), 6)
    slow = np.tile(np.array([12, 15, 40, 41, 200, 700]), 10)
    long_only = np.arange(fast.size) % 4 == 0
    tiled = sweep_ema_crossover(bars, fast, slow, long_only, opts, blocks=7)
    monkeypatch.setattr(sweep_mod, "_EMA_BYTES", 5 * 8 * len(bars))  # many groups and tiles
    grouped = sweep_ema_crossover(bars, fast, slow, long_only, opts, blocks=7)
    monkeypatch.setattr(sweep_mod, "_plain", lambda p: False)
    one_by_one = sweep_ema_crossover(bars, fast, slow, long_only, opts, blocks=7)
    for k in (*METRIC_KEYS, *BLOCK_KEYS):
        np.testing.assert_array_equal(tiled[k], one_by_one[k], err_msg=k)
        np.testing.assert_array_equal(grouped[k], one_by_one[k], err_msg=k)


def test_tile_order_covers_every_set_once() -> None:
    fi = np.repeat(np.arange(9), 7)
    si = np.tile(np.arange(9, 16), 9)
    order, ptr = sweep_mod._tile_order(fi, si)
    assert np.array_equal(np.sort(order), np.arange(fi.size))
    assert ptr[0] == 0 and ptr[-1] == fi.size and np.all(np.diff(ptr) > 0)
    for a, b in itertools.pairwise(ptr):
        assert np.unique(fi[order[a:b]]).size <= sweep_mod._TILE[0]
        assert np.unique(si[order[a:b]]).size <= sweep_mod._TILE[1]
    firsts = fi[order[ptr[:-1]]]
    assert np.all(np.diff(firsts) >= 0)  # in (fast, slow) order


@pytest.mark.parametrize("n", [1, 2, 7, 40])
def test_tiled_sweep_on_tiny_series(n: int, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    tiny = random_bars(np.random.default_rng(n), n, per_day=25)
    fast, slow, long_only = np.array([2, 3, 5]), np.array([4, 8, 20]), np.array([0, 1, 0], bool)
    tiled = sweep_ema_crossover(tiny, fast, slow, long_only, blocks=16)
    monkeypatch.setattr(sweep_mod, "_plain", lambda p: False)
    one_by_one = sweep_ema_crossover(tiny, fast, slow, long_only, blocks=16)
    for k in (*METRIC_KEYS, *BLOCK_KEYS):
        np.testing.assert_array_equal(tiled[k], one_by_one[k], err_msg=k)
