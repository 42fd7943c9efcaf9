"""Fixtures for the analytics tests: one real million-bar engine run, analyzed once."""

from __future__ import annotations

import pytest

from engine.analysis import Analysis, analyze
from tests.engine.analytics.synth_run import SynthRun, daily_run, intraday_run


def analyze_run(run: SynthRun) -> Analysis:
    r = run.result
    return analyze(r.equity, r.ts, r.trades, tz=run.bars.tz, bars_per_year=run.bars_per_year,
                   benchmark_close=run.bars.close)


@pytest.fixture(scope="session")
def big_run() -> SynthRun:
    """About 1,000,000 one-minute bars (2,667 sessions) and an EMA-crossover run on them."""
    return intraday_run(1_000_000)


@pytest.fixture(scope="session")
def big_analysis(big_run: SynthRun) -> Analysis:
    return analyze_run(big_run)


@pytest.fixture(scope="session")
def daily() -> SynthRun:
    """Eight years of daily bars and a long/short EMA run on them."""
    return daily_run(8.0)


@pytest.fixture(scope="session")
def daily_analysis(daily: SynthRun) -> Analysis:
    return analyze_run(daily)
