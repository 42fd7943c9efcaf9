"""Each numba indicator kernel against its slow twin (pandas or pure Python), on random data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.indicators import (
    _ema_coefs_nb,
    atr_nb,
    bollinger_nb,
    ema4_into_nb,
    ema_cross_nb,
    ema_into_nb,
    ema_nb,
    macd_nb,
    rolling_max_nb,
    rolling_min_nb,
    rolling_std_nb,
    rsi_nb,
    sma_nb,
    true_range_nb,
    vwap_nb,
)

prices = st.floats(1.0, 1e5, allow_nan=False, allow_infinity=False)
price_arrays = arrays(np.float64, st.integers(0, 120), elements=prices)
# Prices with holes: NaN must behave as pandas does.
holey_arrays = arrays(np.float64, st.integers(0, 120), elements=st.one_of(prices, st.just(np.nan)))
periods = st.integers(1, 30)
SETTINGS = settings(max_examples=150, deadline=None)


def _ohlc(close: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    high = close * (1 + rng.random(close.size) * 0.02)
    low = close * (1 - rng.random(close.size) * 0.02)
    return high, low, close


# -- slow twins ------------------------------------------------------------------------
def rsi_twin(x: list[float], n: int) -> list[float]:
    out = [math.nan] * len(x)
    ag = al = 0.0
    count = 0
    for i in range(1, len(x)):
        a, b = x[i - 1], x[i]
        if math.isnan(a) or math.isnan(b):
            ag = al = 0.0
            count = 0
            continue
        ch = b - a
        g, lo = (ch if ch > 0 else 0.0), (-ch if ch < 0 else 0.0)
        count += 1
        if count <= n:
            ag += g
            al += lo
            if count < n:
                continue
            ag /= n
            al /= n
        else:
            ag = (ag * (n - 1) + g) / n
            al = (al * (n - 1) + lo) / n
        out[i] = (50.0 if ag == 0 else 100.0) if al == 0 else 100.0 - 100.0 / (1.0 + ag / al)
    return out


def atr_twin(h: list[float], lo: list[float], c: list[float], n: int) -> list[float]:
    if not h:
        return []
    tr = [h[0] - lo[0]] + [
        max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, len(h))
    ]
    out = [math.nan] * len(h)
    if len(h) < n:
        return out
    avg = sum(tr[:n]) / n
    out[n - 1] = avg
    for i in range(n, len(h)):
        avg = (avg * (n - 1) + tr[i]) / n
        out[i] = avg
    return out


def bollinger_twin(x: list[float], n: int, k: float) -> tuple[list[float], ...]:
    mid, up, dn = ([math.nan] * len(x) for _ in range(3))
    for i in range(n - 1, len(x)):
        w = x[i - n + 1 : i + 1]
        if any(math.isnan(v) for v in w):
            continue
        mean = 0.0
        for v in w:
            mean += v
        mean /= n
        ss = 0.0
        for v in w:
            ss += (v - mean) * (v - mean)
        sd = math.sqrt(ss / n)
        mid[i], up[i], dn[i] = mean, mean + k * sd, mean - k * sd
    return mid, up, dn


def vwap_twin(
    h: list[float], lo: list[float], c: list[float], v: list[float], day: list[int]
) -> list[float]:
    out = []
    pv = vol = tps = 0.0
    cnt = 0
    for i in range(len(c)):
        if i == 0 or day[i] != day[i - 1]:
            pv = vol = tps = 0.0
            cnt = 0
        tp = (h[i] + lo[i] + c[i]) / 3.0
        if v[i] > 0:
            pv += tp * v[i]
            vol += v[i]
        tps += tp
        cnt += 1
        out.append(pv / vol if vol > 0 else tps / cnt)
    return out


# -- tests -----------------------------------------------------------------------------
@SETTINGS
@given(holey_arrays, periods)
def test_ema_equals_pandas_exactly(x: np.ndarray, n: int) -> None:
    ref = pd.Series(x, dtype=float).ewm(span=n, adjust=False, min_periods=n).mean().to_numpy()
    np.testing.assert_array_equal(ema_nb(x, n), ref)


def _pandas_ema(x: np.ndarray, n: int) -> np.ndarray:
    return pd.Series(x, dtype=float).ewm(span=n, adjust=False, min_periods=n).mean().to_numpy()


def _walk(seed: int, size: int, scale: float, hole: float, rounding: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = 100.0 * np.exp(np.cumsum(rng.normal(0.0, scale, size)))
    if rounding:
        x = np.round(x, 1)
    x[rng.random(size) < hole] = np.nan
    return x


# Longer series, long periods, gaps of every length, repeated values (the `weighted != cur`
# shortcut) and wild scales: the multiply-add path must still be pandas bit for bit.
walks = st.builds(
    _walk, st.integers(0, 2**32 - 1), st.integers(0, 3000),
    st.sampled_from([1e-5, 1e-3, 0.05, 1.0]), st.sampled_from([0.0, 0.01, 0.3, 0.9]),
    st.booleans(),
)
long_periods = st.one_of(st.integers(1, 5), st.integers(1, 2500))


@settings(max_examples=300, deadline=None)
@given(walks, long_periods, long_periods, st.booleans())
def test_ema_and_fused_crossover_equal_pandas_on_long_holey_series(
    x: np.ndarray, n: int, m: int, long_only: bool
) -> None:
    ref_n, ref_m = _pandas_ema(x, n), _pandas_ema(x, m)
    np.testing.assert_array_equal(ema_nb(x, n), ref_n)
    row = np.full((2, x.size), -1.0)
    ema_into_nb(x, n, row[1])
    np.testing.assert_array_equal(row[1], ref_n)
    sig = (ref_n > ref_m).astype(np.int8) - (ref_n < ref_m).astype(np.int8)
    if long_only:
        sig = np.maximum(sig, 0)
    got = ema_cross_nb(x, n, m, long_only)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, sig)


@settings(max_examples=200, deadline=None)
@given(walks, st.lists(long_periods, min_size=4, max_size=4))
def test_four_emas_in_one_pass_equal_pandas_on_finite_series(x: np.ndarray,
                                                             periods: list[int]) -> None:
    x = x[np.isfinite(x)]  # ema4_into_nb is for finite closes (ema_rows_nb checks)
    rows = np.full((4, x.size), -1.0)
    assert ema4_into_nb(x, *periods, rows[0], rows[1], rows[2], rows[3])
    for row, n in zip(rows, periods, strict=True):
        np.testing.assert_array_equal(row, _pandas_ema(x, n))


def test_ema_rows_take_four_periods_a_pass_or_one_by_one_with_gaps() -> None:
    from engine.sweep_tile_nb import ema_rows_nb

    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, 5000)))
    close[100:103] = close[99]  # repeated values: the `weighted != cur` shortcut
    periods = np.array([1, 2, 3, 7, 30, 31, 400, 6000, 9], dtype=np.int64)  # 9: a short group
    for x in (close, np.where(np.arange(close.size) % 97 == 5, np.nan, close)):
        rows = np.array([3, 0, 8, 1, 5, 7, 2, 4, 6], dtype=np.int64)
        emas = np.full((9, x.size), -1.0)
        ema_rows_nb(x, periods, rows, emas)
        for n, row in zip(periods, rows, strict=True):
            np.testing.assert_array_equal(emas[row], _pandas_ema(x, int(n)))


def test_ema_divisor_after_an_observed_bar_is_exactly_one() -> None:
    # Why ema_nb may skip pandas' division on consecutive bars: (1 - a) + a rounds to 1.
    for n in [*range(1, 20_001), 10**6, 2**31 - 1]:
        com1, alpha, factor, new_wt, denom = _ema_coefs_nb(n)
        assert factor == 1.0 - alpha and new_wt == alpha and com1 == (n == 3)
        assert denom == 1.0


@SETTINGS
@given(price_arrays, st.integers(2, 20), st.integers(2, 40), st.integers(1, 15))
def test_macd_equals_pandas_exactly(x: np.ndarray, fast: int, slow: int, signal: int) -> None:
    s = pd.Series(x, dtype=float)
    line = (
        s.ewm(span=fast, adjust=False, min_periods=fast).mean()
        - s.ewm(span=slow, adjust=False, min_periods=slow).mean()
    )
    sig = line.ewm(span=signal, adjust=False, min_periods=signal).mean()
    got = macd_nb(x, fast, slow, signal)
    np.testing.assert_array_equal(got[0], line.to_numpy())
    np.testing.assert_array_equal(got[1], sig.to_numpy())
    np.testing.assert_array_equal(got[2], (line - sig).to_numpy())


@SETTINGS
@given(holey_arrays, periods)
def test_sma_matches_pandas_rolling_mean(x: np.ndarray, n: int) -> None:
    ref = pd.Series(x, dtype=float).rolling(n).mean().to_numpy()
    got = sma_nb(x, n)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


@SETTINGS
@given(holey_arrays, periods)
def test_rolling_max_min_equal_pandas_exactly(x: np.ndarray, n: int) -> None:
    s = pd.Series(x, dtype=float).rolling(n)
    np.testing.assert_array_equal(rolling_max_nb(x, n), s.max().to_numpy())
    np.testing.assert_array_equal(rolling_min_nb(x, n), s.min().to_numpy())


@SETTINGS
@given(holey_arrays, periods)
def test_rsi_equals_twin_exactly(x: np.ndarray, n: int) -> None:
    np.testing.assert_array_equal(rsi_nb(x, n), np.array(rsi_twin(x.tolist(), n)))


def test_rsi_pandas_wilder_reference() -> None:
    x = 100 + np.cumsum(np.random.default_rng(3).normal(0, 1, 300))
    n = 14
    d = pd.Series(x).diff()
    gain, loss = d.clip(lower=0), (-d).clip(lower=0)
    # Wilder: seed with the mean of the first n changes, then alpha = 1/n recursion.
    ag, al = gain.copy(), loss.copy()
    ag[:n], al[:n] = np.nan, np.nan
    ag[n], al[n] = gain[1 : n + 1].mean(), loss[1 : n + 1].mean()
    ref = 100 - 100 / (
        1 + ag.ewm(alpha=1 / n, adjust=False).mean() / al.ewm(alpha=1 / n, adjust=False).mean()
    )
    np.testing.assert_allclose(rsi_nb(x, n), ref.to_numpy(), rtol=1e-9, equal_nan=True)


@SETTINGS
@given(price_arrays, periods, st.integers(0, 10**6))
def test_atr_equals_twin_exactly(x: np.ndarray, n: int, seed: int) -> None:
    h, lo, c = _ohlc(x, seed)
    np.testing.assert_array_equal(
        atr_nb(h, lo, c, n), np.array(atr_twin(*(a.tolist() for a in (h, lo, c)), n))
    )
    tr = true_range_nb(h, lo, c)
    if x.size:
        assert tr[0] == h[0] - lo[0]


@SETTINGS
@given(holey_arrays, st.integers(2, 30), st.floats(0.5, 3.0))
def test_bollinger_equals_twin_and_pandas_ddof0(x: np.ndarray, n: int, k: float) -> None:
    mid, up, dn = bollinger_nb(x, n, k)
    tm, tu, td = bollinger_twin(x.tolist(), n, k)
    np.testing.assert_array_equal(mid, np.array(tm))
    np.testing.assert_array_equal(up, np.array(tu))
    np.testing.assert_array_equal(dn, np.array(td))
    r = pd.Series(x, dtype=float).rolling(n)
    scale = np.nanmax(np.abs(x)) if np.isfinite(x).any() else 1.0
    # pandas' running sums leave a variance error of ~eps * scale^2, so a flat window
    # after large values gets a std of ~sqrt(eps) * scale instead of 0 (seen: 2.2e-7 at
    # scale 32): the tolerance is k * sqrt(eps) * scale, with room.
    np.testing.assert_allclose(
        up, (r.mean() + k * r.std(ddof=0)).to_numpy(), rtol=1e-9, atol=1e-7 * scale
    )


@SETTINGS
@given(price_arrays, st.integers(0, 10**6))
def test_vwap_equals_twin_and_pandas(x: np.ndarray, seed: int) -> None:
    h, lo, c = _ohlc(x, seed)
    rng = np.random.default_rng(seed)
    v = np.where(rng.random(x.size) < 0.2, 0.0, rng.random(x.size) * 1000)
    day = np.cumsum(rng.random(x.size) < 0.05).astype(np.int64)
    got = vwap_nb(h, lo, c, v, day)
    np.testing.assert_array_equal(
        got, np.array(vwap_twin(h.tolist(), lo.tolist(), c.tolist(), v.tolist(), day.tolist()))
    )
    df = pd.DataFrame({"tp": (h + lo + c) / 3, "v": v, "day": day})
    df["pv"] = df.tp * df.v
    g = df.groupby("day")
    pv, vol = g.pv.cumsum(), g.v.cumsum()
    ref = np.where(vol > 0, pv / vol.where(vol > 0, 1.0), g.tp.cumsum() / (g.cumcount() + 1))
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_warmup_lengths() -> None:
    x = np.linspace(100, 200, 50)
    assert np.isnan(ema_nb(x, 10)[:9]).all() and not np.isnan(ema_nb(x, 10)[9])
    assert np.isnan(sma_nb(x, 10)[:9]).all() and not np.isnan(sma_nb(x, 10)[9])
    assert np.isnan(rsi_nb(x, 14)[:14]).all() and rsi_nb(x, 14)[14] == 100.0
    assert np.isnan(atr_nb(x, x, x, 14)[:13]).all() and atr_nb(x, x, x, 14)[13] >= 0
    assert np.isnan(macd_nb(x, 12, 26, 9)[1][:33]).all() and not np.isnan(
        macd_nb(x, 12, 26, 9)[1][33]
    )


def test_sma_stays_accurate_over_long_series() -> None:
    x = 20_000 + np.cumsum(np.random.default_rng(0).normal(0, 5, 200_000))
    ref = np.convolve(x, np.ones(50) / 50, mode="valid")
    np.testing.assert_allclose(sma_nb(x, 50)[49:], ref, rtol=1e-13)


@SETTINGS
@given(holey_arrays, st.integers(2, 30), st.sampled_from([0, 1]))
def test_rolling_std_matches_pandas(x: np.ndarray, n: int, ddof: int) -> None:
    ref = pd.Series(x, dtype=float).rolling(n).std(ddof=ddof).to_numpy()
    got = rolling_std_nb(x, n, ddof)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    scale = np.nanmax(np.abs(x)) if np.isfinite(x).any() else 1.0
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9 * scale)


def test_bad_period_raises() -> None:
    x = np.ones(5)
    for fn in (ema_nb, sma_nb, rsi_nb, rolling_max_nb, rolling_min_nb):
        with pytest.raises(ValueError, match="period"):
            fn(x, 0)
    with pytest.raises(ValueError, match="period"):
        ema_cross_nb(x, 3, 0, False)
    with pytest.raises(ValueError, match="period"):
        atr_nb(x, x, x, 0)
