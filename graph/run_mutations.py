"""Run mutations: `submitBacktest` (queue and return), `runBacktest` (wait), `cancelRun`.

Validation (strategy exists, params within bounds, dataset exists, engine options) and
enqueuing live in the workers' `Services` facade; these resolvers only parse and shape.
"""

from __future__ import annotations

from typing import Any

import strawberry

from graph.context import Info
from graph.datasets import parse_dataset_id
from graph.errors import BadUserInput, Timeout
from graph.runs import Run
from graph.scalars import JSON


@strawberry.input(description="What to backtest: a strategy with parameters on a dataset.")
class BacktestInput:
    strategy: str = strawberry.field(description="Strategy name, e.g. `ema_crossover`.")
    dataset_id: strawberry.ID
    params: JSON | None = strawberry.field(
        default=None, description="Strategy parameters; omitted ones take their defaults."
    )
    options: JSON | None = strawberry.field(
        default=None,
        description="Engine options (sizing, costs, stops, sessions); see `engineOptionsSchema`.",
    )


def _object(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadUserInput(f"{field} must be a JSON object, got {type(value).__name__}", field=field)
    return value


def parse_backtest_input(data: BacktestInput) -> dict[str, Any]:
    """Keyword arguments for `Services.submit_backtest`."""
    strategy = data.strategy.strip()
    if not strategy:
        raise BadUserInput("strategy must not be empty", field="strategy")
    return {
        "strategy": strategy,
        "dataset_id": parse_dataset_id(data.dataset_id, "datasetId"),
        "params": _object(data.params, "params"),
        "options": _object(data.options, "options"),
    }


@strawberry.type
class RunMutations:
    @strawberry.mutation(
        description="Queue a backtest and return the QUEUED run at once; follow it with "
        "`runProgress(id)`."
    )
    async def submit_backtest(self, info: Info, input: BacktestInput) -> Run:
        row = await info.context.services.submit_backtest(**parse_backtest_input(input))
        return Run.from_row(row)

    @strawberry.mutation(
        description="Run a small backtest and wait for its result (at most `timeoutSeconds`; "
        "on timeout a TIMEOUT error names the run id, which keeps running)."
    )
    async def run_backtest(
        self, info: Info, input: BacktestInput, timeout_seconds: float | None = None
    ) -> Run:
        limits = info.context.limits
        timeout = limits.run_wait_timeout_s if timeout_seconds is None else timeout_seconds
        if not 0 < timeout <= limits.max_run_wait_s:
            raise BadUserInput(
                f"timeoutSeconds must be in (0, {limits.max_run_wait_s:g}], got {timeout:g}",
                field="timeoutSeconds",
            )
        services = info.context.services
        row = await services.submit_backtest(**parse_backtest_input(input))
        try:
            done = await services.wait_for_run(row.id, timeout)
        except TimeoutError:
            raise Timeout(
                f"run {row.id} did not finish within {timeout:g}s; it keeps running: follow it "
                "with runProgress(id) or fetch it with run(id)",
                runId=str(row.id),
            ) from None
        return Run.from_row(done)

    @strawberry.mutation(
        description="Cancel a run: a queued one at once, a running one at its next chunk. "
        "CONFLICT if it already finished."
    )
    async def cancel_run(self, info: Info, id: strawberry.ID) -> Run:
        return Run.from_row(await info.context.services.cancel_run(str(id)))
