"""OHLCV bars as validated, immutable numpy columns, plus a small CSV reader for the CLI."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from engine.errors import EngineInputError

__all__ = ["PRICE_COLUMNS", "Bars", "check_tz", "read_csv_simple"]

PRICE_COLUMNS = ("open", "high", "low", "close")
_TIME_COLUMNS = ("timestamp", "datetime", "date", "time")


def check_tz(tz: str) -> str:
    """Return `tz` if it names an IANA time zone, else raise EngineInputError."""
    if not isinstance(tz, str) or not tz:
        raise EngineInputError(
            f"tz must be an IANA time zone name such as 'Asia/Kolkata', got {tz!r}"
        )
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise EngineInputError(
            f"unknown time zone {tz!r} (expected e.g. 'UTC', 'Asia/Kolkata')"
        ) from None
    return tz


def _row(i: int) -> str:
    return f"row {i}"


def _column(values: Any, name: str, n: int | None) -> np.ndarray:
    try:
        arr = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise EngineInputError(f"column {name!r} is not numeric: {exc}") from None
    if arr.ndim != 1:
        raise EngineInputError(f"column {name!r} must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise EngineInputError(f"column {name!r} has {arr.shape[0]} values but ts has {n}")
    return arr


def _to_ns(ts: Any) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch (UTC)."""
    if isinstance(ts, pd.DatetimeIndex | pd.Series) and isinstance(
        getattr(ts, "dtype", None), pd.DatetimeTZDtype
    ):
        idx = pd.DatetimeIndex(ts).tz_convert("UTC").tz_localize(None)
        return np.ascontiguousarray(idx.as_unit("ns").asi8, dtype=np.int64)
    arr = np.asarray(ts)
    if arr.ndim != 1:
        raise EngineInputError(f"ts must be one-dimensional, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.datetime64):
        if np.isnat(arr).any():
            raise EngineInputError(f"ts has a missing value at row {int(np.argmax(np.isnat(arr)))}")
        return np.ascontiguousarray(arr.astype("datetime64[ns]").view(np.int64))
    if np.issubdtype(arr.dtype, np.integer):
        return np.ascontiguousarray(arr.astype(np.int64))
    raise EngineInputError(f"ts must be int64 nanoseconds or datetime64, got dtype {arr.dtype}")


def _validate(
    ts: np.ndarray, cols: dict[str, np.ndarray], label: Callable[[int], str], check_ohlc: bool
) -> None:
    if ts.shape[0] == 0:
        raise EngineInputError("no bars: at least one row is required")
    if ts.shape[0] > 1:
        bad = np.flatnonzero(np.diff(ts) <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            kind = "duplicates" if ts[i] == ts[i - 1] else "is earlier than"
            raise EngineInputError(
                f"timestamps must be strictly increasing: {label(i)} {kind} {label(i - 1)}"
            )
    for name in PRICE_COLUMNS:
        col = cols[name]
        bad = np.flatnonzero(~(np.isfinite(col) & (col > 0)))
        if bad.size:
            i = int(bad[0])
            raise EngineInputError(
                f"{label(i)}: {name} must be a finite positive price, got {float(col[i])}"
            )
    vol = cols["volume"]
    bad = np.flatnonzero(~(np.isfinite(vol) & (vol >= 0)))
    if bad.size:
        i = int(bad[0])
        raise EngineInputError(f"{label(i)}: volume must be finite and >= 0, got {float(vol[i])}")
    if check_ohlc:
        o, h, lo, c = cols["open"], cols["high"], cols["low"], cols["close"]
        bad = np.flatnonzero((h < np.maximum(o, c)) | (lo > np.minimum(o, c)))
        if bad.size:
            i = int(bad[0])
            raise EngineInputError(
                f"{label(i)}: inconsistent OHLC (open={o[i]}, high={h[i]}, low={lo[i]}, "
                f"close={c[i]}): high must be >= open, close and low must be <= them"
            )


def _freeze(arr: np.ndarray) -> np.ndarray:
    # Always copy: freezing must never make the caller's own array read-only.
    out = np.array(arr, copy=True, order="C")
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class Bars:
    """Immutable OHLCV columns; `ts` is int64 ns UTC, `tz` the exchange time zone.

    Arrays are C-contiguous float64 (int64 for ts) and read-only, so a Bars can be
    shared between threads and cached without copies. Build one with `from_arrays`
    or `from_frame`, which validate; the constructor trusts its input.
    """

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    tz: str = "UTC"

    @classmethod
    def from_arrays(
        cls,
        ts: Any,
        open: Any,
        high: Any,
        low: Any,
        close: Any,
        volume: Any = None,
        tz: str = "UTC",
        *,
        check_ohlc: bool = True,
        _label: Callable[[int], str] = _row,
    ) -> Bars:
        """Validate and build: equal lengths, strictly increasing ts, finite positive prices.

        `ts` may be int64 ns UTC, datetime64 (taken as UTC) or a tz-aware pandas index.
        A missing `volume` becomes zeros. `check_ohlc` also requires
        low <= min(open, close) <= max(open, close) <= high.
        """
        check_tz(tz)
        ts_ns = _to_ns(ts)
        n = ts_ns.shape[0]
        cols = {
            "open": _column(open, "open", n),
            "high": _column(high, "high", n),
            "low": _column(low, "low", n),
            "close": _column(close, "close", n),
            "volume": np.zeros(n) if volume is None else _column(volume, "volume", n),
        }
        _validate(ts_ns, cols, _label, check_ohlc)
        return cls(
            ts=_freeze(ts_ns),
            open=_freeze(cols["open"]),
            high=_freeze(cols["high"]),
            low=_freeze(cols["low"]),
            close=_freeze(cols["close"]),
            volume=_freeze(cols["volume"]),
            tz=tz,
        )

    @classmethod
    def from_frame(cls, df: pd.DataFrame, tz: str = "UTC", *, check_ohlc: bool = True) -> Bars:
        """Build from a frame with a DatetimeIndex (or a timestamp column) and OHLC[V] columns.

        Naive times are exchange-local wall-clock times in `tz`; aware ones are converted.
        """
        check_tz(tz)
        lower = {str(c).lower(): c for c in df.columns}
        missing = [c for c in PRICE_COLUMNS if c not in lower]
        if missing:
            raise EngineInputError(f"frame is missing column(s) {', '.join(missing)}")
        if isinstance(df.index, pd.DatetimeIndex):
            times: Any = df.index
        else:
            key = next((lower[c] for c in _TIME_COLUMNS if c in lower), None)
            if key is None:
                raise EngineInputError("frame needs a DatetimeIndex or a timestamp column")
            times = pd.DatetimeIndex(pd.to_datetime(df[key]))
        times = _localize(pd.DatetimeIndex(times), tz)
        vol = df[lower["volume"]].to_numpy(np.float64) if "volume" in lower else None
        return cls.from_arrays(
            times,
            *(df[lower[c]].to_numpy(np.float64) for c in PRICE_COLUMNS),
            volume=vol,
            tz=tz,
            check_ohlc=check_ohlc,
        )

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame indexed by exchange-local aware timestamps, columns open..volume."""
        idx = pd.DatetimeIndex(self.ts.view("datetime64[ns]"), name="timestamp")
        idx = idx.tz_localize("UTC").tz_convert(self.tz)
        return pd.DataFrame(
            {
                "open": self.open,
                "high": self.high,
                "low": self.low,
                "close": self.close,
                "volume": self.volume,
            },
            index=idx,
            copy=True,
        )

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def __repr__(self) -> str:
        n = len(self)
        if n == 0:
            return f"Bars(0 bars, tz={self.tz!r})"
        first, last = (
            pd.Timestamp(int(t), tz="UTC").tz_convert(self.tz) for t in (self.ts[0], self.ts[-1])
        )
        return f"Bars({n} bars, {first.isoformat()} .. {last.isoformat()}, tz={self.tz!r})"

    def slice(self, a: int | None, b: int | None = None) -> Bars:
        """Bars [a, b) as views (Python slice semantics, no copy)."""
        s = slice(a, b)
        return Bars(
            ts=self.ts[s],
            open=self.open[s],
            high=self.high[s],
            low=self.low[s],
            close=self.close[s],
            volume=self.volume[s],
            tz=self.tz,
        )


def _localize(idx: pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    if idx.tz is None:
        try:
            return idx.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError) as exc:  # DST gaps/overlaps in naive local times
            raise EngineInputError(f"naive timestamps cannot be placed in {tz}: {exc}") from None
    return idx


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _line(i: int) -> str:
    return f"line {i + 2}"  # header is line 1


def _parse_times(raw: pd.Series, col: str, tz: str) -> pd.DatetimeIndex:
    if pd.api.types.is_numeric_dtype(raw):
        vals = raw.to_numpy(np.float64)
        if np.isnan(vals).any():
            i = int(np.argmax(np.isnan(vals)))
            raise EngineInputError(f"{_line(i)}: column {col!r} is empty")
        # Epoch numbers: pick the unit by magnitude (s, ms, us, ns).
        mag = np.nanmax(np.abs(vals)) if vals.size else 0.0
        unit = "s" if mag < 1e11 else "ms" if mag < 1e14 else "us" if mag < 1e17 else "ns"
        return pd.DatetimeIndex(pd.to_datetime(vals, unit=unit, utc=True))
    text = raw.astype("string").str.strip()
    try:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=False)
    except (ValueError, TypeError):  # mixed UTC offsets: normalise to UTC
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise EngineInputError(
            f"{_line(i)}: column {col!r} is not a date/time: {raw.iloc[i]!r} "
            "(expected ISO 8601 such as 2024-01-02 09:15:00+05:30)"
        )
    return _localize(pd.DatetimeIndex(parsed), tz)


def read_csv_simple(path: str | os.PathLike[str], tz: str = "UTC") -> Bars:
    """Read a tidy OHLCV CSV (optionally .gz) into Bars.

    Columns, in any case: one of timestamp|datetime|date|time (or `date` plus `time`),
    open, high, low, close and optionally volume; extra columns are ignored. Naive
    times are wall-clock times in `tz`; times with an offset are converted. Any
    problem raises a one-line EngineInputError naming the line and column.
    """
    check_tz(tz)
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise EngineInputError(f"data file not found: {name}")
    try:
        header = pd.read_csv(name, nrows=0)
        # Time columns stay text (parsed below); prices go through the fast C parser.
        text_cols = {c: str for c in header.columns if str(c).strip().lower() in _TIME_COLUMNS}
        df = pd.read_csv(name, dtype=text_cols, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise EngineInputError(f"{name}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EngineInputError(f"{name}: not a readable CSV file: {first}") from None
    lower: dict[str, str] = {}
    for c in df.columns:
        lower.setdefault(str(c).strip().lower(), c)
    missing = [c for c in PRICE_COLUMNS if c not in lower]
    if missing:
        found = ", ".join(map(str, df.columns)) or "none"
        raise EngineInputError(f"{name}: missing column(s) {', '.join(missing)} (found: {found})")
    if "date" in lower and "time" in lower and not {"timestamp", "datetime"} & lower.keys():
        time_col = "date+time"
        raw_times = (
            df[lower["date"]].fillna("").str.strip()
            + " "
            + df[lower["time"]].fillna("").str.strip()
        )
    else:
        key = next((c for c in _TIME_COLUMNS if c in lower), None)
        if key is None:
            raise EngineInputError(
                f"{name}: no time column (expected one of {', '.join(_TIME_COLUMNS)})"
            )
        time_col = lower[key]
        raw_times = df[time_col].fillna("")
        if len(raw_times) and _is_number(str(raw_times.iloc[0])):  # epoch seconds/ms/us/ns
            num = pd.to_numeric(raw_times, errors="coerce")
            if num.notna().all():
                raw_times = num
    if len(df) == 0:
        raise EngineInputError(f"{name}: no data rows after the header")
    try:
        times = _parse_times(raw_times, time_col, tz)
    except EngineInputError as exc:
        raise EngineInputError(f"{name}: {exc}") from None
    values: dict[str, np.ndarray] = {}
    for c in (*PRICE_COLUMNS, "volume"):
        if c not in lower:
            continue
        col = df[lower[c]]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            num = col.to_numpy(np.float64)
        else:
            num = pd.to_numeric(col.astype("string").str.strip(), errors="coerce").to_numpy(
                np.float64, na_value=np.nan
            )
        bad = np.flatnonzero(np.isnan(num))
        if bad.size:
            i = int(bad[0])
            raw = col.iloc[i]
            what = "is empty" if pd.isna(raw) else f"is not a number: {str(raw).strip()!r}"
            raise EngineInputError(f"{name}: {_line(i)}: column {lower[c]!r} {what}")
        values[c] = num

    def label(i: int) -> str:
        return f"{name}: {_line(i)}"

    return Bars.from_arrays(
        times,
        values["open"],
        values["high"],
        values["low"],
        values["close"],
        values.get("volume"),
        tz=tz,
        _label=label,
    )
