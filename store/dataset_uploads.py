"""Saving an uploaded dataset: content-addressed blobs first, then one row in one transaction.

The bars go to the blob store as Parquet keyed by their content hash
(`store.datasets.content_hash`: the arrays and the exchange time zone) and the original
file's bytes go next to them keyed by the sha256 of those bytes. Only then is the
dataset row inserted, in a single transaction, so a failure never leaves a
half-written record: at worst it leaves blobs no row points to. Those are harmless,
because a key names its content: the same upload retried writes the same bytes under
the same keys and reuses them.

The same bars uploaded twice are one dataset: `save_upload` then returns the row that
is already there with `created=False`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from engine.bars import Bars
from store.blobs import BlobStore
from store.datasets import (
    BARS_CACHE,
    bars_to_parquet,
    content_hash,
    find_by_content,
    get_dataset,
    insert_dataset,
    parquet_key,
)
from store.db import Database
from store.errors import NotFoundError
from store.models import DatasetRow, utcnow
from store.scope import SYSTEM, Scope

__all__ = [
    "SavedDataset",
    "dataset_stats",
    "find_by_content",
    "load_original",
    "original_key",
    "parquet_key",
    "save_upload",
]


@dataclass(frozen=True)
class SavedDataset:
    """The dataset row, and whether this call created it (False: the same bars were there)."""

    row: DatasetRow
    created: bool


def original_key(raw_hash: str) -> str:
    """Blob key of an original upload: the sha256 of its bytes."""
    return f"originals/{raw_hash}"


async def _ensure_blob(blobs: BlobStore, key: str, data: bytes) -> None:
    if not await blobs.exists(key):
        await blobs.put(key, data)


async def save_upload(
    db: Database,
    blobs: BlobStore,
    bars: Bars,
    *,
    name: str,
    symbol: str,
    timeframe: str,
    original: bytes,
    raw_hash: str,
    source_name: str | None = None,
    exchange: str | None = None,
    description: str | None = None,
    quality: dict[str, Any] | None = None,
    warnings: list[dict[str, Any]] | None = None,
    dialect: dict[str, Any] | None = None,
    owner_id: int | None = None,
) -> SavedDataset:
    """Store the bars and the original file, then insert the row owned by `owner_id`;
    dedupe by content hash among that owner's datasets."""
    digest = await asyncio.to_thread(content_hash, bars)
    existing = await find_by_content(db, digest, owner_id)
    if existing is not None:
        return SavedDataset(existing, created=False)
    parquet = await asyncio.to_thread(bars_to_parquet, bars)
    key, raw_key = parquet_key(digest), original_key(raw_hash)
    await asyncio.gather(blobs.put(key, parquet), _ensure_blob(blobs, raw_key, original))
    score = (quality or {}).get("score")
    row = DatasetRow(
        name=name,
        symbol=symbol,
        exchange=exchange,
        description=description,
        timezone=bars.tz,
        timeframe=timeframe,
        rows=len(bars),
        start_ts=int(bars.ts[0]),
        end_ts=int(bars.ts[-1]),
        file_size=len(parquet),
        content_hash=digest,
        blob_key=key,
        original_key=raw_key,
        source_name=source_name,
        quality=quality,
        quality_score=int(score) if isinstance(score, int | float) else None,
        warnings=warnings,
        dialect=dialect,
        raw_hash=raw_hash,
        original_size=len(original),
        created_at=utcnow(),
        owner_id=owner_id,
    )
    row, created = await insert_dataset(db, row)
    if not created:  # the same bars saved concurrently: theirs wins
        return SavedDataset(row, created=False)
    # A dataset with these very bytes deleted while this upload ran may have removed
    # the shared blobs after they were written above: put back what is missing.
    await _ensure_blob(blobs, key, parquet)
    await _ensure_blob(blobs, raw_key, original)
    BARS_CACHE.put(digest, bars)
    return SavedDataset(row, created=True)


async def load_original(
    db: Database, blobs: BlobStore, dataset_id: int, *, scope: Scope = SYSTEM
) -> tuple[DatasetRow, bytes]:
    """The row and the original file's bytes; NotFoundError if either is missing (or
    `scope` does not see the dataset)."""
    row = await get_dataset(db, dataset_id, scope=scope)
    if not row.original_key:
        raise NotFoundError("original file of dataset", dataset_id)
    try:
        return row, await blobs.get(row.original_key)
    except NotFoundError:
        raise NotFoundError("original file of dataset", dataset_id) from None


async def dataset_stats(db: Database, *, scope: Scope = SYSTEM) -> dict[str, Any]:
    """Counts for dashboards: datasets, bars, bytes, mean quality score, per timeframe
    (of the datasets `scope` sees)."""
    visible = scope.visible(DatasetRow)
    async with db.session() as s:
        count, rows, stored, original, avg_score, scored, symbols = (
            await s.execute(
                select(
                    func.count(DatasetRow.id),
                    func.coalesce(func.sum(DatasetRow.rows), 0),
                    func.coalesce(func.sum(DatasetRow.file_size), 0),
                    func.coalesce(func.sum(DatasetRow.original_size), 0),
                    func.avg(DatasetRow.quality_score),
                    func.count(DatasetRow.quality_score),
                    func.count(func.distinct(DatasetRow.symbol)),
                ).where(*visible)
            )
        ).one()
        groups = (
            await s.execute(
                select(DatasetRow.timeframe, func.count(DatasetRow.id), func.sum(DatasetRow.rows))
                .where(*visible)
                .group_by(DatasetRow.timeframe)
                .order_by(DatasetRow.timeframe)
            )
        ).all()
    return {
        "count": int(count),
        "total_rows": int(rows),
        "stored_bytes": int(stored),
        "original_bytes": int(original),
        "average_quality_score": None if avg_score is None else float(avg_score),
        "scored": int(scored),
        "symbols": int(symbols),
        "by_timeframe": [
            {"timeframe": tf, "count": int(n), "rows": int(r or 0)} for tf, n, r in groups
        ],
    }
