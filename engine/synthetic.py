"""Seeded generator of realistic SYNTHETIC NIFTY-like bars (1-minute and daily) for samples and tests.

The model, per trading day: a GARCH(1,1) daily variance (volatility clustering), an
overnight gap carrying ~20% of it, and 375 one-minute bars (09:15-15:29 IST bar-open
times) whose variance follows an intraday U-shape, with Student-t (df=5) shocks on
four sub-steps per minute to give each bar a realistic high/low. Log prices are pulled
gently towards a 10%/year trend line so long samples stay in a plausible range.
Weekends and a few fixed-date holidays (26 Jan, 1 May, 15 Aug, 2 Oct, 25 Dec) are
absent. Prices are rounded to 0.05 ticks and every bar satisfies low <= open, close <= high.

`python -m engine.synthetic --out data/` regenerates the shipped sample files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
from pathlib import Path

import numpy as np
import pandas as pd

from engine.bars import Bars

__all__ = [
    "HOLIDAYS",
    "MINUTES_PER_SESSION",
    "synthetic_daily",
    "synthetic_intraday",
    "trading_days",
    "write_csv",
]

TZ = "Asia/Kolkata"
TICK = 0.05
MINUTES_PER_SESSION = 375  # 09:15 .. 15:29 bar-open times
SESSION_OPEN_MIN = 9 * 60 + 15
HOLIDAYS = ((1, 26), (5, 1), (8, 15), (10, 2), (12, 25))
_SUBSTEPS = 4
_T_DF = 5.0
_ANNUAL_VOL = 0.15
_ANNUAL_DRIFT = 0.10
_GAP_SHARE = 0.2  # share of daily variance realised overnight


def trading_days(start: str | dt.date, count: int) -> list[dt.date]:
    """The first `count` weekdays on or after `start` that are not fixed-date holidays."""
    day = pd.Timestamp(start).date()
    out: list[dt.date] = []
    while len(out) < count:
        if day.weekday() < 5 and (day.month, day.day) not in HOLIDAYS:
            out.append(day)
        day += dt.timedelta(days=1)
    return out


def _tick(x: np.ndarray) -> np.ndarray:
    return np.round(x / TICK) * TICK


def _u_shape() -> np.ndarray:
    """Relative variance of each minute of the session (sums to 1): busy open and close."""
    k = np.arange(MINUTES_PER_SESSION, dtype=np.float64)
    u = 1.0 + 2.5 * np.exp(-k / 15.0) + 1.2 * np.exp(-(MINUTES_PER_SESSION - 1 - k) / 25.0)
    return u / u.sum()


def _simulate(
    n_days: int, seed: int, price0: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Minute OHLCV of shape (n_days, 375) each."""
    rng = np.random.default_rng(seed)
    m = MINUTES_PER_SESSION
    var_target = _ANNUAL_VOL**2 / 252.0
    a, b = 0.08, 0.90
    omega = var_target * (1.0 - a - b)
    t_scale = np.sqrt((_T_DF - 2.0) / _T_DF)  # unit-variance Student-t
    profile = _u_shape()

    day_shock = rng.standard_t(_T_DF, size=n_days) * t_scale
    gap_shock = rng.standard_t(_T_DF, size=n_days) * t_scale
    sub = rng.standard_t(_T_DF, size=(n_days, m, _SUBSTEPS)) * t_scale
    # Slow intraday volatility regime (per 15-minute block), mean one in variance.
    blocks = rng.normal(0.0, 0.35, size=(n_days, m // 15 + 1))
    regime = np.repeat(np.exp(blocks - 0.35**2 / 2), 15, axis=1)[:, :m]
    vol_noise = rng.lognormal(0.0, 0.45, size=(n_days, m))

    opens = np.empty((n_days, m))
    highs = np.empty((n_days, m))
    lows = np.empty((n_days, m))
    closes = np.empty((n_days, m))
    var = var_target
    log_p = np.log(price0)
    drift = _ANNUAL_DRIFT / 252.0
    for d in range(n_days):
        trend = np.log(price0) + drift * d
        pull = -0.01 * (log_p - trend)  # half-life ~ 70 trading days
        gap = np.sqrt(_GAP_SHARE * var) * gap_shock[d]
        minute_var = (1.0 - _GAP_SHARE) * var * profile * regime[d]
        steps = sub[d] * np.sqrt(minute_var / _SUBSTEPS)[:, None]
        steps += (drift + pull) / (m * _SUBSTEPS)
        path = log_p + gap + np.cumsum(steps.ravel()).reshape(m, _SUBSTEPS)
        start = np.concatenate(([log_p + gap], path[:-1, -1]))
        pts = _tick(np.exp(np.concatenate((start[:, None], path), axis=1)))
        opens[d] = pts[:, 0]
        closes[d] = pts[:, -1]
        highs[d] = pts.max(axis=1)
        lows[d] = pts.min(axis=1)
        realised = np.log(closes[d, -1]) - log_p
        log_p = np.log(closes[d, -1])
        z = realised / np.sqrt(var) if var > 0 else day_shock[d]
        var = omega + a * var * z * z + b * var
    # Volume: U-shaped, louder on bigger moves, lognormal noise; whole contracts.
    shape = 1.0 + 2.0 * np.exp(-np.arange(m) / 20.0) + 1.5 * np.exp(-(m - 1 - np.arange(m)) / 30.0)
    move = np.abs(np.log(closes / opens)) / np.sqrt(var_target * profile)
    volume = np.round(60_000.0 * shape * vol_noise * (0.6 + 0.4 * np.minimum(move, 5.0)))
    return opens, highs, lows, closes, np.maximum(volume, 1.0)


def synthetic_intraday(days: int, seed: int, start: str = "2023-01-02") -> Bars:
    """`days` sessions of NIFTY-like 1-minute bars (IST), starting near 19,800 on `start`."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    dates = trading_days(start, days)
    o, h, lo, c, v = _simulate(days, seed, 19_800.0)
    midnight = pd.DatetimeIndex(pd.to_datetime(dates)).tz_localize(TZ).as_unit("ns").asi8
    minute_ns = (SESSION_OPEN_MIN + np.arange(MINUTES_PER_SESSION)) * 60_000_000_000
    ts = (midnight[:, None] + minute_ns[None, :]).ravel()
    return Bars.from_arrays(ts, o.ravel(), h.ravel(), lo.ravel(), c.ravel(), v.ravel(), tz=TZ)


def synthetic_daily(years: float, seed: int, start: str = "2019-01-01") -> Bars:
    """About `years` x 250 NIFTY-like daily bars (stamped at local midnight), from ~10,800."""
    n_days = max(1, round(years * 250))
    dates = trading_days(start, n_days)
    o, h, lo, c, v = _simulate(n_days, seed, 10_800.0)
    ts = pd.DatetimeIndex(pd.to_datetime(dates)).tz_localize(TZ).as_unit("ns").asi8
    return Bars.from_arrays(
        ts, o[:, 0], h.max(axis=1), lo.min(axis=1), c[:, -1], v.sum(axis=1) * 10.0, tz=TZ
    )


def write_csv(bars: Bars, path: str | Path) -> Path:
    """Write `timestamp,open,high,low,close,volume` with ISO local times (gzip if .gz)."""
    path = Path(path)
    df = bars.to_frame()
    stamps = [t.isoformat() for t in df.index]
    fmt = "{:.2f}".format
    lines = ["timestamp,open,high,low,close,volume"]
    cols = [df[c].to_numpy() for c in ("open", "high", "low", "close")]
    vol = df["volume"].to_numpy()
    for i, stamp in enumerate(stamps):
        px = ",".join(fmt(col[i]) for col in cols)
        lines.append(f"{stamp},{px},{int(vol[i])}")
    data = ("\n".join(lines) + "\n").encode()
    if path.suffix == ".gz":
        # mtime=0 keeps the file byte-identical across regenerations.
        data = gzip.compress(data, compresslevel=9, mtime=0)
    path.write_bytes(data)
    return path


def main(argv: list[str] | None = None) -> None:
    """Regenerate data/nifty_1min_sample.csv.gz and data/nifty_daily_sample.csv.gz."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data", help="output directory")
    ap.add_argument("--days", type=int, default=60, help="1-minute sample: trading days")
    ap.add_argument("--years", type=float, default=5.0, help="daily sample: years")
    ap.add_argument("--seed", type=int, default=42, help="seed of the 1-minute sample")
    ap.add_argument("--daily-seed", type=int, default=7, help="seed of the daily sample")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, bars in (
        ("nifty_1min_sample.csv.gz", synthetic_intraday(args.days, args.seed)),
        ("nifty_daily_sample.csv.gz", synthetic_daily(args.years, args.daily_seed)),
    ):
        p = write_csv(bars, out / name)
        print(f"{p}: {len(bars)} bars, {p.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
