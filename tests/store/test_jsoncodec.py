"""The database's JSON codec (store/jsoncodec.py) reads and writes what `json` did."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from store.jsoncodec import dumps, loads

CASES = [
    {"sharpe": 1.25, "n_trades": 3, "name": "ema", "ok": True, "none": None},
    [0.1, 1e-300, 1.7976931348623157e308, -0.0, 123456789012345678],
    {"nested": {"a": [1, [2, {"b": "ü"}]]}},
    "text with \"quotes\" and \\ and \n",
    [],
    {},
]


@pytest.mark.parametrize("value", CASES)
def test_round_trip_equals_the_standard_library(value: object) -> None:
    text = dumps(value)
    assert loads(text) == json.loads(json.dumps(value)) == value
    assert json.loads(text) == value  # what orjson writes, json reads


def test_numpy_values_non_string_keys_and_wide_integers() -> None:
    assert loads(dumps({"x": np.float64(1.5), "n": np.int64(7), "v": np.arange(3)})) == {
        "x": 1.5, "n": 7, "v": [0, 1, 2]}
    assert loads(dumps({1: "a", 2.5: "b"})) == {"1": "a", "2.5": "b"}
    assert loads(dumps(2**70)) == 2**70  # beyond orjson's 64 bits: json writes it


def test_non_finite_floats_are_written_as_null_and_old_nan_tokens_still_read() -> None:
    assert loads(dumps([math.nan, math.inf])) == [None, None]
    got = loads('{"a": NaN, "b": 1}')  # as json.dumps wrote NaN before (SQLite accepted it)
    assert math.isnan(got["a"]) and got["b"] == 1


def test_values_without_a_json_form_are_refused() -> None:
    with pytest.raises(TypeError):
        dumps({"x": object()})
