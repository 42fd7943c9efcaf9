"""Round trips: Bars written by write_csv in any supported dialect parse back identical."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.bars import Bars
from engine.ingest import Dialect, bars_hash, parse_ohlcv, write_csv
from engine.ingest.dialect import TIME_FORMATS

S = 1_000_000_000
T0 = 946_684_800 * S  # 2000-01-01
T1 = 4_102_444_800 * S  # 2100-01-01
NAIVE_ZONES = ("UTC", "Asia/Kolkata", "Asia/Tokyo")  # no DST: every wall time exists once
ALL_ZONES = (*NAIVE_ZONES, "America/New_York", "Europe/London", "Australia/Sydney")
STEPS = (1, 60, 300, 3600, 86_400)


@st.composite
def dialects(draw: st.DrawFn) -> Dialect:
    fmt = draw(st.sampled_from(TIME_FORMATS))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    decimal = draw(st.sampled_from([".", ","])) if delimiter != "," else "."
    sep = {
        "iso": "-",
        "ymd": draw(st.sampled_from(["/", "."])),
        "dmy": draw(st.sampled_from(["/", ".", "-"])),
        "mdy": draw(st.sampled_from(["/", ".", "-"])),
    }.get(fmt)
    split = fmt != "epoch" and draw(st.booleans())
    return Dialect(
        delimiter=delimiter,
        decimal=decimal,
        encoding=draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16-le", "utf-16-be"])),
        compression=draw(st.sampled_from([None, "gzip", "zip"])),
        header=draw(st.booleans()),
        header_style=draw(st.sampled_from(["plain", "metastock"])),
        time_format=fmt,
        date_sep=sep,
        split_time=split,
        tz_aware=fmt == "iso" and not split and draw(st.booleans()),
        dayfirst={"dmy": True, "mdy": False}.get(fmt),
        epoch_unit=draw(st.sampled_from(["s", "ms", "us", "ns"])) if fmt == "epoch" else None,
    )


def _sub_second_ok(d: Dialect) -> bool:
    return d.time_format not in ("compact", "epoch") or d.epoch_unit == "ns"


@st.composite
def bars_for(draw: st.DrawFn, d: Dialect) -> Bars:
    naive = not (d.tz_aware or d.time_format == "epoch")
    tz = draw(st.sampled_from(NAIVE_ZONES if naive else ALL_ZONES))
    n = draw(st.integers(1, 25))
    step = draw(st.sampled_from(STEPS)) * S
    start = draw(st.integers(T0 // S, (T1 - 30 * 86_400 * S) // S)) * S
    ts = start + np.arange(n, dtype=np.int64) * step
    extra = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    ts = ts + np.cumsum(extra).astype(np.int64) * step  # irregular gaps
    if _sub_second_ok(d) and draw(st.booleans()):
        ts = ts + draw(st.integers(1, S - 1))
    price = st.floats(0.01, 1e7, allow_nan=False, allow_infinity=False)
    o = np.array(draw(st.lists(price, min_size=n, max_size=n)))
    c = np.array(draw(st.lists(price, min_size=n, max_size=n)))
    up = np.array(draw(st.lists(st.floats(0, 0.5), min_size=n, max_size=n)))
    down = np.array(draw(st.lists(st.floats(0, 0.5), min_size=n, max_size=n)))
    h = np.maximum(o, c) * (1 + up)
    lo = np.minimum(o, c) * (1 - down)
    h = np.maximum(h, np.maximum(o, c))  # float rounding of the products
    lo = np.minimum(np.maximum(lo, 0.001), np.minimum(o, c))
    vol = st.one_of(st.integers(0, 10**12).map(float), st.floats(0, 1e15, allow_nan=False))
    v = np.array(draw(st.lists(vol, min_size=n, max_size=n)))
    return Bars.from_arrays(ts, o, h, lo, c, v, tz=tz)


def _same(a: Bars, b: Bars) -> None:
    assert a.tz == b.tz
    for k in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_dialect_round_trips_exactly(data: st.DataObject) -> None:
    d = data.draw(dialects())
    bars = data.draw(bars_for(d))
    raw = write_csv(bars, d)
    res = parse_ohlcv(raw, tz=bars.tz, dayfirst=d.dayfirst)
    _same(res.bars, bars)
    got = res.dialect
    assert (got.delimiter, got.encoding, got.compression, got.header) == (
        d.delimiter,
        d.encoding,
        d.compression,
        d.header,
    )
    if d.time_format == "epoch":
        assert got.epoch_unit == d.epoch_unit
    assert res.content_hash == bars_hash(bars)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), precision=st.integers(2, 8))
def test_fixed_precision_round_trips_at_that_precision(data: st.DataObject, precision: int) -> None:
    d = data.draw(dialects())
    bars = data.draw(bars_for(d))
    raw = write_csv(bars, d, precision=precision)
    res = parse_ohlcv(raw, tz=bars.tz, dayfirst=d.dayfirst)
    np.testing.assert_array_equal(res.bars.ts, bars.ts)
    for k in ("open", "high", "low", "close"):
        want = np.array([float(f"{x:.{precision}f}") for x in getattr(bars, k)])
        np.testing.assert_array_equal(getattr(res.bars, k), want, err_msg=k)


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_day_month_order_is_detected_when_a_day_is_above_12(data: st.DataObject) -> None:
    d = data.draw(dialects().filter(lambda x: x.time_format in ("dmy", "mdy")))
    bars = data.draw(bars_for(d))
    day = (bars.to_frame().index.day > 12).any()
    months = len(set(bars.to_frame().index.month))
    assume(day and months >= 1)
    res = parse_ohlcv(write_csv(bars, d), tz=bars.tz)  # no dayfirst given
    _same(res.bars, bars)
    assert res.dialect.dayfirst == d.dayfirst


def test_same_data_in_two_dialects_has_one_hash() -> None:
    ts = 1_704_180_900 * S + np.arange(50, dtype=np.int64) * 60 * S
    c = 21_700 + np.cumsum(np.full(50, 0.05))
    bars = Bars.from_arrays(ts, c, c + 1, c - 1, c, np.arange(50.0), tz="Asia/Kolkata")
    a = parse_ohlcv(write_csv(bars, Dialect(tz_aware=True)))
    b = parse_ohlcv(
        write_csv(
            bars,
            Dialect(
                delimiter=";",
                decimal=",",
                time_format="dmy",
                date_sep=".",
                split_time=True,
                encoding="utf-16-le",
                compression="zip",
            ),
        ),
        tz="Asia/Kolkata",
        dayfirst=True,
    )
    assert a.content_hash == b.content_hash == bars_hash(bars)
    shifted = Bars.from_arrays(ts + S, c, c + 1, c - 1, c, np.arange(50.0), tz="Asia/Kolkata")
    assert bars_hash(shifted) != a.content_hash


@pytest.mark.parametrize("fmt", ["compact", "epoch"])
def test_writer_refuses_what_the_format_cannot_hold(fmt: str) -> None:
    bars = Bars.from_arrays(np.array([T0 + 1], dtype=np.int64), [1.0], [1.0], [1.0], [1.0])
    with pytest.raises(ValueError, match=r"finer|fractions"):
        write_csv(bars, Dialect(time_format=fmt, epoch_unit="s" if fmt == "epoch" else None))
