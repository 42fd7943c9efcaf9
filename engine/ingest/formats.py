"""The date/time grammars the parser accepts, and quick tests on single values.

Each grammar is an RE2 pattern (run by pyarrow over whole columns) that Python's `re`
also understands (used on single values while sniffing). Named groups: Y year, Mo
month, D day, A/B day-or-month, Mon month name, H M S F time and fraction, AP am/pm,
Z zone, s1/s2 date separators, I epoch integer.
"""

from __future__ import annotations

import re

import numpy as np

from engine.ingest.clock import first_invalid_date

__all__ = [
    "EXAMPLES",
    "FORMATS",
    "ISO_STRICT",
    "PY",
    "TOD_DIGITS",
    "TOD_HMS",
    "TWO_DIGIT_YEAR",
    "classify",
    "is_date_only",
    "looks_like_datetime",
    "looks_like_time_of_day",
    "shape_pattern",
]

_TIME = (
    r"(?:(?:T|\s+)(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<F>\d{1,9}))?)?"
    r"(?:\s*(?P<AP>[AaPp]\.?[Mm]\.?))?)?"
)
_ZONE = r"(?:\s*(?P<Z>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?))?"
_COMPACT_TIME = r"(?:[T ](?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})?)?"
_AB = r"(?P<A>\d{1,2})(?P<s1>[-/.])(?P<B>\d{1,2})(?P<s2>[-/.])(?P<Y>\d{4})"
_YMD = r"(?P<Y>\d{4})(?P<s1>[-/.])(?P<Mo>\d{1,2})(?P<s2>[-/.])(?P<D>\d{1,2})"
_DMONY = r"(?P<D>\d{1,2})(?P<s1>[- ])(?P<Mon>[A-Za-z]{3,9})\.?(?P<s2>[- ]|, ?)(?P<Y>\d{4})"
_MONDY = r"(?P<Mon>[A-Za-z]{3,9})\.?(?P<s1>[- ])(?P<D>\d{1,2})(?P<s2>[- ]|, ?)(?P<Y>\d{4})"
FORMATS: dict[str, str] = {
    "epoch": r"^(?P<I>-?\d{1,19})(?:\.(?P<F>\d{1,9}))?$",
    "compact": r"^(?P<Y>\d{4})(?P<Mo>\d{2})(?P<D>\d{2})" + _COMPACT_TIME + _ZONE + "$",
    "compact14": r"^(?P<Y>\d{4})(?P<Mo>\d{2})(?P<D>\d{2})(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})$",
    "ymd": "^" + _YMD + _TIME + _ZONE + "$",
    "ab_y": "^" + _AB + _TIME + _ZONE + "$",
    "d_mon_y": "^" + _DMONY + _TIME + _ZONE + "$",
    "mon_d_y": "^" + _MONDY + _TIME + _ZONE + "$",
}
PY = {k: re.compile(v, re.ASCII) for k, v in FORMATS.items()}
ISO_STRICT = (
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:\d{2})?$"
)
TOD_HMS = (
    r"^(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<F>\d{1,9}))?)?"
    r"(?:\s*(?P<AP>[AaPp]\.?[Mm]\.?))?$"
)
TOD_DIGITS = r"^\d{1,6}$"
_PY_TOD = (re.compile(TOD_HMS, re.ASCII), re.compile(TOD_DIGITS, re.ASCII))
TWO_DIGIT_YEAR = re.compile(r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{2}(?:\D|$)", re.ASCII)
EXAMPLES = "2024-01-02 09:15:00, 2024-01-02T09:15:00+05:30, 02/01/2024, 20240102 or epoch seconds"


def _compact_ok(text: str) -> bool:
    y, m, d = int(text[:4]), int(text[4:6]), int(text[6:8])
    if len(text) == 14 and (int(text[8:10]) > 23 or int(text[10:12]) > 59 or int(text[12:]) > 59):
        return False
    valid = first_invalid_date(np.array([y]), np.array([m]), np.array([d])) is None
    return valid and 1900 <= y <= 2100


def classify(value: str) -> str | None:
    """The grammar a single value belongs to (8/14 valid digits are dates, not epochs)."""
    if value.isascii() and value.isdigit() and len(value) in (8, 14) and _compact_ok(value):
        return "compact" if len(value) == 8 else "compact14"
    for name in ("epoch", "compact", "ymd", "ab_y", "d_mon_y", "mon_d_y"):
        if PY[name].match(value):
            return name
    return None


def looks_like_datetime(value: str, *, headerless: bool = False) -> bool:
    """True if `value` reads as a date or date-time (headerless epochs need >= 9 digits)."""
    v = value.strip()
    kind = classify(v)
    if kind == "epoch" and headerless:
        return len(v.lstrip("-").split(".")[0]) >= 9
    return kind is not None


def is_date_only(value: str) -> bool:
    """True for a date without a time of day (2024-01-02, 20240102, 02/01/2024)."""
    v = value.strip()
    kind = classify(v)
    if kind in (None, "epoch", "compact14"):
        return False
    m = PY[kind].match(v)  # type: ignore[index]
    return m is not None and m["H"] is None


def looks_like_time_of_day(value: str) -> bool:
    """True for 09:15, 09:15:00.5, 9:15 AM, 0915 or 093000."""
    v = value.strip()
    m = _PY_TOD[0].match(v)
    if m:
        return int(m["H"]) < 24 and int(m["M"]) < 60
    return bool(_PY_TOD[1].match(v)) and len(v) in (4, 6) and int(v[:2]) < 24


def shape_pattern(value: str) -> str:
    """RE2 pattern matching exactly the values shaped like `value` (digits -> any digit).

    When every value of a column has one shape, each field sits at the same character
    offsets in every row, so fields can be sliced out instead of regex-captured.
    """
    return "^" + "".join(r"\d" if c.isdigit() else re.escape(c) for c in value) + "$"
