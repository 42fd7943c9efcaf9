"""Datasets: save with dedup, load through the cache, list/paginate, delete, samples."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from store import datasets as ds
from store.blobs import BlobStore
from store.db import Database
from store.errors import BadInputError, ConflictError, NotFoundError
from store.runs import create_run, get_run
from tests.store.conftest import make_bars


async def _save(db: Database, blobs: BlobStore, seed: int = 1, symbol: str = "TEST", **kw):  # type: ignore[no-untyped-def]
    return await ds.save_dataset(
        db, blobs, make_bars(seed=seed), name=f"set {seed}", symbol=symbol, exchange="NSE",
        source_name=f"s{seed}.csv", **kw,
    )


async def test_save_and_load_roundtrip(db: Database, blobs: BlobStore) -> None:
    bars = make_bars()
    row = await ds.save_dataset(
        db, blobs, bars, name="one", symbol="TEST", exchange="NSE", source_name="one.csv",
        original=b"raw,csv", quality={"gaps": 0},
    )
    assert row.id and row.rows == len(bars) and row.timeframe == "1min"
    assert row.timezone == "Asia/Kolkata" and row.quality == {"gaps": 0}
    assert row.start_ts == int(bars.ts[0]) and row.end_ts == int(bars.ts[-1])
    assert await blobs.get(row.original_key) == b"raw,csv"
    ds.BARS_CACHE.clear()
    loaded = await ds.load_bars(db, blobs, row.id)
    assert loaded.tz == bars.tz
    for col in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(loaded, col), getattr(bars, col))


async def test_same_bars_twice_give_the_same_row(db: Database, blobs: BlobStore) -> None:
    a = await _save(db, blobs, seed=3)
    b = await ds.save_dataset(db, blobs, make_bars(seed=3), name="again", symbol="OTHER")
    assert b.id == a.id and b.name == a.name
    c = await _save(db, blobs, seed=4)
    assert c.id != a.id and c.content_hash != a.content_hash


async def test_load_uses_the_cache(db: Database, blobs: BlobStore) -> None:
    row = await _save(db, blobs)
    ds.BARS_CACHE.clear()
    first = await ds.load_bars(db, blobs, row.id)
    await blobs.delete(row.blob_key)  # a cache hit never touches the blob store
    assert await ds.load_bars(db, blobs, row.id) is first
    with pytest.raises(NotFoundError):
        await ds.load_bars(db, blobs, 987654)


def test_cache_is_bounded() -> None:
    cache = ds.BarsCache(max_entries=2, max_bytes=10**9)
    bars = [make_bars(n=10, seed=i) for i in range(3)]
    for i, b in enumerate(bars):
        cache.put(str(i), b)
    assert len(cache) == 2 and cache.get("0") is None and cache.get("2") is bars[2]
    small = ds.BarsCache(max_entries=10, max_bytes=10 * 48 + 1)
    small.put("a", bars[0])
    small.put("b", bars[1])
    assert len(small) == 1 and small.get("b") is bars[1]


async def test_list_filters_and_pages(db: Database, blobs: BlobStore) -> None:
    rows = [await _save(db, blobs, seed=i, symbol="A" if i % 2 else "B") for i in range(5)]
    everything = await ds.list_datasets(db)
    assert [r.id for r in everything] == [r.id for r in reversed(rows)]  # newest first
    only_a = await ds.list_datasets(db, symbol="A")
    assert {r.symbol for r in only_a} == {"A"} and len(only_a) == 2
    assert len(await ds.list_datasets(db, timeframe="1d")) == 0
    seen, after = [], None
    while True:
        page = await ds.list_datasets(db, first=2, after=after)
        seen += [r.id for r in page]
        if not page.has_next:
            break
        after = page.next_cursor
    assert seen == [r.id for r in reversed(rows)]
    with pytest.raises(BadInputError):
        await ds.list_datasets(db, first=2, after="garbage!")


async def test_delete_refuses_while_runs_use_it(db: Database, blobs: BlobStore) -> None:
    row = await _save(db, blobs)
    run = await create_run(db, strategy="s", dataset_id=row.id, params={}, options={})
    with pytest.raises(ConflictError, match="used by 1 run"):
        await ds.delete_dataset(db, blobs, row.id)
    await ds.delete_dataset(db, blobs, row.id, force=True)
    with pytest.raises(NotFoundError):
        await ds.get_dataset(db, row.id)
    assert not await blobs.exists(row.blob_key)
    assert (await get_run(db, run.id)).dataset_id is None
    with pytest.raises(NotFoundError):
        await ds.delete_dataset(db, blobs, row.id)


def _write_sample(path, bars) -> None:  # type: ignore[no-untyped-def]
    frame = bars.to_frame().reset_index()
    frame["timestamp"] = frame["timestamp"].map(lambda t: t.isoformat())
    with gzip.open(path, "wt") as fh:
        frame.to_csv(fh, index=False)


async def test_ensure_sample_datasets_is_idempotent(db: Database, blobs: BlobStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _write_sample(tmp_path / "nifty_1min_sample.csv.gz", make_bars(n=300, seed=7))
    _write_sample(tmp_path / "nifty_daily_sample.csv.gz", make_bars(n=50, seed=8))
    first = await ds.ensure_sample_datasets(db, blobs, directory=tmp_path)
    again = await ds.ensure_sample_datasets(db, blobs, directory=tmp_path)
    assert [r.id for r in first] == [r.id for r in again] and len(first) == 2
    assert {r.symbol for r in first} == {"NIFTY-SYNTH"}
    assert [r.timeframe for r in first] == ["1min", "1d"]
    assert len(await ds.list_datasets(db)) == 2
    bars = await ds.load_bars(db, blobs, first[0].id)
    assert len(bars) == 300 and bars.tz == "Asia/Kolkata"
    # Already loaded: the files are not needed again.
    kept = await ds.ensure_sample_datasets(db, blobs, directory=tmp_path / "missing")
    assert [r.id for r in kept] == [r.id for r in first]


async def test_shipped_samples_load(db: Database, blobs: BlobStore) -> None:
    folder = ds.samples_dir()
    if not (folder / "nifty_daily_sample.csv.gz").is_file():
        pytest.skip("shipped samples not generated yet")
    rows = await ds.ensure_sample_datasets(db, blobs)
    assert len(rows) == 2 and all(r.rows > 0 for r in rows)


def test_saved_datasets_use_the_ingest_timeframe_labels() -> None:
    minute = 60_000_000_000
    assert ds.infer_timeframe(np.arange(10, dtype=np.int64) * minute * 5) == "5min"
    assert ds.infer_timeframe(np.arange(10, dtype=np.int64) * minute * 60) == "1h"
    assert ds.infer_timeframe(np.arange(10, dtype=np.int64) * minute * 1440) == "1d"
    assert ds.infer_timeframe(np.array([0], dtype=np.int64)) == "irregular"
    assert {s["timeframe"] for s in ds.SAMPLES} == {"1min", "1d"}
