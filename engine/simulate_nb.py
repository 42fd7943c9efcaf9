"""Chunked numba simulation kernel: target-position signals + OHLC -> equity and closed trades.

`simulate_nb` processes bars [state.bar, end) and returns the new `SimState`, so a run
can be split into chunks of any size with bit-identical results. The execution rules
are documented in `engine.backtest`; this module only implements them. Integer enums
below are the kernel's vocabulary; `engine.backtest` maps them to names.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

# Directions (EngineOptions.direction).
DIR_LONG_SHORT = 0
DIR_LONG_ONLY = 1
DIR_SHORT_ONLY = 2
DIRECTIONS = ("long_short", "long_only", "short_only")

# Size modes (EngineOptions.size_mode).
SIZE_UNITS = 0
SIZE_LOTS = 1
SIZE_NOTIONAL = 2
SIZE_PERCENT = 3
SIZE_MODES = ("units", "lots", "notional", "percent")

# Exit reasons, in Trade.exit_reason order.
EXIT_SIGNAL = 0
EXIT_STOP = 1
EXIT_TARGET = 2
EXIT_TRAILING = 3
EXIT_SQUARE_OFF = 4
EXIT_END_OF_DATA = 5
EXIT_REASONS = ("signal", "stop", "target", "trailing", "square_off", "end_of_data")

# Columns of the float64 trade record matrix (indices are exact in float64).
T_ENTRY_IDX = 0
T_EXIT_IDX = 1
T_SIDE = 2
T_QTY = 3
T_ENTRY_PRICE = 4
T_EXIT_PRICE = 5
T_PNL = 6
T_COMMISSION = 7
T_REASON = 8
T_BARS_HELD = 9
N_TRADE_FIELDS = 10


class SimParams(NamedTuple):
    """Numeric options for the kernel; NaN disables a level, -1 disables a clock rule."""

    initial_cash: float
    direction: int
    size_mode: int
    size_value: float
    lot_size: float
    allow_fractional: bool
    delta: float
    comm_fixed: float
    comm_unit: float
    comm_pct: float
    slip_bps: float
    slip_ticks: float
    tick_size: float
    stop_pct: float
    target_pct: float
    trail_pct: float
    stop_atr: float
    target_atr: float
    trail_atr: float
    square_off: int
    no_entry_after: int


class SimState(NamedTuple):
    """Everything a chunk hands to the next one."""

    bar: int  # next bar to process
    n_trades: int  # closed trades written to the record matrix
    pos: int  # -1, 0, +1
    qty: float
    entry_idx: int
    entry_price: float
    entry_comm: float
    stop: float  # stop level (NaN: none)
    target: float  # target level (NaN: none)
    trail_dist: float  # trailing distance (NaN: none)
    trail_ref: float  # best price since entry, excluding the current bar
    cash: float
    equity: float  # equity at the last processed close
    blocked: int  # side barred from re-entry after a protective exit (0: none)


@njit(nogil=True, cache=True, error_model="numpy")
def initial_state_nb(initial_cash: float) -> SimState:
    """State before bar 0: flat, all cash."""
    nan = np.nan
    return SimState(0, 0, 0, 0.0, -1, nan, 0.0, nan, nan, nan, nan, initial_cash, initial_cash, 0)


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
    ps: np.ndarray, i: int, o: float, side: int, equity: float, atr: np.ndarray, p: SimParams
) -> float:
    """Open `side` at bar i's open; returns the entry commission, NaN if the size is 0."""
    fill = fill_price_nb(o, side, p)
    qty = entry_qty_nb(fill, equity, p) if fill > 0.0 else 0.0
    if not (qty > 0.0 and qty < np.inf):
        return np.nan
    comm = commission_nb(fill, qty, p)
    a = atr[i - 1] if atr.shape[0] > 0 else np.nan
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


@njit(nogil=True, cache=True, error_model="numpy")
def simulate_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    signals: np.ndarray,
    atr: np.ndarray,
    day_id: np.ndarray,
    minute: np.ndarray,
    p: SimParams,
    s: SimState,
    end: int,
    equity_out: np.ndarray,
    trades: np.ndarray,
) -> SimState:
    """Simulate bars [s.bar, end); writes equity_out[bar] and closed trades to `trades`.

    Stops early (returned state.bar < end) when `trades` has fewer than 2 free rows, so
    the caller can grow it and call again. `atr` may be empty unless an *_atr level is
    set; `day_id`/`minute` may be empty unless a clock rule is set.
    """
    return simulate_off_nb(open_, high, low, close, signals, atr, day_id, minute, p, s, end,
                           equity_out, 0, trades)


@njit(nogil=True, cache=True, error_model="numpy")
def simulate_off_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    signals: np.ndarray,
    atr: np.ndarray,
    day_id: np.ndarray,
    minute: np.ndarray,
    p: SimParams,
    s: SimState,
    end: int,
    equity_out: np.ndarray,
    eq_off: int,
    trades: np.ndarray,
) -> SimState:
    """`simulate_nb` writing bar i's equity to equity_out[i - eq_off], so a sweep can keep
    only the current chunk's equity (a cache-sized buffer) instead of the whole curve."""
    n = close.shape[0]
    cap = trades.shape[0]
    ps = np.empty(8)
    ps[P_QTY] = s.qty
    ps[P_ENTRY_IDX] = s.entry_idx
    ps[P_ENTRY_PRICE] = s.entry_price
    ps[P_ENTRY_COMM] = s.entry_comm
    ps[P_STOP] = s.stop
    ps[P_TARGET] = s.target
    ps[P_TRAIL_DIST] = s.trail_dist
    ps[P_TRAIL_REF] = s.trail_ref
    k = s.n_trades
    pos = s.pos
    cash = s.cash
    equity = s.equity
    blocked = s.blocked
    use_clock = p.square_off >= 0 or p.no_entry_after >= 0
    sq = p.square_off
    has_levels = not (
        p.stop_pct != p.stop_pct and p.stop_atr != p.stop_atr
        and p.target_pct != p.target_pct and p.target_atr != p.target_atr
        and p.trail_pct != p.trail_pct and p.trail_atr != p.trail_atr
    )
    long_only = p.direction == DIR_LONG_ONLY
    short_only = p.direction == DIR_SHORT_ONLY
    i = s.bar
    if i == 0 and end > 0:
        equity_out[0] = cash  # i == 0: the chunk starts at bar 0, eq_off is 0
        equity = cash
        i = 1
    simple = not use_clock and not has_levels  # then holding a position is all a bar does
    delta = p.delta
    while i < end:
        if k + 2 > cap:
            break
        desired = signals[i - 1]
        if (long_only and desired < 0) or (short_only and desired > 0):
            desired = 0
        if simple and desired == pos:
            c = close[i]
            equity = cash + pos * delta * (c - ps[P_ENTRY_PRICE]) * ps[P_QTY] if pos != 0 else cash
            equity_out[i - eq_off] = equity
            i += 1
            continue
        o = open_[i]
        mod = minute[i] if use_clock else 0
        # (a) square-off at the open.
        if pos != 0 and sq >= 0 and mod >= sq:
            cash += _exit_nb(trades, k, ps, pos, i, o, EXIT_SQUARE_OFF, True, p)
            k += 1
            blocked = pos
            pos = 0
        if blocked != 0 and desired != blocked:
            blocked = 0
        # (b) move to the desired position at the open.
        if pos != desired:
            if pos != 0:
                cash += _exit_nb(trades, k, ps, pos, i, o, EXIT_SIGNAL, True, p)
                k += 1
                pos = 0
            allowed = desired != 0 and desired != blocked and equity > 0.0
            late = (p.no_entry_after >= 0 and mod >= p.no_entry_after) or (sq >= 0 and mod >= sq)
            if allowed and use_clock and late:
                allowed = False
            if allowed:
                comm = _enter_nb(ps, i, o, desired, equity, atr, p)
                if comm == comm:
                    pos = desired
                    cash -= comm
        # (c), (d) protective exits and the trailing reference.
        if pos != 0 and has_levels:
            raw, reason, at_open = _protect_nb(ps, pos, i, o, high[i], low[i])
            if raw == raw:
                cash += _exit_nb(trades, k, ps, pos, i, raw, reason, at_open, p)
                k += 1
                blocked = pos
                pos = 0
        # (e) square-off at the close of a session's last bar, then mark to market.
        c = close[i]
        if pos != 0 and sq >= 0 and i + 1 < n and day_id[i + 1] != day_id[i]:
            cash += _exit_nb(trades, k, ps, pos, i, c, EXIT_SQUARE_OFF, False, p)
            k += 1
            blocked = pos
            pos = 0
        equity = cash + pos * delta * (c - ps[P_ENTRY_PRICE]) * ps[P_QTY] if pos != 0 else cash
        equity_out[i - eq_off] = equity
        i += 1
    return SimState(i, k, pos, ps[P_QTY], int(ps[P_ENTRY_IDX]), ps[P_ENTRY_PRICE],
                    ps[P_ENTRY_COMM], ps[P_STOP], ps[P_TARGET], ps[P_TRAIL_DIST],
                    ps[P_TRAIL_REF], cash, equity, blocked)


@njit(nogil=True, cache=True, error_model="numpy")
def simulate_all_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    signals: np.ndarray,
    atr: np.ndarray,
    day_id: np.ndarray,
    minute: np.ndarray,
    p: SimParams,
    equity_out: np.ndarray,
    capacity: int,
) -> tuple[SimState, np.ndarray]:
    """Simulate every bar in one call, growing the trade matrix as needed (sweeps use this)."""
    n = close.shape[0]
    trades = np.empty((max(capacity, 2), N_TRADE_FIELDS))
    s = initial_state_nb(p.initial_cash)
    while True:
        s = simulate_nb(open_, high, low, close, signals, atr, day_id, minute, p, s, n,
                        equity_out, trades)
        if s.bar >= n:
            return s, trades
        bigger = np.empty((trades.shape[0] * 2, N_TRADE_FIELDS))
        bigger[: s.n_trades] = trades[: s.n_trades]
        trades = bigger
