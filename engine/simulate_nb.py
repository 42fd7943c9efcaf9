"""Chunked numba simulation kernel: target-position signals + OHLC -> equity and closed trades.

`simulate_nb` processes bars [state.bar, end) and returns the new `SimState`, so a run
can be split into chunks of any size with bit-identical results. The execution rules
are documented in `engine.backtest`; this module only implements them (the order
arithmetic is in `engine.orders_nb`). The integer enums, record columns and state types
(`engine.sim_types_nb`, re-exported here) are the kernel's vocabulary; `engine.backtest`
maps them to names.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.orders_nb import (
    P_ENTRY_COMM,
    P_ENTRY_IDX,
    P_ENTRY_PRICE,
    P_QTY,
    P_STOP,
    P_TARGET,
    P_TRAIL_DIST,
    P_TRAIL_REF,
    _enter_nb,
    _exit_nb,
    _protect_nb,
    commission_nb,
    entry_qty_nb,
    fill_price_nb,
)
from engine.sim_types_nb import (  # re-exported: the kernel's vocabulary
    DIR_LONG_ONLY,
    DIR_LONG_SHORT,
    DIR_SHORT_ONLY,
    DIRECTIONS,
    EXIT_END_OF_DATA,
    EXIT_REASONS,
    EXIT_SIGNAL,
    EXIT_SQUARE_OFF,
    EXIT_STOP,
    EXIT_TARGET,
    EXIT_TRAILING,
    L_BAR,
    L_CASH,
    L_POS,
    L_PRICE,
    L_QTY,
    N_LOG_FIELDS,
    N_TRADE_FIELDS,
    SIZE_LOTS,
    SIZE_MODES,
    SIZE_NOTIONAL,
    SIZE_PERCENT,
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
    SimState,
    initial_state_nb,
)
from engine.simd_nb import load8

__all__ = [
    "DIRECTIONS",
    "DIR_LONG_ONLY",
    "DIR_LONG_SHORT",
    "DIR_SHORT_ONLY",
    "EXIT_END_OF_DATA",
    "EXIT_REASONS",
    "EXIT_SIGNAL",
    "EXIT_SQUARE_OFF",
    "EXIT_STOP",
    "EXIT_TARGET",
    "EXIT_TRAILING",
    "L_BAR",
    "L_CASH",
    "L_POS",
    "L_PRICE",
    "L_QTY",
    "N_LOG_FIELDS",
    "N_TRADE_FIELDS",
    "SIZE_LOTS",
    "SIZE_MODES",
    "SIZE_NOTIONAL",
    "SIZE_PERCENT",
    "SIZE_UNITS",
    "T_BARS_HELD",
    "T_COMMISSION",
    "T_ENTRY_IDX",
    "T_ENTRY_PRICE",
    "T_EXIT_IDX",
    "T_EXIT_PRICE",
    "T_PNL",
    "T_QTY",
    "T_REASON",
    "T_SIDE",
    "SimParams",
    "SimState",
    "commission_nb",
    "entry_qty_nb",
    "fill_price_nb",
    "initial_state_nb",
    "simulate_log_nb",
    "simulate_nb",
    "simulate_off_nb",
]

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
    return simulate_log_nb(open_, high, low, close, signals, 0, atr, day_id, minute, p, s, end,
                           equity_out, eq_off, trades, np.empty((0, N_LOG_FIELDS)),
                           np.zeros(1, dtype=np.int64))


@njit(nogil=True, cache=True, error_model="numpy")
def _run_end_nb(signals: np.ndarray, start: int, end: int, raw: int) -> int:
    """The first k in [start, end) with signals[k - 1] != raw, else end (16 at a time,
    as two 8-byte words against raw's byte repeated 8 times)."""
    # Unsigned indices, not a slice: a slice costs a reference count up and down, and
    # signed indices a negative-index wraparound.
    # raw's byte in all 8 (int64, no overflow: for raw < 0 the complement's bytes, flipped)
    word = raw * 0x0101010101010101 if raw >= 0 else ~(~raw * 0x0101010101010101)
    t = start - 1
    while t + 16 <= end - 1:
        if ((load8(signals, t) ^ word) | (load8(signals, t + 8) ^ word)) != 0:
            break
        t += 16
    while t < end - 1 and signals[np.uint64(t)] == raw:
        t += 1
    return t + 1


@njit(nogil=True, cache=True, error_model="numpy")
def simulate_log_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    signals: np.ndarray,
    sig_off: int,
    atr: np.ndarray,
    day_id: np.ndarray,
    minute: np.ndarray,
    p: SimParams,
    s: SimState,
    end: int,
    equity_out: np.ndarray,
    eq_off: int,
    trades: np.ndarray,
    log: np.ndarray,
    log_n: np.ndarray,
) -> SimState:
    """`simulate_off_nb` reading the signal of bar k from signals[k - sig_off] (a chunk
    buffer) and, when `log` has rows, appending the position state after every bar that took the
    full path (every bar whose target differs from the position, where state can change)
    at row log_n[0] (columns L_*), so the equity curve can be recomputed from the closes
    alone. Stops early, like for `trades`, when `log` is full."""
    n = close.shape[0]
    logging = log.shape[0] > 0
    ln = log_n[0]
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
        raw = signals[i - 1 - sig_off]
        desired = raw
        if (long_only and desired < 0) or (short_only and desired > 0):
            desired = 0
        if simple and desired == pos and logging:
            # Held with the log on: skip to the next change of signal without marking to
            # market (the caller recomputes those bars from the log); `equity` is then
            # the last held bar's, by the expression below.
            i = _run_end_nb(signals, i - sig_off, end - sig_off, raw) + sig_off
            c = close[i - 1]
            equity = cash + pos * delta * (c - ps[P_ENTRY_PRICE]) * ps[P_QTY] if pos != 0 else cash
            continue
        if simple and desired == pos:
            c = close[i]
            equity = cash + pos * delta * (c - ps[P_ENTRY_PRICE]) * ps[P_QTY] if pos != 0 else cash
            equity_out[i - eq_off] = equity
            i += 1
            continue
        if logging and ln >= log.shape[0]:
            break
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
                # (a scalar, not the array: an array argument costs a reference count up
                # and down on every entry)
                atr_prev = atr[i - 1] if atr.shape[0] > 0 else np.nan
                comm = _enter_nb(ps, i, o, desired, equity, atr_prev, p)
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
        # Flat again at the same cash (an entry refused, e.g. with equity <= 0) changes
        # nothing the log holds: no row, so such runs cannot grow it bar by bar.
        if logging and not (pos == 0 and ln > 0 and log[ln - 1, L_POS] == 0.0
                            and log[ln - 1, L_CASH] == cash):
            log[ln, L_BAR] = i
            log[ln, L_CASH] = cash
            log[ln, L_POS] = pos
            log[ln, L_PRICE] = ps[P_ENTRY_PRICE]
            log[ln, L_QTY] = ps[P_QTY]
            ln += 1
        i += 1
    log_n[0] = ln
    return SimState(i, k, pos, ps[P_QTY], int(ps[P_ENTRY_IDX]), ps[P_ENTRY_PRICE],
                    ps[P_ENTRY_COMM], ps[P_STOP], ps[P_TARGET], ps[P_TRAIL_DIST],
                    ps[P_TRAIL_REF], cash, equity, blocked)
