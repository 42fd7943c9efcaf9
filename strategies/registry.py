"""Strategy lookup by name: the built-ins plus any registered later (e.g. user folders)."""

from __future__ import annotations

from engine.errors import EngineInputError
from strategies.base import Strategy, did_you_mean
from strategies.classic import (
    BollingerBreakout,
    DonchianBreakout,
    EmaCrossover,
    MacdTrend,
    RsiReversion,
)
from strategies.intraday import Ema10Scalper, VwapReversion

__all__ = [
    "BUILTINS",
    "UnknownStrategyError",
    "get_strategy",
    "list_strategies",
    "register_strategy",
    "unregister_strategy",
]

BUILTINS: tuple[type[Strategy], ...] = (
    EmaCrossover,
    Ema10Scalper,
    RsiReversion,
    BollingerBreakout,
    MacdTrend,
    DonchianBreakout,
    VwapReversion,
)

_REGISTRY: dict[str, type[Strategy]] = {cls.name: cls for cls in BUILTINS}


class UnknownStrategyError(EngineInputError):
    """No strategy has this name; the message suggests the closest one."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown strategy {name!r}{did_you_mean(name, _REGISTRY)}")
        self.name = name


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class called `name`, or UnknownStrategyError with a suggestion."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownStrategyError(str(name)) from None


def list_strategies() -> list[type[Strategy]]:
    """Every registered strategy class, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def register_strategy(cls: type[Strategy], *, replace: bool = False) -> type[Strategy]:
    """Add a strategy class (usable as a decorator); a taken name needs replace=True."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)) or not cls.name:
        raise TypeError("register_strategy needs a Strategy subclass with a non-empty name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls and not replace:
        raise ValueError(f"a strategy named {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def unregister_strategy(name: str) -> type[Strategy] | None:
    """Forget a non-built-in strategy (its file is gone); returns it, or None if unknown."""
    cls = _REGISTRY.get(name)
    if cls is None or cls in BUILTINS:
        return None
    return _REGISTRY.pop(name)
