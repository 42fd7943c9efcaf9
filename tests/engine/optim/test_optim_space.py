"""Search spaces from strategy schemas, the constraint language, and lazy grids."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.optim import OptimInputError, SearchSpace, parse_expr
from engine.optim.space import ParamSpec
from strategies.classic import BollingerBreakout, EmaCrossover, RsiReversion


def test_expression_language_is_vectorized_and_chained() -> None:
    e = parse_expr("2 <= fast < slow and not (slow - fast > 100)", {"fast", "slow"})
    cols = {"fast": np.array([1, 2, 5, 5, 5]), "slow": np.array([5, 5, 5, 200, 50])}
    assert e(cols).tolist() == [False, True, False, False, True]
    assert e.names == {"fast", "slow"}
    miss = e.violation(cols)
    assert miss[1] == 0 and miss[4] == 0
    assert np.all(miss[[0, 2, 3]] > 0)
    assert miss[0] == pytest.approx(1.0, abs=1e-6)  # 1 is one below 2


def test_expressions_on_strings_functions_and_nan() -> None:
    e = parse_expr("mode == 'fast' or abs(a - b) <= max(1, a / 10)", {"mode", "a", "b"})
    cols = {"mode": np.array(["fast", "slow", "slow"], dtype=object),
            "a": np.array([0.0, 50.0, 50.0]), "b": np.array([99.0, 54.0, 56.0])}
    assert e(cols).tolist() == [True, True, False]
    nan = parse_expr("sharpe > 0.5")
    ok = nan({"sharpe": np.array([np.nan, 1.0])})
    assert ok.tolist() == [False, True]
    assert nan.violation({"sharpe": np.array([np.nan])})[0] > 0
    either = parse_expr("sharpe > 1 or n_trades >= 5")
    cols = {"sharpe": np.array([np.nan, np.nan, 2.0]), "n_trades": np.array([9.0, 1.0, 0.0])}
    assert either(cols).tolist() == [True, False, True]
    assert either.violation(cols).tolist()[0] == 0.0 and either.violation(cols)[2] == 0.0
    assert either.violation(cols)[1] == pytest.approx(4.0, abs=1e-6)


@pytest.mark.parametrize("source", [
    "__import__('os').system('true')",
    "fast.real < 3",
    "(lambda: 1)() == 1",
    "fast[0] < 1",
    "fast < slow if True else False",
    "[1, 2] == fast",
    "fast",  # not a comparison over a number... names are allowed as bools
])
def test_anything_outside_the_language_is_refused(source: str) -> None:
    if source == "fast":
        assert parse_expr(source, {"fast"})({"fast": np.array([True, False])}).tolist() == [
            True, False]
        return
    with pytest.raises(OptimInputError):
        parse_expr(source, {"fast", "slow"})


def test_unknown_names_get_a_hint() -> None:
    with pytest.raises(OptimInputError, match="did you mean 'slow'"):
        parse_expr("fast < slwo", {"fast", "slow"})
    with pytest.raises(OptimInputError, match="syntax error"):
        parse_expr("fast <", {"fast"})
    with pytest.raises(OptimInputError, match="comparison"):
        parse_expr("fast + 1", {"fast"})


def test_space_from_schema_with_overrides() -> None:
    space = SearchSpace.from_schema(
        EmaCrossover.params_schema(),
        {"fast": "5:50:5", "slow": {"min": 20, "max": 200, "step": 10}, "long_only": False},
        ["fast < slow"],
    )
    f, s, lo = space.params
    assert (f.low, f.high, f.step, f.size) == (5, 50, 5, 10)
    assert (s.low, s.high, s.step, s.size) == (20, 200, 10, 19)
    assert lo.values == (False,)
    assert space.grid_size() == 190
    expected = [(a, b) for a, b in itertools.product(range(5, 51, 5), range(20, 201, 10)) if a < b]
    got = [p for chunk in space.iter_grid(chunk=7) for p in chunk]
    assert [(p["fast"], p["slow"]) for p in got] == expected
    assert all(type(p["fast"]) is int and p["long_only"] is False for p in got)
    assert space.count_grid() == len(expected)


def test_float_steps_lists_choices_and_defaults() -> None:
    space = SearchSpace.from_schema(
        BollingerBreakout.params_schema(), {"k": "0.1:0.5:0.1", "period": [30, 10, 20, 10]},
        search_all=False,
    )
    period, k, lo = space.params
    assert k.column(np.arange(5)).tolist() == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert period.values == (10, 20, 30)
    assert lo.values == (False,)  # fixed at its default
    assert space.grid_size() == 15
    cont = SearchSpace.from_schema(BollingerBreakout.params_schema(), {"k": {"min": 1, "max": 2}})
    assert cont.by_name["k"].step == 0.1  # the schema's step is kept
    free = SearchSpace([ParamSpec("k", "float", 1.0, 2.0)])
    with pytest.raises(OptimInputError, match="needs a step"):
        free.grid_size()


@pytest.mark.parametrize(("override", "message"), [
    ({"fats": 3}, "did you mean 'fast'"),
    ({"fast": "1:50"}, "below the strategy's minimum 2"),
    ({"fast": "10:5"}, "above max"),
    ({"fast": {"min": 5, "max": 9, "step": 1.5}}, "whole step"),
    ({"fast": 2.5}, "integer"),
    ({"long_only": "yes"}, "true or false"),
    ({"fast": {"low": 3}}, "unknown range keys"),
    ({"fast": []}, "must not be empty"),
])
def test_bad_overrides_name_the_parameter(override: dict, message: str) -> None:
    with pytest.raises(OptimInputError, match=message) as info:
        SearchSpace.from_schema(EmaCrossover.params_schema(), override)
    assert info.value.field.startswith("space.")


def test_absurd_grids_are_refused_with_the_shape() -> None:
    space = SearchSpace.from_schema(RsiReversion.params_schema())  # the whole schema
    with pytest.raises(OptimInputError, match=r"period=499 x lower=99 x upper=99 x exit_level=99"):
        space.grid_size()
    small = SearchSpace.from_schema(EmaCrossover.params_schema(), max_grid=1000)
    with pytest.raises(OptimInputError, match=r"1,994,004 points .* limit is 1,000"):
        small.grid_size()


def test_callable_constraints_wrap_a_strategy_check() -> None:
    def strategy_ok(params: dict) -> bool:
        try:
            RsiReversion.validate_params(params)
        except ValueError:
            return False
        return True

    space = SearchSpace.from_schema(
        RsiReversion.params_schema(),
        {"lower": "20:40:10", "upper": "60:80:10", "exit_level": [30.0, 50.0, 70.0]},
        [strategy_ok], search_all=False,
    )
    pts = [p for chunk in space.iter_grid() for p in chunk]
    assert pts and all(p["lower"] < p["exit_level"] < p["upper"] for p in pts)
    assert len(pts) == 3 + 9 + 3  # exit 30: lower 20 only; 50: always; 70: upper 80 only
    assert space.is_feasible(pts[0])
