"""Hostile input: whatever the bytes, parse_ohlcv returns bars or raises IngestError."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.ingest import Dialect, IngestError, parse_ohlcv, write_csv
from engine.ingest.dialect import TIME_FORMATS
from engine.ingest.values import NUMBER
from engine.synthetic import synthetic_daily, synthetic_intraday

BARS = [synthetic_intraday(2, 3).slice(0, 40), synthetic_daily(1, 2).slice(0, 40)]
CELLS = [
    "",
    "null",
    "NaN",
    "-",
    "=1+1",
    "@x",
    "+cmd",
    "1e999",
    "-5",
    "0",
    "abc",
    "01/02/2024",
    "2024-13-01",
    "1704067200",
    "1704067200000",
    " ",
    '"q,"',
    "x" * 200,
]


def _parse_or_reject(raw: bytes, **kw: object) -> None:
    try:
        parse_ohlcv(raw, **kw)  # type: ignore[arg-type]
    except IngestError as exc:
        assert "\n" not in str(exc) and exc.code


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=400))
def test_random_bytes(raw: bytes) -> None:
    _parse_or_reject(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    k=st.integers(0, 1),
    fmt=st.sampled_from(TIME_FORMATS),
    delim=st.sampled_from([",", ";", "\t"]),
    header=st.booleans(),
    data=st.data(),
)
def test_edited_real_files(k: int, fmt: str, delim: str, header: bool, data: st.DataObject) -> None:
    decimal = "." if delim == "," else data.draw(st.sampled_from([".", ","]))
    sep = {"ymd": ".", "dmy": "/", "mdy": "/"}.get(fmt, "-")
    d = Dialect(
        delimiter=delim,
        decimal=decimal,
        time_format=fmt,
        date_sep=sep,
        header=header,
        epoch_unit="s" if fmt == "epoch" else None,
    )
    lines = write_csv(BARS[k], d).decode().split("\n")
    for _ in range(data.draw(st.integers(1, 5))):
        op = data.draw(st.integers(0, 4))
        i = data.draw(st.integers(0, len(lines) - 1))
        if op == 0:  # swap two lines
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 1:  # repeat a line
            lines.insert(i, lines[data.draw(st.integers(0, len(lines) - 1))])
        elif op == 2:  # replace a cell
            cells = lines[i].split(delim)
            cells[data.draw(st.integers(0, len(cells) - 1))] = data.draw(st.sampled_from(CELLS))
            lines[i] = delim.join(cells)
        elif op == 3:
            lines.insert(i, "")
        else:
            del lines[i]
    dayfirst = {"dmy": True, "mdy": False}.get(fmt)
    _parse_or_reject("\n".join(lines).encode(), tz=BARS[k].tz, dayfirst=dayfirst)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="0123456789.eE+- xnaif_,dD\t", max_size=8))
def test_arrow_reads_no_finite_number_outside_the_grammar(text: str) -> None:
    """Guards the fast path in values.to_numbers, which trusts Arrow's float parser."""
    try:
        value = pc.cast(pa.array([text]), pa.float64())[0].as_py()
    except pa.ArrowInvalid:
        return
    if value is not None and np.isfinite(value):
        assert re.match(NUMBER, text), text
