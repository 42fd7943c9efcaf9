"""Trades as columns, and the per-group trade breakdowns of a run's analysis.

Breakdowns (by side, exit reason, weekday and hour of day) use CLOSED trades only, as
the engine's trade metrics do; weekday and hour are those of the ENTRY in the
exchange's time zone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from engine.calendar import local_clock
from engine.errors import EngineInputError
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
)

__all__ = ["WEEKDAYS", "TradeArrays", "trade_breakdowns"]

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FIELDS = ("entry_time", "exit_time", "entry_idx", "exit_idx", "side", "qty", "entry_price",
           "exit_price", "pnl", "commission", "exit_reason", "is_open", "bars_held")


def _ns(values: list[Any]) -> np.ndarray:
    if values and isinstance(values[0], str):
        idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
        return idx.tz_localize(None).as_unit("ns").asi8.astype(np.int64)
    return np.asarray(values, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class TradeArrays:
    """One numpy column per `engine.backtest.Trade` field; `reason` indexes EXIT_REASONS."""

    entry_time: np.ndarray
    exit_time: np.ndarray
    entry_idx: np.ndarray
    exit_idx: np.ndarray
    side: np.ndarray
    qty: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    pnl: np.ndarray
    commission: np.ndarray
    reason: np.ndarray
    is_open: np.ndarray
    bars_held: np.ndarray

    def __len__(self) -> int:
        return int(self.pnl.shape[0])

    @classmethod
    def from_trades(cls, trades: Sequence[Any]) -> TradeArrays:
        """From Trade objects or mappings with the Trade field names (times: int ns or ISO)."""
        if len(trades) and isinstance(trades[0], Mapping):
            try:
                rows = [tuple(t[k] for k in _FIELDS) for t in trades]
            except KeyError as exc:
                raise EngineInputError(f"trade is missing field {exc}") from None
        else:
            rows = [(t.entry_time, t.exit_time, t.entry_idx, t.exit_idx, t.side, t.qty,
                     t.entry_price, t.exit_price, t.pnl, t.commission, t.exit_reason,
                     t.is_open, t.bars_held) for t in trades]
        cols: list[list[Any]] = [list(c) for c in zip(*rows, strict=True)] or [[]] * 13
        codes = {name: i for i, name in enumerate(EXIT_REASONS)}
        try:
            reason = np.asarray([codes[r] for r in cols[10]], dtype=np.int8)
        except KeyError as exc:
            raise EngineInputError(
                f"unknown exit_reason {exc}; expected one of {', '.join(EXIT_REASONS)}"
            ) from None
        f8 = np.float64
        return cls(
            entry_time=_ns(cols[0]), exit_time=_ns(cols[1]),
            entry_idx=np.asarray(cols[2], dtype=np.int64),
            exit_idx=np.asarray(cols[3], dtype=np.int64),
            side=np.asarray(cols[4], dtype=np.int8), qty=np.asarray(cols[5], dtype=f8),
            entry_price=np.asarray(cols[6], dtype=f8), exit_price=np.asarray(cols[7], dtype=f8),
            pnl=np.asarray(cols[8], dtype=f8), commission=np.asarray(cols[9], dtype=f8),
            reason=reason, is_open=np.asarray(cols[11], dtype=bool),
            bars_held=np.asarray(cols[12], dtype=np.int64),
        )

    def select(self, mask: np.ndarray) -> TradeArrays:
        """The trades where `mask` (bool array or index array) selects."""
        return TradeArrays(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    def closed(self) -> TradeArrays:
        """Closed trades only (the open position, if any, dropped)."""
        return self if not self.is_open.any() else self.select(~self.is_open)

    def records(self) -> np.ndarray:
        """The engine's float64 trade-record matrix (engine.simulate_nb columns)."""
        rec = np.zeros((len(self), N_TRADE_FIELDS))
        for col, arr in ((T_ENTRY_IDX, self.entry_idx), (T_EXIT_IDX, self.exit_idx),
                         (T_SIDE, self.side), (T_QTY, self.qty), (T_ENTRY_PRICE, self.entry_price),
                         (T_EXIT_PRICE, self.exit_price), (T_PNL, self.pnl),
                         (T_COMMISSION, self.commission), (T_REASON, self.reason),
                         (T_BARS_HELD, self.bars_held)):
            rec[:, col] = arr
        return rec


def _group_rows(
    codes: np.ndarray, labels: Sequence[Any], pnl: np.ndarray, bars_held: np.ndarray
) -> list[dict[str, Any]]:
    """One row per label that has trades: counts, win rate, P&L sums and extremes."""
    k = len(labels)
    n = np.bincount(codes, minlength=k)
    wins = np.bincount(codes, weights=(pnl > 0).astype(np.float64), minlength=k)
    losses = np.bincount(codes, weights=(pnl < 0).astype(np.float64), minlength=k)
    total = np.bincount(codes, weights=pnl, minlength=k)
    gross_win = np.bincount(codes, weights=np.where(pnl > 0, pnl, 0.0), minlength=k)
    gross_loss = np.bincount(codes, weights=np.where(pnl < 0, pnl, 0.0), minlength=k)
    held = np.bincount(codes, weights=bars_held.astype(np.float64), minlength=k)
    best = np.full(k, -np.inf)
    worst = np.full(k, np.inf)
    np.maximum.at(best, codes, pnl)
    np.minimum.at(worst, codes, pnl)
    rows = []
    for j in np.flatnonzero(n).tolist():
        c = int(n[j])
        rows.append({
            "key": labels[j],
            "n_trades": c,
            "n_wins": int(wins[j]),
            "n_losses": int(losses[j]),
            "win_rate": float(wins[j] / c * 100.0),
            "total_pnl": float(total[j]),
            "avg_pnl": float(total[j] / c),
            "best": float(best[j]),
            "worst": float(worst[j]),
            "profit_factor": float(gross_win[j] / -gross_loss[j]) if gross_loss[j] < 0 else None,
            "avg_holding_bars": float(held[j] / c),
        })
    return rows


def trade_breakdowns(closed: TradeArrays, tz: str) -> dict[str, list[dict[str, Any]]]:
    """{"by_side", "by_exit_reason", "by_weekday", "by_hour"}: rows of closed-trade stats."""
    pnl, held = closed.pnl, closed.bars_held
    side = (closed.side < 0).astype(np.int64)
    reason = closed.reason.astype(np.int64)
    if len(closed):
        day_id, minute = local_clock(closed.entry_time, tz)
        weekday = ((day_id + 3) % 7).astype(np.int64)
        hour = (minute // 60).astype(np.int64)
    else:
        weekday = hour = np.zeros(0, dtype=np.int64)
    return {
        "by_side": _group_rows(side, ("long", "short"), pnl, held),
        "by_exit_reason": _group_rows(reason, EXIT_REASONS, pnl, held),
        "by_weekday": _group_rows(weekday, WEEKDAYS, pnl, held),
        "by_hour": _group_rows(hour, list(range(24)), pnl, held),
    }
