"""Cell-level rules shared by every column: numbers, missing markers, formulas, field length."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.ingest.errors import Codes, IngestError

__all__ = [
    "MAX_FIELD_CHARS",
    "MISSING_TOKENS",
    "NUMBER",
    "NumericColumn",
    "bad_value_error",
    "check_field_lengths",
    "check_text_cells",
    "is_missing_token",
    "missing_mask",
    "to_numbers",
]

MAX_FIELD_CHARS = 128
# Spellings of "no value" that spreadsheets, pandas and vendors write into cells.
MISSING_TOKENS = ("", "nan", "null", "none", "na", "n/a", "#n/a", "-", "--")
NUMBER = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"
NUMBER_COMMA = r"^[+-]?(?:\d+(?:,\d*)?|,\d+)(?:[eE][+-]?\d+)?$"  # decimal comma
_NUMBER_RE = re.compile(NUMBER, re.ASCII)
_FORMULA_START = r"^\s*[=+\-@]"


def is_missing_token(text: str) -> bool:
    """True for an empty cell or a "no value" marker (NaN, null, N/A, -)."""
    return text.strip().lower() in MISSING_TOKENS


def bad_value_error(text: str | None, line: int, column: str) -> IngestError | None:
    """The rejection for a cell that is a spreadsheet formula or absurdly long, else None."""
    if text is None:
        return None
    if len(text) > MAX_FIELD_CHARS:
        return IngestError(
            Codes.FIELD_TOO_LONG,
            f"the field is {len(text):,} characters long (limit {MAX_FIELD_CHARS})",
            line=line,
            column=column,
        )
    t = text.strip()
    if t[:1] in ("=", "+", "-", "@") and not _NUMBER_RE.match(t) and not is_missing_token(t):
        shown = t if len(t) <= 40 else t[:37] + "..."
        return IngestError(
            Codes.FORMULA,
            f"{shown!r} is a spreadsheet formula, not a value (cells starting with = + - @ "
            "are rejected to prevent CSV injection)",
            line=line,
            column=column,
        )
    return None


def _bools(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def check_field_lengths(col: pa.Array, lines: np.ndarray, name: str) -> None:
    """Reject the first cell longer than MAX_FIELD_CHARS."""
    if len(col) == 0:
        return
    lengths = pc.utf8_length(col)
    if pc.max(lengths).as_py() > MAX_FIELD_CHARS:
        i = int(np.argmax(_bools(pc.greater(lengths, MAX_FIELD_CHARS))))
        err = bad_value_error(col[i].as_py(), int(lines[i]), name)
        assert err is not None
        raise err


def check_text_cells(col: pa.Array, lines: np.ndarray, name: str) -> None:
    """Reject the first formula cell of a column that is otherwise not interpreted."""
    cand = np.flatnonzero(_bools(pc.match_substring_regex(col, _FORMULA_START)))
    for i in cand:
        err = bad_value_error(col[int(i)].as_py(), int(lines[i]), name)
        if err is not None:
            raise err


def missing_mask(col: pa.Array) -> np.ndarray:
    """Cells that are empty or a "no value" marker."""
    return _bools(pc.is_in(pc.utf8_lower(pc.utf8_trim_whitespace(col)), pa.array(MISSING_TOKENS)))


@dataclass(frozen=True)
class NumericColumn:
    """float64 values (NaN where missing) and the missing mask (None when nothing is)."""

    values: np.ndarray
    missing: np.ndarray | None


def _fast_numbers(col: pa.Array, decimal: str) -> np.ndarray | None:
    """Arrow's parser, when it reads every cell as a finite number (else None).

    Arrow accepts exactly the NUMBER grammar plus nan/inf spellings, so a column it
    reads without error into finite values is one the grammar accepts too.
    """
    s = col
    if decimal == ",":
        if pc.any(pc.match_substring(s, ".")).as_py():
            return None
        s = pc.replace_substring(s, ",", ".")
    try:
        values = np.asarray(pc.cast(s, pa.float64()).to_numpy(), dtype=np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return values if np.isfinite(values).all() else None


def to_numbers(col: pa.Array, *, decimal: str, lines: np.ndarray, name: str) -> NumericColumn:
    """Strict decimal numbers (optionally with exponent); markers of no value become NaN.

    Anything else rejects the file at its line: a formula (FORMULA), text (NON_NUMERIC),
    or a "." in a file whose decimal separator is "," (thousands separators are not read).
    """
    fast = _fast_numbers(col, decimal)
    if fast is not None:
        return NumericColumn(fast, None)
    grammar = NUMBER if decimal == "." else NUMBER_COMMA
    s = col
    ok = _bools(pc.match_substring_regex(s, grammar))
    if not ok.all():
        s = pc.utf8_trim_whitespace(s)
        ok = _bools(pc.match_substring_regex(s, grammar))
    if decimal == ",":
        s = pc.replace_substring(s, ",", ".")
    if ok.all():
        return NumericColumn(
            np.asarray(pc.cast(s, pa.float64()).to_numpy(), dtype=np.float64), None
        )
    bad = np.flatnonzero(~ok)
    is_missing = _bools(
        pc.is_in(pc.utf8_lower(pc.take(s, pa.array(bad))), pa.array(MISSING_TOKENS))
    )
    if not is_missing.all():
        i = int(bad[int(np.argmax(~is_missing))])
        raise _not_a_number(col[i].as_py(), decimal, int(lines[i]), name)
    filled = pc.if_else(pa.array(ok), s, "0")
    values = np.array(pc.cast(filled, pa.float64()).to_numpy(), dtype=np.float64)
    missing = ~ok
    values[missing] = np.nan
    return NumericColumn(values, missing)


def _not_a_number(text: str, decimal: str, line: int, name: str) -> IngestError:
    err = bad_value_error(text, line, name)
    if err is not None:
        return err
    t = text.strip()
    if decimal == "," and "." in t:
        why = "has a '.' but this file writes decimals with ',' (thousands separators are not read)"
    elif decimal == "." and "," in t:
        why = "is not a number (this file's decimal separator is '.'; thousands separators are not read)"
    else:
        why = "is not a number"
    return IngestError(Codes.NON_NUMERIC, f"{t!r} {why}", line, name)
