"""Dataset storage benchmark: storage -> engine arrays (cold), and import of a 1M-row CSV.

    .venv/bin/python bench/dataset_bench.py [--rows 1000000] [--repeat 3] [--pg URL]

Targets from issue 4: a 1M-row dataset from storage to engine arrays (blob -> Parquet
-> Bars via `store.datasets.load_bars`, with the bars cache cleared) under 200 ms, and a
1M-row CSV ingested, checked and stored (`DatasetService.import_bytes`, the path of
`uploadDataset` and `backtester import`) under 5 s on SQLite. `--pg` adds the rows for
a PostgreSQL database (blobs in the database, as a team deployment stores them).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_bench import make_bars

from engine.ingest import write_csv
from store.blobs import BlobStore, DatabaseBlobStore, FileBlobStore
from store.datasets import BARS_CACHE, load_bars
from store.db import Database, run_migrations
from workers.dataset_meta import DatasetMeta
from workers.dataset_service import DatasetService

Row = tuple[str, float, float, str]  # (case, seconds, MB, target)


async def bench_store(
    label: str, db: Database, blobs: BlobStore, csv: bytes, repeat: int
) -> list[Row]:
    service = DatasetService(db, blobs, max_upload_bytes=1 << 30)
    rows: list[Row] = []
    best_import = float("inf")
    dataset_id = 0
    for i in range(repeat):
        # A fresh database row each time: the content hash changes with the name only if
        # the bars change, so delete the previous import before importing again.
        if dataset_id:
            await service.delete(dataset_id, force=True)
        t = time.perf_counter()
        done = await service.import_bytes(
            csv, filename=f"bench{i}.csv", meta=DatasetMeta(timezone="Asia/Kolkata")
        )
        best_import = min(best_import, time.perf_counter() - t)
        assert not done.duplicate
        dataset_id = done.row.id
    rows.append(
        (f"{label}: 1M-row CSV -> parse, check, score, store", best_import, len(csv) / 1e6, "< 5 s")
    )

    best_load = float("inf")
    for _ in range(repeat):
        BARS_CACHE.clear()
        t = time.perf_counter()
        bars = await load_bars(db, blobs, dataset_id)
        best_load = min(best_load, time.perf_counter() - t)
    assert len(bars) == done.row.rows
    size = done.row.file_size / 1e6
    rows.append((f"{label}: storage -> Bars (cold cache)", best_load, size, "< 0.2 s"))
    t = time.perf_counter()
    await load_bars(db, blobs, dataset_id)
    rows.append((f"{label}: storage -> Bars (cached)", time.perf_counter() - t, size, ""))
    await service.delete(dataset_id, force=True)
    return rows


async def main_async(n: int, repeat: int, pg: str | None) -> list[Row]:
    csv = write_csv(make_bars(n))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
        await asyncio.to_thread(run_migrations, url)
        db = Database(url)
        try:
            rows += await bench_store(
                "SQLite + file blobs", db, FileBlobStore(Path(tmp) / "blobs"), csv, repeat
            )
            rows += await bench_store(
                "SQLite + database blobs", db, DatabaseBlobStore(db), csv, repeat
            )
        finally:
            await db.dispose()
    if pg:
        await asyncio.to_thread(run_migrations, pg)
        db = Database(pg)
        try:
            rows += await bench_store(
                "PostgreSQL + database blobs", db, DatabaseBlobStore(db), csv, repeat
            )
        finally:
            await db.dispose()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pg", default=None, help="an empty PostgreSQL database URL (optional)")
    args = ap.parse_args()
    rows = asyncio.run(main_async(args.rows, args.repeat, args.pg))
    print(f"dataset benchmark: {args.rows:,} rows, best of {args.repeat}")
    print(f"{'case':62s} {'MB':>7s} {'seconds':>8s} {'rows/s':>12s}  target")
    for case, secs, mb, target in rows:
        print(f"{case:62s} {mb:7.1f} {secs:8.3f} {args.rows / secs:12,.0f}  {target}")


if __name__ == "__main__":
    main()
