"""Objectives (metric + direction), result constraints, feasibility and the Pareto front.

An objective is any metric key with a direction. As text: "sharpe" (maximize), "+sharpe",
"-max_drawdown_pct" or "max_drawdown_pct:min" (minimize); a bare name of a metric where
less is better (drawdowns, volatility, VaR, losing streaks) defaults to minimize.

Result constraints are expressions over metric keys ("n_trades >= 30",
"max_drawdown_pct <= 25 and profit_factor > 1") or dicts {"metric", "min", "max"}. A trial
is feasible when every constraint holds and every objective is defined (not NaN);
infeasible trials are kept in the log but never chosen as best or put on the front.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from engine.metrics import METRIC_KEYS
from engine.optim.expr import UNDEFINED_VIOLATION, Expr, parse_expr
from engine.optim.types import Metrics, OptimInputError, did_you_mean

__all__ = [
    "MINIMIZE_BY_DEFAULT",
    "Objective",
    "Scores",
    "dominates",
    "pareto_front",
    "parse_constraints",
    "parse_objectives",
    "score",
]

Direction = Literal["maximize", "minimize"]
MINIMIZE_BY_DEFAULT = frozenset({
    "max_drawdown_pct", "max_drawdown_duration_bars", "max_drawdown_duration_days",
    "volatility_pct", "var_95", "cvar_95", "max_loss_streak",
})


@dataclass(frozen=True)
class Objective:
    """A metric key and whether larger (maximize) or smaller (minimize) is better."""

    metric: str
    direction: Direction = "maximize"

    @property
    def sign(self) -> float:
        """+1 for maximize, -1 for minimize: sign x value is "larger is better"."""
        return 1.0 if self.direction == "maximize" else -1.0

    def label(self) -> str:
        return ("+" if self.direction == "maximize" else "-") + self.metric

    @classmethod
    def parse(
        cls, spec: str | Objective | Mapping[str, Any], metrics: Iterable[str] = METRIC_KEYS,
        *, field: str = "objectives",
    ) -> Objective:
        """Objective from text, a dict {"metric", "direction"} or an Objective."""
        if isinstance(spec, Objective):
            metric, direction = spec.metric, spec.direction
        elif isinstance(spec, Mapping):
            metric = str(spec.get("metric", ""))
            direction = spec.get("direction") or _default(metric)
        elif isinstance(spec, str):
            text = spec.strip()
            metric, _, tail = text.partition(":")
            direction = _default(metric.lstrip("+-"))
            if metric.startswith("-"):
                direction = "minimize"
            elif metric.startswith("+"):
                direction = "maximize"
            metric = metric.lstrip("+-").strip()
            if tail:
                direction = {"min": "minimize", "max": "maximize"}.get(tail.strip(), tail.strip())
        else:
            raise OptimInputError(field, f"not an objective: {spec!r}")
        known = set(metrics)
        if metric not in known:
            raise OptimInputError(
                field, f"unknown metric {metric!r}{did_you_mean(metric, known)}"
            )
        if direction not in ("maximize", "minimize"):
            raise OptimInputError(field, f"direction must be maximize or minimize, got {direction!r}")
        return cls(metric, direction)


def _default(metric: str) -> Direction:
    return "minimize" if metric in MINIMIZE_BY_DEFAULT else "maximize"


def parse_objectives(
    specs: str | Objective | Mapping[str, Any] | Sequence[str | Objective | Mapping[str, Any]],
    metrics: Iterable[str] = METRIC_KEYS,
) -> tuple[Objective, ...]:
    """One or more objectives; the same metric twice is an error."""
    if isinstance(specs, str | Objective | Mapping):
        specs = [specs]
    known = tuple(metrics)
    out = tuple(Objective.parse(s, known, field=f"objectives[{i}]") for i, s in enumerate(specs))
    if not out:
        raise OptimInputError("objectives", "give at least one objective, e.g. 'sharpe'")
    names = [o.metric for o in out]
    if len(set(names)) != len(names):
        raise OptimInputError("objectives", f"a metric appears twice in {names}")
    return out


def parse_constraints(
    specs: Sequence[str | Expr | Mapping[str, Any]], metrics: Iterable[str] = METRIC_KEYS
) -> tuple[Expr, ...]:
    """Result constraints from expressions or {"metric", "min", "max"} dicts."""
    known = tuple(metrics)
    out: list[Expr] = []
    for i, s in enumerate(specs):
        field = f"result_constraints[{i}]"
        if isinstance(s, Expr):
            out.append(s)
            continue
        if isinstance(s, Mapping):
            metric = str(s.get("metric", ""))
            parts = [f"{metric} >= {float(s['min'])!r}"] if s.get("min") is not None else []
            if s.get("max") is not None:
                parts.append(f"{metric} <= {float(s['max'])!r}")
            if not parts:
                raise OptimInputError(field, "a result constraint needs min and/or max")
            s = " and ".join(parts)
        out.append(parse_expr(str(s), known, field=field))
    return tuple(out)


@dataclass(frozen=True)
class Scores:
    """Objective values (natural units, NaN if undefined), feasibility and violation."""

    values: np.ndarray  # [n, n_objectives]
    feasible: np.ndarray  # [n] bool
    violation: np.ndarray  # [n] float >= 0, 0 where feasible
    reasons: list[tuple[str, ...]]  # why each infeasible trial is infeasible


def score(
    metrics: Metrics, objectives: Sequence[Objective], constraints: Sequence[Expr] = ()
) -> Scores:
    """Score a batch of metric arrays against the objectives and result constraints."""
    values = np.stack(
        [np.asarray(metrics[o.metric], dtype=np.float64) for o in objectives], axis=1
    )
    n = values.shape[0]
    undefined = ~np.isfinite(values)
    violation = undefined.sum(axis=1) * UNDEFINED_VIOLATION
    failed = []
    for c in constraints:
        miss = np.broadcast_to(c.violation(metrics), (n,))
        violation = violation + miss
        failed.append(miss > 0)
    feasible = violation == 0
    reasons: list[tuple[str, ...]] = []
    for i in range(n):
        if feasible[i]:
            reasons.append(())
            continue
        why = [f"{o.metric} is undefined" for j, o in enumerate(objectives) if undefined[i, j]]
        why += [c.source for c, f in zip(constraints, failed, strict=True) if f[i]]
        reasons.append(tuple(why))
    return Scores(values, feasible, violation, reasons)


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a is at least as good as b everywhere and better somewhere (maximizing)."""
    return bool(np.all(a >= b) and np.any(a > b))


def pareto_front(values: np.ndarray, signs: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    """Indices (ascending) of the non-dominated rows of `values` [n, k].

    `signs` orients each column (+1 maximize, -1 minimize; default all maximize). Rows with a
    NaN are never on the front. Equal rows do not dominate each other, so all stay.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError("values must be a 2-D array [n, k]")
    s = np.ones(v.shape[1]) if signs is None else np.asarray(signs, dtype=np.float64)
    g = v * s  # larger is better in every column
    ok = np.flatnonzero(np.all(np.isfinite(g), axis=1))
    # Best-first by the lexicographic order: a point can only be dominated by an earlier
    # one, so each point is compared with the front found so far.
    order = ok[np.lexsort(tuple(-g[ok, j] for j in reversed(range(g.shape[1]))))]
    front: list[int] = []
    for i in order:
        if front:
            f = g[front]
            if np.any(np.all(f >= g[i], axis=1) & np.any(f > g[i], axis=1)):
                continue
        front.append(int(i))
    return np.array(sorted(front), dtype=np.int64)
