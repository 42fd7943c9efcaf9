"""`write_csv`: Bars to CSV bytes in any dialect the parser reads (exports, round-trip tests)."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile

import numpy as np

from engine.bars import Bars
from engine.calendar import local_ns
from engine.errors import EngineInputError
from engine.ingest.clock import NS_PER_DAY, NS_PER_S, civil_from_days
from engine.ingest.dialect import Dialect

__all__ = ["write_csv"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EPOCH_MULT = {"s": NS_PER_S, "ms": 1_000_000, "us": 1_000, "ns": 1}
_BOM = {
    "utf-8": b"",
    "utf-8-sig": b"\xef\xbb\xbf",
    "utf-16-le": b"\xff\xfe",
    "utf-16-be": b"\xfe\xff",
}


def _number(x: float, precision: int | None, decimal: str) -> str:
    if precision is None:
        text = str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)
    else:
        text = f"{x:.{precision}f}"
    return text.replace(".", ",") if decimal == "," else text


def _clock(ns: np.ndarray) -> list[str]:
    secs, frac = np.divmod(ns, NS_PER_S)
    h, rest = np.divmod(secs, 3600)
    m, s = np.divmod(rest, 60)
    out = []
    for hh, mm, ss, ff in zip(h.tolist(), m.tolist(), s.tolist(), frac.tolist(), strict=True):
        t = f"{hh:02d}:{mm:02d}:{ss:02d}"
        out.append(t + "." + f"{ff:09d}".rstrip("0") if ff else t)
    return out


def _dates(days: np.ndarray, d: Dialect) -> list[str]:
    y, m, dd = (a.tolist() for a in civil_from_days(days))
    sep = d.date_sep or "-"
    fmt = d.time_format
    if fmt == "iso":
        return [f"{a:04d}-{b:02d}-{c:02d}" for a, b, c in zip(y, m, dd, strict=True)]
    if fmt == "ymd":
        return [f"{a:04d}{sep}{b:02d}{sep}{c:02d}" for a, b, c in zip(y, m, dd, strict=True)]
    if fmt == "dmy":
        return [f"{c:02d}{sep}{b:02d}{sep}{a:04d}" for a, b, c in zip(y, m, dd, strict=True)]
    if fmt == "mdy":
        return [f"{b:02d}{sep}{c:02d}{sep}{a:04d}" for a, b, c in zip(y, m, dd, strict=True)]
    if fmt == "d_mon_y":
        return [f"{c:02d}-{_MONTHS[b - 1]}-{a:04d}" for a, b, c in zip(y, m, dd, strict=True)]
    if fmt == "mon_d_y":
        return [f"{_MONTHS[b - 1]} {c:02d}, {a:04d}" for a, b, c in zip(y, m, dd, strict=True)]
    return [f"{a:04d}{b:02d}{c:02d}" for a, b, c in zip(y, m, dd, strict=True)]  # compact


def _offsets(off_ns: np.ndarray) -> list[str]:
    out = []
    for o in (off_ns // (60 * NS_PER_S)).tolist():
        sign = "+" if o >= 0 else "-"
        out.append(f"{sign}{abs(o) // 60:02d}:{abs(o) % 60:02d}")
    return out


def _time_columns(bars: Bars, d: Dialect) -> tuple[list[str], list[list[str]]]:
    ts = np.asarray(bars.ts, dtype=np.int64)
    upper = d.header_style == "metastock"
    if d.time_format == "epoch":
        mult = _EPOCH_MULT[d.epoch_unit or "s"]
        if np.any(ts % mult):
            raise EngineInputError(f"timestamps finer than epoch {d.epoch_unit or 's'} units")
        return ["<DATE>" if upper else "Timestamp"], [[str(v) for v in (ts // mult).tolist()]]
    if d.tz_aware and d.time_format != "iso":
        raise EngineInputError("only the iso time format is written with a UTC offset")
    loc = local_ns(ts, bars.tz)
    days = loc // NS_PER_DAY
    tod = loc - days * NS_PER_DAY
    dates = _dates(days, d)
    if d.time_format == "compact":
        if np.any(tod % NS_PER_S):
            raise EngineInputError("the compact time format has no fractions of a second")
        secs = tod // NS_PER_S
        clock = [f"{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}" for s in secs.tolist()]
        sep = " "
    else:
        clock, sep = _clock(tod), " "
    if d.tz_aware:
        clock = [c + o for c, o in zip(clock, _offsets(loc - ts), strict=True)]
    names = ["<DATE>", "<TIME>"] if upper else ["Date", "Time"]
    if d.split_time:
        return names, [dates, clock]
    if not d.tz_aware and not tod.any():
        return names[:1], [dates]
    return names[:1], [[a + sep + b for a, b in zip(dates, clock, strict=True)]]


def write_csv(
    bars: Bars, dialect: Dialect | None = None, *, precision: int | None = None, newline: str = "\n"
) -> bytes:
    """Bars as CSV bytes in `dialect` (default: comma, ISO times, header, UTF-8).

    Times are exchange-local wall-clock times of `bars.tz` (with their offset when
    `dialect.tz_aware`; epoch times are UTC). Prices are written exactly (shortest
    round-trip text) unless `precision` fixes the number of decimals.
    """
    d = dialect or Dialect()
    names, time_cols = _time_columns(bars, d)
    upper = d.header_style == "metastock"
    price_names = ["<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<VOL>"] if upper else [
        "Open", "High", "Low", "Close", "Volume"
    ]  # fmt: skip
    cols = time_cols + [
        [_number(x, precision, d.decimal) for x in col.tolist()]
        for col in (bars.open, bars.high, bars.low, bars.close)
    ]
    cols.append([_number(x, None, d.decimal) for x in bars.volume.tolist()])
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=d.delimiter, lineterminator=newline, quoting=csv.QUOTE_MINIMAL)
    if d.header:
        w.writerow(names + price_names)
    w.writerows(zip(*cols, strict=True))
    codec = "utf-8" if d.encoding in ("utf-8", "utf-8-sig") else d.encoding
    body = _BOM[d.encoding] + buf.getvalue().encode(codec)
    if d.compression == "gzip":
        return gzip.compress(body, mtime=0)
    if d.compression == "zip":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            info = zipfile.ZipInfo(d.member or "data.csv", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, body)  # fixed date: the same bars give the same bytes
        return out.getvalue()
    return body
