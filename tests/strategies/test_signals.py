"""Signals of every built-in strategy: dtype and values, warm-up, and NO look-ahead."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest

from engine.bars import Bars
from engine.errors import EngineInputError
from engine.synthetic import synthetic_daily, synthetic_intraday
from strategies.base import Strategy
from strategies.registry import get_strategy, list_strategies
from strategies.validation import find_look_ahead

INTRADAY_ONLY = {"ema10_scalper", "vwap_reversion"}
# A second, non-default parameter set per strategy, so look-ahead is not only tested at defaults.
ALT_PARAMS: dict[str, dict[str, Any]] = {
    "ema_crossover": {"fast": 3, "slow": 7, "long_only": True},
    "ema10_scalper": {"ema_period": 5, "band_pct": 0.0, "skip_open_bars": 0},
    "rsi_reversion": {"period": 5, "lower": 40, "upper": 60, "exit_level": 45},
    "bollinger_breakout": {"period": 7, "k": 1.0},
    "macd_trend": {"fast": 3, "slow": 8, "signal": 3},
    "donchian_breakout": {"entry": 5, "exit": 12},
    "vwap_reversion": {"band_pct": 0.05, "exit_pct": 0.01, "skip_open_bars": 0},
}
CASES = [
    pytest.param(cls.name, params, id=f"{cls.name}-{label}")
    for cls in list_strategies()
    for label, params in (("default", {}), ("alt", ALT_PARAMS.get(cls.name, {})))
]


@pytest.fixture(scope="module")
def intraday() -> Bars:
    return synthetic_intraday(6, seed=11)


@pytest.fixture(scope="module")
def daily() -> Bars:
    return synthetic_daily(2, seed=12)


def _bars_for(name: str, intraday: Bars, daily: Bars) -> list[Bars]:
    return [intraday] if name in INTRADAY_ONLY else [intraday, daily]


def test_every_builtin_has_cases() -> None:
    assert set(ALT_PARAMS) == {cls.name for cls in list_strategies()}


@pytest.mark.parametrize(("name", "params"), CASES)
def test_signals_dtype_values_warmup(
    name: str, params: dict[str, Any], intraday: Bars, daily: Bars
) -> None:
    strat = get_strategy(name)(**params)
    for bars in _bars_for(name, intraday, daily):
        sig = strat.signals(bars)
        assert isinstance(sig, np.ndarray) and sig.dtype == np.int8
        assert sig.shape == (len(bars),)
        assert set(np.unique(sig).tolist()) <= {-1, 0, 1}
        assert not sig[: strat.warmup].any(), "non-zero signal during warm-up"
        assert sig.any(), "a strategy that never trades on this data is suspicious"
        if strat.params.get("long_only"):
            assert sig.min() >= 0


def _assert_no_look_ahead(strat: Strategy, bars: Bars, seed: int, n_cuts: int = 20) -> None:
    leak = find_look_ahead(strat, bars, n_cuts=n_cuts, seed=seed)
    assert leak is None, f"{strat!r}: {leak}"


@pytest.mark.parametrize(("name", "params"), CASES)
def test_no_look_ahead(name: str, params: dict[str, Any], intraday: Bars, daily: Bars) -> None:
    """Signals on data truncated at 20 random cuts equal the full-data signals before the cut."""
    strat = get_strategy(name)(**params)
    for bars in _bars_for(name, intraday, daily):
        _assert_no_look_ahead(strat, bars, seed=zlib.crc32(name.encode()))


def test_look_ahead_check_catches_a_leak(intraday: Bars) -> None:
    class Leaky(Strategy):
        """Peeks at the next close."""

        def signals(self, bars: Bars) -> np.ndarray:
            nxt = np.append(bars.close[1:], bars.close[-1])
            return np.sign(nxt - bars.close).astype(np.int8)

    with pytest.raises(AssertionError):
        _assert_no_look_ahead(Leaky(), intraday, seed=0)


@pytest.mark.parametrize("name", sorted(INTRADAY_ONLY))
def test_intraday_strategies_refuse_daily_bars(name: str, daily: Bars) -> None:
    with pytest.raises(EngineInputError, match="intraday"):
        get_strategy(name)().signals(daily)


def test_ema_crossover_rule(intraday: Bars) -> None:
    from engine.indicators import ema_nb

    s = get_strategy("ema_crossover")(fast=5, slow=20)
    sig = s.signals(intraday)
    f, sl = ema_nb(intraday.close, 5), ema_nb(intraday.close, 20)
    expected = np.where(f > sl, 1, np.where(f < sl, -1, 0))
    np.testing.assert_array_equal(sig, expected)
    assert s.warmup == 19 and not sig[:19].any() and sig[19] != 0
    long_only = get_strategy("ema_crossover")(fast=5, slow=20, long_only=True).signals(intraday)
    np.testing.assert_array_equal(long_only, np.maximum(expected, 0))


def test_intraday_strategies_flat_at_session_open(intraday: Bars) -> None:
    from strategies.intraday import session_bar_index

    idx = session_bar_index(intraday)
    for name, skip in (("ema10_scalper", 5), ("vwap_reversion", 15)):
        sig = get_strategy(name)().signals(intraday)
        assert not sig[idx < skip].any(), name


def test_signals_work_on_a_single_bar(intraday: Bars) -> None:
    one = intraday.slice(0, 1)
    for cls in list_strategies():
        sig = cls().signals(one)
        assert sig.dtype == np.int8 and sig.tolist() == [0]


def test_default_sweep_matches_per_set_signals(
    monkeypatch: pytest.MonkeyPatch, intraday: Bars
) -> None:
    """The base sweep hands engine.sweep.sweep_signals the right rows, in batches."""
    import sys
    import types

    calls: list[tuple[np.ndarray, Any]] = []

    def fake_sweep_signals(bars: Bars, matrix: np.ndarray, options: Any) -> dict[str, np.ndarray]:
        calls.append((matrix.copy(), options))
        return {"checksum": (matrix.astype(np.int64) * np.arange(1, len(bars) + 1)).sum(axis=1)}

    fake = types.ModuleType("engine.sweep")
    fake.sweep_signals = fake_sweep_signals  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "engine.sweep", fake)
    cls: type[Strategy] = get_strategy("ema10_scalper")
    sets = [{"ema_period": p, "stop_loss_pct": sl} for p in (5, 8, 13) for sl in (0.2, 0.5)]
    out = cls.sweep(intraday, sets, {"initial_cash": 1.0}, batch_bytes=2 * len(intraday))
    weights = np.arange(1, len(intraday) + 1)
    for i, p in enumerate(sets):
        expected = (cls(**p).signals(intraday).astype(np.int64) * weights).sum()
        assert out["checksum"][i] == expected
    assert all(m.shape[0] <= 2 and m.dtype == np.int8 for m, _ in calls)
    assert {o["stop_loss_pct"] for _, o in calls} == {0.2, 0.5}
    assert all(o["initial_cash"] == 1.0 and o["square_off"] == "15:15" for _, o in calls)
