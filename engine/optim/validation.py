"""Out-of-sample validation splits: a hold-out split and walk-forward windows (pure splitters).

Everything is in bar indices: a `Segment` is the half-open range [start, stop) of bars, to
be cut with `bars.slice(seg.start, seg.stop)`. Lengths are either bar counts (ints) or
durations: "30D", "2W", "6M" (months), "1Y", "12h", "90min", a `datetime.timedelta`,
`numpy.timedelta64` or `pandas.DateOffset`. Durations are laid out in the exchange's
local time from the first bar, and a boundary falls on the first bar at or after it.

Walk-forward windows (k = 0, 1, ...):

* rolling: train = [t0 + k*step, t0 + k*step + train), anchored: train = [t0, t0 + train
  + k*step); test = [train end + gap, train end + gap + test).
* `step` defaults to `test`, and must be at least `test`, so test windows never overlap
  each other (their results stitch into one out-of-sample curve).
* A window whose test period runs past the data is dropped unless `partial=True` (then a
  shortened last test window is kept). With durations the data "covers" a period when
  its last bar is within one typical bar spacing of the period's end. A test window is
  cut where the next one starts (a "1M" step can be shorter than a "30D" test). Windows whose
  train segment has fewer than 2 bars or whose test segment is empty (holidays, gaps in
  the data) are skipped.

Guarantees (property-tested): train.stop <= test.start, every test segment is non-empty,
and windows are ordered with strictly increasing, non-overlapping test segments.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.optim.types import OptimInputError

__all__ = ["Length", "Segment", "Window", "holdout_split", "parse_length", "walk_forward_windows"]

Length = int | str | dt.timedelta | np.timedelta64 | pd.DateOffset | pd.Timedelta
Duration = pd.DateOffset | pd.Timedelta
_UNITS = {
    "min": "minutes", "t": "minutes", "h": "hours", "d": "days", "w": "weeks",
    "mo": "months", "y": "years",
}
_LENGTH = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")


@dataclass(frozen=True)
class Segment:
    """Bars [start, stop)."""

    start: int
    stop: int

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)


@dataclass(frozen=True)
class Window:
    """One walk-forward step: optimize on `train`, then test on `test`."""

    index: int
    train: Segment
    test: Segment

    def to_dict(self, ts: np.ndarray | None = None) -> dict[str, Any]:
        """Indices, and with `ts` the first and last bar times (int64 ns) of each part."""
        out: dict[str, Any] = {"index": self.index}
        for name, seg in (("train", self.train), ("test", self.test)):
            out[name] = {"start": seg.start, "stop": seg.stop}
            if ts is not None and len(seg):
                out[name]["first_ts"] = int(ts[seg.start])
                out[name]["last_ts"] = int(ts[seg.stop - 1])
        return out


def parse_length(value: Length, field: str = "length") -> int | Duration:
    """A bar count (int, or "250bars"), else a duration.

    Minutes and hours are fixed lengths (`pandas.Timedelta`); days, weeks, months and
    years are calendar offsets (`pandas.DateOffset`) in the exchange's local time.
    """
    if isinstance(value, bool):
        raise OptimInputError(field, f"expected a bar count or a duration, got {value!r}")
    if isinstance(value, int | np.integer):
        if value < 0:
            raise OptimInputError(field, f"{field} must not be negative, got {value}")
        return int(value)
    if isinstance(value, pd.DateOffset | pd.Timedelta):
        return value
    if isinstance(value, dt.timedelta | np.timedelta64):
        return pd.Timedelta(value)
    if isinstance(value, str):
        m = _LENGTH.match(value)
        if m:
            n, unit = int(m.group(1)), m.group(2)
            if unit.lower() in ("b", "bar", "bars"):
                return n
            key = "mo" if unit == "M" else unit.lower()
            if key == "m":
                raise OptimInputError(field, f"{value!r} is ambiguous: write M for months, min for minutes")
            if key in ("min", "t", "h"):
                return pd.Timedelta(**{_UNITS[key]: n})
            if key in _UNITS:
                return pd.DateOffset(**{_UNITS[key]: n})
    raise OptimInputError(
        field, f"cannot read {value!r} as a length: use a bar count or e.g. 30D, 2W, 6M, 1Y, 4h, 90min"
    )


def _to_ns(at: Any, field: str) -> int:
    try:
        stamp = pd.Timestamp(at)
    except (ValueError, TypeError):
        raise OptimInputError(field, f"cannot read {at!r} as a time") from None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value)


def holdout_split(
    ts: np.ndarray, *, fraction: float | None = None, at: Any = None
) -> tuple[Segment, Segment]:
    """(in-sample, out-of-sample): the first `fraction` of bars, or bars before time `at`.

    `at` is a time (string, datetime, numpy/pandas timestamp; naive = UTC) or int64 ns;
    the out-of-sample part starts at the first bar at or after it. Each part needs at
    least 2 bars.
    """
    n = len(ts)
    if (fraction is None) == (at is None):
        raise OptimInputError("validation", "give exactly one of fraction and at")
    if fraction is not None:
        if not 0 < fraction < 1:
            raise OptimInputError("validation.fraction", f"fraction must be in (0, 1), got {fraction}")
        cut = round(n * fraction)
    else:
        ns = int(at) if isinstance(at, int | np.integer) else _to_ns(at, "validation.at")
        cut = int(np.searchsorted(ts, ns, side="left"))
    if cut < 2 or n - cut < 2:
        raise OptimInputError(
            "validation", f"the split leaves {cut} in-sample and {n - cut} out-of-sample bars; "
            "each side needs at least 2"
        )
    return Segment(0, cut), Segment(cut, n)


def walk_forward_windows(
    ts: np.ndarray,
    train: Length,
    test: Length,
    step: Length | None = None,
    *,
    anchored: bool = False,
    gap: Length = 0,
    partial: bool = False,
    tz: str = "UTC",
) -> list[Window]:
    """Walk-forward windows over bars with times `ts` (int64 ns UTC); see the module doc."""
    tr = parse_length(train, "walk_forward.train")
    te = parse_length(test, "walk_forward.test")
    st = parse_length(step if step is not None else test, "walk_forward.step")
    gp = parse_length(gap, "walk_forward.gap")
    lengths = (tr, te, st, gp)
    if all(isinstance(x, int) for x in lengths):
        bounds = _bar_bounds(len(ts), *lengths, anchored, partial)  # type: ignore[arg-type]
    elif any(isinstance(x, int) and x != 0 for x in lengths):
        raise OptimInputError(
            "walk_forward", "give train, test, step and gap all in bars or all as durations"
        )
    else:
        offs = [pd.Timedelta(0) if isinstance(x, int) else x for x in lengths]
        bounds = _time_bounds(np.asarray(ts, dtype=np.int64), *offs, anchored, partial, tz)
    out: list[Window] = []
    for i, (a, b, c, d) in enumerate(bounds):
        if i + 1 < len(bounds):  # calendar steps (1M after 30D) may not cover the test
            d = min(d, bounds[i + 1][2])
        if b - a >= 2 and d > c:
            out.append(Window(len(out), Segment(a, b), Segment(c, d)))
    return out


def _bar_bounds(
    n: int, train: int, test: int, step: int, gap: int, anchored: bool, partial: bool
) -> list[tuple[int, int, int, int]]:
    if train < 2 or test < 1:
        raise OptimInputError("walk_forward", "need train >= 2 bars and test >= 1 bar")
    if step < test:
        raise OptimInputError(
            "walk_forward.step", f"step ({step}) must be >= test ({test}): test windows would overlap"
        )
    out = []
    k = 0
    while True:
        a = 0 if anchored else k * step
        b = train + k * step
        c = b + gap
        d = c + test
        if c >= n or (d > n and not partial):
            return out
        out.append((a, b, c, min(d, n)))
        k += 1


def _time_bounds(
    ts: np.ndarray,
    train: Duration,
    test: Duration,
    step: Duration,
    gap: Duration,
    anchored: bool,
    partial: bool,
    tz: str,
) -> list[tuple[int, int, int, int]]:
    if len(ts) < 2:
        return []
    t0 = pd.Timestamp(int(ts[0]), tz="UTC").tz_convert(tz)
    probe = t0 + test
    if probe <= t0 or t0 + train <= t0:
        raise OptimInputError("walk_forward", "train and test durations must be positive")
    if t0 + step < probe:
        raise OptimInputError("walk_forward.step", "step must be >= test: test windows would overlap")
    end_ns = int(ts[-1]) + int(np.median(np.diff(ts)))
    out = []
    k = 0
    while True:
        moved = t0 + k * step if k else t0
        a_t = t0 if anchored else moved
        b_t = (t0 + train) + k * step if k else t0 + train
        c_t = b_t + gap
        d_t = c_t + test
        c_ns, d_ns = int(c_t.value), int(d_t.value)
        if c_ns > int(ts[-1]) or (d_ns > end_ns and not partial):
            return out
        a, b, c, d = (int(np.searchsorted(ts, int(x.value), side="left"))
                      for x in (a_t, b_t, c_t, d_t))
        out.append((a, b, c, d))
        k += 1
