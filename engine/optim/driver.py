"""The ask/tell driver: batches of trials from a search method, a trial log, best and front.

`Optimizer` is the state machine a service drives: `ask()` hands out the next `Batch`
(numbered from 0) of parameter sets, the caller evaluates it anywhere (one sweep call) and
`tell(batch, metrics, seconds)` records one `Trial` per set. `optimize()` is the in-process
loop over an `evaluate` callable. Given the same space, objectives, method, options and
seed, and the same metrics told in the same batch order, the trials are the same: a
service can rebuild an optimizer after a restart by replaying its stored batches
(ask, then tell the stored metrics, batch by batch).

Budgets: `max_trials` (trials handed out) and `max_seconds` (wall time since the first
ask; not reproducible by nature). A grid needs no trial budget; a grid larger than
`max_trials` is refused rather than silently cut. Non-adaptive methods (grid, random) may
have several batches out at once; adaptive ones hand out the next batch only after the
previous one is told (`ask()` returns None while waiting).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import EngineError
from engine.optim.expr import Expr
from engine.optim.methods import SearchMethod, make_method
from engine.optim.objectives import (
    Objective,
    pareto_front,
    parse_constraints,
    parse_objectives,
    score,
)
from engine.optim.space import SearchSpace
from engine.optim.types import Evaluate, Metrics, OptimInputError, Params, clean_metric

__all__ = ["Batch", "OptimizationResult", "Optimizer", "Trial", "optimize"]


@dataclass
class Trial:
    """One evaluated parameter set. `values` are the objectives (None if undefined)."""

    number: int
    params: Params
    metrics: dict[str, float | int | None]
    values: tuple[float | None, ...]
    feasible: bool
    violations: tuple[str, ...]
    batch: int
    seconds: float  # this trial's share of its batch's evaluation time
    oos_metrics: dict[str, float | int | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field."""
        return {
            "number": self.number,
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "values": list(self.values),
            "feasible": self.feasible,
            "violations": list(self.violations),
            "batch": self.batch,
            "seconds": self.seconds,
            "oos_metrics": dict(self.oos_metrics) if self.oos_metrics is not None else None,
        }


@dataclass(frozen=True)
class Batch:
    """Parameter sets to evaluate together; trial numbers first_trial, first_trial + 1, ..."""

    number: int
    first_trial: int
    params: list[Params]


@dataclass
class OptimizationResult:
    """The trial log and what was chosen from it."""

    method: str
    seed: int
    objectives: tuple[Objective, ...]
    trials: list[Trial]
    best: Trial | None
    pareto: list[Trial]
    stop_reason: str  # "exhausted" | "max_trials" | "max_seconds" | "cancelled"
    n_batches: int
    seconds: float
    space: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, *, with_trials: bool = True) -> dict[str, Any]:
        """JSON-safe summary (the trial log too, unless with_trials=False)."""
        out: dict[str, Any] = {
            "method": self.method,
            "seed": self.seed,
            "objectives": [{"metric": o.metric, "direction": o.direction} for o in self.objectives],
            "n_trials": len(self.trials),
            "n_feasible": sum(t.feasible for t in self.trials),
            "best": self.best.to_dict() if self.best else None,
            "pareto": [t.number for t in self.pareto],
            "stop_reason": self.stop_reason,
            "n_batches": self.n_batches,
            "seconds": self.seconds,
            "space": self.space,
        }
        if with_trials:
            out["trials"] = [t.to_dict() for t in self.trials]
        return out


class Optimizer:
    """Ask/tell state of one optimization (see the module docstring)."""

    def __init__(
        self,
        space: SearchSpace,
        objectives: str | Objective | Sequence[str | Objective | Mapping[str, Any]],
        method: str = "grid",
        *,
        result_constraints: Sequence[str | Expr | Mapping[str, Any]] = (),
        seed: int = 0,
        max_trials: int | None = None,
        max_seconds: float | None = None,
        batch_size: int | None = None,
        method_options: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.space = space
        self.objectives = parse_objectives(objectives)  # type: ignore[arg-type]
        self.constraints = parse_constraints(result_constraints)
        self.method_name = method
        self.seed = int(seed)
        self.method: SearchMethod = make_method(method, space, self.objectives, self.seed,
                                                method_options)
        if max_trials is not None and max_trials < 1:
            raise OptimInputError("max_trials", "the trial budget must be at least 1")
        if max_seconds is not None and not max_seconds > 0:
            raise OptimInputError("max_seconds", "the time budget must be positive")
        planned = self.method.planned()
        if planned is None and max_trials is None:
            raise OptimInputError("max_trials", f"method {method!r} needs a trial budget")
        if planned is not None and max_trials is not None and planned > max_trials:
            raise OptimInputError(
                "max_trials",
                f"the grid has {planned:,} feasible points but the budget is {max_trials:,} "
                "trials: raise the budget, coarsen the grid or use a random search",
            )
        self.total = planned if planned is not None else int(max_trials or 0)
        self.max_seconds = max_seconds
        self.batch_size = int(batch_size or self.method.default_batch)
        if self.batch_size < 1:
            raise OptimInputError("batch_size", "the batch size must be at least 1")
        self.clock = clock
        self.trials: list[Trial] = []
        self.batches: list[Batch] = []
        self.pending: dict[int, Batch] = {}
        self.told: dict[int, list[Trial]] = {}
        self.stop_reason: str | None = None
        self.started: float | None = None
        self.eval_seconds = 0.0
        self._asked = 0

    # -- state ----------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """No batch will be handed out and none is outstanding."""
        if self.pending:
            return False
        if self.stop_reason is None and self._asked >= self.total:
            self.stop_reason = "exhausted" if self.method.planned() is not None else "max_trials"
        return self.stop_reason is not None

    def cancel(self) -> None:
        """Hand out nothing more (outstanding batches may still be told)."""
        self.stop_reason = self.stop_reason or "cancelled"

    def ask(self) -> Batch | None:
        """The next batch, or None (finished, or an adaptive method awaits a tell)."""
        if self.stop_reason is not None:
            return None
        if self.method.adaptive and self.pending:
            return None
        now = self.clock()
        if self.started is None:
            self.started = now
        if self.max_seconds is not None and now - self.started >= self.max_seconds:
            self.stop_reason = "max_seconds"
            return None
        n = min(self.batch_size, self.total - self._asked)
        if n <= 0:
            self.stop_reason = "max_trials" if self.method.planned() is None else "exhausted"
            return None
        params = self.method.ask(n)
        if not params:
            self.stop_reason = "exhausted"
            return None
        batch = Batch(len(self.batches), self._asked, params)
        self._asked += len(params)
        self.batches.append(batch)
        self.pending[batch.number] = batch
        return batch

    def tell(self, batch: Batch | int, metrics: Metrics, seconds: float = 0.0) -> list[Trial]:
        """Record a batch's metrics (arrays aligned with its params); idempotent per batch."""
        number = batch if isinstance(batch, int) else batch.number
        if number in self.told:
            return self.told[number]
        if number not in self.pending:
            raise EngineError(f"batch {number} was never handed out")
        b = self.pending[number]
        n = len(b.params)
        arrays = {k: np.asarray(v, dtype=np.float64) for k, v in metrics.items()}
        need = {o.metric for o in self.objectives} | {
            name for c in self.constraints for name in c.names
        }
        for key in sorted(need):
            if key not in arrays:
                raise EngineError(f"evaluate returned no {key!r} metric")
        for key, arr in arrays.items():
            if arr.shape != (n,):
                raise EngineError(f"metric {key!r} has shape {arr.shape}, expected ({n},)")
        scores = score(arrays, self.objectives, self.constraints)
        self.method.tell(b.params, scores)
        keys = list(arrays)
        rows = np.column_stack([arrays[k] for k in keys]).tolist() if keys else [[]] * n
        share = float(seconds) / n if n else 0.0
        values = np.asarray(scores.values, dtype=np.float64).tolist()
        trials = []
        for i, p in enumerate(b.params):
            trials.append(Trial(
                number=b.first_trial + i,
                params=p,
                metrics={k: clean_metric(k, v) for k, v in zip(keys, rows[i], strict=True)},
                values=tuple(v if math.isfinite(v) else None for v in values[i]),
                feasible=bool(scores.feasible[i]),
                violations=scores.reasons[i],
                batch=number,
                seconds=share,
            ))
        del self.pending[number]
        self.told[number] = trials
        self.trials.extend(trials)
        self.trials.sort(key=lambda t: t.number)
        self.eval_seconds += float(seconds)
        return trials

    # -- results --------------------------------------------------------------------
    def pareto(self) -> list[Trial]:
        """Feasible trials no other feasible trial dominates (by trial number)."""
        feas = [t for t in self.trials if t.feasible]
        if not feas:
            return []
        vals = np.array([[np.nan if v is None else v for v in t.values] for t in feas])
        idx = pareto_front(vals, [o.sign for o in self.objectives])
        return [feas[i] for i in idx]

    def best(self) -> Trial | None:
        """Best feasible trial by the first objective (lowest trial number on ties).

        With several objectives it is chosen from the Pareto front, so it is never
        dominated.
        """
        pool = self.pareto() if len(self.objectives) > 1 else [t for t in self.trials
                                                               if t.feasible]
        if not pool:
            return None
        sign = self.objectives[0].sign
        return max(pool, key=lambda t: (sign * float(t.values[0] or 0.0), -t.number))

    def ranked(self, top: int | None = None) -> list[Trial]:
        """Feasible trials best first by the objectives in order (ties: trial number)."""
        signs = [o.sign for o in self.objectives]
        feas = [t for t in self.trials if t.feasible]
        feas.sort(key=lambda t: (*[-s * float(v or 0.0) for s, v in zip(signs, t.values,
                                                                       strict=True)], t.number))
        return feas if top is None else feas[:top]

    def result(self) -> OptimizationResult:
        """Snapshot of the log, best trial and front."""
        elapsed = 0.0 if self.started is None else self.clock() - self.started
        return OptimizationResult(
            method=self.method_name,
            seed=self.seed,
            objectives=self.objectives,
            trials=list(self.trials),
            best=self.best(),
            pareto=self.pareto() if len(self.objectives) > 1 else [],
            stop_reason=self.stop_reason or "running",
            n_batches=len(self.told),
            seconds=elapsed,
            space=self.space.describe(),
        )


def optimize(
    optimizer: Optimizer,
    evaluate: Evaluate,
    *,
    on_batch: Callable[[Optimizer, list[Trial]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> OptimizationResult:
    """Run `optimizer` to the end in this thread: ask, evaluate, tell, batch by batch.

    `on_batch` sees every told batch (progress); `should_stop` is polled between batches
    (cancellation).
    """
    while True:
        if should_stop is not None and should_stop():
            optimizer.cancel()
        batch = optimizer.ask()
        if batch is None:
            break
        t0 = time.perf_counter()
        metrics = evaluate(batch.params)
        trials = optimizer.tell(batch, metrics, time.perf_counter() - t0)
        if on_batch is not None:
            on_batch(optimizer, trials)
    return optimizer.result()
