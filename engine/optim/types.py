"""Shared aliases and the input error of the optimization package."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import numpy as np

from engine.errors import EngineInputError

__all__ = ["Evaluate", "Metrics", "OptimInputError", "Params", "params_key"]

Params: TypeAlias = dict[str, Any]
"""One parameter set: name -> int | float | bool | str."""

Metrics: TypeAlias = Mapping[str, np.ndarray]
"""Metric arrays aligned with the evaluated parameter sets (NaN = undefined)."""

Evaluate: TypeAlias = Callable[[list[Params]], Metrics]
"""What the caller supplies: metrics of a batch of parameter sets, e.g. `Strategy.sweep`."""


class OptimInputError(EngineInputError):
    """A bad search space, objective, constraint, budget or window; `.field` names it.

    `field` is a dotted path the API can point at ("space.fast", "objectives[1]").
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def params_key(params: Mapping[str, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
    """Hashable identity of a parameter set (values in `names` order)."""
    return tuple(params[n] for n in names)
