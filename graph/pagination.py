"""Relay-style cursor connections: `XConnection { edges { cursor node } pageInfo totalCount }`.

Cursors are opaque strings to clients. The store's pages bring their own (keyset
positions); lists the graph pages itself (trades) use `encode_cursor` below.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import strawberry

from graph.errors import BadUserInput

T = TypeVar("T")
S = TypeVar("S")

DEFAULT_PAGE = 50
MAX_PAGE = 500


@strawberry.type(description="Where a page sits in the whole list (Relay PageInfo).")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int | None = strawberry.field(
        default=None, description="Items matching the filters, when cheap to count."
    )

    @strawberry.field(description="The nodes of `edges`, for clients that need no cursors.")
    def nodes(self) -> list[T]:
        return [edge.node for edge in self.edges]


def encode_cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadUserInput(f"invalid cursor {cursor!r}", field="after") from None


def page_size(first: int | None, *, default: int = DEFAULT_PAGE, maximum: int = MAX_PAGE) -> int:
    """Validate `first`: 0..maximum, where None means `default`."""
    if first is None:
        return default
    if first < 0 or first > maximum:
        raise BadUserInput(f"first must be between 0 and {maximum}, got {first}", field="first")
    return first


def build_connection(
    items: Sequence[S],
    cursors: Sequence[str],
    *,
    shape: Callable[[S], T],
    has_next: bool,
    has_previous: bool = False,
    total: int | None = None,
) -> Connection[T]:
    """A connection from a page of items, the opaque cursor after each, and the flags."""
    edges = [Edge(cursor=c, node=shape(item)) for item, c in zip(items, cursors, strict=True)]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_next,
            has_previous_page=has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=total,
    )
