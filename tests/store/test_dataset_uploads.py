"""Uploaded datasets: blobs then one row, dedup by bars, shared originals, filters, stats."""

from __future__ import annotations

import hashlib

from store import datasets as ds
from store.blobs import BlobStore
from store.dataset_uploads import dataset_stats, load_original, original_key, save_upload
from store.db import Database
from store.errors import NotFoundError
from tests.store.conftest import make_bars

RAW = b"Date,Open,High,Low,Close\n..."
RAW_HASH = hashlib.sha256(RAW).hexdigest()


async def _upload(
    db: Database,
    blobs: BlobStore,
    *,
    seed: int = 1,
    tz: str = "Asia/Kolkata",
    score: int = 90,
    raw: bytes = RAW,
    timeframe: str = "1min",
):  # type: ignore[no-untyped-def]
    return await save_upload(
        db,
        blobs,
        make_bars(seed=seed, tz=tz),
        name=f"up {seed}",
        symbol="UP",
        timeframe=timeframe,
        original=raw,
        raw_hash=hashlib.sha256(raw).hexdigest(),
        source_name="up.csv",
        quality={"score": score, "checks": []},
        warnings=[{"code": "UNSORTED", "count": 2}],
        dialect={"delimiter": ","},
    )


async def test_save_upload_stores_blobs_and_one_row(db: Database, blobs: BlobStore) -> None:
    first = await _upload(db, blobs)
    row = first.row
    assert first.created and row.raw_hash == RAW_HASH and row.original_size == len(RAW)
    assert row.quality_score == 90 and row.warnings == [{"code": "UNSORTED", "count": 2}]
    assert row.original_key == original_key(RAW_HASH) and await blobs.exists(row.blob_key)
    again = await _upload(db, blobs, raw=RAW + b"\n")  # other bytes, the same bars
    assert not again.created and again.row.id == row.id
    assert not await blobs.exists(original_key(hashlib.sha256(RAW + b"\n").hexdigest()))
    got, data = await load_original(db, blobs, row.id)
    assert got.id == row.id and data == RAW


async def test_a_file_read_in_two_zones_shares_its_original(db: Database, blobs: BlobStore) -> None:
    kolkata = (await _upload(db, blobs, tz="Asia/Kolkata")).row
    utc = (await _upload(db, blobs, tz="UTC")).row
    assert kolkata.id != utc.id and kolkata.original_key == utc.original_key
    await ds.delete_dataset(db, blobs, kolkata.id)
    assert (await load_original(db, blobs, utc.id))[1] == RAW  # still served
    await ds.delete_dataset(db, blobs, utc.id)
    assert not await blobs.exists(original_key(RAW_HASH))


async def test_original_missing_is_not_found(db: Database, blobs: BlobStore) -> None:
    sample = await ds.save_dataset(db, blobs, make_bars(seed=7), name="s", symbol="S")
    try:
        await load_original(db, blobs, sample.id)
    except NotFoundError as exc:
        assert exc.kind == "original file of dataset"
    else:
        raise AssertionError("expected NotFoundError")


async def test_filters_and_stats(db: Database, blobs: BlobStore) -> None:
    await _upload(db, blobs, seed=1, score=95)
    await _upload(db, blobs, seed=2, score=40, timeframe="1d")
    await ds.save_dataset(
        db, blobs, make_bars(seed=3), name="legacy", symbol="OLD", timeframe="1m"
    )  # the older spelling, unscored
    good = await ds.list_datasets(db, min_score=50, count=True)
    assert [r.quality_score for r in good] == [95] and good.total == 1
    minutes = await ds.list_datasets(db, timeframe=["1min", "1m"], count=True)
    assert {r.timeframe for r in minutes} == {"1min", "1m"} and minutes.total == 2
    stats = await dataset_stats(db)
    assert stats["count"] == 3 and stats["scored"] == 2 and stats["symbols"] == 2
    assert stats["average_quality_score"] == 67.5 and stats["total_rows"] == 3 * 500
    assert {g["timeframe"]: g["count"] for g in stats["by_timeframe"]} == {
        "1d": 1,
        "1m": 1,
        "1min": 1,
    }
