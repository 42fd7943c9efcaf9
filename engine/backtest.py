"""Backtest runner: target-position signals + bars + EngineOptions -> trades, equity, metrics.

Execution rules (implemented by `engine.simulate_nb.simulate_nb`, mirrored by the slow
reference simulator in tests/engine/reference.py):

1. `signals[i]` in {-1, 0, +1} is the target position decided at bar i's close; the
   `direction` option maps a disallowed side to 0. At bar i (i >= 1) the desired position
   is signals[i-1]; bar 0 is always flat. No look-ahead by construction.
2. Inside bar i, in this order:
   a. at the open, if `square_off` is set and the bar's local minute-of-day >= square_off,
      an open position exits at the open (exit reason "square_off");
   b. at the open, if the position differs from the desired one it exits at the open
      ("signal") and the desired side is entered at the open when entries are allowed:
      not at/after `no_entry_after` or `square_off` that day, equity at the previous
      close > 0, quantity > 0, and not barred by rule 3;
   c. protective exits of the position now open. A position carried from an earlier bar
      whose open is at/through the stop or trailing level exits at the open ("stop" /
      "trailing"), at/through the target exits at the open ("target"). Otherwise,
      intrabar: the stop is hit when low <= level (long; high >= level short), the
      target when high >= level (long; low <= level short), and they fill AT the level.
      If both are hit in one bar the STOP fires (conservative). A position entered at this
      bar's open is checked intrabar on this bar too. With both a stop and a trailing
      stop set, the tighter level applies (a tie is reported as "stop");
   d. the trailing reference (highest high for longs, lowest low for shorts, starting at
      the entry fill price) is updated with this bar AFTER the check, so bar i uses the
      extremes of bars before i;
   e. if `square_off` is set and the next bar belongs to another local trading day
      (day_id changes), an open position exits at this bar's close ("square_off");
      then equity is marked at close[i].
3. Re-entry: after a protective exit (stop, target, trailing, square_off) the same side
   is not entered again until the signal has left that side (a fresh signal). Entries
   only happen at an open, so a bar never re-enters after its own exit.
4. Fills: buys at price x (1 + bps/1e4) + ticks x tick_size, sells at price x
   (1 - bps/1e4) - ticks x tick_size, for every fill including stops and square-offs.
   Commission per order = fixed + per_unit x qty + pct/100 x fill x qty.
   Trade pnl (net) = side x delta x (exit - entry) x qty - entry commission - exit
   commission. Cash is not spent on the position (a margin account): equity = cash +
   side x delta x (close - entry) x qty; the entry commission leaves cash at entry.
5. Sizing at entry with equity at the previous close and the entry fill price: units ->
   size_value; lots -> size_value x lot_size; notional -> size_value / price; percent ->
   equity x size_value / 100 / price. Unless allow_fractional, notional and percent
   quantities round DOWN to whole units (to multiples of lot_size when lot_size > 1).
   A quantity <= 0 means no entry.
6. Levels: percent options are percent of the entry fill price (trailing: a distance of
   trailing_pct % of the entry fill price from the reference); ATR options are multiples
   of ATR(atr_period, Wilder) at bar entry_idx - 1, fixed for the trade's life. While
   that ATR is undefined (warm-up) the trade has no such level.
7. A position still open after the last bar is reported as an open trade (is_open, exit
   reason "end_of_data", exit price = last close, no slippage or exit commission); it
   is marked to market in the final equity.

`bars_held` of a trade counts the bars in which the position was held: the entry bar
counts, a bar whose open closed the position does not.
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from engine.backtest_inputs import (
    annualization,
    as_options,
    as_signals,
    check_signals,
    kernel_inputs,
    readonly_view,
    sim_params,
)
from engine.bars import Bars
from engine.errors import EngineError, EngineInputError
from engine.metrics import metrics_from_records, monthly_returns
from engine.options import EngineOptions
from engine.simulate_nb import (
    EXIT_REASONS,
    N_TRADE_FIELDS,
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
    SimState,
    initial_state_nb,
    simulate_nb,
)

__all__ = [
    "ENGINE_VERSION",
    "BacktestResult",
    "Backtester",
    "StepInfo",
    "Trade",
    "annualization",
    "as_options",
    "as_signals",
    "check_signals",
    "kernel_inputs",
    "readonly_view",
    "run_backtest",
    "sim_params",
]

ENGINE_VERSION = "1.0"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _iso(ns: int) -> str:
    sec, rem = divmod(int(ns), 1_000_000_000)
    return (_EPOCH + timedelta(seconds=sec, microseconds=rem // 1000)).isoformat()


def _finite(x: float) -> float | None:
    return x if np.isfinite(x) else None


@dataclass(slots=True)
class Trade:
    """One round trip; times are int64 ns UTC, prices are fills (slippage included)."""

    entry_time: int
    exit_time: int
    entry_idx: int
    exit_idx: int
    side: int
    qty: float
    entry_price: float
    exit_price: float
    pnl: float
    commission: float
    exit_reason: str
    is_open: bool
    bars_held: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ISO-8601 UTC times, None for non-finite numbers."""
        d = asdict(self)
        d["entry_time"] = _iso(self.entry_time)
        d["exit_time"] = _iso(self.exit_time)
        for key in ("qty", "entry_price", "exit_price", "pnl", "commission"):
            d[key] = _finite(d[key])
        return d


@dataclass(frozen=True, slots=True)
class StepInfo:
    """Progress of a Backtester after one step, with the equity points of that chunk."""

    done: bool
    bars_done: int
    n_bars: int
    progress: float
    equity_ts: np.ndarray
    equity: np.ndarray


class BacktestResult:
    """Everything a finished run produced (see CONTRACTS.md).

    `trades` is built on first access (from the kernel's trade records) and then kept;
    pass either a list of Trade or a zero-argument callable returning one.
    """

    __slots__ = ("_trades", "_trades_factory", "engine", "equity", "metrics",
                 "monthly_returns", "ts")

    def __init__(
        self,
        equity: np.ndarray,
        ts: np.ndarray,
        trades: list[Trade] | Callable[[], list[Trade]],
        metrics: dict[str, float | int | None],
        monthly_returns: list[dict[str, Any]],
        engine: dict[str, Any] | None = None,
    ) -> None:
        self.equity = equity
        self.ts = ts
        self._trades: list[Trade] | None = None if callable(trades) else list(trades)
        self._trades_factory = trades if callable(trades) else None
        self.metrics = metrics
        self.monthly_returns = monthly_returns
        self.engine = engine if engine is not None else {}

    @property
    def trades(self) -> list[Trade]:
        """Closed trades in exit order, then the open one (if any)."""
        if self._trades is None:
            assert self._trades_factory is not None
            self._trades = self._trades_factory()
            self._trades_factory = None
        return self._trades

    def __getstate__(self) -> dict[str, Any]:
        state = {k: getattr(self, k) for k in ("equity", "ts", "metrics", "monthly_returns",
                                               "engine")}
        state["trades"] = self.trades
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def __repr__(self) -> str:
        return (f"BacktestResult(bars={len(self.equity)}, "
                f"final_equity={self.metrics.get('final_equity')!r}, "
                f"n_trades={self.metrics.get('n_trades')!r}, n_open={self.metrics.get('n_open')!r})")


def _closed_trades(rec: np.ndarray, ts: np.ndarray) -> list[Trade]:
    """Trade objects from kernel records; column lists + map() beat a per-row loop 3x."""
    ints = rec[:, [T_ENTRY_IDX, T_EXIT_IDX, T_SIDE, T_BARS_HELD]].astype(np.int64)
    reasons = np.array(EXIT_REASONS, dtype=object)[rec[:, T_REASON].astype(np.int64)]
    return list(map(
        Trade,
        ts[ints[:, 0]].tolist(),
        ts[ints[:, 1]].tolist(),
        ints[:, 0].tolist(),
        ints[:, 1].tolist(),
        ints[:, 2].tolist(),
        rec[:, T_QTY].tolist(),
        rec[:, T_ENTRY_PRICE].tolist(),
        rec[:, T_EXIT_PRICE].tolist(),
        rec[:, T_PNL].tolist(),
        rec[:, T_COMMISSION].tolist(),
        reasons.tolist(),
        itertools.repeat(False),
        ints[:, 3].tolist(),
    ))


class Backtester:
    """Incremental runner: `step(max_bars)` until done, then `result()`.

    Results are bit-identical for any chunking. The kernel releases the GIL, so steps
    can run in a worker thread; check for cancellation between steps.
    """

    def __init__(
        self,
        bars: Bars,
        signals: np.ndarray,
        options: EngineOptions | dict[str, Any] | None = None,
    ) -> None:
        t0 = time.perf_counter()
        self.bars = bars
        self.options = as_options(options)
        self.n_bars = len(bars)
        if self.n_bars == 0:
            raise EngineInputError("no bars to backtest")
        self._signals = check_signals(signals, self.n_bars)
        self._inputs = kernel_inputs(bars, self.options)
        self._params = sim_params(self.options)
        self._state: SimState = initial_state_nb(self._params.initial_cash)
        self._equity = np.empty(self.n_bars, dtype=np.float64)
        # Untouched rows cost no memory; most runs never need to grow this.
        self._trades = np.empty((self.n_bars // 8 + 64, N_TRADE_FIELDS))
        self._result: BacktestResult | None = None
        self._seconds = time.perf_counter() - t0

    @property
    def done(self) -> bool:
        """True once every bar has been simulated."""
        return self._state.bar >= self.n_bars

    def _advance(self, end: int) -> None:
        o, h, lo, c, atr, day_id, minute = self._inputs
        while self._state.bar < end:
            self._state = simulate_nb(o, h, lo, c, self._signals, atr, day_id, minute,
                                      self._params, self._state, end, self._equity, self._trades)
            if self._state.bar < end:  # the trade buffer is full: grow it and go on
                bigger = np.empty((self._trades.shape[0] * 2, N_TRADE_FIELDS))
                bigger[: self._state.n_trades] = self._trades[: self._state.n_trades]
                self._trades = bigger

    def step(self, max_bars: int) -> StepInfo:
        """Simulate up to `max_bars` more bars; returns progress and that chunk's equity.

        The chunk's arrays are read-only views (those values never change again).
        """
        if max_bars < 1:
            raise EngineInputError(f"max_bars must be >= 1, got {max_bars}")
        t0 = time.perf_counter()
        start = self._state.bar
        end = min(self.n_bars, start + int(max_bars))
        self._advance(end)
        self._seconds += time.perf_counter() - t0
        return StepInfo(
            done=self.done,
            bars_done=end,
            n_bars=self.n_bars,
            progress=end / self.n_bars,
            equity_ts=self.bars.ts[start:end],
            equity=readonly_view(self._equity[start:end]),
        )

    def _trade_list(self) -> list[Trade]:
        s = self._state
        ts = self.bars.ts
        # The cyclic GC has nothing to find in fresh Trade objects: pause it meanwhile.
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            trades = _closed_trades(self._trades[: s.n_trades], ts)
        finally:
            if gc_was_on:
                gc.enable()
        if s.pos != 0:
            last = self.n_bars - 1
            px = float(self.bars.close[last])
            gross = s.pos * self._params.delta * (px - s.entry_price) * s.qty
            trades.append(Trade(
                int(ts[s.entry_idx]), int(ts[last]), int(s.entry_idx), last, int(s.pos),
                float(s.qty), float(s.entry_price), px, float(gross - s.entry_comm),
                float(s.entry_comm), "end_of_data", True, last - int(s.entry_idx) + 1,
            ))
        return trades

    def result(self) -> BacktestResult:
        """The finished run's trades, equity, metrics and monthly returns."""
        if not self.done:
            raise EngineError(
                f"backtest not finished: {self._state.bar} of {self.n_bars} bars simulated"
            )
        if self._result is not None:
            return self._result
        t0 = time.perf_counter()
        s = self._state
        ts = self.bars.ts
        cash0 = self._params.initial_cash
        metrics = metrics_from_records(
            self._equity, ts, self._trades[: s.n_trades],
            n_open=1 if s.pos != 0 else 0,
            open_bars=self.n_bars - s.entry_idx if s.pos != 0 else 0,
            initial_cash=cash0,
            bars_per_year=annualization(self.bars),
        )
        monthly = monthly_returns(self._equity, ts, self.bars.tz, cash0)
        self._seconds += time.perf_counter() - t0
        secs = self._seconds
        self._result = BacktestResult(
            equity=self._equity,
            ts=ts,
            trades=self._trade_list,
            metrics=metrics,
            monthly_returns=monthly,
            engine={
                "bars": self.n_bars,
                "seconds": secs,
                "bars_per_second": self.n_bars / secs if secs > 0 else None,
                "version": ENGINE_VERSION,
            },
        )
        return self._result


def run_backtest(
    bars: Bars,
    signals: np.ndarray,
    options: EngineOptions | dict[str, Any] | None = None,
    chunk_size: int | None = None,
) -> BacktestResult:
    """Run a whole backtest (in chunks of `chunk_size` bars if given) and return its result."""
    bt = Backtester(bars, signals, options)
    if chunk_size is None:
        t0 = time.perf_counter()
        bt._advance(bt.n_bars)
        bt._seconds += time.perf_counter() - t0
    while not bt.done:
        bt.step(int(chunk_size))  # type: ignore[arg-type]
    return bt.result()
