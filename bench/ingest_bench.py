"""Ingest benchmark: parse + check a 1M-row CSV in several dialects, then quality and export.

    .venv/bin/python bench/ingest_bench.py [--rows 1000000] [--repeat 3]

Prints one table row per case: input size, best-of-N seconds, rows/s and MB/s. The
target from issue 4 is "a 1M-row CSV ingested and checked in well under 5 s". The
Parquet row is a reference for the store layer (1M rows storage -> Bars < 200 ms).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.bars import Bars
from engine.ingest import Dialect, parse_ohlcv, quality_report, write_csv

CASES: list[tuple[str, Dialect, dict[str, object]]] = [
    ("ISO naive, comma (Stooq/Yahoo style)", Dialect(), {}),
    ("ISO +05:30, comma (Kite style)", Dialect(tz_aware=True), {}),
    (
        "epoch ms, no header (Binance)",
        Dialect(time_format="epoch", epoch_unit="ms", header=False),
        {},
    ),
    (
        "dd.mm.yyyy;HH:MM:SS, decimal comma",
        Dialect(
            delimiter=";",
            decimal=",",
            time_format="dmy",
            date_sep=".",
            split_time=True,
            dayfirst=True,
        ),
        {"dayfirst": True},
    ),
    (
        "<DATE>\\t<TIME> yyyy.mm.dd (MT5)",
        Dialect(
            delimiter="\t",
            header_style="metastock",
            time_format="ymd",
            date_sep=".",
            split_time=True,
        ),
        {},
    ),
    ("ISO naive, gzip", Dialect(compression="gzip"), {}),
    ("ISO naive, UTF-16 + zip", Dialect(encoding="utf-16-le", compression="zip"), {}),
]


def make_bars(n: int) -> Bars:
    """n one-minute bars in NSE sessions (09:15-15:29 IST), prices with 2 decimals."""
    per_day = 375
    days = -(-n // per_day)
    start = np.datetime64("2015-01-01T03:45", "ns").astype(np.int64)
    day_idx = np.arange(days * 7 // 5 + 7)
    weekday = (day_idx + 3) % 7  # 2015-01-01 was a Thursday
    trading = day_idx[weekday < 5][:days]
    minute = np.arange(per_day, dtype=np.int64) * 60_000_000_000
    ts = (start + trading[:, None] * 86_400_000_000_000 + minute[None, :]).ravel()[:n]
    rng = np.random.default_rng(7)
    c = np.round(20_000 * np.exp(np.cumsum(rng.normal(0, 3e-4, n))), 2)
    o = np.concatenate(([c[0]], c[:-1]))
    h = np.round(np.maximum(o, c) + rng.random(n) * 5, 2)
    lo = np.round(np.minimum(o, c) - rng.random(n) * 5, 2)
    v = rng.integers(0, 50_000, n).astype(float)
    return Bars.from_arrays(ts, o, h, lo, c, v, tz="Asia/Kolkata")


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    out: object = None
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n, rep = args.rows, args.repeat
    bars = make_bars(n)
    rows: list[tuple[str, float, float, int]] = []  # (case, MB, seconds, rows)
    for name, dialect, kw in CASES:
        raw = write_csv(bars, dialect)
        secs, res = best(lambda raw=raw, kw=kw: parse_ohlcv(raw, tz=bars.tz, **kw), rep)
        assert res.rows == n, name  # type: ignore[attr-defined]
        rows.append((f"parse+check: {name}", len(raw) / 1e6, secs, n))
    res = parse_ohlcv(write_csv(bars), tz=bars.tz)
    secs, _ = best(lambda: quality_report(res.bars, res.warnings), rep)
    rows.append(("quality_report (8 checks)", 0.0, secs, n))
    secs, raw = best(lambda: write_csv(bars), rep)
    rows.append(("write_csv (ISO, comma)", len(raw) / 1e6, secs, n))  # type: ignore[arg-type]
    sink = io.BytesIO()
    pq.write_table(
        pa.table({k: getattr(bars, k) for k in ("ts", "open", "high", "low", "close", "volume")}),
        sink,
    )
    blob = sink.getvalue()

    def from_parquet() -> Bars:
        t = pq.read_table(io.BytesIO(blob))
        cols = [t.column(k).to_numpy() for k in ("ts", "open", "high", "low", "close", "volume")]
        return Bars.from_arrays(*cols, tz="Asia/Kolkata")

    secs, _ = best(from_parquet, rep)
    rows.append(("reference: Parquet bytes -> Bars", len(blob) / 1e6, secs, n))

    print(f"ingest benchmark: {n:,} rows, best of {rep}")
    print(f"{'case':58s} {'MB':>7s} {'seconds':>8s} {'rows/s':>12s} {'MB/s':>7s}")
    for case, mb, secs, k in rows:
        rate = f"{mb / secs:7.1f}" if mb else f"{'':7s}"
        print(f"{case:58s} {mb:7.1f} {secs:8.3f} {k / secs:12,.0f} {rate}")


if __name__ == "__main__":
    main()
