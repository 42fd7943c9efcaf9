"""Ingest problems: the rejecting `IngestError`, the repairing `IngestWarning` and their codes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from engine.errors import EngineInputError

__all__ = ["Codes", "IngestError", "IngestWarning", "where"]


class Codes:
    """Every problem code, named once. Errors reject the file; warnings describe a repair."""

    # -- rejections (IngestError.code) -------------------------------------------------
    EMPTY_FILE = "EMPTY_FILE"
    TOO_LARGE = "TOO_LARGE"
    ARCHIVE_INVALID = "ARCHIVE_INVALID"
    ZIP_MEMBERS = "ZIP_MEMBERS"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    ENCODING = "ENCODING"
    DELIMITER = "DELIMITER"
    FIELD_COUNT = "FIELD_COUNT"
    CSV_SYNTAX = "CSV_SYNTAX"
    LINE_TOO_LONG = "LINE_TOO_LONG"
    FIELD_TOO_LONG = "FIELD_TOO_LONG"
    TOO_MANY_COLUMNS = "TOO_MANY_COLUMNS"
    MISSING_COLUMN = "MISSING_COLUMN"
    DUPLICATE_COLUMN = "DUPLICATE_COLUMN"
    FORMULA = "FORMULA"
    NON_NUMERIC = "NON_NUMERIC"
    MISSING_VALUE = "MISSING_VALUE"
    BAD_PRICE = "BAD_PRICE"
    NEGATIVE_VOLUME = "NEGATIVE_VOLUME"
    OHLC_INCONSISTENT = "OHLC_INCONSISTENT"
    BAD_TIMESTAMP = "BAD_TIMESTAMP"
    AMBIGUOUS_DATE = "AMBIGUOUS_DATE"
    MIXED_EPOCH_UNIT = "MIXED_EPOCH_UNIT"
    MIXED_TIMEZONE = "MIXED_TIMEZONE"
    DST_TIME = "DST_TIME"
    DUPLICATE_CONFLICT = "DUPLICATE_CONFLICT"

    # -- repairs and notes (IngestWarning.code) ----------------------------------------
    BLANK_LINES = "BLANK_LINES"
    EMPTY_ROWS = "EMPTY_ROWS"
    MISSING_ROWS = "MISSING_ROWS"
    MISSING_VOLUME = "MISSING_VOLUME"
    NO_VOLUME = "NO_VOLUME"
    VOLUME_FROM_TICKS = "VOLUME_FROM_TICKS"
    UNSORTED = "UNSORTED"
    DUPLICATE_ROWS = "DUPLICATE_ROWS"
    ADJ_CLOSE_IGNORED = "ADJ_CLOSE_IGNORED"
    COLUMNS_IGNORED = "COLUMNS_IGNORED"
    NO_HEADER = "NO_HEADER"
    TZ_ASSUMED = "TZ_ASSUMED"


def where(line: int | None, column: str | None) -> str:
    """The "line 7, column 'High': " prefix every located message starts with."""
    parts = []
    if line is not None:
        parts.append(f"line {line}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts) + ": " if parts else ""


class IngestError(EngineInputError):
    """The file is rejected. `line` is the 1-based line in the (decompressed) file.

    The message already names the line and column; `code` is one of `Codes`.
    """

    def __init__(
        self, code: str, message: str, line: int | None = None, column: str | None = None
    ) -> None:
        super().__init__(where(line, column) + message)
        self.code = code
        self.line = line
        self.column = column

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for API error extensions)."""
        return {"code": self.code, "message": str(self), "line": self.line, "column": self.column}


@dataclass(frozen=True)
class IngestWarning:
    """A repair made (or an assumption taken) while reading; `count` rows/cells affected.

    `line` is the first affected 1-based line (None when the warning is about the file).
    """

    code: str
    message: str
    line: int | None = None
    column: str | None = None
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)
