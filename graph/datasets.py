"""Datasets: the OHLCV data runs are computed on (type and queries)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from graph.context import Info
from graph.errors import BadUserInput
from graph.scalars import JSON, EpochMs, ns_to_datetime, ns_to_ms, to_utc
from store import datasets as dataset_store


@strawberry.type(description="An OHLCV dataset: bars of one symbol at one timeframe.")
class Dataset:
    id: strawberry.ID
    name: str
    symbol: str
    exchange: str | None
    description: str | None
    timezone: str = strawberry.field(description="Exchange timezone (IANA name).")
    timeframe: str = strawberry.field(description="Bar spacing, e.g. `1m` or `1d`.")
    rows: int = strawberry.field(description="Number of bars.")
    start: datetime = strawberry.field(description="First bar's time (UTC).")
    end: datetime = strawberry.field(description="Last bar's time (UTC).")
    start_ms: EpochMs
    end_ms: EpochMs
    file_size: float = strawberry.field(description="Stored size in bytes.")
    content_hash: str
    source_name: str | None
    quality: JSON | None = strawberry.field(description="Data quality report, if computed.")
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Dataset:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            symbol=row.symbol,
            exchange=row.exchange,
            description=row.description,
            timezone=row.timezone,
            timeframe=row.timeframe,
            rows=int(row.rows),
            start=ns_to_datetime(row.start_ts),
            end=ns_to_datetime(row.end_ts),
            start_ms=ns_to_ms(row.start_ts),  # type: ignore[arg-type]
            end_ms=ns_to_ms(row.end_ts),  # type: ignore[arg-type]
            file_size=float(row.file_size),
            content_hash=row.content_hash,
            source_name=row.source_name,
            quality=row.quality,
            created_at=to_utc(row.created_at),  # type: ignore[arg-type]
        )


def parse_dataset_id(raw: str | int, field: str = "id") -> int:
    """Dataset ids are integers on the wire as `ID` strings."""
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise BadUserInput(f"{field} must be a dataset id (an integer), got {raw!r}", field=field) from None
    if value <= 0:
        raise BadUserInput(f"{field} must be a positive dataset id, got {raw!r}", field=field)
    return value


@strawberry.type
class DatasetQueries:
    @strawberry.field(description="Every dataset, newest first.")
    async def datasets(self, info: Info) -> list[Dataset]:
        rows = await dataset_store.list_datasets(info.context.services.db)
        return [Dataset.from_row(row) for row in rows]

    @strawberry.field(description="One dataset by id; NOT_FOUND if there is none.")
    async def dataset(self, info: Info, id: strawberry.ID) -> Dataset:
        row = await dataset_store.get_dataset(info.context.services.db, parse_dataset_id(id))
        return Dataset.from_row(row)
