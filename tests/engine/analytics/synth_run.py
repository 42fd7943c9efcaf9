"""Synthetic runs for the analytics tests and benchmark: real engine runs on generated bars."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.backtest import BacktestResult, run_backtest
from engine.bars import Bars
from engine.calendar import bars_per_year
from engine.indicators import ema_nb
from engine.synthetic import MINUTES_PER_SESSION, synthetic_daily, synthetic_intraday


@dataclass(frozen=True)
class SynthRun:
    """A finished engine run plus the bars it ran on."""

    bars: Bars
    result: BacktestResult
    bars_per_year: float


def ema_signals(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """+1 when the fast EMA is above the slow one, -1 below, 0 during warm-up."""
    f, s = ema_nb(close, fast), ema_nb(close, slow)
    sig = np.sign(np.nan_to_num(f - s)).astype(np.int8)
    sig[:slow] = 0
    return sig


def intraday_run(n_bars: int, seed: int = 7, fast: int = 20, slow: int = 120,
                 options: dict | None = None) -> SynthRun:
    """About `n_bars` one-minute NIFTY-like bars (whole sessions) and an EMA-crossover run."""
    days = max(1, -(-n_bars // MINUTES_PER_SESSION))
    bars = synthetic_intraday(days=days, seed=seed)
    opts = {"initial_cash": 1_000_000.0, "size_mode": "units", "size_value": 10.0,
            "commission_fixed": 1.0, "stop_loss_pct": 0.5, "take_profit_pct": 1.0,
            **(options or {})}
    res = run_backtest(bars, ema_signals(bars.close, fast, slow), opts)
    return SynthRun(bars, res, bars_per_year(bars.ts, bars.tz))


def daily_run(years: float, seed: int = 3, fast: int = 10, slow: int = 40) -> SynthRun:
    """Daily bars and an EMA-crossover run on them."""
    bars = synthetic_daily(years=years, seed=seed)
    opts = {"initial_cash": 100_000.0, "size_mode": "percent", "size_value": 100.0,
            "allow_fractional": True}
    res = run_backtest(bars, ema_signals(bars.close, fast, slow), opts)
    return SynthRun(bars, res, bars_per_year(bars.ts, bars.tz))
