"""Keyset pagination: a `Page` of rows and opaque cursors that encode a keyset position."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from store.errors import BadInputError

__all__ = ["MAX_PAGE", "Page", "check_first", "decode_cursor", "encode_cursor"]

T = TypeVar("T")
MAX_PAGE = 1000


@dataclass
class Page(Generic[T]):
    """Rows of one page plus where the next page starts.

    Iterating, `len()` and indexing go to `items`, so a page reads like a list.
    `cursors[i]` is the opaque cursor *after* `items[i]` (pass it as `after`).
    """

    items: list[T]
    next_cursor: str | None
    cursors: list[str] = field(default_factory=list)
    total: int | None = None

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: int | slice) -> T | list[T]:
        return self.items[i]


def encode_cursor(values: Sequence[Any]) -> str:
    """An opaque, URL-safe cursor for a keyset position (JSON-serialisable values)."""
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The keyset values of `cursor`; BadInputError('after', ...) when it is not ours."""
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode())
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadInputError("after", f"invalid cursor {cursor!r}") from None
    if not isinstance(values, list) or len(values) != length:
        raise BadInputError("after", f"invalid cursor {cursor!r}")
    return values


def check_first(first: int | None, default: int = 50) -> int:
    """Page size: None means `default`; 0..MAX_PAGE."""
    if first is None:
        return default
    if not isinstance(first, int) or first < 0 or first > MAX_PAGE:
        raise BadInputError("first", f"must be between 0 and {MAX_PAGE}, got {first!r}")
    return first
