"""The simulation kernel's vocabulary: option and exit enums, trade record and state log
columns, `SimParams` and `SimState` (`engine.simulate_nb` re-exports them all)."""

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


# Columns of the state log (`simulate_log_nb`): after bar L_BAR's events the equity at a
# close c is L_CASH if L_POS is 0, else L_CASH + L_POS * delta * (c - L_PRICE) * L_QTY.
L_BAR = 0
L_CASH = 1
L_POS = 2
L_PRICE = 3
L_QTY = 4
N_LOG_FIELDS = 5
