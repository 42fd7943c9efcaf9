"""Out-of-sample validation and overfitting statistics of optimizations in GraphQL.

Inputs (`ValidationInput`: a hold-out split or walk-forward windows), the walk-forward
outcome (`Optimization.walkForward`), one optimization's statistics (`Optimization.stats`)
and the service-wide counts (`optimizationStats`). Shapes only: the service validates
(errors name the field, e.g. `validation.walkForward.train`) and computes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from graph.context import Info
from graph.errors import BadUserInput
from graph.runs import EquityPoint, RunStatus
from graph.scalars import JSON, json_safe
from graph.series import downsample_minmax

__all__ = ["OptimizationOverfitStats", "OptimizationStats", "ValidationInput", "WalkForward",
           "parse_validation", "summary_stats"]

LENGTH_HELP = ("A bar count (`250` or `\"250\"`) or a duration in the exchange's time "
               "(`\"30D\"`, `\"2W\"`, `\"6M\"` months, `\"1Y\"`, `\"4h\"`, `\"90min\"`).")


@strawberry.input(description="Hold out the last part of the data: give `fraction` or `start`.")
class HoldoutInput:
    fraction: float | None = strawberry.field(
        default=None, description="Share of the bars held out at the end, e.g. 0.3.")
    start: str | None = strawberry.field(
        default=None, description="ISO time: bars from here on are out of sample.")


@strawberry.input(description="Walk-forward windows: optimize on `train`, test on the next "
                  "`test`, move on by `step` (default `test`).")
class WalkForwardInput:
    train: JSON = strawberry.field(description=LENGTH_HELP)
    test: JSON = strawberry.field(description=LENGTH_HELP)
    step: JSON | None = strawberry.field(default=None, description=LENGTH_HELP)
    anchored: bool = strawberry.field(
        default=False, description="Every train window starts at the first bar.")
    gap: JSON | None = strawberry.field(
        default=None, description="Bars or time skipped between train and test.")


@strawberry.input(description="Out-of-sample validation: exactly one of the two.")
class ValidationInput:
    holdout: HoldoutInput | None = None
    walk_forward: WalkForwardInput | None = None


def parse_validation(v: ValidationInput | None) -> dict[str, Any] | None:
    """The service's `validation` spec (None = none)."""
    if v is None:
        return None
    if (v.holdout is None) == (v.walk_forward is None):
        raise BadUserInput("give exactly one of holdout and walkForward", field="validation")
    if v.holdout is not None:
        return {"holdout": {k: getattr(v.holdout, k) for k in ("fraction", "start")
                            if getattr(v.holdout, k) is not None}}
    wf = v.walk_forward
    assert wf is not None
    return {"walk_forward": {"train": wf.train, "test": wf.test, "step": wf.step,
                             "anchored": wf.anchored, "gap": wf.gap}}


@strawberry.type(description="Bars [startBar, stopBar) and the times of their first and last bar.")
class WalkForwardSpan:
    start: datetime
    end: datetime
    start_bar: int
    stop_bar: int
    bars: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WalkForwardSpan:
        return cls(start=datetime.fromisoformat(d["start"]), end=datetime.fromisoformat(d["end"]),
                   start_bar=int(d["start_bar"]), stop_bar=int(d["stop_bar"]), bars=int(d["bars"]))


@strawberry.type(description="One walk-forward window: the trial chosen on `train`, tested on `test`.")
class WalkForwardWindow:
    index: int
    train: WalkForwardSpan
    test: WalkForwardSpan
    n_trials: int = strawberry.field(description="Trials searched in this window.")
    trial: int | None = strawberry.field(description="Number of the chosen trial.")
    params: JSON | None = strawberry.field(description="The chosen parameters.")
    in_sample: JSON | None = strawberry.field(description="Their metrics on the train bars.")
    out_of_sample: JSON | None = strawberry.field(description="Their metrics on the test bars.")
    efficiency: float | None = strawberry.field(
        description="Out-of-sample / in-sample annualized return (cagr_pct).")
    deflated_sharpe: float | None = strawberry.field(
        description="Deflated Sharpe ratio of the chosen trial over this window's trials.")
    stability: float | None = strawberry.field(
        description="Parameter stability of the chosen trial among this window's trials.")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WalkForwardWindow:
        return cls(index=int(d["index"]), train=WalkForwardSpan.from_dict(d["train"]),
                   test=WalkForwardSpan.from_dict(d["test"]), n_trials=int(d.get("n_trials") or 0),
                   trial=d.get("trial"), params=json_safe(d.get("params")),
                   in_sample=json_safe(d.get("in_sample")),
                   out_of_sample=json_safe(d.get("out_of_sample")), efficiency=d.get("efficiency"),
                   deflated_sharpe=_num(d.get("deflated_sharpe"), "dsr"),
                   stability=_num(d.get("stability"), "score"))


@strawberry.type(description="Walk-forward analysis: windows, efficiency, stitched OOS equity.")
class WalkForward:
    windows: list[WalkForwardWindow]
    efficiency: float | None = strawberry.field(
        description="Walk-forward efficiency: mean OOS / mean IS annualized return of the "
        "chosen trials (None when the IS mean is not positive).")
    in_sample_mean_return: float | None
    out_of_sample_mean_return: float | None
    out_of_sample_return_pct: float | None = strawberry.field(
        description="Total return of the stitched out-of-sample curve.")
    return_metric: str
    tested: bool = strawberry.field(
        description="False until the optimization succeeded (e.g. cancelled: nothing tested).")
    _equity: strawberry.Private[dict[str, Any]]

    @strawberry.field(description="The stitched out-of-sample equity (each window's test run "
                      "of its chosen trial, chained), at most `points` points.")
    def equity(self, info: Info, points: int = 1000) -> list[EquityPoint]:
        limit = info.context.limits.max_equity_points
        if points < 2 or points > limit:
            raise BadUserInput(f"points must be between 2 and {limit}, got {points}", field="points")
        ts, values = downsample_minmax(self._equity.get("ts") or [],
                                       self._equity.get("values") or [], points)
        return [EquityPoint(t=float(t), value=float(v))  # type: ignore[arg-type]
                for t, v in zip(ts.tolist(), values.tolist(), strict=True)]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WalkForward:
        return cls(windows=[WalkForwardWindow.from_dict(w) for w in d.get("windows") or []],
                   efficiency=d.get("efficiency"), in_sample_mean_return=d.get("is_mean_return"),
                   out_of_sample_mean_return=d.get("oos_mean_return"),
                   out_of_sample_return_pct=d.get("oos_return_pct"),
                   return_metric=str(d.get("return_metric") or "cagr_pct"),
                   tested=bool(d.get("tested")), _equity=d.get("equity") or {})


def _num(d: Any, key: str) -> float | None:
    v = d.get(key) if isinstance(d, dict) else None
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


@strawberry.type(description="How far to trust one optimization's best trial (computed when "
                 "it ends, over its trial log; null where undefined, e.g. walk-forward).")
class OptimizationOverfitStats:
    trials: int
    feasible_trials: int | None
    trials_per_second: float | None = strawberry.field(description="Trials over wall time.")
    deflated_sharpe: float | None = strawberry.field(
        description="Deflated Sharpe ratio: probability that the best trial's true Sharpe "
        "ratio is above what the best of this many unskilled trials would show.")
    expected_max_sharpe: float | None = strawberry.field(
        description="Sharpe ratio expected from the best of the trials by luck alone.")
    best_sharpe: float | None
    pbo: float | None = strawberry.field(
        description="Probability of backtest overfitting (CSCV, 16 blocks, feasible trials).")
    prob_oos_loss: float | None = strawberry.field(
        description="Share of CSCV splits where the in-sample best loses out of sample.")
    stability: float | None = strawberry.field(
        description="Parameter stability: 1 = the best point's neighbours are as good, 0 = "
        "no better than a typical trial.")
    details: JSON = strawberry.field(description="The stored statistics in full.")

    @classmethod
    def from_row(cls, row: Any) -> OptimizationOverfitStats:
        r = row.result or {}
        dsr, pbo, st = r.get("deflated_sharpe"), r.get("pbo"), r.get("stability")
        secs = (row.duration_ms or 0) / 1000.0
        return cls(
            trials=int(row.completed or 0), feasible_trials=r.get("n_feasible"),
            trials_per_second=(row.completed or 0) / secs if secs > 0 else None,
            deflated_sharpe=_num(dsr, "dsr"), expected_max_sharpe=_num(dsr, "expected_max_sharpe"),
            best_sharpe=_num(dsr, "sharpe"), pbo=_num(pbo, "pbo"),
            prob_oos_loss=_num(pbo, "prob_oos_loss"), stability=_num(st, "score"),
            details=json_safe({"deflated_sharpe": dsr, "pbo": pbo, "stability": st}),
        )


@strawberry.type
class OptimizationStatusCount:
    status: RunStatus
    count: int


@strawberry.type(description="Optimizations you can see: counts and throughput.")
class OptimizationStats:
    total: int
    by_status: list[OptimizationStatusCount]
    trials_evaluated: int = strawberry.field(description="Trials stored over all of them.")
    average_trials_per_second: float | None = strawberry.field(
        description="Trials of finished optimizations over their summed wall time.")
    average_seconds: float | None = strawberry.field(
        description="Mean duration of succeeded optimizations.")


def summary_stats(d: dict[str, Any]) -> OptimizationStats:
    avg = d.get("avg_duration_ms")
    return OptimizationStats(
        total=int(d["total"]),
        by_status=[OptimizationStatusCount(status=RunStatus(k), count=int(n))
                   for k, n in d["by_status"].items()],
        trials_evaluated=int(d["trials_evaluated"]),
        average_trials_per_second=d.get("trials_per_second"),
        average_seconds=None if avg is None else float(avg) / 1000.0,
    )
