"""`parse_ohlcv`: uploaded bytes to validated Bars, the warnings of every repair, the dialect."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.bars import Bars, check_tz
from engine.calendar import infer_timeframe
from engine.ingest.columns import SAMPLE_LINES, Layout, sniff_layout
from engine.ingest.decode import DEFAULT_MAX_DECOMPRESSED_BYTES, Decoded, decode_bytes
from engine.ingest.dialect import Dialect
from engine.ingest.errors import Codes, IngestError, IngestWarning
from engine.ingest.rows import PRICE_ROLES, Columns, check_prices, sort_and_dedupe
from engine.ingest.table import head_lines, read_columns
from engine.ingest.times import TimeInfo, parse_timestamps
from engine.ingest.values import (
    MISSING_TOKENS,
    check_field_lengths,
    check_text_cells,
    to_numbers,
)

__all__ = ["IngestResult", "bars_hash", "parse_ohlcv"]

_DECIMAL_SAMPLE = 5_000
_USED_ROLES = ("datetime", "date", "time", *PRICE_ROLES, "volume", "tickvol")


@dataclass(frozen=True)
class IngestResult:
    """Parsed bars plus everything learned on the way."""

    bars: Bars
    warnings: list[IngestWarning]
    dialect: Dialect
    timeframe: str
    rows: int
    content_hash: str
    source_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no bar arrays)."""
        return {
            "rows": self.rows,
            "timeframe": self.timeframe,
            "content_hash": self.content_hash,
            "source_bytes": self.source_bytes,
            "tz": self.bars.tz,
            "dialect": self.dialect.to_dict(),
            "warnings": [w.to_dict() for w in self.warnings],
        }


def bars_hash(bars: Bars) -> str:
    """sha256 of the canonical arrays (ts, open, high, low, close, volume; little-endian).

    The exchange time zone is not part of it: the same instants and values are the
    same data however the file spelled them.
    """
    h = hashlib.sha256(b"ohlcv-v1\0")
    h.update(np.ascontiguousarray(bars.ts, dtype="<i8").tobytes())
    for col in (bars.open, bars.high, bars.low, bars.close, bars.volume):
        h.update((np.ascontiguousarray(col, dtype="<f8") + 0.0).tobytes())  # -0.0 -> 0.0
    return h.hexdigest()


def _bools(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def _decimal(cols: list[pa.Array], layout: Layout) -> tuple[str, bool]:
    """(decimal separator, whether the sample showed one) from the first rows.

    Safe on a sample: the number grammar of the chosen separator rejects the other
    one, so a wrong choice can only reject, never misread.
    """
    if layout.delimiter == ",":
        return ".", True
    numeric = [
        cols[layout.roles[r]].slice(0, _DECIMAL_SAMPLE)
        for r in (*PRICE_ROLES, "volume", "tickvol")
        if r in layout.roles
    ]
    has_comma = any(pc.any(pc.match_substring(c, ",")).as_py() for c in numeric)
    has_dot = any(pc.any(pc.match_substring(c, ".")).as_py() for c in numeric)
    return ("," if has_comma and not has_dot else "."), has_comma or has_dot


def _time_missing(col: pa.Array) -> np.ndarray:
    trimmed = pc.utf8_trim_whitespace(col)
    short = _bools(pc.less_equal(pc.utf8_length(trimmed), 4))
    out = np.zeros(len(col), dtype=bool)
    if short.any():
        idx = np.flatnonzero(short)
        sub = pc.utf8_lower(pc.take(trimmed, pa.array(idx)))
        out[idx] = _bools(pc.is_in(sub, pa.array(MISSING_TOKENS)))
    return out


def _row_empty(cols: list[pa.Array], idx: np.ndarray) -> np.ndarray:
    empty = np.ones(idx.size, dtype=bool)
    taken = pa.array(idx)
    for col in cols:
        lengths = pc.utf8_length(pc.utf8_trim_whitespace(pc.take(col, taken)))
        empty &= _bools(pc.equal(lengths, 0))
    return empty


class _Reader:
    """One parse: the decoded text, its layout, and the warnings gathered so far."""

    def __init__(self, dec: Decoded, layout: Layout, tz: str | None) -> None:
        self.dec = dec
        self.layout = layout
        self.tz = tz or "UTC"
        self.tz_given = tz is not None
        self.warnings: list[IngestWarning] = []
        self.lines = dec.line_numbers[layout.skip_lines :]

    def name(self, role: str) -> str:
        return self.layout.names[self.layout.roles[role]]

    def warn(
        self, code: str, message: str, line: int | None, column: str | None, count: int
    ) -> None:
        self.warnings.append(IngestWarning(code, message, line, column, count))

    def file_warnings(self) -> None:
        lay, dec = self.layout, self.dec
        if dec.blank_lines:
            self.warn(
                Codes.BLANK_LINES,
                f"{dec.blank_lines} blank line(s) skipped",
                dec.first_blank_line,
                None,
                dec.blank_lines,
            )
        if not lay.header:
            mapping = ", ".join(f"{r}={lay.roles[r] + 1}" for r in lay.roles)
            self.warn(
                Codes.NO_HEADER,
                "no header line: fields taken in the usual order "
                f"(time, open, high, low, close, volume): {mapping}",
                None,
                None,
                1,
            )
        if lay.unknown:
            self.warn(
                Codes.COLUMNS_IGNORED,
                "column(s) not used: " + ", ".join(repr(u) for u in lay.unknown),
                None,
                None,
                len(lay.unknown),
            )
        if "adjclose" in lay.roles:
            self.warn(
                Codes.ADJ_CLOSE_IGNORED,
                "the adjusted close is not used: prices are kept "
                "as traded (open/high/low are not adjusted, so mixing them would break "
                "the bars)",
                None,
                self.name("adjclose"),
                1,
            )

    def check_cells(self, cols: list[pa.Array]) -> None:
        used = {self.layout.roles[r] for r in _USED_ROLES if r in self.layout.roles}
        for i, col in enumerate(cols):
            check_field_lengths(col, self.lines, self.layout.names[i])
        for i, col in enumerate(cols):
            if i not in used:
                check_text_cells(col, self.lines, self.layout.names[i])

    def numbers(self, cols: list[pa.Array], role: str, decimal: str) -> Any:
        return to_numbers(
            cols[self.layout.roles[role]], decimal=decimal, lines=self.lines, name=self.name(role)
        )

    def drop_missing(self, cols: list[pa.Array], prices: dict[str, Any]) -> np.ndarray | None:
        """Rows to keep (None = all): rows with no price at all go, partial rows reject."""
        time_roles = [r for r in ("datetime", "date", "time") if r in self.layout.roles]
        time_miss = {r: _time_missing(cols[self.layout.roles[r]]) for r in time_roles}
        time_missing = np.logical_or.reduce(list(time_miss.values()))
        masks = [prices[r].missing for r in PRICE_ROLES]
        if all(m is None for m in masks) and not time_missing.any():
            return None
        n = len(self.lines)
        miss = np.stack([m if m is not None else np.zeros(n, dtype=bool) for m in masks])
        none_left = miss.all(axis=0)
        partial = miss.any(axis=0) & ~none_left
        bad_time = time_missing & ~none_left
        if partial.any() or bad_time.any():
            i_p = int(np.argmax(partial)) if partial.any() else n
            i_t = int(np.argmax(bad_time)) if bad_time.any() else n
            if i_t <= i_p:
                role = next(r for r in time_roles if time_miss[r][i_t])
                raise IngestError(
                    Codes.MISSING_VALUE,
                    "the time is empty but the row has prices",
                    int(self.lines[i_t]),
                    self.name(role),
                )
            role = PRICE_ROLES[int(np.argmax(miss[:, i_p]))]
            raise IngestError(
                Codes.MISSING_VALUE,
                f"{role} is empty while other prices of the row are not (a partial bar "
                "cannot be repaired without guessing)",
                int(self.lines[i_p]),
                self.name(role),
            )
        dropped = np.flatnonzero(none_left)
        empty = _row_empty(cols, dropped)
        for sel, code, text in (
            (dropped[empty], Codes.EMPTY_ROWS, "row(s) with every field empty dropped"),
            (
                dropped[~empty],
                Codes.MISSING_ROWS,
                "row(s) without any price (null/NaN/empty) dropped",
            ),
        ):
            if sel.size:
                self.warn(code, f"{sel.size} {text}", int(self.lines[sel[0]]), None, int(sel.size))
        return ~none_left

    def volume(
        self, cols: list[pa.Array], decimal: str, keep: np.ndarray | None, n: int
    ) -> tuple[np.ndarray, str | None]:
        roles = self.layout.roles

        def load(role: str) -> np.ndarray:
            num = self.numbers(cols, role, decimal)
            vals = num.values if keep is None else num.values[keep]
            miss = num.missing if keep is None or num.missing is None else num.missing[keep]
            if miss is not None and miss.any():
                lines = self.lines if keep is None else self.lines[keep]
                self.warn(
                    Codes.MISSING_VOLUME,
                    f"{int(miss.sum())} empty volume cell(s) set to 0",
                    int(lines[int(np.argmax(miss))]),
                    self.name(role),
                    int(miss.sum()),
                )
                vals = np.where(miss, 0.0, vals)
            return vals

        if "volume" in roles:
            vol = load("volume")
            if "tickvol" in roles and n and not vol.any():
                self.warn(
                    Codes.VOLUME_FROM_TICKS,
                    f"{self.name('volume')!r} is all zero; "
                    f"tick volume {self.name('tickvol')!r} used instead",
                    None,
                    self.name("tickvol"),
                    1,
                )
                return load("tickvol"), "tickvol"
            return vol, "volume"
        if "tickvol" in roles:
            self.warn(
                Codes.VOLUME_FROM_TICKS,
                f"no real volume column; tick volume {self.name('tickvol')!r} used",
                None,
                self.name("tickvol"),
                1,
            )
            return load("tickvol"), "tickvol"
        self.warn(Codes.NO_VOLUME, "no volume column: volume set to 0", None, None, 1)
        return np.zeros(n), None

    def times(
        self, cols: list[pa.Array], keep: np.ndarray | None, dayfirst: bool | None
    ) -> tuple[np.ndarray, TimeInfo]:
        roles = self.layout.roles
        date_role = "datetime" if "datetime" in roles else "date"
        mask = None if keep is None else pa.array(keep)

        def column(role: str) -> pa.Array:
            col = pc.utf8_trim_whitespace(cols[roles[role]])
            return col if mask is None else pc.filter(col, mask)

        lines = self.lines if keep is None else self.lines[keep]
        return parse_timestamps(
            column(date_role),
            column("time") if "time" in roles else None,
            lines=lines,
            date_name=self.name(date_role),
            time_name=self.name("time") if "time" in roles else None,
            tz=self.tz,
            dayfirst=dayfirst,
        )


def _parse(
    dec: Decoded, tz: str | None, dayfirst: bool | None
) -> tuple[Bars, list[IngestWarning], Dialect]:
    head = head_lines(dec, SAMPLE_LINES + 1)
    layout = sniff_layout(head, [int(x) for x in dec.line_numbers[: len(head)]])
    r = _Reader(dec, layout, tz)
    if len(r.lines) == 0:
        raise IngestError(Codes.EMPTY_FILE, "the file has a header but no data rows")
    r.file_warnings()
    cols = read_columns(dec, layout)
    r.check_cells(cols)
    decimal, certain = _decimal(cols, layout)
    try:
        prices = {role: r.numbers(cols, role, decimal) for role in PRICE_ROLES}
    except IngestError as exc:
        if certain or exc.code != Codes.NON_NUMERIC:
            raise
        try:  # whole numbers at the top, decimal commas further down
            decimal = ","
            prices = {role: r.numbers(cols, role, decimal) for role in PRICE_ROLES}
        except IngestError:
            raise exc from None
    date_role = "datetime" if "datetime" in layout.roles else "date"
    keep = r.drop_missing(cols, prices)
    n = len(r.lines) if keep is None else int(keep.sum())
    if n == 0:
        raise IngestError(Codes.EMPTY_FILE, "no row has prices")
    vol, vol_role = r.volume(cols, decimal, keep, n)
    ts, info = r.times(cols, keep, dayfirst)
    if not info.tz_aware and not r.tz_given:
        r.warn(
            Codes.TZ_ASSUMED,
            "the times have no UTC offset and no time zone was given: read as UTC",
            None,
            r.name(date_role),
            1,
        )
    pick = (lambda a: a) if keep is None else (lambda a: a[keep])
    names = {role: layout.names[i] for role, i in layout.roles.items()}
    if vol_role is not None:
        names["volume"] = layout.names[layout.roles[vol_role]]
    c = Columns(ts, *(pick(prices[p].values) for p in PRICE_ROLES), vol, pick(r.lines), names)
    check_prices(c)
    c, more = sort_and_dedupe(c, r.tz)
    r.warnings.extend(more)
    bars = Bars.from_arrays(c.ts, c.open, c.high, c.low, c.close, c.volume, tz=r.tz)
    dialect = Dialect(
        delimiter=layout.delimiter,
        decimal=decimal,
        encoding=dec.encoding,
        compression=dec.compression,
        header=layout.header,
        header_style=layout.header_style,
        time_format=info.time_format,
        date_sep=info.date_sep,
        split_time=info.split_time,
        tz_aware=info.tz_aware,
        dayfirst=info.dayfirst,
        epoch_unit=info.epoch_unit,
        columns={role: layout.names[i] for role, i in layout.roles.items()},
        member=dec.member,
    )
    return bars, r.warnings, dialect


def parse_ohlcv(
    data: bytes,
    *,
    filename: str | None = None,
    tz: str | None = None,
    dayfirst: bool | None = None,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> IngestResult:
    """Read an OHLCV CSV upload (plain, gzip or zip) into Bars, or raise IngestError.

    `tz` is the exchange time zone: naive times are wall-clock times there, and it
    becomes `bars.tz` (None: UTC, with a TZ_ASSUMED warning when times are naive).
    `dayfirst` settles dd/mm vs mm/dd when the data cannot. `filename` only improves
    messages. See the package docstring for what is repaired and what is rejected.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if tz is not None:
        check_tz(tz)
    raw = bytes(data)
    try:
        dec = decode_bytes(raw, max_decompressed_bytes=max_decompressed_bytes)
    except IngestError as exc:
        if filename and exc.code == Codes.ENCODING and filename.lower().endswith((".xls", ".xlsx")):
            raise IngestError(
                exc.code, "this is an Excel file; save it as CSV (UTF-8) first"
            ) from None
        raise
    bars, warnings, dialect = _parse(dec, tz, dayfirst)
    return IngestResult(
        bars=bars,
        warnings=warnings,
        dialect=dialect,
        timeframe=infer_timeframe(bars.ts),
        rows=len(bars),
        content_hash=bars_hash(bars),
        source_bytes=len(raw),
    )
