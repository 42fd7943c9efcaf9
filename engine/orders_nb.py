"""Order arithmetic of the simulation kernel (`engine.simulate_nb`): fill prices, commissions,
entry sizes, and the exit, entry and protective-exit steps on the position scratch array."""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.sim_types_nb import (
    EXIT_STOP,
    EXIT_TARGET,
    EXIT_TRAILING,
    SIZE_LOTS,
    SIZE_NOTIONAL,
    SIZE_UNITS,
    T_BARS_HELD,
    T_COMMISSION,
    T_ENTRY_IDX,
    T_ENTRY_PRICE,
    T_EXIT_IDX,
    T_EXIT_PRICE,
    T_PNL,
    T_QTY,
    T_REASON,
    T_SIDE,
    SimParams,
)


@njit(nogil=True, cache=True, error_model="numpy")
def fill_price_nb(price: float, side: int, p: SimParams) -> float:
    """Price paid (side +1, buy) or received (side -1, sell) after slippage."""
    if side > 0:
        return price * (1.0 + p.slip_bps / 1e4) + p.slip_ticks * p.tick_size
    return price * (1.0 - p.slip_bps / 1e4) - p.slip_ticks * p.tick_size


@njit(nogil=True, cache=True, error_model="numpy")
def commission_nb(fill: float, qty: float, p: SimParams) -> float:
    """Commission of one order: fixed + per unit + percent of notional."""
    return p.comm_fixed + p.comm_unit * qty + p.comm_pct / 100.0 * fill * qty


@njit(nogil=True, cache=True, error_model="numpy")
def entry_qty_nb(fill: float, equity: float, p: SimParams) -> float:
    """Quantity for an entry at `fill` given equity at the previous close (<= 0: no entry)."""
    mode = p.size_mode
    if mode == SIZE_UNITS:
        return p.size_value
    if mode == SIZE_LOTS:
        return p.size_value * p.lot_size
    qty = p.size_value / fill if mode == SIZE_NOTIONAL else equity * p.size_value / 100.0 / fill
    if not p.allow_fractional:
        # lot_size 1 (the default) skips a division on the entry's latency chain; x / 1.0
        # and x * 1.0 are x exactly, so the quantity is the same bit for bit.
        qty = np.floor(qty) if p.lot_size == 1.0 else np.floor(qty / p.lot_size) * p.lot_size
    return qty


# Slots of the position scratch array: rare-path data lives in memory, not registers,
# which keeps the per-bar loop small. The helpers taking it (`_exit_nb`, `_enter_nb`,
# `_protect_nb`) are inlined into the kernel at numba IR level (inline="always"): as real
# calls each one increfs and decrefs its array arguments, which halved the speed of runs
# with protective exits (`_protect_nb` runs on every bar held).
P_QTY = 0
P_ENTRY_IDX = 1
P_ENTRY_PRICE = 2
P_ENTRY_COMM = 3
P_STOP = 4
P_TARGET = 5
P_TRAIL_DIST = 6
P_TRAIL_REF = 7


@njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _exit_nb(
    trades: np.ndarray,
    k: int,
    ps: np.ndarray,
    pos: int,
    i: int,
    raw: float,
    reason: int,
    at_open: bool,
    p: SimParams,
) -> float:
    """Fill the exit of the open position at `raw`, write trade row k; returns the cash change."""
    qty = ps[P_QTY]
    entry_idx = ps[P_ENTRY_IDX]
    entry_price = ps[P_ENTRY_PRICE]
    entry_comm = ps[P_ENTRY_COMM]
    fill = fill_price_nb(raw, -pos, p)
    comm = commission_nb(fill, qty, p)
    gross = pos * p.delta * (fill - entry_price) * qty
    trades[k, T_ENTRY_IDX] = entry_idx
    trades[k, T_EXIT_IDX] = i
    trades[k, T_SIDE] = pos
    trades[k, T_QTY] = qty
    trades[k, T_ENTRY_PRICE] = entry_price
    trades[k, T_EXIT_PRICE] = fill
    trades[k, T_PNL] = gross - entry_comm - comm
    trades[k, T_COMMISSION] = entry_comm + comm
    trades[k, T_REASON] = reason
    trades[k, T_BARS_HELD] = i - entry_idx + (0 if at_open else 1)
    return gross - comm


@njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _enter_nb(
    ps: np.ndarray, i: int, o: float, side: int, equity: float, a: float, p: SimParams
) -> float:
    """Open `side` at bar i's open (`a`: the ATR of bar i - 1, for ATR levels); returns
    the entry commission, NaN if the size is 0."""
    fill = fill_price_nb(o, side, p)
    qty = entry_qty_nb(fill, equity, p) if fill > 0.0 else 0.0
    if not (qty > 0.0 and qty < np.inf):
        return np.nan
    comm = commission_nb(fill, qty, p)
    ps[P_QTY] = qty
    ps[P_ENTRY_IDX] = i
    ps[P_ENTRY_PRICE] = fill
    ps[P_ENTRY_COMM] = comm
    if p.stop_pct == p.stop_pct:
        ps[P_STOP] = fill * (1.0 - side * p.stop_pct / 100.0)
    else:
        ps[P_STOP] = fill - side * p.stop_atr * a
    if p.target_pct == p.target_pct:
        ps[P_TARGET] = fill * (1.0 + side * p.target_pct / 100.0)
    else:
        ps[P_TARGET] = fill + side * p.target_atr * a
    if p.trail_pct == p.trail_pct:
        ps[P_TRAIL_DIST] = fill * p.trail_pct / 100.0
    else:
        ps[P_TRAIL_DIST] = p.trail_atr * a
    ps[P_TRAIL_REF] = fill
    return comm


@njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _protect_nb(
    ps: np.ndarray, pos: int, i: int, o: float, h: float, lo: float
) -> tuple[float, int, bool]:
    """Rules 2c/2d: (raw exit price or NaN, reason, at_open); updates the trailing reference."""
    level = ps[P_STOP]
    target = ps[P_TARGET]
    trail_dist = ps[P_TRAIL_DIST]
    reason = EXIT_STOP
    if trail_dist == trail_dist:
        t_level = ps[P_TRAIL_REF] - pos * trail_dist
        if level != level or pos * (t_level - level) > 0.0:
            level = t_level
            reason = EXIT_TRAILING
    if ps[P_ENTRY_IDX] < i:  # carried from an earlier bar: gaps fill at the open
        if pos * (level - o) >= 0.0:
            return o, reason, True
        if pos * (o - target) >= 0.0:
            return o, EXIT_TARGET, True
    if pos > 0:
        if lo <= level:
            return level, reason, False
        if h >= target:
            return target, EXIT_TARGET, False
        ps[P_TRAIL_REF] = max(ps[P_TRAIL_REF], h)
    else:
        if h >= level:
            return level, reason, False
        if lo <= target:
            return target, EXIT_TARGET, False
        ps[P_TRAIL_REF] = min(ps[P_TRAIL_REF], lo)
    return np.nan, EXIT_STOP, False
