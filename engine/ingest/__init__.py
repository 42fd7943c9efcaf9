"""Dataset ingest: OHLCV CSV uploads to validated Bars, with every repair reported.

Principle: accept what can be read without guessing, repair only with an explicit
warning, reject the rest with an `IngestError(code, message, line, column)` whose
message starts "line N, column 'X': ". Lines are 1-based lines of the decompressed
file as an editor shows them (blank lines and CRLF included).

What is read
    gzip, or a zip holding exactly one file (archive junk such as __MACOSX ignored),
    up to `max_decompressed_bytes`; UTF-8 with or without BOM, UTF-16 with BOM;
    delimiter , ; tab or | (sniffed; an Excel "sep=;" line is honoured); decimal
    point, or decimal comma when the delimiter is not a comma; a header in any case
    and common aliases (Date, Time, <DATE>, <DTYYYYMMDD>, Datetime, Timestamp, Gmt
    time, open_time, o/h/l/c/v, Last, Vol, <TICKVOL>, German/French/Spanish names)
    or no header (the first date field, an optional time-of-day field, then open,
    high, low, close, volume: NO_HEADER warning); times as ISO 8601 with or without
    an offset, yyyy.mm.dd / yyyy/mm/dd, dd/mm/yyyy or mm/dd/yyyy (order told by a
    field above 12, else AMBIGUOUS_DATE unless `dayfirst` is given), 02-Jan-2024,
    "Jan 02, 2024", yyyymmdd[ HHMMSS], 12-hour AM/PM clocks, a separate time column
    (09:15, 09:15:00.5, 0915, 093000), and epoch s/ms/us/ns told by magnitude.
    Columns known to be irrelevant (ticker, per, open interest, spread, trades...)
    are ignored silently; unknown ones with COLUMNS_IGNORED. "Adj Close" is ignored
    (ADJ_CLOSE_IGNORED): prices stay as traded, since only the close is adjusted
    and mixing it with raw open/high/low would break the bars.

Repaired, with a warning (IngestWarning code)
    BLANK_LINES        empty or whitespace-only lines skipped
    EMPTY_ROWS         rows whose every field is empty (,,,,,) dropped
    MISSING_ROWS       rows with a time but no price at all (null/NaN/empty) dropped
    MISSING_VOLUME     an empty volume cell set to 0
    NO_VOLUME          no volume column: volume 0
    VOLUME_FROM_TICKS  no real volume, or real volume all 0: tick volume used
    UNSORTED           rows out of time order (or newest first) sorted, stable
    DUPLICATE_ROWS     rows repeating an earlier row exactly (same time and values) dropped
    TZ_ASSUMED         naive times and no `tz` given: read as UTC
    NO_HEADER / COLUMNS_IGNORED / ADJ_CLOSE_IGNORED   notes on how columns were read

Rejected (IngestError code; line and column where they apply)
    EMPTY_FILE          no bytes, no rows, or no row with prices
    TOO_LARGE           over max_decompressed_bytes once decompressed (zip bombs too)
    ARCHIVE_INVALID     corrupt/truncated/encrypted archive
    ZIP_MEMBERS         a zip without exactly one file
    UNSUPPORTED_FORMAT  xlsx/xls, bzip2, xz, zstd, 7z, rar, parquet, pdf, nested archives
    ENCODING            not UTF-8 (no code-page guessing), NUL bytes (UTF-16 without BOM)
    DELIMITER           no delimiter splits the lines into columns
    FIELD_COUNT / CSV_SYNTAX   a row with the wrong number of fields, broken quoting
    LINE_TOO_LONG / FIELD_TOO_LONG / TOO_MANY_COLUMNS   16 KiB lines, 128-char cells, 64 columns
    MISSING_COLUMN      no time or no open/high/low/close (an adjusted close alone is not one)
    DUPLICATE_COLUMN    two columns claim one role (Close and Last), or two time columns
    FORMULA             a cell (any column, header included) starting with = + - @
                        that is not a number: spreadsheet formula / CSV injection
    NON_NUMERIC         a price or volume that is not a plain decimal number ($, 1,234.5)
    MISSING_VALUE       some but not all prices of a row empty, or prices without a time
    BAD_PRICE           a price <= 0 or not finite
    NEGATIVE_VOLUME     volume < 0
    OHLC_INCONSISTENT   high below low, open or close; low above open or close
    BAD_TIMESTAMP       unreadable, impossible (30 Feb, 25:00) or two-digit-year dates,
                        or a value in another format than the first row
    AMBIGUOUS_DATE      day/month order not shown by the data (or contradicted)
    MIXED_EPOCH_UNIT    epoch unit changing inside the file
    MIXED_TIMEZONE      times with and without a UTC offset in one file
    DST_TIME            a naive local time that a DST change skips or repeats
    DUPLICATE_CONFLICT  two rows with one time and different values (names both lines)

`parse_ohlcv` returns an `IngestResult` (bars, warnings, dialect, timeframe, rows,
content_hash, source_bytes); `quality_report` scores the result; `write_csv` writes
Bars back out in any supported `Dialect`.
"""

from engine.ingest.dialect import Dialect
from engine.ingest.errors import Codes, IngestError, IngestWarning
from engine.ingest.parse import IngestResult, bars_hash, parse_ohlcv
from engine.ingest.quality import Check, QualityReport, quality_report
from engine.ingest.writer import write_csv

__all__ = [
    "Check",
    "Codes",
    "Dialect",
    "IngestError",
    "IngestResult",
    "IngestWarning",
    "QualityReport",
    "bars_hash",
    "parse_ohlcv",
    "quality_report",
    "write_csv",
]
