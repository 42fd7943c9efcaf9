"""Datasets: OHLCV bars saved as Parquet blobs keyed by content hash, plus their metadata rows.

The same bars saved twice give the same row (deduplicated by content hash). Loaded
bars are cached by content hash in a small LRU (`store.dataset_bars`), because every
run of a dataset loads the same immutable arrays.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from engine.bars import Bars, read_csv_simple
from engine.calendar import infer_timeframe
from engine.ingest.quality import quality_report
from store.blobs import BlobStore
from store.dataset_bars import (
    BARS_CACHE,
    BarsCache,
    bars_from_parquet,
    bars_to_parquet,
    content_hash,
    parquet_key,
)
from store.db import Database
from store.errors import ConflictError
from store.models import TERMINAL_STATUSES, DatasetRow, RunRow, utcnow
from store.pagination import Page, check_first, decode_cursor, encode_cursor
from store.scope import SYSTEM, Scope, get_visible, require_change

__all__ = [
    "BARS_CACHE",
    "SAMPLES",
    "BarsCache",
    "bars_from_parquet",
    "bars_to_parquet",
    "content_hash",
    "delete_dataset",
    "ensure_sample_datasets",
    "get_dataset",
    "infer_timeframe",
    "list_datasets",
    "load_bars",
    "samples_dir",
    "save_dataset",
]


async def insert_dataset(db: Database, row: DatasetRow) -> tuple[DatasetRow, bool]:
    """Insert `row` in one transaction: (row, True), or (the row that won, False) when the
    same owner's same bars were saved concurrently (unique owner + content hash)."""
    try:
        async with db.session() as s:
            s.add(row)
    except IntegrityError:
        existing = await find_by_content(db, row.content_hash, row.owner_id)
        if existing is None:
            raise
        return existing, False
    return row, True


async def find_by_content(db: Database, digest: str, owner_id: int | None = None) -> DatasetRow | None:
    """The dataset of these bars that `owner_id` owns (each owner has its own row)."""
    owner = DatasetRow.owner_id.is_(None) if owner_id is None else DatasetRow.owner_id == owner_id
    async with db.session() as s:
        return (
            await s.execute(
                select(DatasetRow).where(DatasetRow.content_hash == digest, owner)
                .order_by(DatasetRow.id).limit(1)
            )
        ).scalar_one_or_none()


async def save_dataset(
    db: Database,
    blobs: BlobStore,
    bars: Bars,
    *,
    name: str,
    symbol: str,
    exchange: str | None = None,
    timeframe: str | None = None,
    source_name: str | None = None,
    original: bytes | None = None,
    description: str | None = None,
    quality: dict[str, Any] | None = None,
    owner_id: int | None = None,
    shared: bool = False,
) -> DatasetRow:
    """Store `bars` (Parquet, keyed by content hash) and a row; the same bars twice give one
    row (per owner: `owner_id` None = the system / embedded local user)."""
    digest = await asyncio.to_thread(content_hash, bars)
    existing = await find_by_content(db, digest, owner_id)
    if existing is not None:
        return existing
    data = await asyncio.to_thread(bars_to_parquet, bars)
    key = parquet_key(digest)
    await blobs.put(key, data)
    original_key = None
    if original is not None:
        original_key = f"datasets/{digest}.original"
        await blobs.put(original_key, original)
    row = DatasetRow(
        name=name,
        symbol=symbol,
        exchange=exchange,
        description=description,
        timezone=bars.tz,
        timeframe=timeframe or infer_timeframe(bars.ts),
        rows=len(bars),
        start_ts=int(bars.ts[0]),
        end_ts=int(bars.ts[-1]),
        file_size=len(data),
        content_hash=digest,
        blob_key=key,
        original_key=original_key,
        source_name=source_name,
        quality=quality,
        quality_score=_score_of(quality),
        created_at=utcnow(),
        owner_id=owner_id,
        shared=shared,
    )
    row, created = await insert_dataset(db, row)
    if created:
        BARS_CACHE.put(digest, bars)
    return row


def _score_of(quality: dict[str, Any] | None) -> int | None:
    score = (quality or {}).get("score")
    return int(score) if isinstance(score, int | float) and not isinstance(score, bool) else None


async def get_dataset(db: Database, dataset_id: int, *, scope: Scope = SYSTEM) -> DatasetRow:
    """The dataset if `scope` sees it; NotFoundError (the same as for an unknown id) otherwise."""
    return await get_visible(db, DatasetRow, dataset_id, scope, "dataset")


async def load_bars(db: Database, blobs: BlobStore, dataset_id: int) -> Bars:
    """The dataset's bars, from the LRU cache when another run loaded them already."""
    row = await get_dataset(db, dataset_id)
    cached = BARS_CACHE.get(row.content_hash)
    if cached is not None:
        return cached
    data = await blobs.get(row.blob_key)
    bars = await asyncio.to_thread(bars_from_parquet, data)
    BARS_CACHE.put(row.content_hash, bars)
    return bars


async def list_datasets(
    db: Database,
    *,
    symbol: str | None = None,
    timeframe: str | Sequence[str] | None = None,
    min_score: int | None = None,
    first: int | None = None,
    after: str | None = None,
    count: bool = False,
    scope: Scope = SYSTEM,
) -> Page[DatasetRow]:
    """Datasets newest first; `first=None` returns them all. The page iterates like a list.

    `timeframe` is one label or any of several (spellings of one timeframe); `min_score`
    keeps datasets whose quality score is at least that (unscored ones drop out);
    `count` fills `page.total` with the number matching the filters.
    """
    q = select(DatasetRow).where(*scope.visible(DatasetRow)).order_by(DatasetRow.id.desc())
    if symbol is not None:
        q = q.where(DatasetRow.symbol == symbol)
    if isinstance(timeframe, str):
        q = q.where(DatasetRow.timeframe == timeframe)
    elif timeframe is not None:
        q = q.where(DatasetRow.timeframe.in_(list(timeframe)))
    if min_score is not None:
        q = q.where(DatasetRow.quality_score >= min_score)
    total = None
    if count:
        async with db.session() as s:
            total = (await s.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
    if after is not None:
        (last_id,) = decode_cursor(after, 1)
        q = q.where(DatasetRow.id < int(last_id))
    size = None if first is None else check_first(first)
    if size is not None:
        q = q.limit(size + 1)
    async with db.session() as s:
        rows = list((await s.execute(q)).scalars())
    more = size is not None and len(rows) > size
    rows = rows[:size] if size is not None else rows
    cursors = [encode_cursor([r.id]) for r in rows]
    return Page(rows, cursors[-1] if more and cursors else None, cursors, total)


async def delete_dataset(
    db: Database, blobs: BlobStore, dataset_id: int, *, force: bool = False, scope: Scope = SYSTEM
) -> None:
    """Delete a dataset and its blobs; ConflictError while runs use it, unless `force`.

    With `force`, runs keep their results and lose the link (dataset_id becomes NULL).
    Only its owner or an admin may (`scope`); blobs another owner's row of the same bars
    still uses stay.
    """
    row = await get_dataset(db, dataset_id, scope=scope)
    require_change(row, scope, "dataset", dataset_id)
    async with db.session() as s:
        total, active = (
            await s.execute(
                select(
                    func.count(RunRow.id),
                    func.count(RunRow.id).filter(RunRow.status.not_in(TERMINAL_STATUSES)),
                ).where(RunRow.dataset_id == dataset_id)
            )
        ).one()
    if total and not force:
        raise ConflictError(
            f"dataset {dataset_id} ({row.name}) is used by {total} run(s), {active} of them "
            "queued or running; delete those runs first or delete with force"
        )
    async with db.session() as s:
        found = await s.get(DatasetRow, dataset_id)
        if found is not None:
            await s.delete(found)
    if not await _blob_shared(db, row.blob_key):
        await blobs.delete(row.blob_key)
    if row.original_key and not await _original_shared(db, row.original_key):
        # Originals are keyed by the file's hash: one file read with two time zones is
        # two datasets sharing it, and the other one still serves it for download.
        await blobs.delete(row.original_key)
    BARS_CACHE.discard(row.content_hash)


async def _blob_shared(db: Database, key: str) -> bool:
    async with db.session() as s:
        found = await s.execute(select(DatasetRow.id).where(DatasetRow.blob_key == key).limit(1))
        return found.first() is not None


async def _original_shared(db: Database, key: str) -> bool:
    async with db.session() as s:
        found = await s.execute(select(DatasetRow.id).where(DatasetRow.original_key == key).limit(1))
        return found.first() is not None


SAMPLES: tuple[dict[str, str], ...] = (
    {
        "file": "nifty_1min_sample.csv.gz",
        "name": "NIFTY synthetic 1-minute sample",
        "timeframe": "1min",
    },
    {
        "file": "nifty_daily_sample.csv.gz",
        "name": "NIFTY synthetic daily sample",
        "timeframe": "1d",
    },
)
SAMPLE_SYMBOL = "NIFTY-SYNTH"
SAMPLE_TZ = "Asia/Kolkata"


def samples_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Where the shipped samples live: `override`, else $BT_SAMPLES_DIR, else the checkout's data/."""
    if override is not None:
        return Path(override)
    env = os.environ.get("BT_SAMPLES_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "data"


async def ensure_sample_datasets(
    db: Database, blobs: BlobStore, *, directory: str | os.PathLike[str] | None = None
) -> list[DatasetRow]:
    """Load the shipped sample datasets once (idempotent); missing files are skipped."""
    folder = samples_dir(directory)
    out: list[DatasetRow] = []
    for sample in SAMPLES:
        path = folder / sample["file"]
        async with db.session() as s:
            existing = (
                await s.execute(
                    select(DatasetRow)
                    .where(DatasetRow.symbol == SAMPLE_SYMBOL)
                    .where(DatasetRow.source_name == sample["file"])
                    .order_by(DatasetRow.id)
                    .limit(1)
                )
            ).scalar_one_or_none()
        if existing is not None and not existing.shared:  # samples are everyone's
            async with db.session() as s:
                await s.execute(update(DatasetRow).where(DatasetRow.id == existing.id).values(shared=True))
            existing.shared = True
        if existing is not None and await blobs.exists(existing.blob_key):
            out.append(existing)
            continue
        if not path.is_file():
            continue
        bars = await asyncio.to_thread(read_csv_simple, path, SAMPLE_TZ)
        if existing is not None and existing.content_hash == content_hash(bars):
            # The row survived but its blob did not (e.g. a wiped blob folder): restore it.
            await blobs.put(existing.blob_key, await asyncio.to_thread(bars_to_parquet, bars))
            out.append(existing)
            continue
        out.append(
            await save_dataset(
                db,
                blobs,
                bars,
                name=sample["name"],
                symbol=SAMPLE_SYMBOL,
                exchange="NSE",
                timeframe=sample["timeframe"],
                source_name=sample["file"],
                shared=True,
                description="Synthetic, seeded NIFTY-like bars shipped with the service "
                "(not market data).",
                quality=(await asyncio.to_thread(quality_report, bars)).to_dict(),
            )
        )
    return out
