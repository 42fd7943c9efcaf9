"""Operations generated from the live schema (introspection) that name an object by id.

For every root field of Query, Mutation and Subscription that takes an id-like argument
(`id`, `ids`, or `<kind>Id` such as `datasetId`, `runId`, `optimizationId`; directly or
inside a required input object),
`probes(schema)` builds one operation with the minimum arguments: the required ones
with plain values, the id-like ones with an id of the right kind. A new field is
covered the day it is added; a new kind of object only needs an entry in `id_kind`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
    is_required_argument,
    is_required_input_field,
)


def is_id_arg(name: str) -> bool:
    return name in ("id", "ids") or (name.endswith("Id") and len(name) > 2)


SCALARS: dict[str, Any] = {
    "String": "x", "Int": 1, "Float": 1.0, "Boolean": True, "JSON": {},
    "DateTime": "2024-01-02T00:00:00Z", "EpochMs": 0,
}
NAMED_STRINGS = {"strategy": "ema_crossover", "name": "ema_crossover"}
SMALL_INPUTS: dict[str, Any] = {"space": {"fast": "4:12:4", "slow": "20:40:10"}}
"""Optional input fields given anyway, to keep a probe cheap (an optimization's default
space is every parameter's whole range: slow to set up before the dataset is checked)."""


class Unsupported(Exception):
    """An argument no plain JSON value can fill (a file upload)."""


def id_kind(field: str, arg: str) -> str:
    """Which kind of object an id argument names: by its name, else by the field's name."""
    if arg.endswith("Id") and len(arg) > 2:
        return arg[:-2].lower()
    lowered = field.lower()
    for kind in ("dataset", "token", "optimization"):
        if kind in lowered:
            return kind
    return "run"


@dataclass(frozen=True)
class Probe:
    operation: str
    field: str
    query: str
    args: tuple[tuple[str, str, Any], ...]
    """(argument, GraphQL type, value template) where a template may be an `IdRef`."""

    def variables(self, ids: dict[str, str]) -> dict[str, Any]:
        return {name: _fill(value, ids) for name, _, value in self.args}


@dataclass(frozen=True)
class IdRef:
    kind: str


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, IdRef):
        return ids[value.kind]
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _value(type_: GraphQLInputType, name: str, field: str) -> Any:
    if isinstance(type_, GraphQLNonNull):
        return _value(type_.of_type, name, field)
    if isinstance(type_, GraphQLList):
        return [_value(type_.of_type, name, field)]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        return {
            key: _value(sub.type, key, field)
            for key, sub in type_.fields.items()
            if is_required_input_field(sub) or is_id_arg(key)
        } | {key: value for key, value in SMALL_INPUTS.items() if key in type_.fields}
    assert isinstance(type_, GraphQLScalarType)
    if type_.name == "Upload":
        raise Unsupported(name)
    if is_id_arg(name) and type_.name == "ID":
        return IdRef(id_kind(field, name))
    if type_.name == "String" and name in NAMED_STRINGS:
        return NAMED_STRINGS[name]
    return SCALARS.get(type_.name, "x")


def _names_an_id(type_: GraphQLInputType) -> bool:
    named = get_named_type(type_)
    return isinstance(named, GraphQLInputObjectType) and any(
        is_id_arg(key) for key in named.fields
    )


def probes(schema: GraphQLSchema) -> list[Probe]:
    out = []
    roots = (("query", schema.query_type), ("mutation", schema.mutation_type),
             ("subscription", schema.subscription_type))
    for operation, root in roots:
        if root is None:
            continue
        for field, definition in root.fields.items():
            relevant = {
                name for name, arg in definition.args.items()
                if is_id_arg(name) or (is_required_argument(arg) and _names_an_id(arg.type))
            }
            if not relevant:
                continue
            used = [
                (name, arg) for name, arg in definition.args.items()
                if name in relevant or is_required_argument(arg) or name in NAMED_STRINGS
            ]
            try:
                args = tuple((name, str(arg.type), _value(arg.type, name, field)) for name, arg in used)
            except Unsupported:
                continue
            declared = ", ".join(f"${name}: {type_}" for name, type_, _ in args)
            passed = ", ".join(f"{name}: ${name}" for name, _, _ in args)
            returns = get_named_type(definition.type)
            selection = " { __typename }" if isinstance(returns, GraphQLObjectType) else ""
            query = f"{operation} ({declared}) {{ {field}({passed}){selection} }}"
            out.append(Probe(operation, field, query, args))
    return out


def normalized(body: Any, ids: dict[str, str]) -> Any:
    """A response with the ids replaced by their kinds, to compare 'yours' with 'unknown'
    (whole values and whole words inside messages only: dataset 3 is not in column 37)."""
    if isinstance(body, dict):
        return {k: normalized(v, ids) for k, v in body.items()}
    if isinstance(body, list):
        return [normalized(v, ids) for v in body]
    if isinstance(body, str | int) and not isinstance(body, bool):
        text = str(body)
        for kind, value in sorted(ids.items(), key=lambda kv: -len(kv[1])):
            if text == value:
                return f"<{kind}>"
            text = re.sub(rf"(?<![\w-]){re.escape(value)}(?![\w-])", f"<{kind}>", text)
        return text if isinstance(body, str) else body
    return body
