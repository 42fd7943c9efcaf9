"""Timestamp columns to int64 UTC nanoseconds: format detection, day/month order, epochs.

One format per file: the first value picks a grammar (epoch, compact yyyymmdd, ISO and
other year-first dates, day/month/year with either order, month names), and every
other value must match it. All grammars are RE2 patterns run by pyarrow over the whole
column; ISO columns take Arrow's native parser when it accepts them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.ingest.clock import (
    NS_PER_DAY,
    NS_PER_S,
    days_from_civil,
    first_invalid_date,
    localize,
)
from engine.ingest.errors import Codes, IngestError
from engine.ingest.values import bad_value_error

__all__ = [
    "TimeInfo",
    "is_date_only",
    "looks_like_datetime",
    "looks_like_time_of_day",
    "parse_timestamps",
]

_TIME = (
    r"(?:(?:T|\s+)(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<F>\d{1,9}))?)?"
    r"(?:\s*(?P<AP>[AaPp]\.?[Mm]\.?))?)?"
)
_ZONE = r"(?:\s*(?P<Z>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?))?"
_FORMATS: dict[str, str] = {
    "epoch": r"^(?P<I>-?\d{1,19})(?:\.(?P<F>\d{1,9}))?$",
    "compact": r"^(?P<Y>\d{4})(?P<Mo>\d{2})(?P<D>\d{2})(?:[T ](?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})?)?"
    + _ZONE
    + "$",
    "compact14": r"^(?P<Y>\d{4})(?P<Mo>\d{2})(?P<D>\d{2})(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})$",
    "ymd": r"^(?P<Y>\d{4})(?P<s1>[-/.])(?P<Mo>\d{1,2})(?P<s2>[-/.])(?P<D>\d{1,2})"
    + _TIME
    + _ZONE
    + "$",
    "ab_y": r"^(?P<A>\d{1,2})(?P<s1>[-/.])(?P<B>\d{1,2})(?P<s2>[-/.])(?P<Y>\d{4})"
    + _TIME
    + _ZONE
    + "$",
    "d_mon_y": r"^(?P<D>\d{1,2})(?P<s1>[- ])(?P<Mon>[A-Za-z]{3,9})\.?(?P<s2>[- ]|, ?)(?P<Y>\d{4})"
    + _TIME
    + _ZONE
    + "$",
    "mon_d_y": r"^(?P<Mon>[A-Za-z]{3,9})\.?(?P<s1>[- ])(?P<D>\d{1,2})(?P<s2>[- ]|, ?)(?P<Y>\d{4})"
    + _TIME
    + _ZONE
    + "$",
}
_PY = {k: re.compile(v, re.ASCII) for k, v in _FORMATS.items()}
_ISO_STRICT = (
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:\d{2})?$"
)
_TOD_HMS = (
    r"^(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<F>\d{1,9}))?)?"
    r"(?:\s*(?P<AP>[AaPp]\.?[Mm]\.?))?$"
)
_TOD_DIGITS = r"^\d{1,6}$"
_PY_TOD = (re.compile(_TOD_HMS, re.ASCII), re.compile(_TOD_DIGITS, re.ASCII))
_MONTHS = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "sept",
]  # fmt: skip
_MONTH_NO = np.array([*range(1, 13), *range(1, 13), 9], dtype=np.int64)
_EPOCH_UNITS = ("s", "ms", "us", "ns")
_EPOCH_MULT = np.array([NS_PER_S, 1_000_000, 1_000, 1], dtype=np.int64)
_EPOCH_MAX = np.array([9_223_372_035, 9_223_372_036_854, 9_223_372_036_854_775, 2**63 - 1])
_TWO_DIGIT_YEAR = re.compile(r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{2}(?:\D|$)", re.ASCII)
_EXAMPLES = "2024-01-02 09:15:00, 2024-01-02T09:15:00+05:30, 02/01/2024, 20240102 or epoch seconds"


@dataclass(frozen=True)
class TimeInfo:
    """What the timestamp column looked like."""

    time_format: str  # iso | ymd | dmy | mdy | d_mon_y | mon_d_y | compact | epoch
    date_sep: str | None
    dayfirst: bool | None  # None when the order did not matter
    epoch_unit: str | None  # s | ms | us | ns
    split_time: bool
    tz_aware: bool


def _compact_ok(text: str) -> bool:
    y, m, d = int(text[:4]), int(text[4:6]), int(text[6:8])
    if len(text) == 14 and (int(text[8:10]) > 23 or int(text[10:12]) > 59 or int(text[12:]) > 59):
        return False
    return (
        first_invalid_date(np.array([y]), np.array([m]), np.array([d])) is None
        and 1900 <= y <= 2100
    )


def _classify(value: str) -> str | None:
    if value.isascii() and value.isdigit() and len(value) in (8, 14) and _compact_ok(value):
        return "compact" if len(value) == 8 else "compact14"
    for name in ("epoch", "compact", "ymd", "ab_y", "d_mon_y", "mon_d_y"):
        if _PY[name].match(value):
            return name
    return None


def looks_like_datetime(value: str, *, headerless: bool = False) -> bool:
    """True if `value` reads as a date or date-time (headerless epochs need >= 9 digits)."""
    kind = _classify(value.strip())
    if kind == "epoch" and headerless:
        return value.strip().lstrip("-").split(".")[0].isdigit() and len(value.strip()) >= 9
    return kind is not None


def is_date_only(value: str) -> bool:
    """True for a date without a time of day (2024-01-02, 20240102, 02/01/2024)."""
    v = value.strip()
    kind = _classify(v)
    if kind in (None, "epoch", "compact14"):
        return False
    m = _PY[kind].match(v)
    return m is not None and m["H"] is None


def looks_like_time_of_day(value: str) -> bool:
    """True for 09:15, 09:15:00.5, 9:15 AM, 0915 or 093000."""
    v = value.strip()
    m = _PY_TOD[0].match(v)
    if m:
        return int(m["H"]) < 24 and int(m["M"]) < 60
    return bool(_PY_TOD[1].match(v)) and len(v) in (4, 6) and int(v[:2]) < 24


def _field(ex: pa.StructArray, name: str) -> pa.Array:
    return pc.struct_field(ex, name)


def _ints(ex: pa.StructArray, name: str) -> np.ndarray:
    a = pc.utf8_lpad(_field(ex, name), width=1, padding="0")
    return np.asarray(pc.cast(a, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _fraction_ns(ex: pa.StructArray) -> np.ndarray:
    return _ints_from(pc.utf8_rpad(_field(ex, "F"), width=9, padding="0"))


def _ints_from(a: pa.Array) -> np.ndarray:
    return np.asarray(pc.cast(a, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


class _Column:
    """A timestamp column being parsed: values, their file lines, and how to complain."""

    def __init__(self, values: pa.Array, lines: np.ndarray, name: str) -> None:
        self.values = values
        self.lines = lines
        self.name = name

    def fail(
        self, i: int, why: str, code: str = Codes.BAD_TIMESTAMP, text: str | None = None
    ) -> IngestError:
        text = self.values[i].as_py() if text is None else text
        bad = bad_value_error(text, int(self.lines[i]), self.name)
        if bad is not None:
            return bad
        return IngestError(code, f"{text!r} {why}", line=int(self.lines[i]), column=self.name)

    def extract(self, pattern: str, first_line: int, example: str) -> pa.StructArray:
        ex = pc.extract_regex(self.values, pattern)
        if ex.null_count:
            i = int(np.argmax(~np.asarray(ex.is_valid())))
            raise self.fail(
                i, f"is not a date/time in the format of line {first_line} ({example!r})"
            )
        return ex

    def same(self, arr: pa.Array, what: str) -> None:
        """Every row must repeat row 0's `what` (a separator, say)."""
        diff = np.asarray(pc.not_equal(arr, arr[0]).to_numpy(zero_copy_only=False), dtype=bool)
        if diff.any():
            i = int(np.argmax(diff))
            raise self.fail(i, f"uses a different {what} than line {int(self.lines[0])}")


def _time_of_day(ex: pa.StructArray, col: _Column, has: set[str]) -> np.ndarray:
    n = len(col.values)
    if "H" not in has:
        return np.zeros(n, dtype=np.int64)
    h, m = _ints(ex, "H"), _ints(ex, "M")
    s = _ints(ex, "S") if "S" in has else np.zeros(n, dtype=np.int64)
    frac = _fraction_ns(ex) if "F" in has else np.zeros(n, dtype=np.int64)
    if "AP" in has:
        ap = pc.replace_substring(pc.utf8_lower(_field(ex, "AP")), ".", "")
        pm = np.asarray(pc.equal(ap, "pm").to_numpy(zero_copy_only=False), dtype=bool)
        am = np.asarray(pc.equal(ap, "am").to_numpy(zero_copy_only=False), dtype=bool)
        twelve = am | pm
        bad12 = twelve & ((h < 1) | (h > 12))
        if bad12.any():
            raise col.fail(int(np.argmax(bad12)), "has an AM/PM hour outside 1..12")
        h = np.where(twelve, h % 12 + 12 * pm, h)
    bad = (h > 23) | (m > 59) | (s > 59)
    if bad.any():
        raise col.fail(int(np.argmax(bad)), "has an impossible time of day")
    return ((h * 60 + m) * 60 + s) * NS_PER_S + frac


def _zone_offsets(ex: pa.StructArray, col: _Column) -> np.ndarray | None:
    """Per-row UTC offsets in ns, or None when every value is naive."""
    z = _field(ex, "Z")
    uniq = pc.unique(z).to_pylist()
    if uniq == [""]:
        return None
    if "" in uniq:
        naive = np.asarray(pc.equal(z, "").to_numpy(zero_copy_only=False), dtype=bool)
        i = int(np.argmax(naive != naive[0]))
        raise col.fail(
            i,
            f"mixes times with and without a UTC offset (line {int(col.lines[0])} "
            f"{'has none' if naive[0] else 'has one'})",
            Codes.MIXED_TIMEZONE,
        )
    offs = []
    for u in uniq:
        if u in ("Z", "UTC", "GMT"):
            offs.append(0)
            continue
        digits = u[1:].replace(":", "")
        hh, mm = int(digits[:2]), int(digits[2:] or 0)
        if hh > 14 or mm > 59:
            raise col.fail(int(np.argmax(np.asarray(pc.equal(z, u)))), "has an impossible offset")
        offs.append((1 if u[0] == "+" else -1) * (hh * 60 + mm) * 60 * NS_PER_S)
    idx = np.asarray(pc.index_in(z, pa.array(uniq)).to_numpy(zero_copy_only=False), dtype=np.int64)
    return np.asarray(offs, dtype=np.int64)[idx]


def _day_month_order(
    a: np.ndarray, b: np.ndarray, col: _Column, dayfirst: bool | None
) -> bool | None:
    if dayfirst is not None:
        return dayfirst
    a_big, b_big = a > 12, b > 12
    if a_big.any() and b_big.any():
        i, j = int(np.argmax(a_big)), int(np.argmax(b_big))
        raise col.fail(
            max(i, j),
            f"contradicts line {int(col.lines[min(i, j)])}: one puts the day first, "
            "the other the month",
            Codes.AMBIGUOUS_DATE,
        )
    if a_big.any():
        return True
    if b_big.any():
        return False
    differ = a != b
    if not differ.any():
        return None  # 01/01, 02/02 ...: both orders give the same dates
    i = int(np.argmax(differ))
    text = col.values[i].as_py()
    raise IngestError(
        Codes.AMBIGUOUS_DATE,
        f"cannot tell day from month in {text!r}: no value above 12 in either position "
        "shows the order; pass dayfirst=True (day/month/year) or dayfirst=False "
        "(month/day/year)",
        line=int(col.lines[i]),
        column=col.name,
    )


def _epoch(col: _Column) -> tuple[np.ndarray, str]:
    vals = col.values
    if pc.all(pc.match_substring_regex(vals, r"^-?\d{1,19}$")).as_py():
        whole = _ints_from(vals)
        frac = None
    else:
        ex = col.extract(_FORMATS["epoch"], int(col.lines[0]), vals[0].as_py())
        whole, frac = _ints(ex, "I"), _fraction_ns(ex)
    mag = np.abs(whole)
    unit = np.searchsorted(np.array([1e11, 1e14, 1e17]), mag, side="right")
    diff = unit != unit[0]
    if diff.any():
        i = int(np.argmax(diff))
        raise col.fail(
            i,
            f"is epoch {_EPOCH_UNITS[unit[i]]} but line {int(col.lines[0])} is epoch "
            f"{_EPOCH_UNITS[unit[0]]}: one file must use one unit",
            Codes.MIXED_EPOCH_UNIT,
        )
    u = int(unit[0])
    mult = int(_EPOCH_MULT[u])
    over = mag > _EPOCH_MAX[u]
    if over.any():
        raise col.fail(int(np.argmax(over)), "is past the year 2262")
    ts = whole * mult
    if frac is not None:
        scaled, rem = np.divmod(frac * mult, NS_PER_S)
        if rem.any():
            raise col.fail(int(np.argmax(rem != 0)), "has digits finer than a nanosecond")
        ts = ts + np.where(whole < 0, -scaled, scaled)
    return ts, _EPOCH_UNITS[u]


def _months(ex: pa.StructArray, col: _Column) -> np.ndarray:
    lower = pc.utf8_lower(_field(ex, "Mon"))
    idx = np.asarray(
        pc.index_in(lower, pa.array(_MONTHS)).to_numpy(zero_copy_only=False), dtype=np.float64
    )
    bad = np.isnan(idx)
    if bad.any():
        raise col.fail(int(np.argmax(bad)), "has an unknown month name")
    return _MONTH_NO[idx.astype(np.int64)]


def _iso_fast(col: _Column, aware: bool) -> np.ndarray | None:
    if not pc.all(pc.match_substring_regex(col.values, _ISO_STRICT)).as_py():
        return None
    try:
        out = pc.cast(col.values, pa.timestamp("ns", "UTC") if aware else pa.timestamp("ns"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return np.asarray(out.to_numpy(zero_copy_only=False).view(np.int64), dtype=np.int64)


def _tod_column(col: _Column) -> np.ndarray:
    first = col.values[0].as_py()
    if _PY_TOD[0].match(first):
        ex = col.extract(_TOD_HMS, int(col.lines[0]), first)
        return _time_of_day(ex, col, {"H", "M", "S", "F", "AP"})
    if not _PY_TOD[1].match(first):
        raise col.fail(0, "is not a time of day (expected e.g. 09:15, 09:15:00 or 093000)")
    ok = np.asarray(pc.match_substring_regex(col.values, _TOD_DIGITS), dtype=bool)
    if not ok.all():
        raise col.fail(int(np.argmax(~ok)), "is not a time of day like the others (HHMM[SS])")
    width = 6 if pc.max(pc.utf8_length(col.values)).as_py() > 4 else 4
    padded = pc.utf8_lpad(col.values, width=width, padding="0")
    h = _ints_from(pc.utf8_slice_codeunits(padded, 0, 2))
    m = _ints_from(pc.utf8_slice_codeunits(padded, 2, 4))
    s = _ints_from(pc.utf8_slice_codeunits(padded, 4, 6)) if width == 6 else 0 * h
    bad = (h > 23) | (m > 59) | (s > 59)
    if bad.any():
        raise col.fail(int(np.argmax(bad)), "has an impossible time of day")
    return ((h * 60 + m) * 60 + s) * NS_PER_S


def parse_timestamps(
    date: pa.Array,
    time: pa.Array | None,
    *,
    lines: np.ndarray,
    date_name: str,
    time_name: str | None,
    tz: str,
    dayfirst: bool | None,
) -> tuple[np.ndarray, TimeInfo]:
    """UTC ns for each row of trimmed, non-empty date[/time] strings; errors name the line."""
    col = _Column(date, lines, date_name)
    first = date[0].as_py()
    kind = _classify(first)
    if kind is None:
        if _TWO_DIGIT_YEAR.match(first):
            raise col.fail(0, "has a two-digit year; write the year with four digits")
        raise col.fail(0, f"is not a date/time (expected e.g. {_EXAMPLES})")
    fmt, sep, order, unit, offsets = kind, None, None, None, None
    if kind == "epoch":
        if time is not None:
            raise col.fail(0, "is an epoch number but the file also has a separate time column")
        utc, unit = _epoch(col)
        return utc, TimeInfo("epoch", None, None, unit, False, True)
    local: np.ndarray | None = None
    if kind == "ymd" and time is None and _PY["ymd"].match(first)["s1"] == "-":  # type: ignore[index]
        aware = bool(_PY["ymd"].match(first)["Z"])  # type: ignore[index]
        fast = _iso_fast(col, aware)
        if fast is not None:
            fmt, sep = "iso", "-"
            if aware:
                return fast, TimeInfo(fmt, sep, None, None, False, True)
            local = fast
    if local is None:
        pattern = _FORMATS[kind]
        ex = col.extract(pattern, int(lines[0]), first)
        has = {n for n in ("H", "M", "S", "F", "AP", "Z", "s1", "s2") if f"?P<{n}>" in pattern}
        if "s1" in has:
            sep = _field(ex, "s1")[0].as_py()
            col.same(_field(ex, "s1"), "date separator")
            col.same(_field(ex, "s2"), "date separator")
        y = _ints(ex, "Y")
        if kind == "ab_y":
            a, b = _ints(ex, "A"), _ints(ex, "B")
            order = _day_month_order(a, b, col, dayfirst)
            d, mo = (a, b) if order in (True, None) else (b, a)
            fmt = "dmy" if order in (True, None) else "mdy"
        elif kind in ("d_mon_y", "mon_d_y"):
            d, mo = _ints(ex, "D"), _months(ex, col)
        else:
            d, mo = _ints(ex, "D"), _ints(ex, "Mo")
            fmt = "compact" if kind.startswith("compact") else ("iso" if sep == "-" else "ymd")
        bad_date = first_invalid_date(y, mo, d)
        if bad_date is not None:
            raise col.fail(bad_date[0], f"is not a valid date: {bad_date[1]}")
        tod = _time_of_day(ex, col, has)
        if time is not None:
            if tod.any():
                i = int(np.argmax(tod != 0))
                raise col.fail(i, f"has a time of day but {time_name!r} holds the time")
            tod = _tod_column(_Column(time, lines, time_name or "time"))
        local = days_from_civil(y, mo, d) * NS_PER_DAY + tod
        offsets = _zone_offsets(ex, col) if "Z" in has else None
    if offsets is not None:
        return local - offsets, TimeInfo(fmt, sep, order, None, time is not None, True)
    utc, bad = localize(local, tz)
    if bad is not None:
        text = date[bad].as_py() + (" " + time[bad].as_py() if time is not None else "")
        raise col.fail(
            bad,
            f"does not exist or is ambiguous in {tz} (a daylight-saving change); "
            "export the times in UTC or with their offset",
            Codes.DST_TIME,
            text,
        )
    return utc, TimeInfo(fmt, sep, order, unit, time is not None, False)
