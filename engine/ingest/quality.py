"""Dataset quality report: eight checks scored 0-100 and one weighted score.

Each check scores 0-100; status is "pass" at 90 or more, "warn" at 60 or more,
"fail" below. The overall score is the weighted mean, rounded:

| check              | weight | scores 100 when ...                     | 0 at                |
|--------------------|-------:|-----------------------------------------|---------------------|
| required_columns   | 10 | time, OHLC and a real volume column        | (70 w/o volume)     |
| missing_data       | 15 | no row dropped, no volume cell filled      | 10% rows / 20% cells |
| data_types         | 10 | int64 ns times, finite positive floats, zoned times | (85 if tz assumed) |
| timestamp_gaps     | 20 | no bar missing inside the inferred session | 10% missing         |
| duplicates         | 10 | no repeated bar                            | 5% repeated         |
| price_outliers     | 15 | <= 0.5% of returns beyond the IQR fences   | 5.5% outliers       |
| volume_consistency | 10 | few zero volumes, no constant runs         | 50% zero / 10% runs |
| ohlc_consistency   | 10 | low <= open, close <= high everywhere      | 1% broken bars      |

Scores fall linearly from 100 to 0 between "none" and the "0 at" share. Outliers
are log close-to-close returns outside [Q1 - 3 IQR, Q3 + 3 IQR], with returns
across a day boundary fenced separately from those inside a day (overnight moves
are naturally larger). Gaps: see engine.ingest.sessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.bars import Bars
from engine.calendar import NS_PER_DAY, local_ns
from engine.ingest.errors import Codes, IngestWarning
from engine.ingest.sessions import analyze_gaps

__all__ = ["WEIGHTS", "Check", "QualityReport", "quality_report"]

WEIGHTS: dict[str, int] = {
    "required_columns": 10,
    "missing_data": 15,
    "data_types": 10,
    "timestamp_gaps": 20,
    "duplicates": 10,
    "price_outliers": 15,
    "volume_consistency": 10,
    "ohlc_consistency": 10,
}
IQR_K = 3.0
OUTLIER_ALLOWANCE = 0.005
CONSTANT_RUN = 5


def _status(score: int) -> str:
    return "pass" if score >= 90 else "warn" if score >= 60 else "fail"


def _ramp(share: float, zero_at: float) -> int:
    return round(100 * max(0.0, 1.0 - share / zero_at))


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


@dataclass(frozen=True)
class Check:
    """One quality check: score 0-100, status, a sentence, and the numbers behind it."""

    name: str
    score: int
    status: str
    details: str
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "name": self.name,
            "score": self.score,
            "status": self.status,
            "details": self.details,
            "values": self.values,
        }


@dataclass(frozen=True)
class QualityReport:
    """Overall 0-100 score (weighted mean of the checks) and the checks."""

    score: int
    checks: list[Check]

    @property
    def status(self) -> str:
        return _status(self.score)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "score": self.score,
            "status": self.status,
            "weights": dict(WEIGHTS),
            "checks": [c.to_dict() for c in self.checks],
        }


def _check(name: str, score: int, details: str, **values: Any) -> Check:
    score = int(min(100, max(0, score)))
    return Check(name, score, _status(score), details, values)


def _counts(warnings: Sequence[IngestWarning]) -> dict[str, int]:
    out: dict[str, int] = {}
    for w in warnings:
        out[w.code] = out.get(w.code, 0) + int(w.count)
    return out


def _required(codes: dict[str, int]) -> Check:
    if Codes.NO_VOLUME in codes:
        return _check(
            "required_columns",
            70,
            "time, open, high, low, close present; "
            "no volume column (volume-based strategies will see zeros)",
            volume=False,
        )
    if Codes.VOLUME_FROM_TICKS in codes:
        return _check(
            "required_columns", 90, "time, OHLC present; volume is tick volume", volume="tick"
        )
    return _check(
        "required_columns", 100, "time, open, high, low, close and volume present", volume=True
    )


def _missing(n: int, codes: dict[str, int]) -> Check:
    dropped = codes.get(Codes.MISSING_ROWS, 0) + codes.get(Codes.EMPTY_ROWS, 0)
    cells = codes.get(Codes.MISSING_VOLUME, 0)
    row_share = dropped / max(n + dropped, 1)
    cell_share = cells / max(n, 1)
    score = min(_ramp(row_share, 0.10), _ramp(cell_share, 0.20))
    if not dropped and not cells:
        return _check("missing_data", 100, "no missing values", dropped_rows=0, filled_cells=0)
    text = (
        f"{dropped} row(s) without prices dropped ({_pct(row_share)}); "
        f"{cells} empty volume cell(s) set to 0"
    )
    return _check("missing_data", score, text, dropped_rows=dropped, filled_cells=cells)


def _types(bars: Bars, codes: dict[str, int]) -> Check:
    problems = []
    if bars.ts.dtype != np.int64:
        problems.append(f"ts is {bars.ts.dtype}, not int64")
    for name in ("open", "high", "low", "close", "volume"):
        col = getattr(bars, name)
        if col.dtype != np.float64:
            problems.append(f"{name} is {col.dtype}, not float64")
        elif not np.all(np.isfinite(col)):
            problems.append(f"{name} has non-finite values")
    if problems:
        return _check("data_types", 0, "; ".join(problems))
    if Codes.TZ_ASSUMED in codes:
        return _check(
            "data_types",
            85,
            "types are right, but the times had no zone and were read as UTC",
            tz_assumed=True,
        )
    return _check("data_types", 100, "int64 UTC nanosecond times, float64 prices and volume")


def _gaps(bars: Bars, tz: str) -> Check:
    g = analyze_gaps(bars.ts, tz)
    if g.mode == "skipped":
        return _check("timestamp_gaps", 100, f"not checked: {g.note}", mode=g.mode)
    values = {
        "mode": g.mode,
        "step_seconds": g.step_ns / 1e9,
        "expected_bars": g.expected,
        "missing_bars": g.missing,
        "missing_days": g.missing_days,
        "session": g.session,
        "worst_days": [{"date": d, "missing": m} for d, m in g.worst],
    }
    if g.missing == 0:
        where = f" in the {g.session} session" if g.session else ""
        return _check("timestamp_gaps", 100, f"no missing bars{where}", **values)
    worst = ", ".join(f"{d} ({m})" for d, m in g.worst[:3])
    text = (
        f"{g.missing} of {g.expected} expected bars missing ({_pct(g.share)})"
        + (f" in the {g.session} session" if g.session else "")
        + (f"; worst days: {worst}" if worst else "")
        + (f"; {g.missing_days} whole trading day(s) missing" if g.missing_days else "")
    )
    return _check("timestamp_gaps", _ramp(g.share, 0.10), text, **values)


def _duplicates(bars: Bars, codes: dict[str, int]) -> Check:
    n = len(bars)
    bad = int(np.sum(np.diff(bars.ts) <= 0)) if n > 1 else 0
    if bad:
        return _check("duplicates", 0, f"{bad} timestamp(s) not after the previous one")
    dup = codes.get(Codes.DUPLICATE_ROWS, 0)
    if not dup:
        return _check("duplicates", 100, "no duplicate bars", dropped=0)
    share = dup / (n + dup)
    return _check(
        "duplicates",
        _ramp(share, 0.05),
        f"{dup} exact duplicate row(s) dropped ({_pct(share)})",
        dropped=dup,
    )


def _fence(r: np.ndarray) -> np.ndarray:
    if r.size < 8:
        return np.zeros(r.size, dtype=bool)
    q1, q3 = np.percentile(r, [25, 75])
    iqr = q3 - q1
    return (r < q1 - IQR_K * iqr) | (r > q3 + IQR_K * iqr)


def _outliers(bars: Bars, tz: str) -> Check:
    n = len(bars)
    if n < 10:
        return _check("price_outliers", 100, "not checked: fewer than 10 bars")
    r = np.diff(np.log(bars.close))
    day = local_ns(bars.ts, tz) // NS_PER_DAY
    overnight = day[1:] != day[:-1]
    out = np.zeros(r.size, dtype=bool)
    if overnight.all() or not overnight.any():
        out = _fence(r)
    else:
        out[overnight] = _fence(r[overnight])
        out[~overnight] = _fence(r[~overnight])
    k = int(out.sum())
    share = k / r.size
    idx = np.flatnonzero(out)
    top = idx[np.argsort(-np.abs(r[idx]))][:5]
    examples = [
        {
            "time": pd.Timestamp(int(bars.ts[i + 1]), tz="UTC").tz_convert(tz).isoformat(),
            "return_pct": round(float(np.expm1(r[i]) * 100), 4),
        }
        for i in top
    ]
    score = _ramp(max(0.0, share - OUTLIER_ALLOWANCE), 0.05)
    text = f"{k} return(s) beyond {IQR_K:g}x IQR ({_pct(share)})"
    if examples:
        text += "; largest: " + ", ".join(
            f"{e['time']} ({e['return_pct']:+.2f}%)" for e in examples[:3]
        )
    return _check("price_outliers", score, text, outliers=k, share=share, examples=examples)


def _runs(v: np.ndarray) -> int:
    """Bars inside runs of >= CONSTANT_RUN equal non-zero volumes."""
    if v.size < CONSTANT_RUN:
        return 0
    change = np.concatenate(([True], v[1:] != v[:-1]))
    run_id = np.cumsum(change) - 1
    lengths = np.bincount(run_id)
    starts = np.flatnonzero(change)
    long = (lengths >= CONSTANT_RUN) & (v[starts] != 0)
    return int(lengths[long].sum())


def _volume(bars: Bars) -> Check:
    v = bars.volume
    n = v.size
    neg = int(np.sum(v < 0))
    if neg:
        return _check("volume_consistency", 0, f"{neg} negative volume(s)", negative=neg)
    zero = int(np.sum(v == 0))
    if zero == n:
        return _check("volume_consistency", 50, "no volume data (every bar is 0)", zero=zero)
    zero_share = zero / n
    run_bars = _runs(v)
    run_share = run_bars / n
    score = min(_ramp(zero_share, 0.5), _ramp(run_share, 0.10))
    text = (
        f"{zero} zero-volume bar(s) ({_pct(zero_share)}); {run_bars} bar(s) in runs of "
        f"{CONSTANT_RUN}+ identical volumes ({_pct(run_share)})"
    )
    return _check("volume_consistency", score, text, zero=zero, constant_run_bars=run_bars)


def _ohlc(bars: Bars) -> Check:
    o, h, lo, c = bars.open, bars.high, bars.low, bars.close
    bad = (h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (h < lo)
    k = int(bad.sum())
    flat = int(np.sum(h == lo))
    if not k:
        return _check(
            "ohlc_consistency",
            100,
            f"every bar has low <= open, close <= high; {flat} flat bar(s) (high == low)",
            broken=0,
            flat=flat,
        )
    share = k / len(bars)
    return _check(
        "ohlc_consistency",
        min(89, _ramp(share, 0.01)),
        f"{k} bar(s) with open/close outside high-low ({_pct(share)})",
        broken=k,
        flat=flat,
    )


def quality_report(
    bars: Bars, warnings: Sequence[IngestWarning] = (), *, tz: str | None = None
) -> QualityReport:
    """Score a dataset (see the module docstring for checks, weights and thresholds).

    `warnings` are the parser's repairs (dropped rows, duplicates, filled volume...);
    `tz` is the exchange time zone for sessions and days (default: `bars.tz`).
    """
    zone = tz or bars.tz
    codes = _counts(warnings)
    checks = [
        _required(codes),
        _missing(len(bars), codes),
        _types(bars, codes),
        _gaps(bars, zone),
        _duplicates(bars, codes),
        _outliers(bars, zone),
        _volume(bars),
        _ohlc(bars),
    ]
    total = sum(WEIGHTS[c.name] * c.score for c in checks) / sum(WEIGHTS.values())
    return QualityReport(round(total), checks)
