"""Parameter search spaces: typed ranges from a strategy's params_schema, plus constraints.

A `SearchSpace` is a list of `ParamSpec`s (int / float with min, max and step; bool; choice;
or an explicit list of values) and constraints between parameters. Constraints are
expressions of `engine.optim.expr` ("fast < slow") evaluated on whole columns at once, or
plain callables `params -> bool` (e.g. a wrapper around a strategy's own `check`), called
per parameter set after the expressions.

A parameter is discrete (int, float with a step, bool, choice, value list) or continuous
(float without a step: random, genetic and Bayesian searches only). Discrete parameters
have a lattice: value k is `low + k * step` (or the k-th listed value), which the grid
enumerates, the genetic search mutates and the stability score measures distance on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from engine.optim.expr import Expr, parse_expr
from engine.optim.types import OptimInputError, Params, did_you_mean, params_key

__all__ = ["MAX_GRID", "Constraint", "ParamSpec", "SearchSpace"]

Kind = Literal["int", "float", "bool", "choice"]
Constraint = str | Expr | Callable[[Params], bool]
MAX_GRID = 10_000_000  # grid points (before constraints) a space may enumerate
CONTINUOUS_UNITS = 20.0  # a continuous range counts as 20 lattice steps (5% per step)
_CHUNK = 1 << 16


def _decimals(x: float) -> int:
    """Decimal places of x as written (0.05 -> 2, 3.0 -> 0; scientific -> 12)."""
    text = repr(float(x))
    if "e" in text or "n" in text:
        return 12
    frac = text.partition(".")[2]
    return 0 if frac == "0" else min(len(frac), 12)


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter. `values` (explicit list) wins over low/high/step."""

    name: str
    kind: Kind
    low: float | None = None
    high: float | None = None
    step: float | None = None
    values: tuple[Any, ...] | None = None

    @property
    def continuous(self) -> bool:
        """A float range without a step."""
        return self.values is None and self.kind == "float" and self.step is None

    @property
    def size(self) -> int | None:
        """Number of lattice values (None when continuous)."""
        if self.values is not None:
            return len(self.values)
        if self.continuous:
            return None
        assert self.low is not None and self.high is not None and self.step
        return math.floor((self.high - self.low) / self.step + 1e-9) + 1

    @property
    def numeric(self) -> bool:
        return self.kind in ("int", "float")

    def column(self, idx: np.ndarray) -> np.ndarray:
        """Values at lattice indices `idx` (int array) as a typed numpy column."""
        if self.values is not None:
            return self._typed(np.asarray(self.values, dtype=object)[idx])
        assert self.low is not None and self.step is not None
        if self.kind == "int":
            return int(self.low) + idx.astype(np.int64) * int(self.step)
        raw = self.low + idx.astype(np.float64) * self.step
        # low + k * step without float noise (0.30000000000000004 -> 0.3)
        return np.round(raw, max(_decimals(self.low), _decimals(self.step)))

    def _typed(self, col: np.ndarray) -> np.ndarray:
        dtype = {"int": np.int64, "float": np.float64, "bool": np.bool_}.get(self.kind)
        return col.astype(dtype) if dtype is not None else col

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n independent uniform draws (lattice values, or uniform floats if continuous)."""
        if self.continuous:
            assert self.low is not None and self.high is not None
            return rng.uniform(self.low, self.high, n)
        size = self.size
        assert size is not None
        return self.column(rng.integers(0, size, n))

    def coord(self, col: np.ndarray) -> np.ndarray:
        """Lattice position of each value (float; continuous: 1 unit = 5% of the range)."""
        if self.values is not None:
            lookup = {v: i for i, v in enumerate(self.values)}
            return np.array([lookup.get(v, np.nan) for v in col.tolist()], dtype=np.float64)
        assert self.low is not None and self.high is not None
        unit = self.step if self.step else (self.high - self.low) / CONTINUOUS_UNITS or 1.0
        return (np.asarray(col, dtype=np.float64) - self.low) / unit

    def describe(self) -> dict[str, Any]:
        """JSON-able description (for storage and the API)."""
        return {
            "name": self.name,
            "type": self.kind,
            "min": self.low,
            "max": self.high,
            "step": self.step,
            "values": list(self.values) if self.values is not None else None,
            "size": self.size,
        }


class SearchSpace:
    """Parameters to search and the constraints every parameter set must satisfy."""

    def __init__(
        self,
        params: Sequence[ParamSpec],
        constraints: Sequence[Constraint] = (),
        *,
        max_grid: int = MAX_GRID,
    ) -> None:
        self.params = tuple(params)
        self.names = tuple(p.name for p in self.params)
        if len(set(self.names)) != len(self.names):
            raise OptimInputError("space", "a parameter appears twice in the space")
        if not self.params:
            raise OptimInputError("space", "the space has no parameters")
        self.by_name = {p.name: p for p in self.params}
        self.max_grid = max_grid
        self.exprs: list[Expr] = []
        self.callables: list[Callable[[Params], bool]] = []
        for i, c in enumerate(constraints):
            if isinstance(c, str):
                self.exprs.append(parse_expr(c, self.names, field=f"constraints[{i}]"))
            elif isinstance(c, Expr):
                self.exprs.append(c)
            elif callable(c):
                self.callables.append(c)
            else:
                raise OptimInputError(f"constraints[{i}]", f"not a constraint: {c!r}")

    @classmethod
    def from_schema(
        cls,
        schema: Sequence[Mapping[str, Any]],
        overrides: Mapping[str, Any] | None = None,
        constraints: Sequence[Constraint] = (),
        *,
        search_all: bool = True,
        max_grid: int = MAX_GRID,
    ) -> SearchSpace:
        """Space from `Strategy.params_schema()`, narrowed by `overrides`.

        An override is a fixed value (`10`), a list of values (`[5, 10, 20]`), a range
        dict (`{"min": 5, "max": 50, "step": 5}`, any subset) or a range string
        ("5:50:5", "5:50"). Ranges must stay inside the schema's bounds. Parameters
        without an override are searched over their whole schema range when `search_all`,
        else fixed at their default.
        """
        from engine.optim.schema import spec_from_schema

        overrides = dict(overrides or {})
        known = {str(e["name"]) for e in schema}
        for name in overrides:
            if name not in known:
                raise OptimInputError(
                    f"space.{name}", f"unknown parameter {name!r}{did_you_mean(name, known)}"
                )
        specs = [
            spec_from_schema(e, overrides.get(e["name"]), e["name"] in overrides, search_all)
            for e in schema
        ]
        return cls(specs, constraints, max_grid=max_grid)

    # -- shape ----------------------------------------------------------------------
    @property
    def discrete(self) -> bool:
        return all(not p.continuous for p in self.params)

    def grid_shape(self) -> tuple[int, ...]:
        """Lattice size per parameter; OptimInputError if a float has no step."""
        for p in self.params:
            if p.continuous:
                raise OptimInputError(
                    f"space.{p.name}",
                    f"float parameter {p.name!r} needs a step (or a list of values) for a grid",
                )
        return tuple(int(p.size or 0) for p in self.params)

    def grid_size(self) -> int:
        """Points of the full grid before constraints (checked against `max_grid`)."""
        shape = self.grid_shape()
        total = math.prod(shape)
        if total > self.max_grid:
            dims = " x ".join(f"{n}={s}" for n, s in zip(self.names, shape, strict=True))
            raise OptimInputError(
                "space",
                f"the grid has {total:,} points ({dims}); the limit is {self.max_grid:,}. "
                "Coarsen the steps, narrow the ranges, fix some parameters or use a "
                "random, genetic or Bayesian search",
            )
        return total

    def _grid_chunks(self, chunk: int) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        shape = self.grid_shape()
        total = self.grid_size()
        for start in range(0, total, chunk):
            flat = np.arange(start, min(start + chunk, total), dtype=np.int64)
            idx = np.unravel_index(flat, shape)
            cols = {p.name: p.column(i) for p, i in zip(self.params, idx, strict=True)}
            yield cols, self.feasible(cols)

    def iter_grid(self, chunk: int = _CHUNK) -> Iterator[list[Params]]:
        """Feasible grid points in lexicographic order (first parameter slowest), lazily."""
        for cols, mask in self._grid_chunks(chunk):
            yield self.records(cols, mask)

    def count_grid(self) -> int:
        """Number of feasible grid points (enumerates the grid once, vectorized)."""
        return sum(int(mask.sum()) for _, mask in self._grid_chunks(_CHUNK))

    # -- constraints ----------------------------------------------------------------
    def feasible(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Bool mask of the rows satisfying every constraint."""
        n = len(next(iter(columns.values())))
        mask = np.ones(n, dtype=bool)
        for e in self.exprs:
            mask &= np.broadcast_to(e(columns), (n,))
        if self.callables:
            for i in np.flatnonzero(mask):
                row = {k: v[i].item() if hasattr(v[i], "item") else v[i]
                       for k, v in columns.items()}
                mask[i] = all(bool(c(row)) for c in self.callables)
        return mask

    def is_feasible(self, params: Params) -> bool:
        """Whether one parameter set satisfies the constraints."""
        return bool(self.feasible(self.columns([params]))[0])

    # -- conversions ----------------------------------------------------------------
    def records(
        self, columns: Mapping[str, np.ndarray], mask: np.ndarray | None = None
    ) -> list[Params]:
        """Parameter dicts (plain Python scalars) of the rows of `columns` (where `mask`)."""
        lists = [
            (columns[n] if mask is None else columns[n][mask]).tolist() for n in self.names
        ]
        return [dict(zip(self.names, row, strict=True)) for row in zip(*lists, strict=True)]

    def columns(self, records: Sequence[Params]) -> dict[str, np.ndarray]:
        """Typed numpy columns of parameter dicts."""
        return {p.name: p._typed(np.array([r[p.name] for r in records], dtype=object))
                for p in self.params}

    def key(self, params: Params) -> tuple[Any, ...]:
        return params_key(params, self.names)

    def sample(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """n uniform draws per parameter (constraints not applied)."""
        return {p.name: p.sample(rng, n) for p in self.params}

    def random_feasible(
        self,
        rng: np.random.Generator,
        n: int,
        exclude: set[tuple[Any, ...]] | None = None,
        *,
        max_draws: int = 200_000,
    ) -> list[Params]:
        """Up to n distinct feasible random points not in `exclude` (fewer if scarce)."""
        out: list[Params] = []
        seen = set(exclude or ())
        drawn = 0
        while len(out) < n and drawn < max_draws:
            m = min(max(64, 2 * (n - len(out))), max_draws - drawn)
            drawn += m
            cols = self.sample(rng, m)
            for rec in self.records(cols, self.feasible(cols)):
                k = self.key(rec)
                if k not in seen:
                    seen.add(k)
                    out.append(rec)
                    if len(out) == n:
                        break
        return out

    def coords(self, records: Sequence[Params]) -> np.ndarray:
        """Lattice coordinates [n, n_params] (see `ParamSpec.coord`)."""
        cols = self.columns(records)
        return np.stack([p.coord(cols[p.name]) for p in self.params], axis=1)

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: parameters and constraint sources."""
        return {
            "params": [p.describe() for p in self.params],
            "constraints": [e.source for e in self.exprs]
            + [getattr(c, "__name__", "callable") for c in self.callables],
        }
