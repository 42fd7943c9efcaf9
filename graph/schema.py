"""The GraphQL schema: root types assembled from the per-domain modules, plus hardening.

`schema` is the default instance (used for `schema.graphql` and tests);
`build_schema(...)` lets `app/` pass the limits from settings. The limits and error
extensions do not change the SDL, so every instance prints the same schema.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.types.execution import ExecutionContext

from graph.analytics import AnalyticsQueries
from graph.dataset_mutations import DatasetMutations
from graph.datasets import DatasetQueries
from graph.errors import ErrorCodes
from graph.permissions import guard_root_fields
from graph.run_mutations import RunMutations
from graph.run_queries import RunQueries
from graph.scalars import SCALAR_MAP
from graph.strategies import StrategyQueries
from graph.strategy_mutations import StrategyMutations
from graph.subscriptions import RunSubscriptions


@strawberry.type
class Query(DatasetQueries, StrategyQueries, RunQueries, AnalyticsQueries):
    pass


@strawberry.type
class Mutation(RunMutations, StrategyMutations, DatasetMutations):
    pass


@strawberry.type
class Subscription(RunSubscriptions):
    pass


guard_root_fields(Query, Mutation, Subscription)


class BacktesterSchema(strawberry.Schema):
    """Logging of errors happens once, in `ErrorCodes`, with the request id."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(*, max_depth: int = 10, max_aliases: int = 15, max_tokens: int = 2000) -> strawberry.Schema:
    """A schema with the given request limits (the SDL does not depend on them)."""
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: QueryDepthLimiter(max_depth=max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
        ErrorCodes,
    ]
    return BacktesterSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
    )


schema = build_schema()


def schema_sdl() -> str:
    """The SDL as committed in `schema.graphql` (with a trailing newline)."""
    return schema.as_str().rstrip("\n") + "\n"
