"""Turn one `params_schema` entry plus a user override into a `ParamSpec`.

Schema entries are the dicts of `Strategy.params_schema()` (name, type "int" | "float" |
"bool" | "choice", default, min, max, step, choices). Every value an override introduces is
checked against the schema's type and bounds here, so a bad range is reported with the
parameter's name before anything runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from engine.optim.space import ParamSpec
from engine.optim.types import OptimInputError

__all__ = ["parse_range", "spec_from_schema"]

_RANGE_KEYS = {"min", "max", "step", "values"}


def parse_range(text: str, field: str) -> dict[str, float]:
    """'5:50:5' -> {"min": 5, "max": 50, "step": 5}; '5:50' -> min and max only."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise OptimInputError(field, f"range {text!r}: write min:max or min:max:step")
    try:
        nums = [float(x) for x in parts]
    except ValueError:
        raise OptimInputError(field, f"range {text!r}: min, max and step must be numbers") from None
    out = {"min": nums[0], "max": nums[1]}
    if len(nums) == 3:
        out["step"] = nums[2]
    return out


class _Entry:
    def __init__(self, entry: Mapping[str, Any]) -> None:
        self.name = str(entry["name"])
        self.kind = str(entry["type"])
        self.default = entry.get("default")
        self.min = entry.get("min")
        self.max = entry.get("max")
        self.step = entry.get("step")
        self.choices = entry.get("choices")
        self.field = f"space.{self.name}"
        if self.kind not in ("int", "float", "bool", "choice"):
            raise OptimInputError(self.field, f"unsupported parameter type {self.kind!r}")

    def fail(self, message: str) -> OptimInputError:
        return OptimInputError(self.field, f"{self.name}: {message}")

    def coerce(self, v: Any) -> Any:
        """One value of this parameter, type-checked and inside the schema's bounds."""
        if self.kind == "bool":
            if isinstance(v, bool) or (isinstance(v, int) and v in (0, 1)):
                return bool(v)
            raise self.fail(f"expected true or false, got {v!r}")
        if self.kind == "choice":
            if self.choices is not None and v not in self.choices:
                shown = ", ".join(repr(c) for c in self.choices)
                raise self.fail(f"{v!r} is not one of {shown}")
            return v
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(f"expected a number, got {v!r}")
        if not math.isfinite(v):
            raise self.fail(f"expected a finite number, got {v!r}")
        if self.kind == "int":
            if float(v) != int(v):
                raise self.fail(f"expected an integer, got {v!r}")
            v = int(v)
        else:
            v = float(v)
        if self.min is not None and v < self.min:
            raise self.fail(f"{v} is below the strategy's minimum {self.min}")
        if self.max is not None and v > self.max:
            raise self.fail(f"{v} is above the strategy's maximum {self.max}")
        return v

    def values_spec(self, values: Any) -> ParamSpec:
        if not isinstance(values, list | tuple) or not values:
            raise self.fail("a list of values must not be empty")
        vals = [self.coerce(v) for v in values]
        vals = sorted(set(vals)) if self.kind in ("int", "float") else list(dict.fromkeys(vals))
        return ParamSpec(self.name, self.kind, values=tuple(vals))  # type: ignore[arg-type]

    def range_spec(self, rng: Mapping[str, Any]) -> ParamSpec:
        if self.kind not in ("int", "float"):
            raise self.fail("a min/max/step range needs a numeric parameter; give values")
        extra = set(rng) - _RANGE_KEYS
        if extra:
            raise self.fail(f"unknown range keys {sorted(extra)} (use min, max, step, values)")
        if rng.get("values") is not None:
            return self.values_spec(rng["values"])
        low = self.coerce(rng["min"]) if rng.get("min") is not None else self.min
        high = self.coerce(rng["max"]) if rng.get("max") is not None else self.max
        if low is None or high is None:
            raise self.fail("the strategy gives no bounds; set min and max")
        if low > high:
            raise self.fail(f"min {low} is above max {high}")
        step = rng.get("step", self.step)
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, int | float) or not step > 0:
                raise self.fail(f"step must be a positive number, got {step!r}")
            if self.kind == "int" and float(step) != int(step):
                raise self.fail(f"an int parameter needs a whole step, got {step!r}")
        if self.kind == "int":
            return ParamSpec(self.name, "int", int(low), int(high), int(step or 1))
        return ParamSpec(self.name, "float", float(low), float(high),
                         float(step) if step is not None else None)

    def full_spec(self) -> ParamSpec:
        if self.kind == "bool":
            return ParamSpec(self.name, "bool", values=(False, True))
        if self.kind == "choice":
            if not self.choices:
                raise self.fail("a choice parameter needs choices")
            return ParamSpec(self.name, "choice", values=tuple(self.choices))
        return self.range_spec({})


def spec_from_schema(
    entry: Mapping[str, Any], override: Any, overridden: bool, search_all: bool
) -> ParamSpec:
    """The ParamSpec of one schema entry under `override` (see `SearchSpace.from_schema`)."""
    e = _Entry(entry)
    if not overridden:
        if search_all:
            return e.full_spec()
        return ParamSpec(e.name, e.kind, values=(e.coerce(e.default),))  # type: ignore[arg-type]
    if isinstance(override, str) and e.kind in ("int", "float") and ":" in override:
        return e.range_spec(parse_range(override, e.field))
    if isinstance(override, Mapping):
        return e.range_spec(override)
    if isinstance(override, list | tuple):
        return e.values_spec(override)
    return e.values_spec([override])
