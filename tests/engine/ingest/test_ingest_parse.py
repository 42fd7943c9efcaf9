"""parse_ohlcv behaviour the corpus does not pin: options, line mapping, aliases, speed."""

from __future__ import annotations

import gzip
import io
import time
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from engine.errors import EngineInputError
from engine.ingest import Codes, Dialect, IngestError, IngestWarning, parse_ohlcv

HEAD = "Date,Open,High,Low,Close,Volume\n"
ROWS = [f"2024-01-{d:02d},10,11,9,10.5,100\n" for d in range(2, 9)]


def _csv(*rows: str, head: str = HEAD) -> bytes:
    return (head + "".join(rows)).encode()


def _reject(data: bytes, **kw: object) -> IngestError:
    with pytest.raises(IngestError) as info:
        parse_ohlcv(data, **kw)  # type: ignore[arg-type]
    return info.value


@pytest.mark.parametrize(
    "head",
    [
        "DATE,OPEN,HIGH,LOW,CLOSE,VOLUME",
        "<DATE>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>",
        "Timestamp,o,h,l,c,v",
        " date , Open Price , High Price , Low Price , Close Price , Vol. ",
        "Datetime,Open,High,Low,Last,Volume",
        '"Date","Open","High","Low","Close","Volume"',
        "trade_date,open,high,low,close,total_volume",
    ],
)
def test_header_aliases_in_any_case(head: str) -> None:
    res = parse_ohlcv(_csv(*ROWS[:3], head=head + "\n"), tz="UTC")
    assert res.rows == 3
    assert res.bars.volume.tolist() == [100.0] * 3
    assert set(res.dialect.columns) >= {"open", "high", "low", "close", "volume"}


def test_dayfirst_argument_decides_and_is_checked() -> None:
    rows = ["03/04/2024,10,11,9,10,1\n", "04/04/2024,10,11,9,10,1\n"]
    dm = parse_ohlcv(_csv(*rows), tz="UTC", dayfirst=True)
    md = parse_ohlcv(_csv(*rows), tz="UTC", dayfirst=False)
    assert str(dm.bars.to_frame().index[0].date()) == "2024-04-03"
    assert str(md.bars.to_frame().index[0].date()) == "2024-03-04"
    err = _reject(_csv("13/04/2024,10,11,9,10,1\n"), tz="UTC", dayfirst=False)
    assert (err.code, err.line, err.column) == (Codes.BAD_TIMESTAMP, 2, "Date")
    assert "month 13" in str(err)


def test_dates_that_agree_in_both_orders_need_no_dayfirst() -> None:
    res = parse_ohlcv(_csv("01/01/2024,10,11,9,10,1\n", "02/02/2024,10,11,9,10,1\n"), tz="UTC")
    assert res.dialect.dayfirst is None and res.rows == 2


def test_tz_none_with_offsets_is_utc_without_warning() -> None:
    res = parse_ohlcv(_csv("2024-01-02T09:15:00+05:30,10,11,9,10,1\n"))
    assert res.bars.tz == "UTC"
    assert res.bars.ts[0] == np.datetime64("2024-01-02T03:45", "ns").astype(np.int64)
    assert res.warnings == []


def test_naive_times_are_local_to_the_given_zone() -> None:
    res = parse_ohlcv(_csv("2024-07-01 09:30:00,10,11,9,10,1\n"), tz="America/New_York")
    assert res.bars.ts[0] == np.datetime64("2024-07-01T13:30", "ns").astype(np.int64)
    assert res.bars.tz == "America/New_York"


def test_bad_arguments() -> None:
    with pytest.raises(EngineInputError, match="time zone"):
        parse_ohlcv(_csv(*ROWS), tz="Mars/Olympus")
    with pytest.raises(TypeError):
        parse_ohlcv("text", tz="UTC")  # type: ignore[arg-type]


def test_lines_count_blank_lines_crlf_and_utf16() -> None:
    body = HEAD + "\n\n" + ROWS[0] + "   \n" + ROWS[1] + "2024-01-09,10,x,9,10,1\n"
    err = _reject(body.encode(), tz="UTC")
    assert (err.code, err.line, err.column) == (Codes.NON_NUMERIC, 7, "High")
    crlf = body.replace("\n", "\r\n")
    err = _reject(b"\xff\xfe" + crlf.encode("utf-16-le"), tz="UTC")
    assert (err.code, err.line) == (Codes.NON_NUMERIC, 7)
    old_mac = body.replace("\n", "\r")
    assert _reject(old_mac.encode(), tz="UTC").line == 7


def test_conflicting_duplicates_name_original_lines_after_sorting() -> None:
    rows = [ROWS[3], ROWS[0], ROWS[1], ROWS[0].replace("10.5", "10.6")]
    err = _reject(_csv(*rows), tz="UTC")
    assert err.code == Codes.DUPLICATE_CONFLICT
    assert "lines 3 and 5" in str(err) and err.line == 5 and err.column == "Close"


def test_formula_in_time_column_is_a_formula_error() -> None:
    err = _reject(_csv(ROWS[0], "=NOW(),10,11,9,10,1\n"), tz="UTC")
    assert (err.code, err.line, err.column) == (Codes.FORMULA, 3, "Date")


def test_numbers_with_sign_exponent_and_missing_markers() -> None:
    res = parse_ohlcv(_csv("2024-01-02,+1e1,1.1E+1,9.,.95e1,-\n", "2024-01-03,10,11,9,10,N/A\n"))
    assert res.bars.open[0] == 10.0 and res.bars.high[0] == 11.0 and res.bars.low[0] == 9.0
    assert res.bars.volume.tolist() == [0.0, 0.0]
    w = next(x for x in res.warnings if x.code == Codes.MISSING_VOLUME)
    assert (w.count, w.line, w.column) == (2, 2, "Volume")


def test_epoch_fractions_and_compact_times() -> None:
    res = parse_ohlcv(b"time,open,high,low,close\n1704067200.5,1,1,1,1\n1704067260.25,1,1,1,1\n")
    assert res.bars.ts.tolist() == [1704067200_500_000_000, 1704067260_250_000_000]
    amibroker = (
        b"<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>\n20240102,0,1,1,1,1\n20240102,93000,1,1,1,1\n"
    )
    res = parse_ohlcv(amibroker, tz="UTC")
    assert res.bars.ts[1] - res.bars.ts[0] == (9 * 3600 + 30 * 60) * 1_000_000_000


def test_plain_file_over_the_cap() -> None:
    err = _reject(_csv(*ROWS), max_decompressed_bytes=50)
    assert err.code == Codes.TOO_LARGE


def test_multi_member_gzip_and_zip_without_csv() -> None:
    data = gzip.compress(_csv(*ROWS[:2]), mtime=0) + gzip.compress(
        b"".join(r.encode() for r in ROWS[2:4]), mtime=0
    )
    assert parse_ohlcv(data, tz="UTC").rows == 4
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("__MACOSX/._x.csv", b"junk")
    assert _reject(buf.getvalue()).code == Codes.ZIP_MEMBERS


def test_error_and_warning_are_json_able() -> None:
    err = _reject(_csv("2024-01-02,10,11,9,abc,1\n"), tz="UTC")
    assert err.to_dict() == {
        "code": "NON_NUMERIC",
        "message": "line 2, column 'Close': 'abc' is not a number",
        "line": 2,
        "column": "Close",
    }
    w = IngestWarning(Codes.UNSORTED, "sorted", 3, None, 2)
    assert w.to_dict() == {
        "code": "UNSORTED",
        "message": "sorted",
        "line": 3,
        "column": None,
        "count": 2,
    }


def test_dialect_validation() -> None:
    with pytest.raises(EngineInputError, match="decimal ',' with delimiter ','"):
        Dialect(decimal=",")
    with pytest.raises(EngineInputError, match="time_format"):
        Dialect(time_format="unix")


def test_excel_hint_from_filename() -> None:
    err = _reject(b"\xd0\xcf\x11\xe0binary", filename="prices.xls")
    assert err.code == Codes.UNSUPPORTED_FORMAT


def test_error_on_the_last_of_many_rows_is_located() -> None:
    n = 200_000
    ts = np.datetime64("2020-01-01T00:00", "m") + np.arange(n)
    lines = [f"{t},1,2,0.5,1.5,10\n" for t in ts.astype(str)]
    lines[-1] = lines[-1].replace("2,0.5", "2,abc")
    err = _reject(_csv(*lines), tz="UTC")
    assert (err.code, err.line, err.column) == (Codes.NON_NUMERIC, n + 1, "Low")


def test_a_million_rows_parse_quickly() -> None:
    n = 1_000_000
    ts = np.datetime64("2020-01-01T00:00", "s") + np.arange(n) * 60
    rng = np.random.default_rng(1)
    c = 100 + np.round(rng.normal(0, 1, n).cumsum() * 0.01, 2) + 50
    table = pa.table(
        {
            "timestamp": pa.array(ts.astype("datetime64[s]")),
            "open": c,
            "high": c + 0.5,
            "low": c - 0.5,
            "close": c,
            "volume": rng.integers(0, 10_000, n),
        }
    )
    sink = io.BytesIO()
    pcsv.write_csv(table, sink)
    data = sink.getvalue()
    t = time.perf_counter()
    res = parse_ohlcv(data, tz="UTC")
    elapsed = time.perf_counter() - t
    assert res.rows == n and res.timeframe == "1min"
    assert elapsed < 5.0, f"1M rows took {elapsed:.2f}s"


def test_empty_time_of_day_is_a_missing_value() -> None:
    data = b"Date,Time,Open,High,Low,Close\n2024-01-02,09:15,1,1,1,1\n2024-01-02,,1,1,1,1\n"
    err = _reject(data, tz="UTC")
    assert (err.code, err.line, err.column) == (Codes.MISSING_VALUE, 3, "Time")


def test_archive_inside_gzip_is_refused() -> None:
    inner = gzip.compress(_csv(*ROWS), mtime=0)
    assert _reject(gzip.compress(inner, mtime=0)).code == Codes.UNSUPPORTED_FORMAT


def test_decimal_comma_found_below_whole_numbers() -> None:
    times = (np.datetime64("2024-01-02T00:00", "m") + np.arange(6000)).astype(str)
    rows = [f"{t};10;11;9;10;1\n" for t in times[:-1]] + [f"{times[-1]};10,5;11;9;10;1\n"]
    res = parse_ohlcv(_csv(*rows, head="Date;Open;High;Low;Close;Volume\n"), tz="UTC")
    assert res.dialect.decimal == "," and res.bars.open[-1] == 10.5
    mixed = [*rows[:-1], f"{times[-1]};10,5;11;9.5;10;1\n"]
    err = _reject(_csv(*mixed, head="Date;Open;High;Low;Close;Volume\n"), tz="UTC")
    assert (err.code, err.line, err.column) == (Codes.NON_NUMERIC, 6001, "Open")


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("ab_y", ["02.01.2024 09:15:00", "31.12.2023 23:59:59", "15.06.2024 00:00:01"]),
        ("ymd", ["2024/01/02 09:15", "2023/12/31 23:59", "2024/06/15 00:00"]),
        ("ab_y", ["15.01.2024 00:00:00.000", "16.01.2024 13:45:10.250"]),
        ("compact", ["20240102 093000", "20231231 235959"]),
        ("compact14", ["20240102093000", "20231231235959"]),
    ],
)
def test_sliced_and_captured_fields_agree(kind: str, values: list[str]) -> None:
    from engine.ingest.formats import FORMATS, PY
    from engine.ingest.times import _captured, _Column, _sliced

    col = _Column(pa.array(values), np.arange(2, 2 + len(values)), "Date")
    m = PY[kind].match(values[0])
    assert m is not None
    fast = _sliced(col, m)
    assert fast is not None
    slow = _captured(col, FORMATS[kind])
    for g, arr in fast.ints.items():
        np.testing.assert_array_equal(arr, slow.get(g), err_msg=g)
    assert set(slow.ints) - set(fast.ints) <= {"F", "S", "H", "M"}
    for g in set(slow.ints) - set(fast.ints):
        assert not slow.get(g).any()
