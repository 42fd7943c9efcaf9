"""Parameter declaration, schema and validation of strategies (types, bounds, did-you-mean)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

from engine.errors import EngineInputError
from strategies.base import Param, ParamError, Strategy, merge_engine_options
from strategies.registry import (
    UnknownStrategyError,
    get_strategy,
    list_strategies,
    register_strategy,
)

BUILTIN_NAMES = {
    "ema_crossover",
    "ema10_scalper",
    "rsi_reversion",
    "bollinger_breakout",
    "macd_trend",
    "donchian_breakout",
    "vwap_reversion",
}


class Demo(Strategy):
    """A strategy used only by these tests."""

    name: ClassVar[str] = "demo"
    fast: int = Param(10, ge=2, le=500, help="fast period")
    ratio: float = Param(0.5, ge=0.0, le=1.0, help="a ratio")
    flag: bool = Param(False, help="a flag")
    mode: str = Param("a", choices=("a", "b", "close"), help="a choice")


def _err(raw: dict[str, Any], cls: type[Strategy] = Demo) -> ParamError:
    with pytest.raises(ParamError) as info:
        cls.validate_params(raw)
    assert isinstance(info.value, EngineInputError)
    return info.value


def test_defaults_filled_and_descriptor_access() -> None:
    assert Demo.validate_params({}) == {"fast": 10, "ratio": 0.5, "flag": False, "mode": "a"}
    d = Demo(fast=20)
    assert d.fast == 20 and d.params["fast"] == 20 and d.mode == "a"
    assert "fast=20" in repr(d)


def test_unknown_name_suggests_closest() -> None:
    e = _err({"fsat": 3})
    assert e.param == "fsat"
    assert "did you mean 'fast'?" in str(e)
    e = _err({"zzzzz": 3})
    assert "choose from" in str(e) and "fast" in str(e)


@pytest.mark.parametrize(
    ("raw", "param", "needle"),
    [
        ({"fast": 1}, "fast", "fast must be >= 2, got 1"),
        ({"fast": 501}, "fast", "fast must be <= 500, got 501"),
        ({"fast": 10.5}, "fast", "must be an integer"),
        ({"fast": "10.5"}, "fast", "must be an integer"),
        ({"fast": "ten"}, "fast", "must be an integer"),
        ({"fast": True}, "fast", "boolean"),
        ({"fast": None}, "fast", "must be a number"),
        ({"ratio": "nan"}, "ratio", "finite"),
        ({"ratio": float("inf")}, "ratio", "finite"),
        ({"ratio": 1.5}, "ratio", "ratio must be <= 1.0, got 1.5"),
        ({"flag": "maybe"}, "flag", "boolean"),
        ({"flag": 2}, "flag", "boolean"),
        ({"flag": 1.0}, "flag", "boolean"),
        ({"mode": "clsoe"}, "mode", "did you mean 'close'?"),
        ({"mode": 1}, "mode", "must be a string"),
    ],
)
def test_bad_values_name_the_rule(raw: dict[str, Any], param: str, needle: str) -> None:
    e = _err(raw)
    assert e.param == param
    assert needle in str(e)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"fast": "12"}, {"fast": 12}),
        ({"fast": " 12 "}, {"fast": 12}),
        ({"fast": 12.0}, {"fast": 12}),
        ({"fast": "12.0"}, {"fast": 12}),
        ({"ratio": 1}, {"ratio": 1.0}),
        ({"ratio": "0.25"}, {"ratio": 0.25}),
        ({"flag": "TRUE"}, {"flag": True}),
        ({"flag": "off"}, {"flag": False}),
        ({"flag": 1}, {"flag": True}),
        ({"mode": "b"}, {"mode": "b"}),
    ],
)
def test_coercions(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    out = Demo.validate_params(raw)
    for key, value in expected.items():
        assert out[key] == value and type(out[key]) is type(value)


def test_schema_is_json_able_data() -> None:
    schema = Demo.params_schema()
    json.dumps(schema)
    by_name = {p["name"]: p for p in schema}
    assert by_name["fast"] == {
        "name": "fast",
        "type": "int",
        "default": 10,
        "min": 2,
        "max": 500,
        "step": None,
        "choices": None,
        "help": "fast period",
    }
    assert by_name["flag"]["type"] == "bool"
    assert by_name["mode"]["type"] == "choice" and by_name["mode"]["choices"] == ["a", "b", "close"]


def test_declaration_errors_fail_at_class_creation() -> None:
    with pytest.raises(TypeError, match="annotate"):

        class NoType(Strategy):
            x: list = Param(1)  # type: ignore[type-arg]

    with pytest.raises(TypeError, match="needs choices"):

        class NoChoices(Strategy):
            s: str = Param("a")

    with pytest.raises(ParamError, match="must be >= 5"):

        class BadDefault(Strategy):
            n: int = Param(1, ge=5)


@pytest.mark.parametrize(
    ("name", "raw", "param"),
    [
        ("ema_crossover", {"fast": 30, "slow": 30}, "fast"),
        ("macd_trend", {"fast": 40}, "fast"),
        ("rsi_reversion", {"lower": 60}, "exit_level"),
        ("vwap_reversion", {"exit_pct": 0.5, "band_pct": 0.3}, "exit_pct"),
    ],
)
def test_cross_parameter_checks(name: str, raw: dict[str, Any], param: str) -> None:
    e = _err(raw, get_strategy(name))
    assert e.param == param


def test_ema_crossover_message() -> None:
    e = _err({"fast": 50, "slow": 20}, get_strategy("ema_crossover"))
    assert "fast must be < slow" in str(e)


def test_registry() -> None:
    names = [s.name for s in list_strategies()]
    assert set(names) >= BUILTIN_NAMES and names == sorted(names)
    for cls in list_strategies():
        assert cls.__doc__ and len(cls.__doc__.strip()) > 40, cls.name
        cls.validate_params({})
        json.dumps(cls.params_schema())
    with pytest.raises(UnknownStrategyError, match="did you mean 'ema_crossover'") as info:
        get_strategy("ema_crosover")
    assert isinstance(info.value, EngineInputError) and info.value.name == "ema_crosover"
    with pytest.raises(ValueError, match="already registered"):
        register_strategy(type("Dup", (Demo,), {"name": "ema_crossover"}))
    with pytest.raises(TypeError):
        register_strategy(int)  # type: ignore[arg-type]


def test_engine_overrides_and_merge() -> None:
    scalper = get_strategy("ema10_scalper")
    p = scalper.validate_params({"stop_loss_pct": 0.4})
    assert scalper.engine_overrides(p) == {"stop_loss_pct": 0.4, "square_off": "15:15"}
    off = scalper.validate_params({"stop_loss_pct": 0, "square_off": "none"})
    assert scalper.engine_overrides(off) == {}
    merged = merge_engine_options(scalper, p, {"initial_cash": 5.0, "stop_loss_pct": 0.4})
    assert merged == {"initial_cash": 5.0, "stop_loss_pct": 0.4, "square_off": "15:15"}
    with pytest.raises(ParamError, match="conflicts") as info:
        merge_engine_options(scalper, p, {"stop_loss_pct": 1.0})
    assert info.value.param == "stop_loss_pct"
    ema = get_strategy("ema_crossover")
    assert merge_engine_options(ema, ema.validate_params({}), {"x": 1}) == {"x": 1}
