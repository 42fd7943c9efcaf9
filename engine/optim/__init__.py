"""Parameter optimization: search spaces, search methods, validation and overfitting statistics.

Pure code: the caller passes in an `evaluate(param_sets) -> {metric: array}` function (in
practice `Strategy.sweep(bars, param_sets, options)`), so nothing here imports a strategy.

* `space`: `SearchSpace.from_schema(schema, overrides, constraints)`.
* `driver`: `Optimizer(space, objectives, method, ...)` with `ask()` / `tell()`, and
  `optimize(optimizer, evaluate)`; methods "grid", "random", "genetic", "tpe", "nsga2".
* `validation`: hold-out splits and walk-forward windows; `walkforward`: the walk-forward
  driver and efficiency.
* `overfit`: deflated Sharpe ratio, probability of backtest overfitting (CSCV) and the
  parameter-stability score.
"""

from engine.optim.driver import Batch, OptimizationResult, Optimizer, Trial, optimize
from engine.optim.expr import Expr, parse_expr
from engine.optim.methods import METHODS, make_method
from engine.optim.objectives import Objective, pareto_front, parse_constraints, parse_objectives
from engine.optim.space import ParamSpec, SearchSpace
from engine.optim.types import Evaluate, Metrics, OptimInputError, Params

__all__ = [
    "METHODS",
    "Batch",
    "Evaluate",
    "Expr",
    "Metrics",
    "Objective",
    "OptimInputError",
    "OptimizationResult",
    "Optimizer",
    "ParamSpec",
    "Params",
    "SearchSpace",
    "Trial",
    "make_method",
    "optimize",
    "pareto_front",
    "parse_constraints",
    "parse_expr",
    "parse_objectives",
]
