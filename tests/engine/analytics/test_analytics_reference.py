"""Our analysis against empyrical-reloaded and scipy on the same returns, to 1e-9.

Where a definition differs on purpose the test says how (and engine.analysis documents
it): VaR/CVaR are order statistics (empyrical interpolates a percentile), max drawdown
is a positive percent, the information ratio is annualized.
"""

from __future__ import annotations

import math

import empyrical as ep
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from engine.analysis import Analysis, analyze
from engine.rolling import rolling_metrics
from tests.engine.analytics.synth_run import SynthRun

REL = 1e-9
DAY = 86_400_000_000_000
T0 = int(np.datetime64("2020-01-01", "ns").astype(np.int64))


def approx(x: float) -> object:
    return pytest.approx(x, rel=REL, abs=1e-12)


def rets(a: Analysis) -> np.ndarray:
    eq = a.series.equity
    return eq[1:] / eq[:-1] - 1.0


def test_return_ratios_match_empyrical(daily_analysis: Analysis) -> None:
    a = daily_analysis
    r = rets(a)
    bpy = a.series.bars_per_year
    assert a.basic["sharpe"] == approx(ep.sharpe_ratio(r, annualization=bpy))
    assert a.risk["sortino"] == approx(ep.sortino_ratio(r, annualization=bpy))
    assert a.risk["volatility_pct"] / 100 == approx(ep.annual_volatility(r, annualization=bpy))
    assert a.basic["cagr_pct"] / 100 == approx(ep.cagr(r, annualization=bpy))
    assert a.risk["calmar"] == approx(ep.calmar_ratio(r, annualization=bpy))
    # Ours is a positive percent; empyrical's a negative fraction.
    assert a.basic["max_drawdown_pct"] / 100 == approx(-ep.max_drawdown(r))
    assert a.risk["tail_ratio"] == approx(ep.tail_ratio(r))


def test_moments_match_scipy(daily_analysis: Analysis, big_analysis: Analysis) -> None:
    for a in (daily_analysis, big_analysis):
        r = rets(a)
        assert a.risk["skew"] == approx(stats.skew(r))
        assert a.risk["kurtosis"] == approx(stats.kurtosis(r))  # excess (Fisher), biased


def _random_equity(m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    r = rng.standard_t(4, m) * 0.01
    eq = 100.0 * np.concatenate(([1.0], np.cumprod(1.0 + r)))
    return eq, T0 + np.arange(m + 1, dtype=np.int64) * DAY


@pytest.mark.parametrize(("m", "tail"), [(2001, 95), (10001, 99), (20001, 95), (20001, 99)])
def test_var_cvar_equal_empyrical_when_definitions_coincide(m: int, tail: int) -> None:
    # (m - 1) x tail share is whole here, so the K-th worst return is exactly
    # empyrical's interpolated percentile and both CVaRs average the same K returns.
    eq, ts = _random_equity(m, seed=m + tail)
    a = analyze(eq, ts, [], tz="UTC", bars_per_year=252.0)
    r = rets(a)
    cut = 1 - tail / 100
    assert a.risk[f"var_{tail}"] / 100 == approx(-ep.value_at_risk(r, cutoff=cut))
    assert a.risk[f"cvar_{tail}"] / 100 == approx(-ep.conditional_value_at_risk(r, cutoff=cut))


def test_var_is_an_order_statistic_where_empyrical_interpolates() -> None:
    eq, ts = _random_equity(1000, seed=5)
    a = analyze(eq, ts, [], tz="UTC", bars_per_year=252.0)
    r = np.sort(rets(a))
    k = math.ceil(0.01 * r.shape[0])  # 10 worst of 1000
    assert a.risk["var_99"] == pytest.approx(-r[k - 1] * 100, rel=1e-12)
    assert a.risk["cvar_99"] == pytest.approx(-r[:k].mean() * 100, rel=1e-12)
    # empyrical interpolates between the 10th and 11th worst ((m-1) x 1% = 9.99): a
    # slightly smaller loss than ours, the 10th worst itself.
    interpolated = -ep.value_at_risk(r, cutoff=0.01) * 100
    assert -r[k] * 100 <= interpolated <= -r[k - 1] * 100
    assert a.risk["var_99"] != pytest.approx(interpolated, rel=1e-9)


def test_var_95_is_the_engine_metric(big_analysis: Analysis) -> None:
    from engine.analysis_nb import tail_risk_nb

    var, cvar = tail_risk_nb(rets(big_analysis), 0.05)
    assert big_analysis.risk["var_95"] == big_analysis.metrics["var_95"] == var * 100
    assert big_analysis.risk["cvar_95"] == cvar * 100


def test_benchmark_matches_empyrical(daily: SynthRun, daily_analysis: Analysis) -> None:
    a = daily_analysis
    r = rets(a)
    c = daily.bars.close
    b = c[1:] / c[:-1] - 1.0
    bpy = a.series.bars_per_year
    alpha, beta = ep.alpha_beta(r, b, annualization=bpy)
    bm = a.benchmark
    assert bm is not None
    assert bm["beta"] == approx(beta)
    assert bm["alpha_pct"] / 100 == approx(alpha)
    assert bm["correlation"] == approx(np.corrcoef(r, b)[0, 1])
    # empyrical's excess_sharpe is the same ratio per bar; ours is annualized.
    assert bm["information_ratio"] == approx(ep.excess_sharpe(r, b) * math.sqrt(bpy))
    assert bm["return_pct"] == approx((c[-1] / c[0] - 1) * 100)
    assert bm["sharpe"] == approx(ep.sharpe_ratio(b, annualization=bpy))
    assert bm["max_drawdown_pct"] / 100 == approx(-ep.max_drawdown(b))


def _local_returns(a: Analysis) -> pd.Series:
    idx = pd.DatetimeIndex(a.series.ts[1:].view("datetime64[ns]")).tz_localize("UTC")
    return pd.Series(rets(a), index=idx.tz_convert(a.series.tz))


def _hourly_new_york() -> Analysis:
    # Round-the-clock hourly bars across DST changes: bars near local midnight fall in
    # another month in UTC than in New York, so the tables must use local time.
    ts = pd.date_range("2021-12-30", "2024-01-02", freq="h", tz="UTC").as_unit("ns").asi8
    rng = np.random.default_rng(11)
    eq = 1000.0 * np.concatenate(([1.0], np.cumprod(1.0 + rng.normal(0, 0.002, ts.shape[0] - 1))))
    return analyze(eq, ts, [], tz="America/New_York", bars_per_year=None)


@pytest.mark.parametrize("which", ["daily", "hourly_new_york"])
def test_monthly_and_yearly_tables_match_empyrical(which: str, daily_analysis: Analysis) -> None:
    a = daily_analysis if which == "daily" else _hourly_new_york()
    s = _local_returns(a)
    monthly = ep.aggregate_returns(s, "monthly")
    yearly = ep.aggregate_returns(s, "yearly")
    assert len(a.monthly_returns) == len(monthly)
    for row in a.monthly_returns:
        assert row["return_pct"] / 100 == approx(monthly[(row["year"], row["month"])])
    assert [row["year"] for row in a.yearly_returns] == list(yearly.index)
    for row in a.yearly_returns:
        assert row["return_pct"] / 100 == approx(yearly[row["year"]])


@pytest.mark.parametrize("window", [20, 63])
def test_rolling_metrics_match_empyrical(daily_analysis: Analysis, window: int) -> None:
    a = daily_analysis
    r = rets(a)
    bpy = a.series.bars_per_year
    rr = rolling_metrics(a.series.equity, a.series.ts, window, bars_per_year=bpy)
    # empyrical's k-th window ends at return k + window - 1, i.e. at bar k + window.
    np.testing.assert_allclose(rr.series["sharpe"][window:],
                               ep.roll_sharpe_ratio(r, window=window, annualization=bpy),
                               rtol=REL, atol=1e-12)
    np.testing.assert_allclose(rr.series["volatility"][window:] / 100,
                               ep.roll_annual_volatility(r, window=window, annualization=bpy),
                               rtol=REL, atol=1e-12)
    np.testing.assert_allclose(rr.series["drawdown"][window:] / 100,
                               -ep.roll_max_drawdown(r, window=window), rtol=REL, atol=1e-12)
    assert np.isnan(rr.series["sharpe"][:window]).all()


def test_rolling_sharpe_on_a_million_bars_matches_empyrical(big_analysis: Analysis) -> None:
    a = big_analysis
    # The whole million bars through our kernel; the last 30,000 bars against empyrical
    # (its rolling window materializes n x w values).
    bpy = a.series.bars_per_year
    w = 300
    rr = rolling_metrics(a.series.equity, a.series.ts, w, bars_per_year=bpy)
    tail = 30_000
    r = rets(a)[-tail:]
    np.testing.assert_allclose(rr.series["sharpe"][-(tail - w + 1):],
                               ep.roll_sharpe_ratio(r, window=w, annualization=bpy),
                               rtol=REL, atol=1e-12)
    np.testing.assert_allclose(rr.series["drawdown"][-(tail - w + 1):] / 100,
                               -ep.roll_max_drawdown(r, window=w), rtol=REL, atol=1e-12)
