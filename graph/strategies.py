"""Strategies: what can be backtested and which parameters each one takes.

Parameter schemas are data (`StrategyParam` rows), so adding a strategy never changes
the GraphQL schema.
"""

from __future__ import annotations

import inspect
from enum import Enum
from typing import Any

import strawberry

from engine.options import EngineOptions
from graph.context import Info
from graph.errors import NotFound
from graph.scalars import JSON, json_safe
from strategies.registry import UnknownStrategyError, get_strategy, list_strategies


@strawberry.enum(description="How a parameter's value is given.")
class ParamType(Enum):
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    CHOICE = "choice"


@strawberry.type(description="One tunable parameter of a strategy, with its bounds.")
class StrategyParam:
    name: str
    type: ParamType
    default: JSON
    min: float | None
    max: float | None
    step: float | None
    choices: list[JSON] | None
    help: str

    @classmethod
    def from_schema(cls, item: dict[str, Any]) -> StrategyParam:
        def num(key: str) -> float | None:
            value = item.get(key)
            return None if value is None else float(value)

        choices = item.get("choices")
        return cls(
            name=item["name"],
            type=ParamType(item.get("type", "float")),
            default=json_safe(item.get("default")),
            min=num("min"),
            max=num("max"),
            step=num("step"),
            choices=None if choices is None else [json_safe(c) for c in choices],
            help=item.get("help") or "",
        )


@strawberry.type(description="A trading strategy that runs can use.")
class Strategy:
    name: str
    description: str
    params: list[StrategyParam]
    params_schema: JSON = strawberry.field(
        description="The same parameter list as plain JSON (for form builders)."
    )
    default_params: JSON

    @classmethod
    def from_class(cls, strategy_cls: Any) -> Strategy:
        schema = [json_safe(item) for item in strategy_cls.params_schema()]
        return cls(
            name=strategy_cls.name,
            description=inspect.getdoc(strategy_cls) or "",
            params=[StrategyParam.from_schema(item) for item in schema],
            params_schema=schema,
            default_params={item["name"]: item.get("default") for item in schema},
        )


@strawberry.type
class StrategyQueries:
    @strawberry.field(description="Every available strategy, by name.")
    async def strategies(self, info: Info) -> list[Strategy]:
        return sorted((Strategy.from_class(s) for s in list_strategies()), key=lambda s: s.name)

    @strawberry.field(description="One strategy by name; NOT_FOUND (with a suggestion) if unknown.")
    async def strategy(self, info: Info, name: str) -> Strategy:
        try:
            return Strategy.from_class(get_strategy(name))
        except UnknownStrategyError as exc:
            raise NotFound(str(exc), kind="strategy", id=name) from None

    @strawberry.field(
        description="JSON Schema of `BacktestInput.options` (sizing, costs, stops, sessions)."
    )
    async def engine_options_schema(self, info: Info) -> JSON:
        return json_safe(EngineOptions.json_schema())
