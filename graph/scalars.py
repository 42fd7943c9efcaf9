"""Scalars and value conversions shared by the schema's types.

Times go out as ISO-8601 strings (`DateTime`, always UTC with an offset) or, inside
series, as epoch milliseconds in a `Float`: exact up to 2^53, so never a 32-bit `Int`.
`JSON` carries free-form objects (params, options, metrics, Plotly figures).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, NewType

import strawberry
from strawberry.scalars import JSON

__all__ = [
    "JSON",
    "SCALAR_MAP",
    "EpochMs",
    "finite_or_none",
    "iso_utc",
    "json_safe",
    "ns_to_datetime",
    "ns_to_ms",
    "to_utc",
]


def _serialize_epoch_ms(value: float | int) -> float:
    return float(value)


def _parse_epoch_ms(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("EpochMs must be a finite number of milliseconds since 1970-01-01 UTC")
    return float(value)


EpochMs = NewType("EpochMs", float)

SCALAR_MAP = {
    EpochMs: strawberry.scalar(
        name="EpochMs",
        description=(
            "Milliseconds since 1970-01-01T00:00:00Z as a double: exact for any date, "
            "unlike a 32-bit Int."
        ),
        serialize=_serialize_epoch_ms,
        parse_value=_parse_epoch_ms,
    )
}


def to_utc(value: datetime | None) -> datetime | None:
    """Treat naive datetimes (SQLite hands them back) as UTC; convert aware ones to UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso_utc(value: datetime | None) -> str | None:
    dt = to_utc(value)
    return None if dt is None else dt.isoformat()


def ns_to_ms(ns: int | float) -> float:
    """int64 nanoseconds (engine time) to epoch milliseconds (API time)."""
    return float(int(ns) // 1_000_000)


def ns_to_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(int(ns) / 1e9, tz=UTC)


def finite_or_none(value: Any) -> float | None:
    """NaN and infinities are not JSON; the API says null instead."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def json_safe(value: Any) -> Any:
    """Deep-copy into plain JSON types: numpy scalars unwrapped, NaN/inf become null."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, int):
        return value
    if hasattr(value, "item"):  # numpy scalar
        return json_safe(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)
