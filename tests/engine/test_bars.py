"""Tests for engine.bars: validation, immutability, frames and the simple CSV reader."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.bars import Bars, read_csv_simple
from engine.errors import EngineInputError

MIN = 60_000_000_000
ROOT = Path(__file__).resolve().parents[2]


def _bars(n: int = 5, tz: str = "UTC") -> Bars:
    ts = 1_700_000_000_000_000_000 + np.arange(n, dtype=np.int64) * MIN
    c = 100.0 + np.arange(n)
    return Bars.from_arrays(ts, c, c + 1, c - 1, c, np.full(n, 10.0), tz=tz)


def test_from_arrays_dtypes_contiguous_readonly() -> None:
    b = _bars()
    assert len(b) == 5
    assert b.ts.dtype == np.int64
    for col in (b.open, b.high, b.low, b.close, b.volume):
        assert col.dtype == np.float64
        assert col.flags.c_contiguous
        assert not col.flags.writeable
    with pytest.raises(ValueError):
        b.close[0] = 1.0


def test_from_arrays_does_not_freeze_callers_arrays() -> None:
    ts = np.arange(3, dtype=np.int64) * MIN
    c = np.array([1.0, 2.0, 3.0])
    Bars.from_arrays(ts, c, c, c, c)
    c[0] = 5.0  # still writable
    assert ts.flags.writeable


def test_volume_defaults_to_zero_and_datetime64_ts() -> None:
    ts = np.array(["2024-01-02T03:45", "2024-01-02T03:46"], dtype="datetime64[m]")
    b = Bars.from_arrays(ts, [1, 2], [1, 2], [1, 2], [1, 2], tz="Asia/Kolkata")
    assert b.volume.tolist() == [0.0, 0.0]
    assert b.ts[1] - b.ts[0] == MIN
    assert b.tz == "Asia/Kolkata"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"ts": [0, MIN, MIN]}, "row 2 duplicates row 1"),
        ({"ts": [0, 2 * MIN, MIN]}, "row 2 is earlier than row 1"),
        ({"close": [1.0, np.nan, 1.0]}, "row 1: close must be a finite positive price"),
        ({"open": [1.0, 1.0, -1.0]}, "row 2: open"),
        ({"close": [1.0, np.inf, 1.0]}, "row 1: close"),
        ({"high": [1.0, 1.0]}, "column 'high' has 2 values but ts has 3"),
        ({"volume": [1.0, -1.0, 1.0]}, "row 1: volume"),
        ({"high": [1.0, 0.5, 1.0]}, "row 1: inconsistent OHLC"),
    ],
)
def test_from_arrays_rejects(kwargs: dict, needle: str) -> None:
    args = {"ts": [0, MIN, 2 * MIN], "open": [1.0] * 3, "high": [1.0] * 3}
    args |= {"low": [1.0] * 3, "close": [1.0] * 3, "volume": None}
    args.update(kwargs)
    args["ts"] = np.asarray(args["ts"], dtype=np.int64)
    with pytest.raises(EngineInputError, match=needle):
        Bars.from_arrays(**args)


def test_empty_and_bad_tz() -> None:
    with pytest.raises(EngineInputError, match="no bars"):
        Bars.from_arrays(np.array([], dtype=np.int64), [], [], [], [])
    with pytest.raises(EngineInputError, match="unknown time zone"):
        _bars(tz="Mars/Olympus")


def test_check_ohlc_can_be_disabled() -> None:
    b = Bars.from_arrays(
        np.array([0], dtype=np.int64), [2.0], [1.0], [1.0], [2.0], check_ohlc=False
    )
    assert len(b) == 1


def test_frame_round_trip_and_slice() -> None:
    b = _bars(6, tz="Asia/Kolkata")
    df = b.to_frame()
    assert str(df.index.tz) == "Asia/Kolkata"
    back = Bars.from_frame(df, tz="Asia/Kolkata")
    for name in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(back, name), getattr(b, name))
    s = b.slice(2, 4)
    assert len(s) == 2 and s.ts[0] == b.ts[2] and s.tz == b.tz
    assert len(b.slice(-2)) == 2
    assert "6 bars" in repr(b)


def test_from_frame_naive_index_is_local_time() -> None:
    idx = pd.DatetimeIndex(["2024-01-02 09:15", "2024-01-02 09:16"])
    df = pd.DataFrame({"Open": [1, 2], "High": [1, 2], "Low": [1, 2], "Close": [1, 2]}, index=idx)
    b = Bars.from_frame(df, tz="Asia/Kolkata")
    assert pd.Timestamp(int(b.ts[0]), tz="UTC") == pd.Timestamp("2024-01-02 03:45", tz="UTC")
    with pytest.raises(EngineInputError, match="missing column"):
        Bars.from_frame(df.drop(columns="Close"))


def _write(tmp_path: Path, text: str, name: str = "d.csv") -> Path:
    p = tmp_path / name
    if name.endswith(".gz"):
        p.write_bytes(gzip.compress(text.encode()))
    else:
        p.write_text(text)
    return p


def test_read_csv_simple_variants(tmp_path: Path) -> None:
    aware = "timestamp,open,high,low,close,volume\n"
    aware += "2024-01-02T09:15:00+05:30,10,11,9,10.5,100\n2024-01-02T09:16:00+05:30,10,11,9,10,5\n"
    b = read_csv_simple(_write(tmp_path, aware, "a.csv.gz"), tz="Asia/Kolkata")
    assert len(b) == 2 and b.volume.tolist() == [100.0, 5.0]
    assert pd.Timestamp(int(b.ts[0]), tz="UTC").hour == 3

    naive = "Date,OPEN,High,low,Close\n2024-01-02 09:15,10,11,9,10.5\n2024-01-02 09:16,10,11,9,10\n"
    b2 = read_csv_simple(_write(tmp_path, naive), tz="Asia/Kolkata")
    np.testing.assert_array_equal(b2.ts, b.ts)
    assert b2.volume.tolist() == [0.0, 0.0]

    split = (
        "date,time,open,high,low,close\n2024-01-02,09:15,10,11,9,10.5\n2024-01-02,09:16,1,1,1,1\n"
    )
    np.testing.assert_array_equal(read_csv_simple(_write(tmp_path, split), "Asia/Kolkata").ts, b.ts)

    epoch = "time,open,high,low,close\n1704167100,10,11,9,10.5\n1704167160,10,11,9,10\n"
    np.testing.assert_array_equal(read_csv_simple(_write(tmp_path, epoch)).ts, b.ts)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "file is empty"),
        ("timestamp,open,high,low,close\n", "no data rows"),
        ("timestamp,open,high,low\n2024-01-02,1,1,1\n", "missing column(s) close"),
        ("ts,open,high,low,close\n2024-01-02,1,1,1,1\n", "no time column"),
        ("date,open,high,low,close\n2024-01-02,1,1,1,1\nnope,1,1,1,1\n", "line 3: column 'date'"),
        (
            "date,open,high,low,close\n2024-01-02,1,1,1,1\n2024-01-03,1,x,1,1\n",
            "line 3: column 'high'",
        ),
        ("date,open,high,low,close\n2024-01-02,1,1,1,1\n2024-01-02,1,1,1,1\n", "line 3 duplicates"),
        ("date,open,high,low,close\n2024-01-02,1,1,1,1\n2024-01-03,1,1,1,0\n", "line 3: close"),
    ],
)
def test_read_csv_simple_errors_are_one_line(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(EngineInputError) as info:
        read_csv_simple(_write(tmp_path, text))
    msg = str(info.value)
    assert needle in msg
    assert "\n" not in msg


def test_read_csv_simple_missing_file_and_binary(tmp_path: Path) -> None:
    with pytest.raises(EngineInputError, match="not found"):
        read_csv_simple(tmp_path / "nope.csv")
    p = tmp_path / "bin.csv"
    p.write_bytes(b"\x00\xff\xfe\x89PNG\x00\x00" * 50)
    with pytest.raises(EngineInputError):
        read_csv_simple(p)


def test_shipped_samples_load() -> None:
    b = read_csv_simple(ROOT / "data" / "nifty_1min_sample.csv.gz", tz="Asia/Kolkata")
    assert len(b) == 60 * 375
    d = read_csv_simple(ROOT / "data" / "nifty_daily_sample.csv.gz", tz="Asia/Kolkata")
    assert 1200 <= len(d) <= 1300
