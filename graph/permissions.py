"""Authorization: the single hook every root field passes through.

`guard_root_fields` attaches `Authorized` to every field of Query, Mutation and
Subscription when the schema is built, so no resolver can forget it. Today `authorize`
allows everything; teams and API keys plug in here later, in this one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry
from strawberry.permission import BasePermission, PermissionExtension

from graph.errors import Forbidden


async def authorize(context: Any, *, operation: str, field: str, args: Mapping[str, Any]) -> bool:
    """Decide whether the caller in `context` may run root `field` of `operation`.

    `operation` is "query", "mutation" or "subscription"; `args` are the parsed
    arguments. Allows everything until authentication exists.
    """
    return True


class Authorized(BasePermission):
    """Adapter from strawberry's permission protocol to `authorize`."""

    message = "not allowed"

    async def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        operation = info.operation.operation.value
        return await authorize(info.context, operation=operation, field=info.field_name, args=kwargs)

    def on_unauthorized(self) -> None:
        raise Forbidden("you are not allowed to do this")


def is_guarded(field: Any) -> bool:
    return any(
        isinstance(ext, PermissionExtension)
        and any(isinstance(p, Authorized) for p in ext.permissions)
        for ext in field.extensions
    )


def guard_root_fields(*root_types: type) -> None:
    """Attach `Authorized` to every field of the given root types (idempotent)."""
    for root in root_types:
        for field in root.__strawberry_definition__.fields:  # type: ignore[attr-defined]
            if not is_guarded(field):
                field.extensions.append(PermissionExtension([Authorized()], use_directives=False))
