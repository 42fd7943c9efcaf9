"""EngineOptions: defaults, bounds, cross-field rules; every error names its field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from engine.options import EngineOptions, parse_hhmm

FIELDS = [
    "initial_cash", "direction", "size_mode", "size_value", "lot_size", "allow_fractional",
    "option_delta", "commission_fixed", "commission_per_unit", "commission_pct", "slippage_bps",
    "slippage_ticks", "tick_size", "stop_loss_pct", "take_profit_pct", "trailing_pct",
    "stop_loss_atr", "take_profit_atr", "trailing_atr", "atr_period", "square_off",
    "no_entry_after",
]


def test_defaults() -> None:
    o = EngineOptions()
    assert o.initial_cash == 100_000.0
    assert o.direction == "long_short"
    assert (o.size_mode, o.size_value, o.lot_size, o.allow_fractional) == ("percent", 100.0, 1, False)
    assert o.option_delta == 1.0
    assert o.commission_fixed == o.commission_per_unit == o.commission_pct == 0.0
    assert o.slippage_bps == o.slippage_ticks == 0.0
    assert o.stop_loss_pct is None and o.trailing_atr is None and o.square_off is None
    assert o.atr_period == 14
    assert not o.uses_atr and not o.uses_clock


def test_field_names_match_the_contract() -> None:
    assert sorted(EngineOptions.model_fields) == sorted(FIELDS)
    schema = EngineOptions.json_schema()
    assert set(schema["properties"]) == set(FIELDS)
    assert all(schema["properties"][f].get("description") for f in FIELDS)


def test_frozen_and_extra_forbidden() -> None:
    o = EngineOptions()
    with pytest.raises(ValidationError):
        o.initial_cash = 5.0  # type: ignore[misc]
    with pytest.raises(ValidationError) as err:
        EngineOptions.model_validate({"stop_loss": 2})
    assert err.value.errors()[0]["loc"] == ("stop_loss",)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"initial_cash": 0}, "initial_cash"),
        ({"initial_cash": float("nan")}, "initial_cash"),
        ({"direction": "both"}, "direction"),
        ({"size_mode": "shares"}, "size_mode"),
        ({"size_value": -1}, "size_value"),
        ({"size_mode": "percent", "size_value": 5000}, "size_value"),
        ({"size_mode": "lots", "size_value": 1.5}, "size_value"),
        ({"size_mode": "units", "size_value": 2.5}, "size_value"),
        ({"lot_size": 0}, "lot_size"),
        ({"option_delta": 0}, "option_delta"),
        ({"option_delta": 1.5}, "option_delta"),
        ({"commission_fixed": -1}, "commission_fixed"),
        ({"commission_per_unit": -0.1}, "commission_per_unit"),
        ({"commission_pct": 50}, "commission_pct"),
        ({"slippage_bps": -1}, "slippage_bps"),
        ({"slippage_ticks": -1}, "slippage_ticks"),
        ({"tick_size": 0}, "tick_size"),
        ({"stop_loss_pct": 0}, "stop_loss_pct"),
        ({"stop_loss_pct": 100}, "stop_loss_pct"),
        ({"take_profit_pct": -5}, "take_profit_pct"),
        ({"trailing_pct": 150}, "trailing_pct"),
        ({"stop_loss_atr": 0}, "stop_loss_atr"),
        ({"atr_period": 0}, "atr_period"),
        ({"square_off": "25:00"}, "square_off"),
        ({"square_off": "9:15"}, "square_off"),
        ({"no_entry_after": "noon"}, "no_entry_after"),
        ({"stop_loss_pct": 1, "stop_loss_atr": 2}, "stop_loss_atr"),
        ({"take_profit_pct": 1, "take_profit_atr": 2}, "take_profit_atr"),
        ({"trailing_pct": 1, "trailing_atr": 2}, "trailing_atr"),
    ],
)
def test_errors_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        EngineOptions.model_validate(raw)
    errors = err.value.errors()
    assert errors[0]["loc"] == (field,), errors
    assert field in str(err.value)


def test_cross_field_messages_are_actionable() -> None:
    with pytest.raises(ValidationError, match="either stop_loss_pct or stop_loss_atr"):
        EngineOptions(stop_loss_pct=1, stop_loss_atr=2)
    with pytest.raises(ValidationError, match="allow_fractional"):
        EngineOptions(size_mode="units", size_value=2.5)


def test_valid_combinations() -> None:
    o = EngineOptions(size_mode="units", size_value=2.5, allow_fractional=True,
                      stop_loss_atr=2, take_profit_pct=3, trailing_atr=1.5,
                      square_off="15:15", no_entry_after="15:00")
    assert o.uses_atr and o.uses_clock
    assert EngineOptions(size_mode="lots", size_value=3, lot_size=75).lot_size == 75
    assert EngineOptions.model_validate(o.model_dump()) == o


def test_parse_hhmm() -> None:
    assert parse_hhmm("00:00") == 0
    assert parse_hhmm("09:15") == 555
    assert parse_hhmm("23:59") == 1439
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm("24:00")
