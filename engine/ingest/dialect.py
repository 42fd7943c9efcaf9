"""How a CSV file is written: what the parser detected, and what the writer produces."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from engine.errors import EngineInputError

__all__ = ["ENCODINGS", "TIME_FORMATS", "Dialect"]

ENCODINGS = ("utf-8", "utf-8-sig", "utf-16-le", "utf-16-be")
TIME_FORMATS = ("iso", "ymd", "dmy", "mdy", "d_mon_y", "mon_d_y", "compact", "epoch")
_EPOCH_UNITS = (None, "s", "ms", "us", "ns")


@dataclass(frozen=True)
class Dialect:
    """A CSV dialect for OHLCV files.

    time_format: iso (2024-01-02 09:15:00[+05:30]), ymd (2024.01.02 / 2024/01/02, see
    date_sep), dmy / mdy (02/01/2024 with date_sep), d_mon_y (02-Jan-2024), mon_d_y
    (Jan 02, 2024), compact (20240102 [093000]) or epoch (see epoch_unit).
    split_time: the time of day is its own column. tz_aware: times carry a UTC
    offset (epoch times are always UTC). header_style: plain (Date,Open,...) or
    metastock (<DATE>,<OPEN>,...). columns: role -> the file's column name
    (filled in by the parser, ignored by the writer).
    """

    delimiter: str = ","
    decimal: str = "."
    encoding: str = "utf-8"
    compression: str | None = None  # None | gzip | zip
    header: bool = True
    header_style: str = "plain"
    time_format: str = "iso"
    date_sep: str | None = "-"
    split_time: bool = False
    tz_aware: bool = False
    dayfirst: bool | None = None
    epoch_unit: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    member: str | None = None  # the CSV's name inside a zip

    def __post_init__(self) -> None:
        problems = []
        if self.delimiter not in (",", ";", "\t", "|"):
            problems.append(f"delimiter {self.delimiter!r} (use , ; tab or |)")
        if self.decimal not in (".", ","):
            problems.append(f"decimal {self.decimal!r} (use . or ,)")
        if self.decimal == "," and self.delimiter == ",":
            problems.append("decimal ',' with delimiter ','")
        if self.encoding not in ENCODINGS:
            problems.append(f"encoding {self.encoding!r} (use one of {', '.join(ENCODINGS)})")
        if self.compression not in (None, "gzip", "zip"):
            problems.append(f"compression {self.compression!r}")
        if self.time_format not in TIME_FORMATS:
            problems.append(f"time_format {self.time_format!r}")
        if self.header_style not in ("plain", "metastock"):
            problems.append(f"header_style {self.header_style!r}")
        if self.epoch_unit not in _EPOCH_UNITS:
            problems.append(f"epoch_unit {self.epoch_unit!r}")
        if self.time_format == "epoch" and self.split_time:
            problems.append("an epoch time cannot be split into date and time columns")
        if problems:
            raise EngineInputError("invalid CSV dialect: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)
