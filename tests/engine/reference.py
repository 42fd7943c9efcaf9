"""Slow pure-Python reference simulator: the engine's execution rules as plain loops.

Written from the rules in engine/backtest.py's docstring, not from the kernel: one
object per open position, Python floats and lists, no numba. The kernel must match it
(trades and equity to 1e-9 relative) on any data and options.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.bars import Bars
from engine.calendar import local_clock
from engine.options import EngineOptions


@dataclass
class _Open:
    side: int
    qty: float
    entry_idx: int
    price: float
    commission: float
    stop: float | None
    target: float | None
    trail: float | None  # distance
    best: float  # highest high (long) / lowest low (short) of bars before the current one


def wilder_atr(high: list[float], low: list[float], close: list[float], n: int) -> list[float]:
    """ATR: mean of the first n true ranges at index n-1, then (prev*(n-1)+tr)/n."""
    tr = []
    for i in range(len(high)):
        r = high[i] - low[i]
        if i:
            r = max(r, abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        tr.append(r)
    out = [math.nan] * len(tr)
    if len(tr) < n:
        return out
    avg = sum(tr[:n]) / n
    out[n - 1] = avg
    for i in range(n, len(tr)):
        avg = (avg * (n - 1) + tr[i]) / n
        out[i] = avg
    return out


def _minutes(text: str | None) -> int | None:
    if text is None:
        return None
    hh, mm = text.split(":")
    return int(hh) * 60 + int(mm)


def reference_run(bars: Bars, signals: Any, opt: EngineOptions) -> tuple[list[float], list[dict]]:
    """(equity per bar, trades as dicts: closed in exit order, then the open one)."""
    o, h, lo, c = (list(map(float, a)) for a in (bars.open, bars.high, bars.low, bars.close))
    sig = [int(x) for x in signals]
    n = len(c)
    sq, nea = _minutes(opt.square_off), _minutes(opt.no_entry_after)
    day = minute = None
    if sq is not None or nea is not None:
        d, m = local_clock(bars.ts, bars.tz)
        day, minute = d.tolist(), m.tolist()
    atr = None
    if opt.stop_loss_atr or opt.take_profit_atr or opt.trailing_atr:
        atr = wilder_atr(h, lo, c, opt.atr_period)

    def fill(price: float, buying: bool) -> float:
        if buying:
            return price * (1.0 + opt.slippage_bps / 1e4) + opt.slippage_ticks * opt.tick_size
        return price * (1.0 - opt.slippage_bps / 1e4) - opt.slippage_ticks * opt.tick_size

    def fee(price: float, qty: float) -> float:
        return (opt.commission_fixed + opt.commission_per_unit * qty
                + opt.commission_pct / 100.0 * price * qty)

    cash = opt.initial_cash
    pos: _Open | None = None
    blocked = 0
    equity: list[float] = []
    trades: list[dict] = []

    def close(i: int, raw: float, reason: str, at_open: bool) -> None:
        nonlocal cash, pos, blocked
        assert pos is not None
        px = fill(raw, buying=pos.side < 0)
        exit_fee = fee(px, pos.qty)
        gross = pos.side * opt.option_delta * (px - pos.price) * pos.qty
        cash += gross - exit_fee
        trades.append(dict(
            entry_idx=pos.entry_idx, exit_idx=i, side=pos.side, qty=pos.qty,
            entry_price=pos.price, exit_price=px, pnl=gross - pos.commission - exit_fee,
            commission=pos.commission + exit_fee, exit_reason=reason, is_open=False,
            bars_held=i - pos.entry_idx + (0 if at_open else 1),
        ))
        if reason != "signal":
            blocked = pos.side
        pos = None

    def size(price: float, eq: float) -> float:
        mode = opt.size_mode
        if mode == "units":
            return opt.size_value
        if mode == "lots":
            return opt.size_value * opt.lot_size
        q = opt.size_value / price if mode == "notional" else eq * opt.size_value / 100.0 / price
        if not opt.allow_fractional:
            q = math.floor(q / opt.lot_size) * opt.lot_size
        return q

    def level(base: float, side: int, pct: float | None, mult: float | None, a: float) -> float | None:
        # Distance below (side * -1) or above the entry; None when the option is off.
        if pct is not None:
            return base * (1.0 + side * pct / 100.0)
        if mult is not None and not math.isnan(a):
            return base + side * mult * a
        return None

    prev_equity = cash
    for i in range(n):
        if i == 0:
            equity.append(cash)
            continue
        want = sig[i - 1]
        if (opt.direction == "long_only" and want < 0) or (
            opt.direction == "short_only" and want > 0
        ):
            want = 0
        now = minute[i] if minute is not None else None
        if pos is not None and sq is not None and now >= sq:
            close(i, o[i], "square_off", True)
        if blocked and want != blocked:
            blocked = 0
        have = pos.side if pos is not None else 0
        if have != want:
            if pos is not None:
                close(i, o[i], "signal", True)
            late = (nea is not None and now >= nea) or (sq is not None and now >= sq)
            if want != 0 and want != blocked and prev_equity > 0 and not late:
                px = fill(o[i], buying=want > 0)
                q = size(px, prev_equity) if px > 0 else 0.0
                if q > 0 and math.isfinite(q):
                    a = atr[i - 1] if atr is not None else math.nan
                    trail = None
                    if opt.trailing_pct is not None:
                        trail = px * opt.trailing_pct / 100.0
                    elif opt.trailing_atr is not None and not math.isnan(a):
                        trail = opt.trailing_atr * a
                    pos = _Open(
                        side=want, qty=q, entry_idx=i, price=px, commission=fee(px, q),
                        stop=level(px, -want, opt.stop_loss_pct, opt.stop_loss_atr, a),
                        target=level(px, want, opt.take_profit_pct, opt.take_profit_atr, a),
                        trail=trail, best=px,
                    )
                    cash -= pos.commission
        if pos is not None:
            _protect(pos, i, o[i], h[i], lo[i], close)
        if pos is not None and sq is not None and i + 1 < n and day[i + 1] != day[i]:
            close(i, c[i], "square_off", False)
        eq = cash
        if pos is not None:
            eq += pos.side * opt.option_delta * (c[i] - pos.price) * pos.qty
        equity.append(eq)
        prev_equity = eq
    if pos is not None:
        last = n - 1
        trades.append(dict(
            entry_idx=pos.entry_idx, exit_idx=last, side=pos.side, qty=pos.qty,
            entry_price=pos.price, exit_price=c[last],
            pnl=pos.side * opt.option_delta * (c[last] - pos.price) * pos.qty - pos.commission,
            commission=pos.commission, exit_reason="end_of_data", is_open=True,
            bars_held=last - pos.entry_idx + 1,
        ))
    return equity, trades


def _protect(pos: _Open, i: int, o: float, h: float, lo: float, close: Any) -> None:
    """Stop / trailing / target of the open position inside bar i (rules 2c and 2d)."""
    long = pos.side > 0
    stop, reason = pos.stop, "stop"
    if pos.trail is not None:
        trail_level = pos.best - pos.trail if long else pos.best + pos.trail
        tighter = stop is None or (trail_level > stop if long else trail_level < stop)
        if tighter:
            stop, reason = trail_level, "trailing"

    def through(price: float, lvl: float | None, downward: bool) -> bool:
        return lvl is not None and (price <= lvl if downward else price >= lvl)

    if pos.entry_idx < i:
        if through(o, stop, downward=long):
            close(i, o, reason, True)
            return
        if through(o, pos.target, downward=not long):
            close(i, o, "target", True)
            return
    if through(lo if long else h, stop, downward=long):
        close(i, stop, reason, False)
        return
    if through(h if long else lo, pos.target, downward=not long):
        close(i, pos.target, "target", False)
        return
    pos.best = max(pos.best, h) if long else min(pos.best, lo)


# Bar builders for the engine-core tests.
NS_MIN = 60_000_000_000
IST_OFFSET_NS = (5 * 60 + 30) * NS_MIN  # Asia/Kolkata is UTC+05:30 (no DST)
DAY0 = np.datetime64("2024-01-01", "ns").astype(np.int64)  # a Monday


def make_bars(
    ohlc: list[tuple[float, float, float, float]],
    *,
    start_min: int = 9 * 60 + 15,
    step_min: int = 1,
    per_day: int | None = None,
    tz: str = "Asia/Kolkata",
) -> Bars:
    """Bars from (open, high, low, close) rows: `per_day` bars a day from `start_min` local."""
    n = len(ohlc)
    per_day = per_day or n
    ts = []
    for i in range(n):
        d, j = divmod(i, per_day)
        local = DAY0 + d * 1440 * NS_MIN + (start_min + j * step_min) * NS_MIN
        ts.append(local - (IST_OFFSET_NS if tz == "Asia/Kolkata" else 0))
    a = np.array(ohlc, dtype=np.float64).reshape(n, 4)
    return Bars.from_arrays(np.array(ts, dtype=np.int64), a[:, 0], a[:, 1], a[:, 2], a[:, 3],
                            tz=tz, check_ohlc=False)


def random_bars(rng: np.random.Generator, n: int, per_day: int = 10, gap: float = 0.01) -> Bars:
    """A random walk of 5-minute bars from 09:15 IST, `per_day` bars a day, with open gaps."""
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    prev = np.concatenate(([close[0]], close[:-1]))
    open_ = prev * np.exp(rng.normal(0.0, gap, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.006, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.006, n)))
    rows = list(zip(open_, high, low, close, strict=True))
    return make_bars(rows, step_min=5, per_day=per_day)
