"""Intraday strategies for 1-minute style bars: the EMA-10 scalper and session-VWAP reversion."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from engine.bars import Bars
from engine.calendar import local_clock
from engine.errors import EngineInputError
from engine.indicators import ema_nb, vwap_nb
from strategies.base import Param, ParamError, Strategy
from strategies.classic import hysteresis_nb

__all__ = ["Ema10Scalper", "VwapReversion", "require_intraday", "session_bar_index"]

SQUARE_OFF_CHOICES = ("none", "15:00", "15:10", "15:15", "15:20", "15:25")


def session_bar_index(bars: Bars) -> np.ndarray:
    """Index of each bar within its exchange-local day (0 at the day's first bar)."""
    day_id, _ = local_clock(bars.ts, bars.tz)
    n = day_id.shape[0]
    idx = np.arange(n, dtype=np.int64)
    first = np.zeros(n, dtype=np.int64)
    if n:
        new = np.ones(n, dtype=bool)
        new[1:] = day_id[1:] != day_id[:-1]
        first = np.maximum.accumulate(np.where(new, idx, 0))
    return idx - first


def require_intraday(bars: Bars, strategy: str) -> np.ndarray:
    """Local day ids, or EngineInputError when the bars are not intraday (one bar a day)."""
    day_id, _ = local_clock(bars.ts, bars.tz)
    if day_id.shape[0] > 1:
        days = np.count_nonzero(np.diff(day_id)) + 1
        if day_id.shape[0] / days < 2.0:
            raise EngineInputError(
                f"strategy {strategy!r} needs intraday bars (several per session); "
                f"these are about one bar per day"
            )
    return day_id


class Ema10Scalper(Strategy):
    """Intraday momentum scalper for 1-minute index data (NIFTY-style sessions) around a
    10-period EMA of close.

    Long when close is more than band_pct % above a rising EMA, short when more than
    band_pct % below a falling EMA (unless long_only); a trade closes when close crosses
    back through the EMA. Flat for the first skip_open_bars bars of each session.

    Two parameters are applied by the engine, not by the signals; `engine_overrides`
    maps them onto EngineOptions and runners merge them with
    `strategies.base.merge_engine_options`:

    * stop_loss_pct > 0 -> EngineOptions.stop_loss_pct (intrabar stop, % of entry fill);
      0 disables it.
    * square_off "HH:MM" -> EngineOptions.square_off (flatten then and at each session's
      last bar, no entries after it); "none" disables it.
    """

    name: ClassVar[str] = "ema10_scalper"
    ema_period: int = Param(10, ge=2, le=200, step=1, help="EMA period (bars)")
    band_pct: float = Param(0.02, ge=0.0, le=5.0, step=0.01, help="entry distance from EMA, %")
    skip_open_bars: int = Param(5, ge=0, le=375, step=1, help="bars to stay flat after the open")
    stop_loss_pct: float = Param(
        0.25, ge=0.0, le=10.0, step=0.05, help="engine stop loss, % of entry (0 = none)"
    )
    square_off: str = Param(
        "15:15", choices=SQUARE_OFF_CHOICES, help="engine session square-off time (exchange time)"
    )
    long_only: bool = Param(False, help="never go short")

    @classmethod
    def engine_overrides(cls, params: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if params["stop_loss_pct"] > 0:
            out["stop_loss_pct"] = params["stop_loss_pct"]
        if params["square_off"] != "none":
            out["square_off"] = params["square_off"]
        return out

    @property
    def warmup(self) -> int:
        return max(self.ema_period, self.skip_open_bars)

    def signals(self, bars: Bars) -> np.ndarray:
        require_intraday(bars, self.name)
        c = bars.close
        ema = ema_nb(c, self.ema_period)
        prev = np.empty_like(ema)
        prev[:1] = np.nan
        prev[1:] = ema[:-1]
        band = self.band_pct / 100.0
        valid = np.isfinite(prev) & (session_bar_index(bars) >= self.skip_open_bars)
        rising = ema > prev
        falling = ema < prev
        return hysteresis_nb(
            valid,
            (c > ema * (1.0 + band)) & rising,
            c < ema,
            (c < ema * (1.0 - band)) & falling,
            c > ema,
            not self.long_only,
        )


class VwapReversion(Strategy):
    """Intraday session-VWAP reversion: long when close is more than band_pct % below the
    session VWAP, short when more than band_pct % above (unless long_only); exit when
    close returns to within exit_pct % of VWAP. Flat for the first skip_open_bars bars of
    each session (VWAP is unstable there). Needs intraday bars; pair it with the
    engine's square_off to avoid holding overnight. With no volume (index data) VWAP is
    the session's running mean typical price."""

    name: ClassVar[str] = "vwap_reversion"
    band_pct: float = Param(0.3, ge=0.01, le=10.0, step=0.05, help="entry distance from VWAP, %")
    exit_pct: float = Param(0.0, ge=0.0, le=10.0, step=0.05, help="exit within this % of VWAP")
    skip_open_bars: int = Param(15, ge=0, le=1000, step=5, help="bars to stay flat after the open")
    long_only: bool = Param(False, help="never go short")

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        if params["exit_pct"] >= params["band_pct"]:
            raise ParamError(
                "exit_pct",
                f"exit_pct must be < band_pct, got exit_pct={params['exit_pct']} "
                f"band_pct={params['band_pct']}",
            )

    @property
    def warmup(self) -> int:
        return self.skip_open_bars

    def signals(self, bars: Bars) -> np.ndarray:
        day_id = require_intraday(bars, self.name)
        vwap = vwap_nb(bars.high, bars.low, bars.close, bars.volume, day_id)
        dev = (bars.close / vwap - 1.0) * 100.0
        valid = session_bar_index(bars) >= self.skip_open_bars
        return hysteresis_nb(
            valid,
            dev < -self.band_pct,
            dev >= -self.exit_pct,
            dev > self.band_pct,
            dev <= self.exit_pct,
            not self.long_only,
        )
