"""Turning engine results into rows: JSON-safe values, trade rows, compact equity curves.

An equity curve is stored as one row per run: int64 timestamps delta-encoded, both
arrays little-endian and zlib-compressed. A million-bar curve costs a few MB, not a
million rows.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import numpy as np

__all__ = ["EQUITY_ENCODING", "decode_equity", "encode_equity", "json_safe", "trade_rows"]

EQUITY_ENCODING = "zlib-delta-v1"

_TRADE_COLUMNS = (
    "side",
    "qty",
    "entry_time",
    "exit_time",
    "entry_idx",
    "exit_idx",
    "entry_price",
    "exit_price",
    "pnl",
    "commission",
    "exit_reason",
    "is_open",
)
_INT_COLUMNS = {"side", "entry_time", "exit_time", "entry_idx", "exit_idx"}


def json_safe(value: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, NaN/inf become None, tuples become lists."""
    kind = type(value)  # the common exact types first (trial logs call this ~30 times a trial)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int or kind is str or kind is bool or value is None:
        return value
    if kind is dict:
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, Iterable):
        return [json_safe(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value))
    return str(value)


def _fields(trade: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(trade) and not isinstance(trade, type):
        return {f.name: getattr(trade, f.name) for f in dataclasses.fields(trade)}
    if isinstance(trade, Mapping):
        return dict(trade)
    return dict(vars(trade))


def _column_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if name == "is_open":
        return bool(value)
    if name == "exit_reason":
        return str(value)
    if name in _INT_COLUMNS:
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


def trade_rows(run_id: str, trades: Iterable[Any]) -> list[dict[str, Any]]:
    """Insert-ready dicts for `TradeRow`, in the engine's order; unknown fields go to `extra`."""
    rows: list[dict[str, Any]] = []
    for idx, trade in enumerate(trades):
        data = _fields(trade)
        row: dict[str, Any] = {"run_id": run_id, "idx": idx}
        for name in _TRADE_COLUMNS:
            row[name] = _column_value(name, data.pop(name, None))
        for required, default in (("pnl", 0.0), ("commission", 0.0), ("qty", 0.0)):
            if row[required] is None:
                row[required] = default
        if row["is_open"] is None:
            row["is_open"] = False
        row["extra"] = json_safe(data) or None
        rows.append(row)
    return rows


def encode_equity(ts: np.ndarray, equity: np.ndarray) -> tuple[bytes, bytes, str]:
    """(ts bytes, equity bytes, encoding) for an `EquityRow`."""
    ts = np.ascontiguousarray(ts, dtype="<i8")
    eq = np.ascontiguousarray(equity, dtype="<f8")
    if ts.shape != eq.shape:
        raise ValueError(f"equity has {eq.shape[0]} points but ts has {ts.shape[0]}")
    deltas = np.diff(ts, prepend=np.int64(0)) if ts.size else ts
    return (
        zlib.compress(deltas.astype("<i8").tobytes(), 6),
        zlib.compress(eq.tobytes(), 6),
        EQUITY_ENCODING,
    )


def decode_equity(ts_data: bytes, equity_data: bytes, encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """The arrays back: (int64 ns timestamps, float64 equity), writable copies."""
    if encoding != EQUITY_ENCODING:
        raise ValueError(f"unknown equity encoding {encoding!r}")
    deltas = np.frombuffer(zlib.decompress(ts_data), dtype="<i8")
    ts = np.cumsum(deltas, dtype=np.int64)
    eq = np.frombuffer(zlib.decompress(equity_data), dtype="<f8").astype(np.float64)
    return ts, eq
