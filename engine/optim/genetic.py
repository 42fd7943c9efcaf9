"""A seeded genetic algorithm: tournament selection, uniform crossover, mutation, elitism.

One generation is one batch. Generation 0 is `population` distinct random feasible points;
each later generation keeps the `elite` best of the previous one and fills up with
children: two parents picked by tournaments of `tournament` random members, uniform
crossover (probability `crossover`; continuous genes are blended), then per-gene mutation
(probability `mutation`, default max(1 / n_params, 0.2)): numeric lattice genes move by a
Gaussian number of steps (sigma = `mutation_scale` x lattice size, at least one step) or,
one time in ten, jump anywhere; bool and choice genes take another value; continuous
genes get Gaussian noise. A child that breaks a space constraint is mutated again (up to
20 times), else replaced by a copy of its first parent.

Fitness orders feasible before infeasible trials, infeasible ones by smaller violation,
feasible ones by the objective. A parameter set is evaluated once: known points keep
their score and cost no budget, so only a generation's new points are asked. When a
generation brings nothing new for `max_stale` generations in a row, random unseen points
("immigrants") are added; the search ends when none are left. All randomness comes from
one numpy Generator seeded with `seed`: the same seed and scores give the same trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from engine.optim.objectives import Objective, Scores
from engine.optim.space import SearchSpace
from engine.optim.types import OptimInputError, Params

__all__ = ["GeneticSearch"]

Fitness = tuple[int, float, float]


class GeneticSearch:
    """Single-objective genetic search (use "nsga2" for several objectives)."""

    name: ClassVar[str] = "genetic"
    adaptive: ClassVar[bool] = True

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        seed: int,
        *,
        population: int = 50,
        elite: int = 2,
        tournament: int = 3,
        crossover: float = 0.9,
        mutation: float | None = None,
        mutation_scale: float = 0.1,
        max_stale: int = 20,
    ) -> None:
        if len(objectives) != 1:
            raise OptimInputError(
                "method", "the genetic search optimizes one objective; use 'nsga2' for several"
            )
        if population < 2 or not 0 <= elite < population or tournament < 1:
            raise OptimInputError(
                "method_options", "need population >= 2, 0 <= elite < population, tournament >= 1"
            )
        if not 0 <= crossover <= 1 or (mutation is not None and not 0 <= mutation <= 1):
            raise OptimInputError("method_options", "crossover and mutation are probabilities")
        self.space = space
        self.sign = objectives[0].sign
        self.rng = np.random.default_rng(seed)
        self.population_size = population
        self.default_batch = population
        self.elite = elite
        self.tournament = tournament
        self.p_cross = crossover
        self.p_mut = mutation if mutation is not None else max(1.0 / len(space.params), 0.2)
        self.scale = mutation_scale
        self.max_stale = max_stale
        self.known: dict[tuple[Any, ...], Fitness] = {}
        self.population: list[Params] | None = None  # last evaluated generation
        self.current: list[Params] = []  # generation being evaluated
        self.generation = -1

    def planned(self) -> None:
        return None

    # -- ask / tell -----------------------------------------------------------------
    def ask(self, n: int) -> list[Params]:
        for _ in range(self.max_stale + 1):
            gen = self._make_generation()
            new = self._new_points(gen)
            if new:
                break
            self.population = gen  # every member is known: move on without evaluating
        else:
            new = self.space.random_feasible(self.rng, self.population_size, set(self.known))
            gen = self._best(self.population_size - len(new)) + new
        if not new:
            return []
        if len(new) > n:  # budget: keep the generation to what can be evaluated
            keep = {self.space.key(p) for p in new[:n]}
            gen = [p for p in gen if self.space.key(p) in self.known or self.space.key(p) in keep]
            new = new[:n]
        self.current = gen
        return new

    def tell(self, params: list[Params], scores: Scores) -> None:
        for i, p in enumerate(params):
            if scores.feasible[i]:
                fit: Fitness = (1, 0.0, float(self.sign * scores.values[i, 0]))
            else:
                fit = (0, -float(scores.violation[i]), 0.0)
            self.known[self.space.key(p)] = fit
        self.population = [p for p in self.current if self.space.key(p) in self.known]

    def _best(self, k: int) -> list[Params]:
        pop = self.population or []
        ranked = sorted(pop, key=lambda p: self.known[self.space.key(p)], reverse=True)
        return ranked[: max(k, 0)]

    def _new_points(self, gen: list[Params]) -> list[Params]:
        seen: set[tuple[Any, ...]] = set()
        out = []
        for p in gen:
            k = self.space.key(p)
            if k not in self.known and k not in seen:
                seen.add(k)
                out.append(p)
        return out

    # -- generations ----------------------------------------------------------------
    def _make_generation(self) -> list[Params]:
        self.generation += 1
        if not self.population:
            return self.space.random_feasible(self.rng, self.population_size)
        pop = self.population
        fit = [self.known[self.space.key(p)] for p in pop]
        out = self._best(self.elite)
        while len(out) < self.population_size:
            a, b = pop[self._pick(fit)], pop[self._pick(fit)]
            ga, gb = self._encode(a), self._encode(b)
            if self.rng.random() < self.p_cross:
                ga, gb = self._cross(ga, gb)
            for genes, parent in ((ga, a), (gb, b)):
                if len(out) < self.population_size:
                    out.append(self._child(genes, parent))
        return out

    def _pick(self, fit: list[Fitness]) -> int:
        idx = self.rng.integers(0, len(fit), self.tournament)
        return int(max(idx.tolist(), key=lambda i: (fit[i], -i)))

    def _child(self, genes: list[float], parent: Params) -> Params:
        for _ in range(21):
            child = self._decode(self._mutate(genes))
            if self.space.is_feasible(child):
                return child
        return dict(parent)

    # -- genes: lattice index for discrete parameters, the value for continuous ones -
    def _encode(self, params: Params) -> list[float]:
        out = []
        for spec in self.space.params:
            v = params[spec.name]
            if spec.continuous:
                out.append(float(v))
            else:
                out.append(float(np.rint(spec.coord(np.array([v], dtype=object))[0])))
        return out

    def _decode(self, genes: list[float]) -> Params:
        out: Params = {}
        for spec, g in zip(self.space.params, genes, strict=True):
            if spec.continuous:
                out[spec.name] = float(g)
            else:
                out[spec.name] = spec.column(np.array([int(g)], dtype=np.int64))[0].item()
        return out

    def _cross(self, a: list[float], b: list[float]) -> tuple[list[float], list[float]]:
        c1, c2 = list(a), list(b)
        for j, spec in enumerate(self.space.params):
            if spec.continuous:
                u = float(self.rng.random())
                c1[j], c2[j] = u * a[j] + (1 - u) * b[j], (1 - u) * a[j] + u * b[j]
            elif self.rng.random() < 0.5:
                c1[j], c2[j] = b[j], a[j]
        return c1, c2

    def _mutate(self, genes: list[float]) -> list[float]:
        out = list(genes)
        for j, spec in enumerate(self.space.params):
            if self.rng.random() >= self.p_mut:
                continue
            if spec.continuous:
                lo, hi = float(spec.low or 0.0), float(spec.high or 0.0)
                out[j] = float(np.clip(out[j] + self.rng.normal(0.0, self.scale * (hi - lo)), lo, hi))
                continue
            size = int(spec.size or 1)
            if size == 1:
                continue
            if not spec.numeric or self.rng.random() < 0.1:
                new = int(self.rng.integers(0, size - 1))
                out[j] = float(new if new < out[j] else new + 1)  # any other value
                continue
            step = int(np.rint(self.rng.normal(0.0, max(1.0, self.scale * size))))
            if step == 0:
                step = 1 if self.rng.random() < 0.5 else -1
            out[j] = float(np.clip(out[j] + step, 0, size - 1))
        return out
