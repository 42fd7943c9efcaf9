"""Chart downsampling (graph/series.py) and error mapping (graph/errors.py), directly."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from graphql import GraphQLError

from graph.errors import classify, to_graphql_error
from graph.series import downsample_minmax
from store.errors import ConflictError, NotFoundError
from strategies.registry import get_strategy


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("points", [2, 3, 10, 999])
def test_downsampling_keeps_ends_and_extremes(seed: int, points: int) -> None:
    rng = np.random.default_rng(seed)
    n = 20_000
    ts = np.arange(n, dtype=np.int64) * 60_000_000_000
    values = 1e5 + np.cumsum(rng.normal(0, 50, n))
    t, v = downsample_minmax(ts, values, points)
    assert 2 <= len(v) <= points
    assert t[0] == ts[0] and t[-1] == ts[-1] and v[-1] == values[-1]
    assert np.all(np.diff(t) > 0)  # time order, no duplicates
    if points >= 4:
        assert v.max() == values.max() and v.min() == values.min()
    lookup = dict(zip(ts.tolist(), values.tolist(), strict=True))
    assert all(lookup[a] == b for a, b in zip(t.tolist(), v.tolist(), strict=True))


def test_short_series_are_returned_whole() -> None:
    t, v = downsample_minmax([1, 2, 3], [5.0, 4.0, 6.0], 1000)
    assert list(t) == [1, 2, 3] and list(v) == [5.0, 4.0, 6.0]
    with pytest.raises(ValueError):
        downsample_minmax([1, 2, 3], [1.0, 2.0, 3.0], 1)


def test_domain_errors_map_to_codes() -> None:
    assert classify(NotFoundError("run", "r1"))[:2] == ("NOT_FOUND", "run 'r1' not found")
    assert classify(ConflictError("busy"))[0] == "CONFLICT"
    try:
        get_strategy("ema_crossover").validate_params({"fast": 1})
    except Exception as exc:
        code, message, extra = classify(exc)  # type: ignore[misc]
        assert code == "BAD_USER_INPUT" and extra == {"field": "fast"} and "fast" in message
    assert classify(RuntimeError("boom")) is None


def test_unexpected_errors_are_masked_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise RuntimeError("password=hunter2 in the connection string")
    except RuntimeError as exc:
        original = exc
    error = GraphQLError("password=hunter2", path=["runs"], original_error=original)
    with caplog.at_level(logging.ERROR, logger="backtester.graph"):
        shaped = to_graphql_error(error, "req123")
    assert shaped.message == "internal error; request id req123"
    assert shaped.extensions == {"code": "INTERNAL"} and shaped.path == ["runs"]
    assert "hunter2" not in str(shaped.formatted)
    [record] = caplog.records
    assert "req123" in record.getMessage() and record.exc_info is not None
