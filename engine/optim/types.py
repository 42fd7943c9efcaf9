"""Shared aliases and the input error of the optimization package."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

import numpy as np

from engine.errors import EngineInputError
from engine.metrics import INT_KEYS

__all__ = [
    "Evaluate",
    "Metrics",
    "OptimInputError",
    "Params",
    "clean_metric",
    "did_you_mean",
    "params_key",
]

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


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the closest option, or ' (choose from a, b)'."""
    opts = sorted(options)
    close = difflib.get_close_matches(name, opts, n=1, cutoff=0.5)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (choose from {', '.join(opts)})" if opts else ""


def clean_metric(key: str, value: float) -> float | int | None:
    """A metric as a run reports it: None if undefined (NaN/inf), int for counts."""
    value = float(value)
    if not math.isfinite(value):  # (math, not numpy: a scalar ufunc call costs ~1 us)
        return None
    return int(value) if key in INT_KEYS else value
