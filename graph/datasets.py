"""Datasets: the OHLCV data runs are computed on (type and queries).

`datasets` (cursor pages, filters by symbol, timeframe and quality score), `dataset`,
`datasetStats`; a `Dataset` has its quality report, the repairs made while reading it,
`preview(rows)` and, when it was uploaded, `downloadUrl`. The work happens in
`workers.dataset_service` (`info.context.services.datasets`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from graph.context import Info
from graph.dataset_types import DatasetPreview, DatasetQuality, DatasetStats, DatasetWarning
from graph.errors import BadUserInput
from graph.pagination import Connection, build_connection, page_size
from graph.scalars import JSON, EpochMs, ns_to_datetime, ns_to_ms, to_utc


@strawberry.type(description="An OHLCV dataset: bars of one symbol at one timeframe.")
class Dataset:
    id: strawberry.ID
    name: str
    symbol: str
    exchange: str | None
    description: str | None
    timezone: str = strawberry.field(description="Exchange timezone (IANA name).")
    timeframe: str = strawberry.field(
        description="Bar spacing: `1min`, `5min`, `1h`, `1d` ... or `irregular` (detected)."
    )
    rows: int = strawberry.field(description="Number of bars.")
    start: datetime = strawberry.field(description="First bar's time (UTC).")
    end: datetime = strawberry.field(description="Last bar's time (UTC).")
    start_ms: EpochMs
    end_ms: EpochMs
    file_size: float = strawberry.field(description="Stored (Parquet) size in bytes.")
    content_hash: str = strawberry.field(
        description="sha256 of the bars and time zone: the same data is one dataset."
    )
    source_name: str | None = strawberry.field(description="The uploaded file's name.")
    raw_hash: str | None = strawberry.field(description="sha256 of the original file's bytes.")
    original_size: float | None = strawberry.field(description="Original file size in bytes.")
    quality: DatasetQuality | None = strawberry.field(
        description="Data quality report (uploads and shipped samples)."
    )
    warnings: list[DatasetWarning] = strawberry.field(
        description="Repairs made while reading the file (each with its first line)."
    )
    dialect: JSON | None = strawberry.field(
        description="How the file was read: delimiter, decimal, time format, columns."
    )
    download_url: str | None = strawberry.field(
        description="Path of the original file (`GET`), when one was kept."
    )
    created_at: datetime
    shared: bool = strawberry.field(
        default=False, description="Shown to the whole team (`shareDataset`); else only its "
        "owner and admins see it."
    )

    @strawberry.field(description="The first `rows` bars (at most 1000) and statistics of all bars.")
    async def preview(self, info: Info, rows: int = 20) -> DatasetPreview:
        found = await info.context.services.datasets.preview(int(self.id), rows)
        return DatasetPreview.from_preview(found)

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
            raw_hash=row.raw_hash,
            original_size=None if row.original_size is None else float(row.original_size),
            quality=DatasetQuality.from_dict(row.quality),
            warnings=DatasetWarning.from_dicts(row.warnings),
            dialect=row.dialect,
            download_url=f"/datasets/{row.id}/download" if row.original_key else None,
            created_at=to_utc(row.created_at),  # type: ignore[arg-type]
            shared=bool(getattr(row, "shared", False)),
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
    @strawberry.field(
        description="Datasets newest first; every given filter must hold. `timeframe` in any "
        "usual spelling (`1m` = `1min`); `minScore` keeps datasets scoring at least that."
    )
    async def datasets(
        self,
        info: Info,
        first: int | None = 50,
        after: str | None = None,
        symbol: str | None = None,
        timeframe: str | None = None,
        min_score: int | None = None,
    ) -> Connection[Dataset]:
        page = await info.context.services.datasets.find(
            symbol=symbol,
            timeframe=timeframe,
            min_score=min_score,
            first=page_size(first, maximum=info.context.limits.max_page),
            after=after,
        )
        return build_connection(
            page.items,
            page.cursors,
            shape=Dataset.from_row,
            has_next=page.has_next,
            has_previous=after is not None,
            total=page.total,
        )

    @strawberry.field(description="One dataset by id; NOT_FOUND if there is none.")
    async def dataset(self, info: Info, id: strawberry.ID) -> Dataset:
        return Dataset.from_row(await info.context.services.datasets.get(parse_dataset_id(id)))

    @strawberry.field(description="Dataset totals: count, bars, bytes, quality, per timeframe.")
    async def dataset_stats(self, info: Info) -> DatasetStats:
        return DatasetStats.from_dict(await info.context.services.datasets.stats())
