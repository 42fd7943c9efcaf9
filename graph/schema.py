"""The GraphQL schema: root types assembled from the per-domain modules, plus hardening.

`schema` is the default instance (used for `schema.graphql` and tests);
`build_schema(...)` lets `app/` pass the limits from settings. The limits and error
extensions do not change the SDL, so every instance prints the same schema.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule
from strawberry.schema.config import StrawberryConfig
from strawberry.types.execution import ExecutionContext

from graph.analytics import AnalyticsQueries
from graph.dataset_mutations import DatasetMutations
from graph.datasets import DatasetQueries
from graph.errors import ErrorCodes
from graph.optimizations import (
    OptimizationMutations,
    OptimizationQueries,
    OptimizationSubscriptions,
)
from graph.permissions import guard_root_fields
from graph.run_mutations import RunMutations
from graph.run_queries import RunQueries
from graph.scalars import SCALAR_MAP
from graph.strategies import StrategyQueries
from graph.strategy_mutations import StrategyMutations
from graph.subscriptions import RunSubscriptions, SharedEventExecution
from graph.team import TeamMutations, TeamQueries

DOCUMENT_CACHE_SIZE = 512
"""Distinct query texts whose parsed document and validation result are kept."""


@strawberry.type
class Query(
    DatasetQueries, StrategyQueries, RunQueries, AnalyticsQueries, TeamQueries, OptimizationQueries
):
    pass


@strawberry.type
class Mutation(
    RunMutations, StrategyMutations, DatasetMutations, TeamMutations, OptimizationMutations
):
    pass


@strawberry.type
class Subscription(RunSubscriptions, OptimizationSubscriptions):
    pass


guard_root_fields(Query, Mutation, Subscription)


class BacktesterSchema(strawberry.Schema):
    """Logging of errors happens once, in `ErrorCodes`, with the request id."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(*, max_depth: int = 10, max_aliases: int = 15, max_tokens: int = 2000) -> strawberry.Schema:
    """A schema with the given request limits (the SDL does not depend on them).

    Parsing and validating dominate a small query's cost, so both are cached per query
    text (bounded LRUs). The limit rules are built once, here: per request
    (`QueryDepthLimiter(...)` makes a new rule class each time) the validation cache,
    keyed by the rules too, would never hit.

    Subscriptions execute their selection once per event for every follower with the
    same query (`SharedEventExecution`): the app, `export-schema` and tests all get it.
    """
    limit_rules = [max_depth_rule(max_depth, None, None), max_aliases_rule(max_aliases)]
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: ParserCache(maxsize=DOCUMENT_CACHE_SIZE),
        lambda: AddValidationRules(limit_rules),
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
        ErrorCodes,
    ]
    return BacktesterSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=SharedEventExecution,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
    )


schema = build_schema()


def schema_sdl() -> str:
    """The SDL as committed in `schema.graphql` (with a trailing newline)."""
    return schema.as_str().rstrip("\n") + "\n"
