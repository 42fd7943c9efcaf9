"""Indicator strategies for any bar size: EMA crossover, MACD, Donchian, Bollinger, RSI reversion."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numba import njit

from engine.bars import Bars
from engine.indicators import (
    bollinger_nb,
    ema_cross_nb,
    macd_nb,
    rolling_max_nb,
    rolling_min_nb,
    rsi_nb,
)
from strategies.base import Param, ParamError, Strategy

__all__ = [
    "BollingerBreakout",
    "DonchianBreakout",
    "EmaCrossover",
    "MacdTrend",
    "RsiReversion",
    "hysteresis_nb",
    "sign_signals",
]


@njit(nogil=True, cache=True)
def hysteresis_nb(
    valid: np.ndarray,
    long_entry: np.ndarray,
    long_exit: np.ndarray,
    short_entry: np.ndarray,
    short_exit: np.ndarray,
    allow_short: bool,
) -> np.ndarray:
    """Entry/exit rules -> target positions, walking forward bar by bar (causal).

    At each bar: if not `valid`, flat. Otherwise exits apply first (long_exit closes a
    long, short_exit a short), then entries (long_entry goes long from flat or short,
    short_entry goes short from flat or long when `allow_short`).
    """
    n = valid.shape[0]
    out = np.zeros(n, dtype=np.int8)
    pos = 0
    for i in range(n):
        if not valid[i]:
            pos = 0
        else:
            if (pos == 1 and long_exit[i]) or (pos == -1 and short_exit[i]):
                pos = 0
            if pos <= 0 and long_entry[i]:
                pos = 1
            elif pos >= 0 and allow_short and short_entry[i]:
                pos = -1
        out[i] = pos
    return out


def sign_signals(up: np.ndarray, down: np.ndarray, long_only: bool) -> np.ndarray:
    """+1 where `up`, -1 where `down` (0 if long_only), else 0, as int8."""
    sig = up.astype(np.int8) - down.astype(np.int8)
    if long_only:
        np.maximum(sig, 0, out=sig)
    return sig


def _prev(x: np.ndarray) -> np.ndarray:
    """x shifted one bar later (NaN first): the value known before the current bar."""
    out = np.empty_like(x)
    out[:1] = np.nan
    out[1:] = x[:-1]
    return out


class EmaCrossover(Strategy):
    """Trades the close's fast/slow EMA crossover: long when the fast EMA crosses above the
    slow one, short (flat if long_only) when it crosses below.

    As target positions: +1 while EMA(fast) > EMA(slow), -1 (0 if long_only) while
    EMA(fast) < EMA(slow), 0 while they are equal or either EMA is undefined (the first
    slow-1 bars). EMAs are pandas `ewm(span=n, adjust=False, min_periods=n)` of close.
    """

    name: ClassVar[str] = "ema_crossover"
    fast: int = Param(10, ge=2, le=500, step=1, help="fast EMA period (bars)")
    slow: int = Param(30, ge=3, le=2000, step=1, help="slow EMA period (bars); must exceed fast")
    long_only: bool = Param(False, help="never go short: flat while fast < slow")

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        if params["fast"] >= params["slow"]:
            raise ParamError(
                "fast", f"fast must be < slow, got fast={params['fast']} slow={params['slow']}"
            )

    @property
    def warmup(self) -> int:
        return self.slow - 1

    def signals(self, bars: Bars) -> np.ndarray:
        # Both EMAs in one pass, never stored: the sign of ema_nb(fast) - ema_nb(slow).
        return ema_cross_nb(bars.close, self.fast, self.slow, self.long_only)

    @classmethod
    def sweep(
        cls, bars: Bars, param_sets: list[dict[str, Any]], options: Any, *, blocks: int = 0,
        **kwargs: Any,
    ) -> dict[str, np.ndarray]:
        """Fast path: `engine.sweep.sweep_ema_crossover` computes each EMA once per period."""
        from engine.sweep import sweep_ema_crossover

        sets = [cls.validate_params(p) for p in param_sets]
        return sweep_ema_crossover(
            bars,
            np.array([p["fast"] for p in sets], dtype=np.int64),
            np.array([p["slow"] for p in sets], dtype=np.int64),
            np.array([p["long_only"] for p in sets], dtype=np.bool_),
            options,
            blocks=blocks,
        )


class MacdTrend(Strategy):
    """Trades MACD momentum on close: long while the MACD histogram (line - signal) is
    positive, short (flat if long_only) while it is negative, flat while undefined."""

    name: ClassVar[str] = "macd_trend"
    fast: int = Param(12, ge=2, le=500, step=1, help="fast EMA period")
    slow: int = Param(26, ge=3, le=1000, step=1, help="slow EMA period; must exceed fast")
    signal: int = Param(9, ge=1, le=500, step=1, help="signal-line EMA period")
    long_only: bool = Param(False, help="never go short")

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        if params["fast"] >= params["slow"]:
            raise ParamError(
                "fast", f"fast must be < slow, got fast={params['fast']} slow={params['slow']}"
            )

    @property
    def warmup(self) -> int:
        return self.slow + self.signal - 2

    def signals(self, bars: Bars) -> np.ndarray:
        _, _, hist = macd_nb(bars.close, self.fast, self.slow, self.signal)
        return sign_signals(hist > 0, hist < 0, self.long_only)


class DonchianBreakout(Strategy):
    """Turtle-style channel breakout: long when close breaks above the highest high of
    the previous `entry` bars, exit when it breaks below the lowest low of the previous
    `exit` bars; shorts mirror it (unless long_only)."""

    name: ClassVar[str] = "donchian_breakout"
    entry: int = Param(20, ge=2, le=1000, step=1, help="breakout channel length (bars)")
    exit: int = Param(10, ge=1, le=1000, step=1, help="exit channel length (bars)")
    long_only: bool = Param(False, help="never go short")

    @property
    def warmup(self) -> int:
        return max(self.entry, self.exit)

    def signals(self, bars: Bars) -> np.ndarray:
        hi_in = _prev(rolling_max_nb(bars.high, self.entry))
        lo_in = _prev(rolling_min_nb(bars.low, self.entry))
        lo_out = _prev(rolling_min_nb(bars.low, self.exit))
        hi_out = _prev(rolling_max_nb(bars.high, self.exit))
        c = bars.close
        valid = np.isfinite(hi_in) & np.isfinite(lo_out)
        return hysteresis_nb(
            valid, c > hi_in, c < lo_out, c < lo_in, c > hi_out, not self.long_only
        )


class BollingerBreakout(Strategy):
    """Volatility breakout on close: long when close closes above the upper Bollinger band,
    short below the lower band (unless long_only); exit when close crosses back over the
    middle band. Bands are SMA(period) +/- k population standard deviations."""

    name: ClassVar[str] = "bollinger_breakout"
    period: int = Param(20, ge=2, le=1000, step=1, help="band period (bars)")
    k: float = Param(2.0, ge=0.1, le=10.0, step=0.1, help="band width in standard deviations")
    long_only: bool = Param(False, help="never go short")

    @property
    def warmup(self) -> int:
        return self.period - 1

    def signals(self, bars: Bars) -> np.ndarray:
        mid, upper, lower = bollinger_nb(bars.close, self.period, self.k)
        c = bars.close
        return hysteresis_nb(
            np.isfinite(mid), c > upper, c < mid, c < lower, c > mid, not self.long_only
        )


class RsiReversion(Strategy):
    """Fades RSI extremes on close: long when Wilder RSI drops below `lower`, held until
    it recovers to `exit_level`; short when it rises above `upper`, held until it falls
    back to `exit_level` (no shorts if long_only)."""

    name: ClassVar[str] = "rsi_reversion"
    period: int = Param(14, ge=2, le=500, step=1, help="RSI period (Wilder)")
    lower: float = Param(30.0, ge=1.0, le=99.0, step=1.0, help="oversold level: go long below it")
    upper: float = Param(
        70.0, ge=1.0, le=99.0, step=1.0, help="overbought level: go short above it"
    )
    exit_level: float = Param(50.0, ge=1.0, le=99.0, step=1.0, help="RSI level that closes a trade")
    long_only: bool = Param(False, help="never go short")

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        lo, ex, up = params["lower"], params["exit_level"], params["upper"]
        if not lo < ex < up:
            raise ParamError(
                "exit_level",
                f"need lower < exit_level < upper, got lower={lo} exit_level={ex} upper={up}",
            )

    @property
    def warmup(self) -> int:
        return self.period

    def signals(self, bars: Bars) -> np.ndarray:
        rsi = rsi_nb(bars.close, self.period)
        return hysteresis_nb(
            np.isfinite(rsi),
            rsi < self.lower,
            rsi >= self.exit_level,
            rsi > self.upper,
            rsi <= self.exit_level,
            not self.long_only,
        )
