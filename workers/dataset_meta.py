"""Dataset metadata from an uploader: checked, bounded, and timeframes in one spelling.

`clean_meta` trims and bounds the fields (BadInputError naming the field) and fills
name and symbol from the file name; `canonical_timeframe` turns `60m`, `1 hour` or
`1H` into the engine's label (`1h`); `check_timeframe` keeps a given timeframe only
when the data agrees with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.bars import check_tz
from engine.errors import EngineInputError
from engine.ingest import IngestResult
from store.errors import BadInputError

__all__ = [
    "DatasetMeta",
    "canonical_timeframe",
    "check_timeframe",
    "clean_meta",
    "clean_text",
    "timeframe_labels",
]

_UNITS = {"s": 1, "min": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_SPELLINGS = {
    "s": ("s", "sec", "secs", "second", "seconds"),
    "min": ("m", "min", "mins", "minute", "minutes", "t"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "d": ("d", "day", "days"),
    "w": ("w", "wk", "week", "weeks"),
    "mo": ("mo", "mon", "month", "months"),
}
_ALIASES = {spelling: unit for unit, names in _SPELLINGS.items() for spelling in names}
_TIMEFRAME = re.compile(r"^\s*(\d{1,4})\s*([a-z]+)\s*$", re.IGNORECASE)


def _timeframe_step(label: str) -> tuple[int, str]:
    """(count, unit) of a timeframe label in any usual spelling; BadInputError otherwise."""
    m = _TIMEFRAME.match(label)
    # Case only matters for pandas' "M" (month) against "m" (minute).
    unit = ("mo" if m.group(2) == "M" else _ALIASES.get(m.group(2).lower())) if m else None
    if m is None or unit is None or int(m.group(1)) == 0:
        raise BadInputError(
            "timeframe", f"unknown timeframe {label!r}: use e.g. 1min, 5min, 1h, 1d, 1w, 1mo"
        )
    return int(m.group(1)), unit


def canonical_timeframe(label: str) -> str:
    """The engine's spelling of a timeframe (`60m` -> `1h`, `1 day` -> `1d`), or `irregular`."""
    if label.strip().lower() == "irregular":
        return "irregular"
    n, unit = _timeframe_step(label)
    if unit == "mo":
        return f"{n}mo"
    secs = n * _UNITS[unit]
    for name in ("w", "d", "h", "min"):
        if secs % _UNITS[name] == 0:
            return f"{secs // _UNITS[name]}{name}"
    return f"{secs}s"


def timeframe_labels(label: str) -> list[str]:
    """Every stored spelling of a timeframe: the shipped samples say `1m` for `1min`."""
    canon = canonical_timeframe(label)
    return [canon, canon.removesuffix("min") + "m"] if canon.endswith("min") else [canon]


def _seconds(canon: str) -> int:
    if canon.endswith("mo"):
        return int(canon[:-2]) * 28 * 86_400
    n, unit = _timeframe_step(canon)
    return n * _UNITS[unit]


@dataclass(frozen=True)
class DatasetMeta:
    """What the uploader says about the file; None = default or detect."""

    name: str | None = None
    symbol: str | None = None
    exchange: str | None = None
    description: str | None = None
    timezone: str | None = None
    timeframe: str | None = None
    dayfirst: bool | None = None


def clean_text(value: str | None, field: str, limit: int) -> str | None:
    """`value` trimmed (None when blank); BadInputError(field) when over `limit` characters."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > limit:
        raise BadInputError(field, f"must be at most {limit} characters, got {len(value)}")
    return value


def _stem(filename: str | None) -> str:
    name = Path(filename or "").name
    for ext in (".gz", ".zip", ".csv", ".txt", ".tsv"):
        name = name.removesuffix(ext).removesuffix(ext.upper())
    return name.strip()


def clean_meta(meta: DatasetMeta, filename: str | None) -> DatasetMeta:
    """Trimmed, bounded metadata; name and symbol default to the file's name."""
    stem = _stem(filename)
    name = clean_text(meta.name, "name", 200) or stem or "uploaded dataset"
    token = re.split(r"[\s_.,-]+", stem)[0] if stem else ""
    symbol = clean_text(meta.symbol, "symbol", 64) or (token.upper()[:64] or "UNKNOWN")
    tz = clean_text(meta.timezone, "timezone", 64)
    if tz is not None:
        try:
            check_tz(tz)
        except EngineInputError as exc:
            raise BadInputError("timezone", str(exc)) from None
    tf = clean_text(meta.timeframe, "timeframe", 16)
    return replace(
        meta,
        name=name,
        symbol=symbol,
        exchange=clean_text(meta.exchange, "exchange", 64),
        description=clean_text(meta.description, "description", 5000),
        timezone=tz,
        timeframe=None if tf is None else canonical_timeframe(tf),
    )


def check_timeframe(given: str | None, result: IngestResult) -> str:
    """The detected timeframe, or the given one when the data agrees with it."""
    detected = result.timeframe
    if given is None or given == detected:
        return detected
    if detected != "irregular":
        raise BadInputError(
            "timeframe",
            f"{given!r} does not match the data: its bars are {detected} apart "
            "(leave timeframe out to use the detected one)",
        )
    if given != "irregular" and len(result.bars) > 1:
        closest = int(np.min(np.diff(result.bars.ts)) // 1_000_000_000)
        if closest < _seconds(given):
            raise BadInputError(
                "timeframe", f"{given!r} does not match the data: some bars are {closest}s apart"
            )
    return given
