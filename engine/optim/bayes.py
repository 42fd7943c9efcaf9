"""Bayesian (TPE) and multi-objective (NSGA-II) searches through Optuna's ask/tell interface.

Each search owns a private in-memory Optuna study with a seeded sampler. Numeric lattice
parameters are passed to Optuna as the index into their lattice (an ordered integer, so
lists of values keep their order), continuous floats as floats, bool/choice parameters as
categorical; single-valued parameters are not shown to Optuna at all.

Space constraints: a proposal that breaks one is told to Optuna as FAILED (which the
samplers ignore) and re-asked; after 50 misses for one slot a random feasible point is
enqueued instead. A proposal already evaluated is told its known values again and
re-asked the same way, so the budget is only spent on new points. Result constraints and
undefined objectives are told through `Trial.set_constraint` (Optuna's constrained TPE
and NSGA-II rank infeasible trials after feasible ones, by violation); an undefined
objective is told as 0.0 with a large violation.

Optuna's logging is set to ERROR when this module is imported, and sampler construction
filters Optuna's ExperimentalWarning / FutureWarning, so none reaches a caller that runs
with warnings as errors.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import Trial, TrialState

from engine.optim.objectives import Objective, Scores
from engine.optim.space import SearchSpace
from engine.optim.types import OptimInputError, Params

__all__ = ["NSGA2Search", "OptunaSearch", "TPESearch"]

optuna.logging.set_verbosity(optuna.logging.ERROR)
MAX_MISSES = 50


def _quiet_build(make: Callable[[], optuna.samplers.BaseSampler]) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"optuna(\.|$)")
        return make()


class OptunaSearch:
    """Shared ask/tell plumbing of the Optuna-backed searches."""

    name: ClassVar[str] = ""
    adaptive: ClassVar[bool] = True

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        seed: int,
        sampler: optuna.samplers.BaseSampler,
        batch: int,
    ) -> None:
        self.space = space
        self.objectives = tuple(objectives)
        self.default_batch = batch
        self.rng = np.random.default_rng(seed)
        self.study = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(),
            sampler=sampler,
            directions=[o.direction for o in self.objectives],
        )
        self.dists: dict[str, BaseDistribution] = {}
        self.fixed: Params = {}
        for spec in space.params:
            if spec.continuous:
                self.dists[spec.name] = FloatDistribution(float(spec.low or 0), float(spec.high or 0))
            elif spec.size == 1:
                self.fixed[spec.name] = spec.column(np.zeros(1, dtype=np.int64))[0].item()
            elif spec.numeric:
                self.dists[spec.name] = IntDistribution(0, int(spec.size or 1) - 1)
            else:
                self.dists[spec.name] = CategoricalDistribution(list(spec.values or ()))
        self.known: dict[tuple[Any, ...], tuple[list[float], float]] = {}
        self.pending: dict[tuple[Any, ...], Trial] = {}

    def planned(self) -> None:
        return None

    def _params(self, trial: Trial) -> Params:
        out: Params = {}
        for spec in self.space.params:
            if spec.name in self.fixed:
                out[spec.name] = self.fixed[spec.name]
                continue
            v = trial.params[spec.name]
            if spec.continuous:
                out[spec.name] = float(v)
            elif spec.numeric:
                out[spec.name] = spec.column(np.array([int(v)], dtype=np.int64))[0].item()
            else:
                out[spec.name] = v
        return out

    def _enqueue(self, params: Params) -> None:
        raw: dict[str, Any] = {}
        for spec in self.space.params:
            if spec.name in self.dists:
                v = params[spec.name]
                if spec.numeric and not spec.continuous:
                    v = int(np.rint(spec.coord(np.array([v], dtype=object))[0]))
                raw[spec.name] = v
        self.study.enqueue_trial(raw)

    def _tell(self, trial: Trial, values: list[float], violation: float) -> None:
        trial.set_constraint("violation", violation)
        self.study.tell(trial, values)

    def ask(self, n: int) -> list[Params]:
        out: list[Params] = []
        for _ in range(n):
            for miss in range(MAX_MISSES + 1):
                if miss == MAX_MISSES:
                    exclude = set(self.known) | set(self.pending)
                    fill = self.space.random_feasible(self.rng, 1, exclude)
                    if not fill:
                        return out
                    self._enqueue(fill[0])
                trial = self.study.ask(self.dists)
                params = self._params(trial)
                key = self.space.key(params)
                if key in self.known:
                    self._tell(trial, *self.known[key])
                elif key in self.pending or not self.space.is_feasible(params):
                    self.study.tell(trial, state=TrialState.FAIL)
                else:
                    self.pending[key] = trial
                    out.append(params)
                    break
        return out

    def tell(self, params: list[Params], scores: Scores) -> None:
        for i, p in enumerate(params):
            key = self.space.key(p)
            trial = self.pending.pop(key)
            row = scores.values[i]
            values = [float(v) if np.isfinite(v) else 0.0 for v in row]
            told = (values, float(scores.violation[i]))
            self.known[key] = told
            self._tell(trial, *told)


class TPESearch(OptunaSearch):
    """Tree-structured Parzen estimator (Optuna's TPESampler; multi-objective = MOTPE).

    Options: `startup` random trials before the model is used (default 10), `batch`
    trials asked per batch (default 16; Optuna's constant liar keeps a batch diverse).
    """

    name: ClassVar[str] = "tpe"

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int,
                 *, startup: int = 10, batch: int = 16) -> None:
        if startup < 1 or batch < 1:
            raise OptimInputError("method_options", "startup and batch must be >= 1")
        sampler = _quiet_build(
            lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
        )
        super().__init__(space, objectives, seed, sampler, batch)


class NSGA2Search(OptunaSearch):
    """NSGA-II (Optuna's NSGAIISampler): one generation of `population` trials per batch.

    Options: `population` (default 50), `crossover` probability (0.9), `mutation`
    probability per parameter (default 1 / n_params).
    """

    name: ClassVar[str] = "nsga2"

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int,
                 *, population: int = 50, crossover: float = 0.9,
                 mutation: float | None = None) -> None:
        if population < 2:
            raise OptimInputError("method_options", "population must be >= 2")
        sampler = _quiet_build(
            lambda: optuna.samplers.NSGAIISampler(
                population_size=population, crossover_prob=crossover,
                mutation_prob=mutation, seed=seed,
            )
        )
        super().__init__(space, objectives, seed, sampler, population)
