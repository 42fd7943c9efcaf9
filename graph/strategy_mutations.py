"""Strategy mutations: `syncStrategies`, `validateStrategy`, `updateStrategy`, `deleteStrategy`.

Discovery, validation and the checks on edits live in the workers' `Services` facade
(`workers.strategy_service`); these resolvers only parse and shape.
"""

from __future__ import annotations

from typing import Any

import strawberry

from graph.context import Info
from graph.datasets import parse_dataset_id
from graph.errors import BadUserInput
from graph.scalars import JSON
from graph.strategies import Strategy, ValidationStep, strategy_or_not_found


@strawberry.type(description="A file or folder discovery could not use, and why.")
class DiscoveryProblem:
    path: str
    step: str = strawberry.field(description="path, import, discover (no strategy in it) or name.")
    message: str


@strawberry.type(description="What a sync found: the catalog after it, and the files that failed.")
class StrategySync:
    strategies: list[Strategy]
    problems: list[DiscoveryProblem]


@strawberry.type(description="One strategy's validation report.")
class StrategyValidation:
    strategy: Strategy
    ok: bool
    steps: list[ValidationStep]
    error: str | None = strawberry.field(description="`step: message` of the failed step.")

    @classmethod
    def from_row(cls, row: Any) -> StrategyValidation:
        shaped = Strategy.from_row(row)
        return cls(
            strategy=shaped,
            ok=row.validation_status == "valid",
            steps=shaped.validation_steps,
            error=row.validation_error,
        )


@strawberry.input(description="Fields to change; omitted ones stay as they are.")
class UpdateStrategyInput:
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="Null or empty: back to the docstring."
    )
    tags: list[str] | None = strawberry.UNSET
    default_params: JSON | None = strawberry.field(
        default=strawberry.UNSET,
        description="Defaults used by runs that omit them; checked against the parameter schema.",
    )


@strawberry.type
class StrategyMutations:
    @strawberry.mutation(
        description="Discover the built-ins and the STRATEGY_PATHS folders again: new files "
        "appear, changed ones are re-validated, broken ones are reported."
    )
    async def sync_strategies(self, info: Info) -> StrategySync:
        outcome = await info.context.services.sync_strategies()
        await info.context.services.audit("strategy.sync", "strategy", None, found=len(outcome.rows))
        return StrategySync(
            strategies=[Strategy.from_row(row) for row in outcome.rows],
            problems=[DiscoveryProblem(path=e.path, step=e.step, message=e.message) for e in outcome.errors],
        )

    @strawberry.mutation(
        description="Validate a strategy by `name`, or every strategy of one file by `path` "
        "(inside STRATEGY_PATHS), on a dataset or a small synthetic sample."
    )
    async def validate_strategy(
        self,
        info: Info,
        name: str | None = None,
        path: str | None = None,
        dataset_id: strawberry.ID | None = None,
    ) -> list[StrategyValidation]:
        if (name is None) == (path is None):
            raise BadUserInput("give exactly one of name or path", field="name")
        dataset = None if dataset_id is None else parse_dataset_id(dataset_id, "datasetId")
        services = info.context.services
        if name is not None:
            await strategy_or_not_found(info, name)
            rows = [await services.validate_strategy(name, dataset)]
        else:
            rows = await services.validate_strategy_path(str(path), dataset)
        return [StrategyValidation.from_row(row) for row in rows]

    @strawberry.mutation(description="Edit a strategy's description, tags or default params.")
    async def update_strategy(self, info: Info, name: str, input: UpdateStrategyInput) -> Strategy:
        await strategy_or_not_found(info, name)
        edits: dict[str, Any] = {}
        if input.description is not strawberry.UNSET:
            edits["description"] = input.description
        if input.tags is not strawberry.UNSET:
            edits["tags"] = input.tags
        if input.default_params is not strawberry.UNSET:
            edits["default_params"] = input.default_params
        return Strategy.from_row(await info.context.services.update_strategy(name, **edits))

    @strawberry.mutation(
        description="Soft delete: hidden and refused for new runs; runs that used it keep it."
    )
    async def delete_strategy(self, info: Info, name: str) -> Strategy:
        await strategy_or_not_found(info, name)
        return Strategy.from_row(await info.context.services.delete_strategy(name))
