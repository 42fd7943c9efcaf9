"""Splitting the cleaned text into string columns with pyarrow's CSV reader."""

from __future__ import annotations

import csv

import pyarrow as pa
import pyarrow.csv as pcsv

from engine.ingest.columns import Layout
from engine.ingest.decode import Decoded
from engine.ingest.errors import Codes, IngestError

__all__ = ["head_lines", "read_columns"]


def head_lines(dec: Decoded, n: int) -> list[str]:
    """The first `n` kept lines as text."""
    out: list[str] = []
    start = 0
    data = dec.data
    while len(out) < n and start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        out.append(data[start:end].decode("utf-8"))
        start = end + 1
    return out


def _locate(dec: Decoded, layout: Layout, fallback: str) -> IngestError:
    """The first data line whose field count is wrong (slow; only after a failure)."""
    lines = dec.data.decode("utf-8").split("\n")
    d = layout.delimiter
    for k in range(layout.skip_lines, len(lines)):
        text = lines[k]
        n = text.count(d) + 1 if '"' not in text else len(next(csv.reader([text], delimiter=d)))
        if n != layout.n_columns:
            what = "fields" if n != 1 else "field"
            return IngestError(
                Codes.FIELD_COUNT,
                f"{n} {what} where the file has {layout.n_columns} columns",
                line=int(dec.line_numbers[k]),
            )
    return IngestError(Codes.CSV_SYNTAX, f"the file is not valid CSV: {fallback}")


def read_columns(dec: Decoded, layout: Layout) -> list[pa.Array]:
    """Every column of the data rows as a pyarrow string array (no type guessing)."""
    names = [f"c{i}" for i in range(layout.n_columns)]
    try:
        table = pcsv.read_csv(
            pa.py_buffer(dec.data),
            read_options=pcsv.ReadOptions(column_names=names, skip_rows=layout.skip_lines),
            parse_options=pcsv.ParseOptions(
                delimiter=layout.delimiter,
                quote_char='"',
                double_quote=True,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=True,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _locate(dec, layout, first) from None
    expected = dec.line_numbers.shape[0] - layout.skip_lines
    if table.num_rows != expected:
        raise _locate(dec, layout, f"read {table.num_rows} rows from {expected} lines")
    return [table.column(i).combine_chunks() for i in range(layout.n_columns)]
