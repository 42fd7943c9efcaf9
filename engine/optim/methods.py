"""Search methods behind one ask/tell protocol, the grid and random searches, and a registry.

A method proposes parameter sets (`ask(n)`: up to n new ones, [] when it has nothing left)
and learns from their scores (`tell(params, scores)`). Non-adaptive methods (grid, random)
may be asked for several batches before any is told, so a service can enqueue them all at
once; adaptive ones (genetic, TPE, NSGA-II) need each batch told before the next ask.
Every method is deterministic for a seed and the same sequence of told scores.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

from engine.optim.objectives import Objective, Scores
from engine.optim.space import SearchSpace
from engine.optim.types import OptimInputError, Params, did_you_mean

__all__ = [
    "METHODS",
    "GridSearch",
    "RandomSearch",
    "SearchMethod",
    "make_method",
]


class SearchMethod(Protocol):
    """What the driver needs from a search method."""

    name: ClassVar[str]
    adaptive: ClassVar[bool]
    default_batch: int

    def planned(self) -> int | None:
        """Trials the method will propose at most, if it knows (the grid does)."""
        ...

    def ask(self, n: int) -> list[Params]:
        """Up to n new parameter sets ([] = exhausted)."""
        ...

    def tell(self, params: list[Params], scores: Scores) -> None:
        """Scores of parameter sets this method proposed."""
        ...


class GridSearch:
    """Every feasible grid point, in lexicographic order, enumerated lazily."""

    name: ClassVar[str] = "grid"
    adaptive: ClassVar[bool] = False

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int,
                 *, batch: int = 1000) -> None:
        self.space = space
        self.default_batch = batch
        space.grid_size()  # refuse absurd grids before anything runs
        self._count: int | None = None
        self._iter: Iterator[list[Params]] = space.iter_grid()
        self._buffer: list[Params] = []

    def planned(self) -> int:
        if self._count is None:
            self._count = self.space.count_grid()
        return self._count

    def ask(self, n: int) -> list[Params]:
        while len(self._buffer) < n:
            chunk = next(self._iter, None)
            if chunk is None:
                break
            self._buffer.extend(chunk)
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def tell(self, params: list[Params], scores: Scores) -> None:
        pass


class RandomSearch:
    """Uniform random feasible points (seeded), never the same point twice."""

    name: ClassVar[str] = "random"
    adaptive: ClassVar[bool] = False

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int,
                 *, batch: int = 1000) -> None:
        self.space = space
        self.default_batch = batch
        self.rng = np.random.default_rng(seed)
        self.seen: set[tuple[Any, ...]] = set()

    def planned(self) -> None:
        return None

    def ask(self, n: int) -> list[Params]:
        out = self.space.random_feasible(self.rng, n, self.seen)
        self.seen.update(self.space.key(p) for p in out)
        return out

    def tell(self, params: list[Params], scores: Scores) -> None:
        pass


METHODS = ("grid", "random", "genetic", "tpe", "nsga2")


def _method_class(name: str) -> type:
    # Imported on demand: Optuna takes a noticeable time to import.
    if name == "grid":
        return GridSearch
    if name == "random":
        return RandomSearch
    if name == "genetic":
        from engine.optim.genetic import GeneticSearch

        return GeneticSearch
    from engine.optim.bayes import NSGA2Search, TPESearch

    return TPESearch if name == "tpe" else NSGA2Search


def make_method(
    name: str,
    space: SearchSpace,
    objectives: Sequence[Objective],
    seed: int = 0,
    options: dict[str, Any] | None = None,
) -> SearchMethod:
    """Build a method by name ("grid", "random", "genetic", "tpe", "nsga2")."""
    if name not in METHODS:
        raise OptimInputError("method", f"unknown method {name!r}{did_you_mean(name, METHODS)}")
    cls = _method_class(name)
    opts = dict(options or {})
    accepted = [
        p.name for p in inspect.signature(cls.__init__).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for key in opts:
        if key not in accepted:
            raise OptimInputError(
                f"method_options.{key}",
                f"{name} has no option {key!r}{did_you_mean(key, accepted)}",
            )
    method: SearchMethod = cls(space, objectives, seed, **opts)
    return method
