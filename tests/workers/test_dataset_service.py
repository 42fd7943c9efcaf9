"""The dataset service: metadata and timeframe checks, the size cap, one import path, previews."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from engine.bars import Bars
from engine.ingest import parse_ohlcv
from store.blobs import FileBlobStore
from store.datasets import BARS_CACHE
from store.db import Database, run_migrations
from store.errors import BadInputError
from workers.dataset_meta import (
    DatasetMeta,
    canonical_timeframe,
    check_timeframe,
    clean_meta,
    timeframe_labels,
)
from workers.dataset_preview import bar_statistics, preview
from workers.dataset_service import DatasetService, UploadTooLargeError

DAILY = b"Date,Open,High,Low,Close,Volume\n" + b"".join(
    f"2024-01-{d:02d},{100 + d},{101 + d},{99 + d},{100.5 + d},{1000 + d}\n".encode()
    for d in (2, 3, 4, 5, 8, 9, 10)
)


@pytest.fixture
async def service(sqlite_url: str, tmp_path: Path) -> AsyncIterator[DatasetService]:
    await asyncio.to_thread(run_migrations, sqlite_url)
    db = Database(sqlite_url)
    BARS_CACHE.clear()
    try:
        yield DatasetService(db, FileBlobStore(tmp_path / "blobs"), max_upload_bytes=4096)
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("label", "canon"),
    [
        ("1m", "1min"),
        ("60min", "1h"),
        ("1 Hour", "1h"),
        ("1D", "1d"),
        ("7d", "1w"),
        ("1M", "1mo"),
        ("15 minutes", "15min"),
        ("30s", "30s"),
        ("irregular", "irregular"),
    ],
)
def test_timeframe_spellings(label: str, canon: str) -> None:
    assert canonical_timeframe(label) == canon


def test_timeframe_labels_and_unknown_ones() -> None:
    assert timeframe_labels("1min") == ["1min", "1m"] and timeframe_labels("1d") == ["1d"]
    for bad in ("fortnightly", "0m", "1.5h", ""):
        with pytest.raises(BadInputError) as info:
            canonical_timeframe(bad)
        assert info.value.field == "timeframe"


def test_clean_meta_defaults_and_bounds() -> None:
    meta = clean_meta(DatasetMeta(timeframe="5m", exchange="  "), "RELIANCE_5min.csv.gz")
    assert (meta.name, meta.symbol, meta.timeframe, meta.exchange) == (
        "RELIANCE_5min",
        "RELIANCE",
        "5min",
        None,
    )
    assert clean_meta(DatasetMeta(), None).symbol == "UNKNOWN"
    with pytest.raises(BadInputError, match="timezone"):
        clean_meta(DatasetMeta(timezone="Nowhere/City"), "x.csv")
    with pytest.raises(BadInputError, match="at most 64"):
        clean_meta(DatasetMeta(symbol="X" * 65), "x.csv")


def test_a_given_timeframe_must_match_the_data() -> None:
    result = parse_ohlcv(DAILY)
    assert result.timeframe == "1d"
    assert check_timeframe(None, result) == "1d" and check_timeframe("1d", result) == "1d"
    with pytest.raises(BadInputError, match="1d apart"):
        check_timeframe("1h", result)
    irregular = parse_ohlcv(
        b"time,open,high,low,close\n2024-01-02 10:00,1,1,1,1\n"
        b"2024-01-02 10:07,1,1,1,1\n2024-01-02 10:09,1,1,1,1\n"
    )
    assert irregular.timeframe == "irregular"
    assert check_timeframe("1min", irregular) == "1min"  # the user knows better
    with pytest.raises(BadInputError, match="120s apart"):
        check_timeframe("5min", irregular)


async def test_import_path_and_bytes_share_one_path(
    service: DatasetService, tmp_path: Path
) -> None:
    path = tmp_path / "SPY_daily.csv"
    path.write_bytes(DAILY)
    first = await service.import_path(path, DatasetMeta(exchange="ARCA"))
    assert not first.duplicate and first.row.symbol == "SPY" and first.row.timeframe == "1d"
    assert (
        first.quality["score"] == first.row.quality_score and first.warnings == first.row.warnings
    )
    again = await service.import_bytes(DAILY, filename="other.csv", meta=DatasetMeta())
    assert again.duplicate and again.row.id == first.row.id

    big = tmp_path / "big.csv"
    big.write_bytes(DAILY + b"\n" * 4096)
    with pytest.raises(UploadTooLargeError, match="4096 bytes") as info:
        await service.import_path(big, DatasetMeta())
    assert info.value.code == "TOO_LARGE" and info.value.limit == 4096
    assert (await service.stats())["count"] == 1


def test_preview_and_statistics_of_tiny_data() -> None:
    one = Bars.from_arrays(
        np.array([0], dtype=np.int64), *(np.array([1.0]) for _ in range(4)), np.array([0.0])
    )
    stats = bar_statistics(one)
    assert stats["rows"] == 1 and stats["returns"]["count"] == 0
    assert stats["returns"]["std_pct"] is None and stats["zero_volume_bars"] == 1
    shown = preview(one, 5000)
    assert len(shown.rows) == 1 and shown.rows[0]["close"] == 1.0
    assert bar_statistics(parse_ohlcv(DAILY).bars)["trading_days"] == 7
