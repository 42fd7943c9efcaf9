"""Run comparison: common axis, rebasing, correlations, and the no-overlap answer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.compare import CompareRun, compare_runs
from engine.errors import EngineInputError

MIN = 60_000_000_000
DAY = 1440 * MIN
T0 = int(np.datetime64("2024-01-01", "ns").astype(np.int64))


def run(id_: str, ts: np.ndarray, eq: np.ndarray, **metrics: float) -> CompareRun:
    return CompareRun(id_, ts, eq, metrics, label=id_.upper(), tz="UTC")


def test_same_bars_by_hand() -> None:
    ts = T0 + np.arange(5, dtype=np.int64) * DAY
    a = run("a", ts, np.array([100.0, 110, 121, 110, 132]), sharpe=1.0, max_drawdown_pct=9.0)
    b = run("b", ts, np.array([50.0, 45, 40.5, 45, 36]), sharpe=-1.0, max_drawdown_pct=28.0)
    cmp = compare_runs([a, b])
    d = cmp.to_dict()
    assert d["overlap"] and d["message"] is None and d["n_points"] == 5
    assert d["equity"][0]["v"] == pytest.approx([100, 110, 121, 110, 132])
    assert d["equity"][1]["v"] == pytest.approx([100, 90, 81, 90, 72])
    assert d["runs"][0]["overlap_return_pct"] == pytest.approx(32.0)
    ra = np.diff(a.equity) / a.equity[:-1]
    rb = np.diff(b.equity) / b.equity[:-1]
    assert d["correlation"][0][1] == pytest.approx(np.corrcoef(ra, rb)[0, 1], rel=1e-12)
    assert d["correlation"][0][0] == 1.0 and d["correlation_points"] == 4
    table = {row["metric"]: row for row in d["metrics"]}
    assert table["sharpe"]["values"] == [1.0, -1.0] and table["sharpe"]["best"] == 0
    assert table["max_drawdown_pct"]["best"] == 0  # lower is better
    assert table["n_trades"]["values"] == [None, None] and table["n_trades"]["best"] is None
    json.dumps(d, allow_nan=False)


def test_union_axis_inside_the_common_span_with_as_of_values() -> None:
    # A daily run and a 6-hourly run starting a day later: the axis starts at the later
    # start, ends at the earlier end, and holds both runs' times in between.
    daily = run("d", T0 + np.arange(10, dtype=np.int64) * DAY, 100.0 + np.arange(10.0))
    six_h = T0 + DAY + np.arange(20, dtype=np.int64) * DAY // 4
    intraday = run("i", six_h, 200.0 + np.arange(20.0))
    cmp = compare_runs([daily, intraday])
    assert cmp.start == T0 + DAY and cmp.end == int(six_h[-1])
    assert np.array_equal(cmp.ts, six_h)  # every daily time in the span is a 6-hour time too
    # The daily run is read as of each 6-hour time: its last bar at or before it.
    want = 100.0 + (six_h - T0) // DAY
    np.testing.assert_allclose(cmp.rebased[0], want / want[0] * 100)
    np.testing.assert_allclose(cmp.rebased[1], (200.0 + np.arange(20)) / 200 * 100)
    # Correlation on the coarser (daily) times inside the span: 5 points, 4 returns.
    assert cmp.correlation_points == 4


def test_no_overlap_is_said_clearly() -> None:
    a = run("jan", T0 + np.arange(10, dtype=np.int64) * DAY, np.linspace(100, 110, 10), sharpe=1.0)
    b = run("mar", T0 + 60 * DAY + np.arange(10, dtype=np.int64) * DAY, np.linspace(100, 90, 10))
    d = compare_runs([a, b]).to_dict()
    assert d["overlap"] is False and d["equity"] == [None, None] and d["correlation"] is None
    assert d["message"].startswith("runs do not overlap in time: JAN ends 2024-01-10")
    assert "before MAR starts 2024-03-01" in d["message"]
    assert d["metrics"][2]["metric"] == "sharpe" and d["metrics"][2]["values"] == [1.0, None]
    json.dumps(d, allow_nan=False)


def test_ten_runs_on_one_dataset_downsample_per_curve() -> None:
    rng = np.random.default_rng(1)
    ts = T0 + np.arange(100_000, dtype=np.int64) * MIN
    runs = [run(f"r{k}", ts, 100 * np.cumprod(1 + rng.normal(0, 1e-3, ts.shape[0])))
            for k in range(10)]
    d = compare_runs(runs).to_dict(points=1000)
    assert all(len(c["t"]) <= 1000 for c in d["equity"])
    corr = np.array(d["correlation"])
    assert corr.shape == (10, 10) and np.allclose(corr, corr.T)
    assert np.all(np.abs(corr[~np.eye(10, dtype=bool)]) < 0.05)  # independent walks


def test_bad_input() -> None:
    with pytest.raises(EngineInputError, match="1 to 50 runs"):
        compare_runs([])
    with pytest.raises(EngineInputError, match="run x"):
        compare_runs([CompareRun("x", np.arange(3), np.ones(2))])
