"""Strategy.sweep against full single runs: the sweep must report the same metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.bars import Bars
from engine.synthetic import synthetic_intraday
from strategies.base import Strategy, merge_engine_options
from strategies.registry import get_strategy

sweep_mod = pytest.importorskip("engine.sweep")
backtest_mod = pytest.importorskip("engine.backtest")

KEYS = ("final_equity", "n_trades", "sharpe", "max_drawdown_pct", "win_rate")


@pytest.fixture(scope="module")
def bars() -> Bars:
    return synthetic_intraday(4, seed=21)


def _full(cls: type[Strategy], bars: Bars, params: dict[str, Any], options: dict[str, Any]) -> dict:
    p = cls.validate_params(params)
    opts = merge_engine_options(cls, p, options)
    return backtest_mod.run_backtest(bars, cls(**p).signals(bars), opts).metrics


def _assert_rows_match(out: dict[str, np.ndarray], j: int, metrics: dict) -> None:
    row = sweep_mod.sweep_row(out, j)
    for key in KEYS:
        assert row[key] == metrics[key], (key, row[key], metrics[key])


def test_ema_crossover_fast_sweep_equals_full_runs_and_generic_path(bars: Bars) -> None:
    cls = get_strategy("ema_crossover")
    sets = [
        {"fast": f, "slow": s, "long_only": lo}
        for f in (3, 8)
        for s in (13, 21)
        for lo in (False, True)
    ]
    options = {"commission_pct": 0.01, "size_mode": "units", "size_value": 2}
    fast = cls.sweep(bars, sets, options)
    generic = Strategy.sweep.__func__(cls, bars, sets, options)  # type: ignore[attr-defined]
    for key in fast:
        np.testing.assert_array_equal(fast[key], generic[key], err_msg=key)
    for j in (0, 5):
        _assert_rows_match(fast, j, _full(cls, bars, sets[j], options))


def test_default_sweep_applies_engine_overrides(bars: Bars) -> None:
    cls = get_strategy("ema10_scalper")
    sets = [{"ema_period": 8, "stop_loss_pct": sl} for sl in (0.02, 0.06, 0.0)]
    out = cls.sweep(bars, sets, {})
    for j, p in enumerate(sets):
        _assert_rows_match(out, j, _full(cls, bars, p, {}))
    assert len({float(x) for x in out["final_equity"]}) == 3


def test_sweep_rejects_explicit_conflicting_options(bars: Bars) -> None:
    from engine.options import EngineOptions
    from strategies.base import ParamError

    cls = get_strategy("ema10_scalper")
    with pytest.raises(ParamError, match="conflicts"):
        cls.sweep(bars, [{"stop_loss_pct": 0.2}], EngineOptions(stop_loss_pct=1.0))
    out = cls.sweep(bars, [{"stop_loss_pct": 0.2}], EngineOptions(initial_cash=5e5))
    assert out["final_equity"].shape == (1,)
