"""Execution options of the engine: sizing, costs, protective exits and session rules.

`EngineOptions` is a frozen pydantic model; `EngineOptions.model_validate(dict)` raises a
pydantic ValidationError whose location names the offending field. Defaults describe a
frictionless, all-in, long/short account: initial_cash 100000, direction long_short,
percent sizing at 100% of equity, whole units, no commission, no slippage, no stops and
no intraday session rules. `EngineOptions.json_schema()` is what the API exposes.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

__all__ = ["Direction", "EngineOptions", "SizeMode", "parse_hhmm"]

Direction = Literal["long_short", "long_only", "short_only"]
SizeMode = Literal["units", "lots", "notional", "percent"]

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# Upper bounds keep every product (price x qty x costs) far from float64 overflow.
_SIZE_MAX = {"units": 1e12, "lots": 1e9, "notional": 1e15, "percent": 1000.0}


def parse_hhmm(value: str) -> int:
    """Minutes after local midnight of an "HH:MM" string ("15:15" -> 915)."""
    m = _HHMM.match(value)
    if m is None:
        raise ValueError(f"expected a 24-hour time 'HH:MM' such as '15:15', got {value!r}")
    return int(m.group(1)) * 60 + int(m.group(2))


class EngineOptions(BaseModel):
    """How signals become fills, positions, costs and exits (see engine.backtest for rules).

    Field order matters for validation: cross-field checks live on the later field so
    the error location names the field a user must change.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    initial_cash: float = Field(
        100_000.0, gt=0, le=1e15, description="Starting cash (account currency)."
    )
    direction: Direction = Field(
        "long_short",
        description="Allowed sides; signals on a disallowed side are treated as flat (0).",
    )
    size_mode: SizeMode = Field(
        "percent",
        description=(
            "Position size: 'units' = size_value units; 'lots' = size_value lots x lot_size; "
            "'notional' = size_value / entry price; 'percent' = size_value % of equity at "
            "the previous close / entry price."
        ),
    )
    lot_size: int = Field(
        1, ge=1, le=1_000_000, description="Units per lot (e.g. 75 for a NIFTY lot)."
    )
    allow_fractional: bool = Field(
        False,
        description=(
            "Allow fractional quantities. Otherwise notional/percent sizes round down to "
            "whole units (to whole lots when lot_size > 1) and units must be whole."
        ),
    )
    size_value: float = Field(
        100.0, gt=0, description="Size in the unit of size_mode (units, lots, cash or %)."
    )
    option_delta: float = Field(
        1.0,
        gt=0,
        le=1.0,
        description="P&L multiplier: pnl = side x delta x (exit - entry) x qty (1 = the underlying).",
    )
    commission_fixed: float = Field(0.0, ge=0, le=1e9, description="Commission per order.")
    commission_per_unit: float = Field(0.0, ge=0, le=1e6, description="Commission per unit.")
    commission_pct: float = Field(
        0.0, ge=0, le=10, description="Commission in percent of the order's notional."
    )
    slippage_bps: float = Field(
        0.0, ge=0, le=1000, description="Slippage in basis points against every fill."
    )
    slippage_ticks: float = Field(
        0.0, ge=0, le=10_000, description="Slippage in ticks (of tick_size) against every fill."
    )
    tick_size: float = Field(0.01, gt=0, le=1e6, description="Price tick used by slippage_ticks.")
    stop_loss_pct: float | None = Field(
        None, gt=0, lt=100, description="Stop loss, percent of the entry fill price."
    )
    take_profit_pct: float | None = Field(
        None, gt=0, le=10_000, description="Take profit, percent of the entry fill price."
    )
    trailing_pct: float | None = Field(
        None,
        gt=0,
        lt=100,
        description="Trailing stop distance, percent of the entry fill price, from the best price.",
    )
    stop_loss_atr: float | None = Field(
        None, gt=0, le=1000, description="Stop loss in ATR multiples (ATR at the signal bar)."
    )
    take_profit_atr: float | None = Field(
        None, gt=0, le=1000, description="Take profit in ATR multiples (ATR at the signal bar)."
    )
    trailing_atr: float | None = Field(
        None, gt=0, le=1000, description="Trailing stop distance in ATR multiples."
    )
    atr_period: int = Field(14, ge=1, le=10_000, description="ATR period (Wilder) for *_atr.")
    square_off: str | None = Field(
        None,
        description="Exchange-local 'HH:MM': flatten at the first bar at/after it, and at "
        "each day's last bar; no entries from then on that day.",
    )
    no_entry_after: str | None = Field(
        None, description="Exchange-local 'HH:MM': no new entries at/after this time."
    )

    @field_validator("size_value")
    @classmethod
    def _check_size(cls, v: float, info: ValidationInfo) -> float:
        mode = info.data.get("size_mode", "percent")
        if not math.isfinite(v) or v > _SIZE_MAX[mode]:
            raise ValueError(f"size_value must be <= {_SIZE_MAX[mode]:g} for size_mode {mode!r}")
        if mode == "lots" and v != int(v):
            raise ValueError("size_value must be a whole number of lots for size_mode 'lots'")
        if mode == "units" and v != int(v) and not info.data.get("allow_fractional", False):
            raise ValueError(
                "size_value must be a whole number of units (or set allow_fractional=true)"
            )
        return v

    @field_validator("stop_loss_atr", "take_profit_atr", "trailing_atr")
    @classmethod
    def _pct_or_atr(cls, v: float | None, info: ValidationInfo) -> float | None:
        pct_field = f"{str(info.field_name).rsplit('_', 1)[0]}_pct"
        if v is not None and info.data.get(pct_field) is not None:
            raise ValueError(f"set either {pct_field} or {info.field_name}, not both")
        return v

    @field_validator("square_off", "no_entry_after")
    @classmethod
    def _check_hhmm(cls, v: str | None) -> str | None:
        if v is not None:
            parse_hhmm(v)
        return v

    @property
    def uses_atr(self) -> bool:
        """True when any protective level is in ATR multiples."""
        return any(
            x is not None for x in (self.stop_loss_atr, self.take_profit_atr, self.trailing_atr)
        )

    @property
    def uses_clock(self) -> bool:
        """True when a session rule needs the exchange-local clock."""
        return self.square_off is not None or self.no_entry_after is not None

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON schema of the options (what the API exposes)."""
        return cls.model_json_schema()
