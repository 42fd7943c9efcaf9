"""Writes the ingest test corpus (corpus/*) and its manifest.json; run it after editing.

Every file is small and built here, so the bytes are reviewable and reproducible
(`python tests/engine/ingest/make_corpus.py`; a test checks the files on disk match).
Each entry says what the parser must do with the file: accept (with exactly these
warning codes, row count, timeframe and first/last bar) or reject (code, line, column).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import zipfile
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent / "corpus"
MANIFEST = CORPUS / "manifest.json"


def _prices(n: int, base: float = 100.0, tick: float = 0.05, digits: int = 2) -> list[tuple]:
    """Deterministic, consistent OHLCV rows as text: (open, high, low, close, volume)."""
    out = []
    p = base
    for i in range(n):
        o = p
        c = round(p + tick * ((i * 7) % 5 - 2), 6)
        h = max(o, c) + tick
        lo = min(o, c) - tick
        v = 1000 + (i * 37) % 500
        out.append((*(f"{x:.{digits}f}" for x in (o, h, lo, c)), str(v)))
        p = c
    return out


def _lines(rows: list[list[str]], sep: str = ",", nl: str = "\n") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator=nl).writerows(rows)
    return buf.getvalue()


def _h(names: str) -> list[str]:
    """A header row from comma-separated names."""
    return names.split(",")


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def _minutes(start_h: int, start_m: int, n: int, step: int = 1) -> list[tuple[int, int]]:
    out = []
    t = start_h * 60 + start_m
    for i in range(n):
        out.append(divmod(t + i * step, 60))
    return out


ENTRIES: list[dict[str, Any]] = []
FILES: dict[str, bytes] = {}


def add(name: str, data: bytes | str, expect: dict[str, Any], **opts: Any) -> None:
    FILES[name] = data.encode("utf-8") if isinstance(data, str) else data
    entry: dict[str, Any] = {"file": name}
    entry.update(opts)
    entry.update(expect)
    ENTRIES.append(entry)


def accept(
    warnings: list[str], rows: int, timeframe: str, first: str, last: str, **dialect: Any
) -> dict[str, Any]:
    return {
        "expect": "accept",
        "warnings": sorted(warnings),
        "rows": rows,
        "timeframe": timeframe,
        "first": first,
        "last": last,
        "dialect": dialect,
    }


def reject(code: str, line: int | None, column: str | None) -> dict[str, Any]:
    return {"expect": "reject", "code": code, "line": line, "column": column}


# ---------------------------------------------------------------- real formats (accept)


# fmt: off
def real_formats() -> None:
    p = _prices(6, 21700.0, 5.0)
    rows = [["date", "open", "high", "low", "close", "volume"]] + [
        [f"2024-01-02 {h:02d}:{m:02d}:00+05:30", *p[i]]
        for i, (h, m) in enumerate(_minutes(9, 15, 6))
    ]
    add("kite_nifty_1min.csv", _lines(rows),
        accept([], 6, "1min", "2024-01-02T09:15:00+05:30", "2024-01-02T09:20:00+05:30",
               time_format="iso", tz_aware=True),
        tz="Asia/Kolkata", description="Zerodha Kite historical candles saved by pandas")

    rows = [["timestamp", "open", "high", "low", "close", "volume", "oi"]] + [
        [f"2024-01-02T{h:02d}:{m:02d}:00+05:30", *p[i], "0"]
        for i, (h, m) in enumerate(_minutes(9, 15, 6, 5))
    ]
    add("upstox_5min.csv", _lines(rows),
        accept([], 6, "5min", "2024-01-02T09:15:00+05:30", "2024-01-02T09:40:00+05:30",
               time_format="iso"),
        tz="Asia/Kolkata", description="Upstox historical candle API as CSV, oi column ignored")

    rows = [
        ["<TICKER>", "<DTYYYYMMDD>", "<TIME>", "<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<VOL>"]
    ] + [
        ["RELIANCE", "20240102", f"{h:02d}{m:02d}00", *p[i]]
        for i, (h, m) in enumerate(_minutes(9, 15, 6))
    ]
    add("amibroker_metastock.csv", _lines(rows),
        accept([], 6, "1min", "2024-01-02T09:15:00+05:30", "2024-01-02T09:20:00+05:30",
               time_format="compact", split_time=True, header_style="metastock"),
        tz="Asia/Kolkata", description="Amibroker/MetaStock ASCII export with <TICKER>")

    q = _prices(5, 187.0, 0.1)
    rows = [["Date", "Open", "High", "Low", "Close", "Volume"]] + [
        [f"2024-01-{d:02d}", *q[i]] for i, d in enumerate((2, 3, 4, 5, 8))
    ]
    add("stooq_daily.csv", _lines(rows),
        accept([], 5, "1d", "2024-01-02T00:00:00-05:00", "2024-01-08T00:00:00-05:00",
               time_format="iso", tz_aware=False),
        tz="America/New_York", description="Stooq daily download")

    rows = [_h("<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>")] + [
        ["AAPL.US", "5", "20240102", f"{h:02d}{m:02d}00", *q[i], "0"]
        for i, (h, m) in enumerate(_minutes(15, 35, 5, 5))
    ]
    add("stooq_ascii_5min.txt", _lines(rows),
        accept([], 5, "5min", "2024-01-02T15:35:00+01:00", "2024-01-02T15:55:00+01:00",
               time_format="compact", split_time=True),
        tz="Europe/Warsaw", description="Stooq ASCII intraday (<TICKER>,<PER>,<DATE>,<TIME>...)")

    fx = _prices(6, 1.101, 0.0002, 5)
    rows = [
        ["2024.01.02", f"{h:02d}:{m:02d}", *fx[i]] for i, (h, m) in enumerate(_minutes(9, 0, 6))
    ]
    add("mt4_history_center.csv", _lines(rows),
        accept(["NO_HEADER", "TZ_ASSUMED"], 6, "1min", "2024-01-02T09:00:00+00:00",
               "2024-01-02T09:05:00+00:00", time_format="ymd", date_sep=".", split_time=True,
               header=False),
        description="MetaTrader 4 History Center export: no header, dotted dates")

    rows = [_h("<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<TICKVOL>,<VOL>,<SPREAD>")] + [
        ["2024.01.02", f"{h:02d}:{m:02d}:00", *fx[i][:4], str(40 + i), "0", "3"]
        for i, (h, m) in enumerate(_minutes(9, 0, 6, 15))
    ]
    add("mt5_export_m15.csv", _lines(rows, "\t"),
        accept(["VOLUME_FROM_TICKS"], 6, "15min", "2024-01-02T09:00:00+00:00",
               "2024-01-02T10:15:00+00:00", delimiter="\t", time_format="ymd", date_sep="."),
        tz="UTC", description="MetaTrader 5 export: tab, <DATE> <TIME>, real <VOL> all zero")

    rows = [
        ["<DATE>", "<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<TICKVOL>", "<VOL>", "<SPREAD>"]
    ] + [
        [f"2024.01.{d:02d}", *fx[i][:4], str(90000 + i), "0", "2"]
        for i, d in enumerate((2, 3, 4, 5))
    ]
    add("mt5_export_daily.csv", _lines(rows, "\t", "\r\n"),
        accept(["VOLUME_FROM_TICKS"], 4, "1d", "2024-01-02T00:00:00+02:00",
               "2024-01-05T00:00:00+02:00", delimiter="\t", time_format="ymd"),
        tz="Europe/Athens", description="MetaTrader 5 daily export: no <TIME>, CRLF")

    es = _prices(5, 4750.25, 0.25)
    rows = [[f"20240102 {h:02d}{m:02d}00", *es[i]] for i, (h, m) in enumerate(_minutes(9, 30, 5))]
    add("ninjatrader_1min.txt", _lines(rows, ";"),
        accept(["NO_HEADER"], 5, "1min", "2024-01-02T09:30:00-05:00", "2024-01-02T09:34:00-05:00",
               delimiter=";", time_format="compact", header=False),
        tz="America/New_York", description="NinjaTrader 8 export: yyyyMMdd HHmmss;o;h;l;c;v")

    y = _prices(7, 185.0, 0.5)
    rows = [["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]]
    for i, d in enumerate((2, 3, 5, 8, 9, 10, 11)):
        rows.append([f"2024-01-{d:02d}", *y[i][:4], f"{float(y[i][3]) - 0.9:.2f}", y[i][4]])
    rows.insert(3, ["2024-01-04", "null", "null", "null", "null", "null", "null"])
    add("yahoo_daily_adj_close.csv", _lines(rows),
        accept(["ADJ_CLOSE_IGNORED", "MISSING_ROWS"], 7, "1d", "2024-01-02T00:00:00-05:00",
               "2024-01-11T00:00:00-05:00", time_format="iso"),
        warning_lines={"MISSING_ROWS": 4}, tz="America/New_York",
        description="Yahoo Finance daily with Adj Close and a null row")

    b = _prices(5, 42283.58, 12.5)
    t0 = 1704067200000
    klines = [[str(t0 + i * 3600000), *b[i][:4], "1271.68108", str(t0 + (i + 1) * 3600000 - 1),
               "53957248.9", "47134", "682.5", "28957.3", "0"] for i in range(5)]
    add("binance_klines_1h.csv", _lines(klines),
        accept(["NO_HEADER"], 5, "1h", "2024-01-01T00:00:00+00:00", "2024-01-01T04:00:00+00:00",
               time_format="epoch", epoch_unit="ms", header=False),
        description="Binance klines CSV from data.binance.vision: epoch ms, no header")

    t0us = 1735689600000000
    rows = [[str(t0us + i * 60000000), *b[i][:4], "12.5", str(t0us + (i + 1) * 60000000 - 1),
             "528000.1", "310", "6.1", "257000.3", "0"] for i in range(5)]
    add("binance_klines_2025_us.csv", _lines(rows),
        accept(["NO_HEADER"], 5, "1min", "2025-01-01T00:00:00+00:00", "2025-01-01T00:04:00+00:00",
               time_format="epoch", epoch_unit="us", header=False),
        description="Binance spot klines since 2025: epoch microseconds")

    head = _h("open_time,open,high,low,close,volume,close_time,quote_asset_volume,"
              "number_of_trades,taker_buy_base_asset_volume,taker_buy_quote_asset_volume,ignore")
    add("binance_klines_header.csv", _lines([head, *klines]),
        accept([], 5, "1h", "2024-01-01T00:00:00+00:00", "2024-01-01T04:00:00+00:00",
               time_format="epoch", epoch_unit="ms"),
        description="Binance klines with the documented header names")

    rows = [["time", "open", "high", "low", "close", "EMA", "Volume", "Volume MA"]] + [
        [str(1704166200 + i * 300), *p[i][:4], "21701.5", p[i][4], "1200"] for i in range(5)
    ]
    add("tradingview_epoch_s.csv", _lines(rows),
        accept(["COLUMNS_IGNORED"], 5, "5min", "2024-01-02T09:00:00+05:30",
               "2024-01-02T09:20:00+05:30", time_format="epoch", epoch_unit="s"),
        tz="Asia/Kolkata", description="TradingView chart export: UNIX seconds, indicator columns")

    rows = [["time", "open", "high", "low", "close"]] + [
        [f"2024-01-02T{h:02d}:{m:02d}:00+05:30", *p[i][:4]]
        for i, (h, m) in enumerate(_minutes(9, 15, 5, 15))
    ]
    add("tradingview_iso_no_volume.csv", _lines(rows),
        accept(["NO_VOLUME"], 5, "15min", "2024-01-02T09:15:00+05:30", "2024-01-02T10:15:00+05:30",
               time_format="iso", tz_aware=True),
        tz="Asia/Kolkata", description="TradingView export with ISO times and no volume")

    e = _prices(5, 1.085, 0.0005, 4)
    rows = [["Datum", "Eröffnung", "Hoch", "Tief", "Schluss", "Volumen"]] + [
        [f"{d:02d}.01.2024", *(x.replace(".", ",") for x in e[i])]
        for i, d in enumerate(range(15, 20))
    ]
    add("german_semicolon_decimal_comma.csv", _lines(rows, ";"),
        accept(["TZ_ASSUMED"], 5, "1d", "2024-01-15T00:00:00+00:00", "2024-01-19T00:00:00+00:00",
               delimiter=";", decimal=",", time_format="dmy", date_sep=".", dayfirst=True),
        description="German Excel export: semicolon, decimal comma, dd.mm.yyyy (15 > 12)")

    rows = [["Date", "Open", "High", "Low", "Close", "Volume"]] + [
        [f"{d:02d}/01/2024", *(x.replace(".", ",") for x in e[i])]
        for i, d in enumerate(range(2, 7))
    ]
    add("french_dayfirst_given.csv", _lines(rows, ";"),
        accept([], 5, "1d", "2024-01-02T00:00:00+01:00", "2024-01-06T00:00:00+01:00",
               delimiter=";", decimal=",", time_format="dmy", dayfirst=True),
        tz="Europe/Paris", dayfirst=True,
        description="dd/mm/yyyy with every day <= 12: readable only because dayfirst=True")

    rows = [["Date", "Open", "High", "Low", "Close", "Volume"]] + [
        [f"1/16/2024 {h % 12 or 12}:{m:02d}:00 {'AM' if h < 12 else 'PM'}", *q[i]]
        for i, (h, m) in enumerate(_minutes(11, 58, 5))
    ]
    add("us_excel_mdy_ampm.csv", _lines(rows, ",", "\r\n"),
        accept([], 5, "1min", "2024-01-16T11:58:00-05:00", "2024-01-16T12:02:00-05:00",
               time_format="mdy", date_sep="/", dayfirst=False),
        tz="America/New_York", description="US Excel: m/d/yyyy h:mm:ss AM/PM, CRLF")

    rows = [["Date", "Time", "Open", "High", "Low", "Close", "Volume"]] + [
        ["2024-01-02", f"{h:02d}:{m:02d}:00", *p[i]] for i, (h, m) in enumerate(_minutes(9, 15, 5))
    ]
    text = _lines(rows, "\t", "\r\n")
    add("excel_unicode_text_utf16.txt", b"\xff\xfe" + text.encode("utf-16-le"),
        accept([], 5, "1min", "2024-01-02T09:15:00+05:30", "2024-01-02T09:19:00+05:30",
               delimiter="\t", encoding="utf-16-le", split_time=True),
        tz="Asia/Kolkata", description="Excel 'Unicode Text': UTF-16 LE with BOM, tab")

    text = _lines(
        [["Date", "Open", "High", "Low", "Close", "Volume"]]
        + [[f"2024-01-{d:02d}", *q[i]] for i, d in enumerate((2, 3, 4))]
    )
    add("utf8_bom.csv", b"\xef\xbb\xbf" + text.encode(),
        accept([], 3, "1d", "2024-01-02T00:00:00+00:00", "2024-01-04T00:00:00+00:00",
               encoding="utf-8-sig"),
        tz="UTC", description="Excel 'CSV UTF-8' with a byte-order mark")

    add("daily.csv.gz", gzip.compress(text.encode(), mtime=0),
        accept([], 3, "1d", "2024-01-02T00:00:00+00:00", "2024-01-04T00:00:00+00:00",
               compression="gzip"),
        tz="UTC", description="gzip of a plain CSV")
    add("daily_in_zip.zip",
        _zip({"prices/daily.csv": text.encode(), "__MACOSX/._daily.csv": b"\x00\x05"}),
        accept([], 3, "1d", "2024-01-02T00:00:00+00:00", "2024-01-04T00:00:00+00:00",
               compression="zip", member="prices/daily.csv"),
        tz="UTC", description="zip with one CSV (macOS resource fork entry ignored)")

    rows = [["Gmt time", "Open", "High", "Low", "Close", "Volume"]] + [
        [f"15.01.2024 {h:02d}:{m:02d}:00.000", *fx[i]] for i, (h, m) in enumerate(_minutes(0, 0, 5))
    ]
    add("dukascopy_gmt.csv", _lines(rows),
        accept([], 5, "1min", "2024-01-15T00:00:00+00:00", "2024-01-15T00:04:00+00:00",
               time_format="dmy", date_sep=".", dayfirst=True),
        tz="UTC", description="Dukascopy export: 'Gmt time', dd.mm.yyyy HH:MM:SS.fff")

    rows = [["Date", "Open", "High", "Low", "Close"]] + [
        [f"{d:02d}-Jan-2024", *p[i][:4]] for i, d in enumerate((8, 5, 4, 3, 2))
    ]
    add("nse_newest_first.csv", _lines(rows),
        accept(["UNSORTED", "NO_VOLUME"], 5, "1d", "2024-01-02T00:00:00+05:30",
               "2024-01-08T00:00:00+05:30", time_format="d_mon_y"),
        tz="Asia/Kolkata", description="NSE-style dd-Mon-yyyy, newest row first")

    rows = [["Date", "Open", "High", "Low", "Close", "Volume"]] + [
        [f"Jan {d:02d}, 2024", *q[i]] for i, d in enumerate((2, 3, 4))
    ]
    add("wsj_month_names.csv", _lines(rows),
        accept([], 3, "1d", "2024-01-02T00:00:00-05:00", "2024-01-04T00:00:00-05:00",
               time_format="mon_d_y"),
        tz="America/New_York", description="Quoted 'Jan 02, 2024' dates (WSJ/MarketWatch)")

    rows = [["timestamp", "open", "high", "low", "close", "volume"]] + [
        [f"2024-03-0{1 + i // 2}T{(i % 2) * 12:02d}:00:00Z", *b[i]] for i in range(5)
    ]
    add("crypto_iso_zulu_12h.csv", _lines(rows),
        accept([], 5, "12h", "2024-03-01T00:00:00+00:00", "2024-03-03T00:00:00+00:00",
               time_format="iso", tz_aware=True),
        tz="UTC", description="ISO 8601 with Z, 24/7 market")

    rows = [["timestamp", "open", "high", "low", "close", "volume"]] + [
        [str(1704067200000000000 + i * 1000000000), *b[i]] for i in range(4)
    ]
    add("epoch_ns_1s.csv", _lines(rows),
        accept([], 4, "1s", "2024-01-01T00:00:00+00:00", "2024-01-01T00:00:03+00:00",
               time_format="epoch", epoch_unit="ns"),
        tz="UTC", description="epoch nanoseconds")

    rows = [["Date", "Open", "High", "Low", "Close", "Volume"]] + [
        [f"2024-01-{d:02d}", *q[i]] for i, d in enumerate((2, 3, 4))
    ]
    add("excel_sep_line.csv", "sep=;\n" + _lines(rows, ";"),
        accept([], 3, "1d", "2024-01-02T00:00:00+00:00", "2024-01-04T00:00:00+00:00",
               delimiter=";"),
        tz="UTC", description="Excel 'sep=;' hint line before the header")
# fmt: on


# --------------------------------------------------------------- repairs (accept + warn)


# fmt: off
def repairs() -> None:
    p = _prices(6)
    head = ["Date", "Open", "High", "Low", "Close", "Volume"]
    days = [f"2024-01-{d:02d}" for d in (2, 3, 4, 5, 8, 9)]
    rows = [
        head,
        [days[0], *p[0]],
        [days[1], *p[1]],
        [days[1], *p[1]],
        [days[2], *p[2]],
        [days[3], *p[3]],
        [days[3], *p[3]],
    ]
    add("duplicates_identical.csv", _lines(rows),
        accept(["DUPLICATE_ROWS"], 4, "1d", "2024-01-02T00:00:00+00:00",
               "2024-01-05T00:00:00+00:00"),
        tz="UTC", description="exact repeated rows are dropped (count 2)",
        warning_lines={"DUPLICATE_ROWS": 4})

    rows = [head] + [[days[i], *p[i]] for i in (0, 2, 1, 3, 5, 4)]
    add("unsorted_rows.csv", _lines(rows),
        accept(["UNSORTED"], 6, "1d", "2024-01-02T00:00:00+00:00", "2024-01-09T00:00:00+00:00"),
        tz="UTC", description="two rows out of order: sorted with a warning",
        warning_lines={"UNSORTED": 4})

    text = (
        "Date,Open,High,Low,Close,Volume\r\n\r\n"
        + "".join(
            f"{days[i]},{','.join(p[i])}\r\n" + ("   \r\n" if i == 2 else "") for i in range(4)
        )
        + "\r\n\r\n"
    )
    add("blank_lines_crlf.csv", text,
        accept(["BLANK_LINES"], 4, "1d", "2024-01-02T00:00:00+00:00", "2024-01-05T00:00:00+00:00"),
        tz="UTC", description="CRLF with empty and whitespace-only lines",
        warning_lines={"BLANK_LINES": 2})

    rows = [
        head,
        [days[0], *p[0]],
        ["", "", "", "", "", ""],
        [days[1], *p[1]],
        [days[2], *p[2]],
        ["", "", "", "", "", ""],
    ]
    add("empty_rows.csv", _lines(rows),
        accept(["EMPTY_ROWS"], 3, "1d", "2024-01-02T00:00:00+00:00", "2024-01-04T00:00:00+00:00"),
        tz="UTC", description="spreadsheet rows of empty cells (,,,,,) dropped",
        warning_lines={"EMPTY_ROWS": 3})

    rows = [head, [days[0], *p[0]], [days[1], "NaN", "NaN", "NaN", "NaN", "0"], [days[2], *p[2]]]
    add("nan_price_row.csv", _lines(rows),
        accept(["MISSING_ROWS"], 2, "irregular", "2024-01-02T00:00:00+00:00",
               "2024-01-04T00:00:00+00:00"),
        tz="UTC", description="a row whose four prices are NaN is dropped",
        warning_lines={"MISSING_ROWS": 3})

    rows = [head, [days[0], *p[0]], [days[1], *p[1][:4], ""], [days[2], *p[2]]]
    add("missing_volume_cell.csv", _lines(rows),
        accept(["MISSING_VOLUME"], 3, "1d", "2024-01-02T00:00:00+00:00",
               "2024-01-04T00:00:00+00:00"),
        tz="UTC", description="an empty volume cell becomes 0 with a warning",
        warning_lines={"MISSING_VOLUME": 3})

    rows = [head] + [[f" {days[i]} ", *(f" {x}" for x in p[i])] for i in range(3)]
    add("padded_cells.csv", _lines(rows),
        accept([], 3, "1d", "2024-01-02T00:00:00+00:00", "2024-01-04T00:00:00+00:00"),
        tz="UTC", description="spaces around cells are not a problem")

    rows = [["Date", "Open", "High", "Low", "Close", "Volume", ""]] + [
        [days[i], *p[i], ""] for i in range(3)
    ]
    add("trailing_delimiter.csv", _lines(rows),
        accept([], 3, "1d", "2024-01-02T00:00:00+00:00", "2024-01-04T00:00:00+00:00"),
        tz="UTC", description="every line ends with a delimiter (empty last column)")
# fmt: on


# ---------------------------------------------------------------------- rejections


# fmt: off
def rejections() -> None:
    p = _prices(5)
    head = ["Date", "Open", "High", "Low", "Close", "Volume"]
    days = [f"2024-01-{d:02d}" for d in (2, 3, 4, 5, 8)]

    def table(*edits: tuple[int, int, str], header: list[str] = head) -> str:
        rows = [header] + [[days[i], *p[i]] for i in range(5)]
        for r, c, v in edits:
            rows[r][c] = v
        return _lines(rows)

    add("formula_hyperlink.csv", table((3, 4, '=HYPERLINK("http://x.test","click")')),
        reject("FORMULA", 4, "Close"), tz="UTC", description="formula in a price cell")
    add("formula_cmd_plus.csv", table((2, 1, "+cmd|' /C calc'!A0")),
        reject("FORMULA", 3, "Open"), tz="UTC", description="DDE payload starting with +")
    rows = [["Symbol", *head]] + [["ACME", days[i], *p[i]] for i in range(5)]
    rows[5][0] = "@SUM(1+1)*cmd"
    add("formula_in_ignored_column.csv", _lines(rows),
        reject("FORMULA", 6, "Symbol"),
        tz="UTC", description="formula in a column the parser does not use: still rejected")
    add("formula_minus.csv", table((4, 5, "-2+3+cmd")),
        reject("FORMULA", 5, "Volume"), tz="UTC", description="formula starting with -")
    add("formula_in_header.csv", table(header=["Date", "Open", "High", "Low", "Close", "=1+2"]),
        reject("FORMULA", 1, "header field 6"), tz="UTC", description="formula as a header name")
    add("non_numeric_price.csv", table((3, 3, "abc")),
        reject("NON_NUMERIC", 4, "Low"), tz="UTC", description="text in a price cell")
    nasdaq = [["Date", "Close/Last", "Volume", "Open", "High", "Low"]] + [
        [f"01/0{2 + i}/2024", f"${p[i][3]}", p[i][4], f"${p[i][0]}", f"${p[i][1]}", f"${p[i][2]}"]
        for i in range(3)
    ]
    add("nasdaq_dollar_prices.csv", _lines(nasdaq),
        reject("NON_NUMERIC", 2, "Open"),
        tz="America/New_York", description="Nasdaq.com export: $ in prices is not a number")
    add("partial_missing_close.csv", table((2, 4, "")),
        reject("MISSING_VALUE", 3, "Close"),
        tz="UTC", description="one price empty while the others are present")
    add("missing_time.csv", table((4, 0, "")),
        reject("MISSING_VALUE", 5, "Date"), tz="UTC", description="prices without a date")
    add("zero_price.csv", table((2, 1, "0")),
        reject("BAD_PRICE", 3, "Open"), tz="UTC", description="open of 0")
    add("negative_price.csv", table((5, 3, "-1.5")),
        reject("BAD_PRICE", 6, "Low"), tz="UTC", description="negative low")
    add("overflow_price.csv", table((1, 2, "1e999")),
        reject("BAD_PRICE", 2, "High"), tz="UTC", description="1e999 overflows to infinity")
    add("high_below_low.csv", table((3, 2, "90.00"), (3, 3, "95.00")),
        reject("OHLC_INCONSISTENT", 4, "High"), tz="UTC", description="high below low")
    add("high_below_close.csv", table((2, 4, "150.00")),
        reject("OHLC_INCONSISTENT", 3, "High"), tz="UTC", description="close above high")
    add("low_above_open.csv", table((4, 1, "50.00")),
        reject("OHLC_INCONSISTENT", 5, "Low"), tz="UTC", description="open below low")
    add("negative_volume.csv", table((3, 5, "-10")),
        reject("NEGATIVE_VOLUME", 4, "Volume"), tz="UTC", description="volume of -10")
    add("overlong_field.csv", table((2, 3, "1" * 200)),
        reject("FIELD_TOO_LONG", 3, "Low"), tz="UTC", description="a 200-character cell")
    add("overlong_line.csv", table() + days[4] + "," + ",".join(["9" * 100] * 200) + "\n",
        reject("LINE_TOO_LONG", 7, None), tz="UTC", description="a 20 KB line")
    rows = [head] + [[days[i], *p[i]] for i in range(5)]
    rows[4] = [days[1], *p[1][:3], p[1][1], p[1][4]]
    add("duplicate_conflict.csv", _lines(rows),
        reject("DUPLICATE_CONFLICT", 5, "Close"),
        tz="UTC", description="same timestamp on lines 3 and 5 with different closes")
    amb = [head] + [[f"0{m}/0{d}/2024", *p[i]] for i, (m, d) in enumerate(((1, 2), (1, 3), (1, 4)))]
    add("ambiguous_day_month.csv", _lines(amb),
        reject("AMBIGUOUS_DATE", 2, "Date"),
        tz="UTC", description="01/02/2024 .. 01/04/2024: day and month cannot be told apart")
    amb2 = [head] + [[d, *p[i]] for i, d in enumerate(("13/01/2024", "14/01/2024", "01/15/2024"))]
    add("contradictory_day_month.csv", _lines(amb2),
        reject("AMBIGUOUS_DATE", 4, "Date"),
        tz="UTC", description="13/01 (day first) and then 01/15 (month first) in one file")
    rows = [_h("timestamp,open,high,low,close,volume"), ["1704067200", *p[0]],
            ["1704067260", *p[1]], ["1704067320000", *p[2]]]
    add("mixed_epoch_units.csv", _lines(rows),
        reject("MIXED_EPOCH_UNIT", 4, "timestamp"),
        tz="UTC", description="epoch seconds then milliseconds")
    rows = [_h("timestamp,open,high,low,close,volume"), ["2024-01-02 09:15:00+05:30", *p[0]],
            ["2024-01-02 09:16:00", *p[1]]]
    add("mixed_timezone.csv", _lines(rows),
        reject("MIXED_TIMEZONE", 3, "timestamp"),
        tz="Asia/Kolkata", description="one time with an offset, the next without")
    add("impossible_date.csv", table((3, 0, "2024-02-30")),
        reject("BAD_TIMESTAMP", 4, "Date"), tz="UTC", description="30 February")
    add("two_digit_year.csv", table(*((i + 1, 0, f"0{i + 2}/01/24") for i in range(5))),
        reject("BAD_TIMESTAMP", 2, "Date"),
        tz="UTC", description="two-digit years need a guess about the century")
    add("mixed_date_formats.csv", table((4, 0, "01/05/2024")),
        reject("BAD_TIMESTAMP", 5, "Date"), tz="UTC", description="ISO dates, then one d/m/y")
    rows = [["Date", "Time", "Open", "High", "Low", "Close", "Volume"]] + [
        ["2024-03-10", t, *p[i]] for i, t in enumerate(("01:58:00", "01:59:00", "02:30:00"))
    ]
    add("dst_gap_new_york.csv", _lines(rows),
        reject("DST_TIME", 4, "Date"),
        tz="America/New_York", description="02:30 on 2024-03-10 does not exist in New York")
    add("ragged_row.csv", table() + "2024-01-09,1,2\n",
        reject("FIELD_COUNT", 7, None), tz="UTC", description="a row with 3 of 6 fields")
    add("quoted_newline.csv", table((2, 0, "2024-01-03\n")),
        reject("FIELD_COUNT", 3, None), tz="UTC", description="a quoted newline splits a row")
    add("missing_close_column.csv",
        _lines([["Date", "Open", "High", "Low", "Adj Close"]] + [[days[i], *p[i][:4]] for i in range(3)]),
        reject("MISSING_COLUMN", 1, None),
        tz="UTC", description="only an adjusted close: open/high/low would not match it")
    add("two_close_columns.csv", table(header=["Date", "Open", "High", "Low", "Close", "Last"]),
        reject("DUPLICATE_COLUMN", 1, None), tz="UTC", description="Close and Last both present")
    add("latin1_encoding.csv",
        table((3, 0, "2024-01-04")).replace("Volume", "Volumé").encode("latin-1"),
        reject("ENCODING", 1, None),
        tz="UTC", description="Latin-1 bytes: not UTF-8, and guessing the code page is not done")
    add("utf16_without_bom.csv", table().encode("utf-16-le"),
        reject("ENCODING", 1, None), tz="UTC", description="UTF-16 without a byte-order mark")
    add("empty.csv", b"",
        reject("EMPTY_FILE", None, None), tz="UTC", description="zero bytes")
    add("header_only.csv", _lines([head]),
        reject("EMPTY_FILE", None, None), tz="UTC", description="a header and no rows")
    add("only_null_rows.csv", table(*((r, c, "null") for r in range(1, 6) for c in range(1, 6))),
        reject("EMPTY_FILE", None, None), tz="UTC", description="every row is null")
    add("two_csvs.zip", _zip({"a.csv": table().encode(), "b.csv": table().encode()}),
        reject("ZIP_MEMBERS", None, None), tz="UTC", description="zip with two CSV files")
    add("excel_workbook.xlsx",
        _zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<x/>"}),
        reject("UNSUPPORTED_FORMAT", None, None), tz="UTC", description="an .xlsx is not a CSV")
    add("bzip2.csv.bz2", bz2.compress(table().encode()),
        reject("UNSUPPORTED_FORMAT", None, None), tz="UTC", description="bzip2 is not supported")
    big = table() + "".join(f"2024-02-01,{i}.0,{i}.0,{i}.0,{i}.0,0\n" for i in range(1, 3000))
    add("gzip_over_cap.csv.gz", gzip.compress(big.encode(), mtime=0),
        reject("TOO_LARGE", None, None), tz="UTC", max_decompressed_bytes=20000,
        description="decompressed size above the cap given by the caller")
    add("zip_over_cap.zip", _zip({"big.csv": big.encode()}),
        reject("TOO_LARGE", None, None),
        tz="UTC", max_decompressed_bytes=20000, description="zip member above the cap")
    add("truncated.csv.gz", gzip.compress(table().encode(), mtime=0)[:60],
        reject("ARCHIVE_INVALID", None, None), tz="UTC", description="cut-off gzip")
    add("no_delimiter.txt", "just some text\nthat is not a table\n",
        reject("DELIMITER", None, None), tz="UTC", description="prose, not CSV")
    wide = [[*head, *(f"x{i}" for i in range(70))]] + [[days[i], *p[i], *["1"] * 70] for i in range(3)]
    add("too_many_columns.csv", _lines(wide), reject("TOO_MANY_COLUMNS", 1, None),
        tz="UTC", description="76 columns: not an OHLCV table")
    add("decimal_comma_with_dot.csv",
        _lines([["Date", "Open", "High", "Low", "Close", "Volume"], ["2024-01-02", "1,5", "2,5", "1,0", "2,0", "10"], ["2024-01-03", "1.234,5", "1.240,0", "1.230,0", "1.235,0", "10"]], ";"),
        reject("NON_NUMERIC", 2, "Open"),
        tz="UTC", description="decimal commas and thousands dots mixed: not read by guessing")
# fmt: on


def build() -> dict[str, bytes]:
    """All corpus files (name -> bytes), manifest included."""
    ENTRIES.clear()
    FILES.clear()
    real_formats()
    repairs()
    rejections()
    manifest = {"files": ENTRIES}
    out = dict(FILES)
    out["manifest.json"] = (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode()
    return out


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    files = build()
    for old in CORPUS.iterdir():
        if old.is_file() and old.name not in files:
            old.unlink()
    for name, data in files.items():
        (CORPUS / name).write_bytes(data)
    total = sum(len(d) for d in files.values())
    print(f"{len(files) - 1} files + manifest, {total:,} bytes in {CORPUS}")


if __name__ == "__main__":
    main()
