"""Typed errors of the store layer; `graph/errors.py` maps them to `extensions.code`."""

from __future__ import annotations

from engine.errors import EngineInputError

__all__ = [
    "BadInputError",
    "ConflictError",
    "ForbiddenError",
    "NotFoundError",
    "QuotaExceededError",
    "StoreError",
]


class StoreError(Exception):
    """Base class for errors raised by the store (and the services built on it)."""


class NotFoundError(StoreError, LookupError):
    """No `kind` with this `id` (NOT_FOUND)."""

    def __init__(self, kind: str, id: object) -> None:
        self.kind = kind
        self.id = id
        super().__init__(f"{kind} {id!r} not found")


class ConflictError(StoreError):
    """The request contradicts the current state, e.g. deleting a dataset runs use (CONFLICT)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class ForbiddenError(StoreError):
    """The caller may see the row but not change it: it belongs to another user (FORBIDDEN)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class QuotaExceededError(StoreError):
    """A per-user quota (datasets, stored bytes) would be exceeded (QUOTA_EXCEEDED)."""

    def __init__(self, quota: str, limit: int, message: str) -> None:
        self.quota = quota
        self.limit = limit
        self.message = message
        super().__init__(message)


class BadInputError(StoreError, EngineInputError):
    """One input field is invalid (BAD_USER_INPUT); `field` is a dotted path like `options.size_value`.

    It is an `EngineInputError` with `param` set, so code that already maps engine input
    errors (with their `param`) to BAD_USER_INPUT handles it unchanged.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.param = field
        self.message = message
        super().__init__(f"{field}: {message}")
