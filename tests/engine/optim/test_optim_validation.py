"""Hold-out splits and walk-forward windows: ordered, never testing on training data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.optim import OptimInputError
from engine.optim.validation import (
    Segment,
    Window,
    holdout_split,
    parse_length,
    walk_forward_windows,
)

DAY = 86_400 * 10**9


def _check(windows: list[Window], n: int, anchored: bool) -> None:
    prev: Window | None = None
    for i, w in enumerate(windows):
        assert w.index == i
        assert 0 <= w.train.start < w.train.stop <= w.test.start < w.test.stop <= n
        assert len(w.train) >= 2 and len(w.test) >= 1
        train = set(range(w.train.start, w.train.stop))
        assert not train & set(range(w.test.start, w.test.stop))  # never test on training bars
        if anchored:
            assert w.train.start == 0
        if prev is not None:
            assert prev.test.stop <= w.test.start  # test windows ordered and disjoint
            assert prev.train.start <= w.train.start and prev.train.stop < w.train.stop
        prev = w


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 400), train=st.integers(2, 120), test=st.integers(1, 60),
    extra=st.integers(0, 30), gap=st.integers(0, 5), anchored=st.booleans(),
    partial=st.booleans(),
)
def test_bar_windows_never_overlap_training_data(
    n: int, train: int, test: int, extra: int, gap: int, anchored: bool, partial: bool
) -> None:
    ts = np.arange(n, dtype=np.int64) * 60 * 10**9
    windows = walk_forward_windows(ts, train, test, test + extra, anchored=anchored, gap=gap,
                                   partial=partial)
    _check(windows, n, anchored)
    for w in windows:
        if not anchored:
            assert len(w.train) == train
        assert w.test.start - w.train.stop == gap
        assert len(w.test) == test or (partial and w.test.stop == n)
    full = (n - train - gap - test) // (test + extra) + 1 if n >= train + gap + test else 0
    assert len(windows) >= full


@settings(max_examples=150, deadline=None)
@given(
    days=st.integers(10, 900), holes=st.lists(st.integers(0, 900), max_size=60),
    train=st.sampled_from(["30D", "2W", "3M", "1Y", "100D"]),
    test=st.sampled_from(["7D", "1M", "2W", "45D"]),
    extra=st.sampled_from([None, "3M", "60D"]), anchored=st.booleans(), partial=st.booleans(),
)
def test_duration_windows_never_overlap_training_data(
    days: int, holes: list[int], train: str, test: str, extra: str | None, anchored: bool,
    partial: bool,
) -> None:
    keep = np.setdiff1d(np.arange(days), holes)
    ts = np.datetime64("2021-01-04", "ns").astype(np.int64) + keep.astype(np.int64) * DAY
    step = extra if extra is not None and pd.Timestamp(0) + parse_length(extra) >= (
        pd.Timestamp(0) + parse_length(test)) else None
    windows = walk_forward_windows(ts, train, test, step, anchored=anchored, partial=partial,
                                   tz="Asia/Kolkata")
    _check(windows, len(ts), anchored)


def test_month_windows_on_daily_bars() -> None:
    ts = pd.date_range("2020-01-01", "2021-12-31", freq="D", tz="UTC").as_unit("ns").asi8
    w = walk_forward_windows(ts, "6M", "1M")
    assert len(w) == 18  # tests Jul 2020 .. Dec 2021
    first, last = w[0], w[-1]
    assert pd.Timestamp(ts[first.test.start], tz="UTC") == pd.Timestamp("2020-07-01", tz="UTC")
    assert pd.Timestamp(ts[last.test.stop - 1], tz="UTC") == pd.Timestamp("2021-12-31", tz="UTC")
    anchored = walk_forward_windows(ts, "1Y", "3M", anchored=True)
    assert [len(x.train) for x in anchored] == [366, 366 + 90, 366 + 90 + 91, 366 + 90 + 91 + 92]
    assert walk_forward_windows(ts, "6M", dt.timedelta(days=30))[0].test == Segment(182, 212)


def test_walk_forward_input_errors() -> None:
    ts = np.arange(100, dtype=np.int64) * DAY
    with pytest.raises(OptimInputError, match="test windows would overlap"):
        walk_forward_windows(ts, 20, 10, 5)
    with pytest.raises(OptimInputError, match="all in bars or all as durations"):
        walk_forward_windows(ts, 20, "1M")
    with pytest.raises(OptimInputError, match="ambiguous"):
        walk_forward_windows(ts, "6m", "1M")
    with pytest.raises(OptimInputError, match="cannot read"):
        walk_forward_windows(ts, "six months", "1M")


def test_holdout_split_by_fraction_and_date() -> None:
    ts = pd.date_range("2022-01-03", periods=10, freq="D", tz="UTC").as_unit("ns").asi8
    assert holdout_split(ts, fraction=0.7) == (Segment(0, 7), Segment(7, 10))
    assert holdout_split(ts, at="2022-01-08") == (Segment(0, 5), Segment(5, 10))
    assert holdout_split(ts, at=pd.Timestamp("2022-01-08 05:30", tz="Asia/Kolkata")) == (
        Segment(0, 5), Segment(5, 10))
    with pytest.raises(OptimInputError, match="at least 2"):
        holdout_split(ts, fraction=0.95)
    with pytest.raises(OptimInputError, match="exactly one"):
        holdout_split(ts)
