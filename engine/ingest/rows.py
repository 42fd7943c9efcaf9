"""Row-level rules on converted columns: missing rows, price and OHLC checks, order, duplicates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.ingest.errors import Codes, IngestError, IngestWarning

__all__ = ["Columns", "check_prices", "sort_and_dedupe"]

PRICE_ROLES = ("open", "high", "low", "close")


@dataclass
class Columns:
    """Row-aligned numeric columns, their file lines and display names."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    lines: np.ndarray
    names: dict[str, str]  # role -> column display name

    def take(self, idx: np.ndarray) -> Columns:
        return Columns(
            *(getattr(self, k)[idx] for k in ("ts", "open", "high", "low", "close", "volume")),
            lines=self.lines[idx],
            names=self.names,
        )

    def values(self) -> list[np.ndarray]:
        return [self.open, self.high, self.low, self.close, self.volume]


def _num(x: float) -> str:
    return repr(float(x))


def _first(mask: np.ndarray) -> int | None:
    return int(np.argmax(mask)) if mask.any() else None


def check_prices(c: Columns) -> None:
    """Reject the earliest row (in file order) that breaks a price or volume rule."""
    found: list[tuple[int, str, str, str]] = []  # (row, code, role, message)
    for role in PRICE_ROLES:
        col = getattr(c, role)
        i = _first(~(np.isfinite(col) & (col > 0)))
        if i is not None:
            found.append(
                (i, Codes.BAD_PRICE, role, f"{role} must be a positive price, got {_num(col[i])}")
            )
    v = c.volume
    i = _first(~np.isfinite(v) | (v < 0))
    if i is not None:
        found.append((i, Codes.NEGATIVE_VOLUME, "volume", f"volume must be >= 0, got {_num(v[i])}"))
    o, h, lo, cl = c.open, c.high, c.low, c.close
    rules = (
        (h < lo, "high", lambda i: f"high {_num(h[i])} is below low {_num(lo[i])}"),
        (h < o, "high", lambda i: f"high {_num(h[i])} is below open {_num(o[i])}"),
        (h < cl, "high", lambda i: f"high {_num(h[i])} is below close {_num(cl[i])}"),
        (lo > o, "low", lambda i: f"low {_num(lo[i])} is above open {_num(o[i])}"),
        (lo > cl, "low", lambda i: f"low {_num(lo[i])} is above close {_num(cl[i])}"),
    )
    for mask, role, say in rules:
        i = _first(mask)
        if i is not None:
            found.append((i, Codes.OHLC_INCONSISTENT, role, say(i)))
    if found:
        i, code, role, msg = min(found, key=lambda f: f[0])
        raise IngestError(code, msg, line=int(c.lines[i]), column=c.names.get(role, role))


def _stamp(ts: int, tz: str) -> str:
    return pd.Timestamp(int(ts), tz="UTC").tz_convert(tz).isoformat()


def sort_and_dedupe(c: Columns, tz: str) -> tuple[Columns, list[IngestWarning]]:
    """Time order (stable sort, warned) and exact duplicates dropped (warned).

    Two rows with the same timestamp but any different value reject the file, naming
    both lines: which one is right cannot be known.
    """
    warnings: list[IngestWarning] = []
    ts = c.ts
    n = ts.shape[0]
    if n > 1:
        down = ts[1:] < ts[:-1]
        if down.any():
            k = int(down.sum())
            i = int(np.argmax(down)) + 1
            descending = k == n - 1
            msg = (
                "rows were newest-first; sorted into time order"
                if descending
                else f"{k} row(s) were earlier than the row before them; sorted into time order"
            )
            warnings.append(IngestWarning(Codes.UNSORTED, msg, int(c.lines[i]), None, k))
            c = c.take(np.argsort(ts, kind="stable"))
            ts = c.ts
    if n > 1:
        same = np.flatnonzero(ts[1:] == ts[:-1])
        if same.size:
            a, b = same, same + 1
            diff = np.zeros(same.size, dtype=bool)
            first_col = np.full(same.size, -1)
            for k, col in enumerate(c.values()):
                d = col[a] != col[b]
                first_col = np.where((first_col < 0) & d, k, first_col)
                diff |= d
            if diff.any():
                j = int(np.argmax(diff))
                la, lb = sorted((int(c.lines[a[j]]), int(c.lines[b[j]])))
                role = ("open", "high", "low", "close", "volume")[int(first_col[j])]
                col = getattr(c, role)
                raise IngestError(
                    Codes.DUPLICATE_CONFLICT,
                    f"lines {la} and {lb} have the same time {_stamp(int(ts[a[j]]), tz)} but "
                    f"different {role} ({_num(col[a[j]])} vs {_num(col[b[j]])}); remove the wrong one",
                    line=lb,
                    column=c.names.get(role, role),
                )
            keep = np.ones(n, dtype=bool)
            keep[b] = False
            first_dup = int(min(c.lines[b]))
            warnings.append(
                IngestWarning(
                    Codes.DUPLICATE_ROWS,
                    f"{b.size} row(s) repeated an earlier row exactly; dropped",
                    first_dup,
                    None,
                    int(b.size),
                )
            )
            c = c.take(np.flatnonzero(keep))
    return c, warnings
