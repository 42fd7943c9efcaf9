"""What the simulation kernel takes: read-only arrays, `SimParams` from `EngineOptions`, int8
signals, and the annualization of the bars. Shared by `engine.backtest.Backtester` and the
sweeps (`engine.sweep`); `engine.backtest` re-exports every public name here.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

import numpy as np

from engine.bars import Bars
from engine.calendar import bars_per_year, local_clock
from engine.errors import EngineInputError
from engine.indicators import atr_nb
from engine.options import EngineOptions, parse_hhmm
from engine.simulate_nb import DIRECTIONS, SIZE_MODES, SimParams

__all__ = [
    "annualization",
    "as_options",
    "as_signals",
    "check_signals",
    "kernel_inputs",
    "readonly_view",
    "sim_params",
]


def readonly_view(a: np.ndarray) -> np.ndarray:
    """A read-only C-contiguous view: one array type per kernel argument, one signature."""
    v = np.ascontiguousarray(a).view()
    v.flags.writeable = False
    return v


_EMPTY_F8 = readonly_view(np.empty(0, dtype=np.float64))
_EMPTY_I8 = readonly_view(np.empty(0, dtype=np.int64))
_EMPTY_I4 = readonly_view(np.empty(0, dtype=np.int32))


_BPY_CACHE: weakref.WeakKeyDictionary[Bars, float] = weakref.WeakKeyDictionary()


def annualization(bars: Bars) -> float:
    """`engine.calendar.bars_per_year` of the bars, memoized per (immutable) Bars object."""
    try:
        return _BPY_CACHE[bars]
    except (KeyError, TypeError):
        pass
    value = float(bars_per_year(bars.ts, bars.tz))
    with contextlib.suppress(TypeError):
        _BPY_CACHE[bars] = value
    return value


def _nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def sim_params(options: EngineOptions) -> SimParams:
    """The kernel's numeric view of the options (NaN = level off, -1 = clock rule off)."""
    o = options
    return SimParams(
        initial_cash=float(o.initial_cash),
        direction=DIRECTIONS.index(o.direction),
        size_mode=SIZE_MODES.index(o.size_mode),
        size_value=float(o.size_value),
        lot_size=float(o.lot_size),
        allow_fractional=bool(o.allow_fractional),
        delta=float(o.option_delta),
        comm_fixed=float(o.commission_fixed),
        comm_unit=float(o.commission_per_unit),
        comm_pct=float(o.commission_pct),
        slip_bps=float(o.slippage_bps),
        slip_ticks=float(o.slippage_ticks),
        tick_size=float(o.tick_size),
        stop_pct=_nan(o.stop_loss_pct),
        target_pct=_nan(o.take_profit_pct),
        trail_pct=_nan(o.trailing_pct),
        stop_atr=_nan(o.stop_loss_atr),
        target_atr=_nan(o.take_profit_atr),
        trail_atr=_nan(o.trailing_atr),
        square_off=-1 if o.square_off is None else parse_hhmm(o.square_off),
        no_entry_after=-1 if o.no_entry_after is None else parse_hhmm(o.no_entry_after),
    )


def kernel_inputs(bars: Bars, options: EngineOptions) -> tuple[np.ndarray, ...]:
    """(open, high, low, close, atr, day_id, minute) as the kernel wants them.

    ATR and the local clock are computed only when an option needs them.
    """
    atr = _EMPTY_F8
    if options.uses_atr:
        atr = readonly_view(atr_nb(readonly_view(bars.high), readonly_view(bars.low), readonly_view(bars.close), options.atr_period))
    day_id, minute = _EMPTY_I8, _EMPTY_I4
    if options.uses_clock:
        d, m = local_clock(bars.ts, bars.tz)
        day_id, minute = readonly_view(d.astype(np.int64)), readonly_view(m.astype(np.int32))
    return (readonly_view(bars.open), readonly_view(bars.high), readonly_view(bars.low), readonly_view(bars.close), atr, day_id, minute)


def as_signals(arr: np.ndarray) -> tuple[np.ndarray, int]:
    """(private writable C-contiguous int8 copy, flat index of the first bad value or -1)."""
    if arr.dtype == np.int8:
        bad = np.flatnonzero((arr < -1) | (arr > 1))
        out = np.array(arr, dtype=np.int8, order="C", copy=True)
    else:
        with np.errstate(invalid="ignore"):
            f = np.asarray(arr, dtype=np.float64)
        bad = np.flatnonzero(~np.isin(f, (-1.0, 0.0, 1.0)))
        out = np.ascontiguousarray(f.astype(np.int8) if not bad.size else f)
    return out, int(bad[0]) if bad.size else -1


def check_signals(signals: Any, n: int) -> np.ndarray:
    """Signals as a private int8 array of length n with values in {-1, 0, +1}."""
    arr = np.asarray(signals)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise EngineInputError(f"signals must have one value per bar ({n}), got shape {arr.shape}")
    out, bad = as_signals(arr)
    if bad >= 0:
        raise EngineInputError(f"signals row {bad}: expected -1, 0 or +1, got {arr[bad].item()!r}")
    return out


def as_options(options: EngineOptions | dict[str, Any] | None) -> EngineOptions:
    """EngineOptions from an instance, a dict (validated) or None (defaults)."""
    if options is None:
        return EngineOptions()
    if isinstance(options, EngineOptions):
        return options
    return EngineOptions.model_validate(options)
