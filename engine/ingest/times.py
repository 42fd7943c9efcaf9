"""Timestamp columns to int64 UTC nanoseconds: format detection, day/month order, epochs.

One format per file: the first value picks a grammar (engine.ingest.formats) and every
other value must match it. Three ways to read a column, all giving the same answer:
ISO columns go through Arrow's native parser; columns whose values all share the first
value's shape (fixed-width fields) are sliced at fixed offsets; anything else is
captured with the grammar's regex, which is also what names the line of a bad value.
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
from engine.ingest.formats import (
    EXAMPLES,
    FORMATS,
    ISO_STRICT,
    PY,
    TOD_DIGITS,
    TOD_HMS,
    TWO_DIGIT_YEAR,
    classify,
    shape_pattern,
)
from engine.ingest.values import bad_value_error

__all__ = ["TimeInfo", "parse_timestamps"]

_MONTHS = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "sept",
]  # fmt: skip
_MONTH_NO = np.array([*range(1, 13), *range(1, 13), 9], dtype=np.int64)
_EPOCH_UNITS = ("s", "ms", "us", "ns")
_EPOCH_MULT = np.array([NS_PER_S, 1_000_000, 1_000, 1], dtype=np.int64)
_EPOCH_MAX = np.array([9_223_372_035, 9_223_372_036_854, 9_223_372_036_854_775, 2**63 - 1])
_NUMERIC_GROUPS = ("Y", "Mo", "D", "A", "B", "H", "M", "S", "F", "I")
_TEXT_GROUPS = ("s1", "s2", "AP", "Z", "Mon")


@dataclass(frozen=True)
class TimeInfo:
    """What the timestamp column looked like."""

    time_format: str  # iso | ymd | dmy | mdy | d_mon_y | mon_d_y | compact | epoch
    date_sep: str | None
    dayfirst: bool | None  # None when the order did not matter
    epoch_unit: str | None  # s | ms | us | ns
    split_time: bool
    tz_aware: bool


def _np(arr: pa.Array | pa.ChunkedArray, dtype: type = np.int64) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=dtype)


def _ints(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return _np(pc.cast(arr, pa.int64()))


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

    def all_match(self, pattern: str) -> bool:
        return bool(pc.all(pc.match_substring_regex(self.values, pattern)).as_py())


class _Parts:
    """The date/time fields of every row: integers by group name, text for the rest."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.ints: dict[str, np.ndarray] = {}
        self.text: dict[str, pa.Array] = {}

    def get(self, name: str) -> np.ndarray:
        return self.ints.get(name, np.zeros(self.n, dtype=np.int64))


def _sliced(col: _Column, m: re.Match[str]) -> _Parts | None:
    """Fields cut at fixed offsets, when every value has the first value's shape."""
    groups = m.re.groupindex
    if any(g in groups and m[g] for g in ("AP", "Z", "Mon")):
        return None
    if not col.all_match(shape_pattern(m.string)):
        return None
    parts = _Parts(len(col.values))
    for g in _NUMERIC_GROUPS:
        if g in groups and m[g]:
            a, b = m.span(g)
            parts.ints[g] = _ints(pc.utf8_slice_codeunits(col.values, a, b))
    if "F" in parts.ints:
        parts.ints["F"] = parts.ints["F"] * 10 ** (9 - len(m["F"]))
    for g in ("s1", "s2"):
        if g in groups:
            parts.text[g] = pa.array([m[g]])
    return parts


def _captured(col: _Column, pattern: str) -> _Parts:
    """Fields captured by the grammar; a value that does not match names its line."""
    ex = pc.extract_regex(col.values, pattern)
    if ex.null_count:
        i = int(np.argmax(~_np(ex.is_valid(), bool)))
        first = col.values[0].as_py()
        raise col.fail(
            i, f"is not a date/time in the format of line {int(col.lines[0])} ({first!r})"
        )
    parts = _Parts(len(col.values))
    names = re.findall(r"\?P<(\w+)>", pattern)
    for g in names:
        field = pc.struct_field(ex, g)
        if g in _TEXT_GROUPS:
            parts.text[g] = field
        elif g == "F":
            parts.ints[g] = _ints(pc.utf8_rpad(field, width=9, padding="0"))
        else:
            parts.ints[g] = _ints(pc.utf8_lpad(field, width=1, padding="0"))
    for g in ("s1", "s2"):
        if g in parts.text:
            diff = _np(pc.not_equal(parts.text[g], parts.text[g][0]), bool)
            if diff.any():
                i = int(np.argmax(diff))
                raise col.fail(i, f"uses a different date separator than line {int(col.lines[0])}")
    return parts


def _time_of_day(p: _Parts, col: _Column) -> np.ndarray:
    h, m, s, frac = p.get("H"), p.get("M"), p.get("S"), p.get("F")
    if "AP" in p.text:
        ap = pc.replace_substring(pc.utf8_lower(p.text["AP"]), ".", "")
        pm = _np(pc.equal(ap, "pm"), bool)
        twelve = pm | _np(pc.equal(ap, "am"), bool)
        bad12 = twelve & ((h < 1) | (h > 12))
        if bad12.any():
            raise col.fail(int(np.argmax(bad12)), "has an AM/PM hour outside 1..12")
        h = np.where(twelve, h % 12 + 12 * pm, h)
    bad = (h > 23) | (m > 59) | (s > 59)
    if bad.any():
        raise col.fail(int(np.argmax(bad)), "has an impossible time of day")
    return ((h * 60 + m) * 60 + s) * NS_PER_S + frac


def _zone_offsets(p: _Parts, col: _Column) -> np.ndarray | None:
    """Per-row UTC offsets in ns, or None when every value is naive."""
    z = p.text.get("Z")
    if z is None:
        return None
    uniq = pc.unique(z).to_pylist()
    if uniq == [""]:
        return None
    if "" in uniq:
        naive = _np(pc.equal(z, ""), bool)
        i = int(np.argmax(naive != naive[0]))
        has = "has none" if naive[0] else "has one"
        raise col.fail(
            i,
            f"mixes times with and without a UTC offset (line {int(col.lines[0])} {has})",
            Codes.MIXED_TIMEZONE,
        )
    offs = []
    for u in uniq:
        digits = "" if u in ("Z", "UTC", "GMT") else u[1:].replace(":", "")
        hh, mm = (int(digits[:2]), int(digits[2:] or 0)) if digits else (0, 0)
        if hh > 14 or mm > 59:
            raise col.fail(int(np.argmax(_np(pc.equal(z, u), bool))), "has an impossible offset")
        offs.append((-1 if u[0] == "-" else 1) * (hh * 60 + mm) * 60 * NS_PER_S)
    idx = _np(pc.index_in(z, pa.array(uniq)))
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
    if a_big.any() or b_big.any():
        return bool(a_big.any())
    differ = a != b
    if not differ.any():
        return None  # 01/01, 02/02 ...: both orders give the same dates
    i = int(np.argmax(differ))
    raise IngestError(
        Codes.AMBIGUOUS_DATE,
        f"cannot tell day from month in {col.values[i].as_py()!r}: no value above 12 in "
        "either position shows the order; pass dayfirst=True (day/month/year) or "
        "dayfirst=False (month/day/year)",
        line=int(col.lines[i]),
        column=col.name,
    )


def _epoch(col: _Column) -> tuple[np.ndarray, str]:
    if col.all_match(r"^-?\d{1,19}$"):
        whole, frac = _ints(col.values), None
    else:
        p = _captured(col, FORMATS["epoch"])
        whole, frac = p.get("I"), p.ints.get("F")
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


def _months(p: _Parts, col: _Column) -> np.ndarray:
    idx = _np(pc.index_in(pc.utf8_lower(p.text["Mon"]), pa.array(_MONTHS)), np.float64)
    bad = np.isnan(idx)
    if bad.any():
        raise col.fail(int(np.argmax(bad)), "has an unknown month name")
    return _MONTH_NO[idx.astype(np.int64)]


def _iso_fast(col: _Column, aware: bool) -> np.ndarray | None:
    if not col.all_match(ISO_STRICT):
        return None
    try:
        out = pc.cast(col.values, pa.timestamp("ns", "UTC") if aware else pa.timestamp("ns"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return _np(out.cast(pa.int64()))


def _tod_column(col: _Column) -> np.ndarray:
    first = col.values[0].as_py()
    m = re.match(TOD_HMS, first, re.ASCII)
    if m:
        return _time_of_day(_sliced(col, m) or _captured(col, TOD_HMS), col)
    if not re.match(TOD_DIGITS, first):
        raise col.fail(0, "is not a time of day (expected e.g. 09:15, 09:15:00 or 093000)")
    ok = _np(pc.match_substring_regex(col.values, TOD_DIGITS), bool)
    if not ok.all():
        raise col.fail(int(np.argmax(~ok)), "is not a time of day like the others (HHMM[SS])")
    width = 6 if pc.max(pc.utf8_length(col.values)).as_py() > 4 else 4
    padded = pc.utf8_lpad(col.values, width=width, padding="0")
    p = _Parts(len(col.values))
    for g, a in (("H", 0), ("M", 2), ("S", 4)):
        if a < width:
            p.ints[g] = _ints(pc.utf8_slice_codeunits(padded, a, a + 2))
    return _time_of_day(p, col)


def _fields(col: _Column, kind: str, first: str) -> _Parts:
    m = PY[kind].match(first)
    assert m is not None
    return _sliced(col, m) or _captured(col, FORMATS[kind])


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
    kind = classify(first)
    if kind is None:
        if TWO_DIGIT_YEAR.match(first):
            raise col.fail(0, "has a two-digit year; write the year with four digits")
        raise col.fail(0, f"is not a date/time (expected e.g. {EXAMPLES})")
    split = time is not None
    if kind == "epoch":
        if split:
            raise col.fail(0, "is an epoch number but the file also has a separate time column")
        utc, unit = _epoch(col)
        return utc, TimeInfo("epoch", None, None, unit, False, True)
    m = PY[kind].match(first)
    assert m is not None
    sep = m["s1"] if "s1" in m.re.groupindex else None
    fmt = {"ymd": "iso" if sep == "-" else "ymd", "compact14": "compact"}.get(kind, kind)
    if fmt == "iso" and not split:
        fast = _iso_fast(col, bool(m["Z"]))
        if fast is not None and m["Z"]:
            return fast, TimeInfo("iso", "-", None, None, False, True)
        if fast is not None:
            return _localized(fast, col, time, tz, TimeInfo("iso", "-", None, None, False, False))
    p = _fields(col, kind, first)
    order = None
    if kind == "ab_y":
        order = _day_month_order(p.get("A"), p.get("B"), col, dayfirst)
        p.ints["D"], p.ints["Mo"] = (p.get("A"), p.get("B")) if order in (True, None) else (
            p.get("B"), p.get("A"))  # fmt: skip
        fmt = "dmy" if order in (True, None) else "mdy"
    elif kind in ("d_mon_y", "mon_d_y"):
        p.ints["Mo"] = _months(p, col)
    y, mo, d = p.get("Y"), p.get("Mo"), p.get("D")
    bad_date = first_invalid_date(y, mo, d)
    if bad_date is not None:
        raise col.fail(bad_date[0], f"is not a valid date: {bad_date[1]}")
    tod = _time_of_day(p, col)
    if time is not None:
        if tod.any():
            i = int(np.argmax(tod != 0))
            raise col.fail(i, f"has a time of day but {time_name!r} holds the time")
        tod = _tod_column(_Column(time, lines, time_name or "time"))
    local = days_from_civil(y, mo, d) * NS_PER_DAY + tod
    offsets = _zone_offsets(p, col)
    if offsets is not None:
        return local - offsets, TimeInfo(fmt, sep, order, None, split, True)
    return _localized(local, col, time, tz, TimeInfo(fmt, sep, order, None, split, False))


def _localized(
    local: np.ndarray, col: _Column, time: pa.Array | None, tz: str, info: TimeInfo
) -> tuple[np.ndarray, TimeInfo]:
    utc, bad = localize(local, tz)
    if bad is not None:
        text = col.values[bad].as_py() + (" " + time[bad].as_py() if time is not None else "")
        raise col.fail(
            bad,
            f"does not exist or is ambiguous in {tz} (a daylight-saving change); "
            "export the times in UTC or with their offset",
            Codes.DST_TIME,
            text,
        )
    return utc, info
