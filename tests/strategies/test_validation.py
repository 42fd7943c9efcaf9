"""Validation steps: each deliberately broken file fails at its step with a readable message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.bars import Bars
from engine.synthetic import synthetic_daily
from strategies.base import Strategy
from strategies.discovery import StrategySpec, builtin_specs, discover, spec_for_class
from strategies.validation import STEPS, find_look_ahead, sample_bars, validate_strategy
from tests.strategies.user_files import BROKEN, GOOD, write


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StrategySpec]:
    folder = tmp_path_factory.mktemp("user_strategies")
    for name, (source, _, _) in BROKEN.items():
        write(folder, name, source)
    write(folder, "good.py", GOOD)
    result = discover([folder], builtins=False)
    by_file = {Path(s.path or "").name: s for s in result.found}
    for error in result.errors:  # files that never load: what validation of them reports
        by_file[Path(error.path).name] = StrategySpec(
            name=Path(error.path).stem, module="", class_name="Missing", description=None,
            params_schema=[], code_hash=error.code_hash or "", path=error.path,
        )
    return by_file


def test_sample_is_small_and_cached() -> None:
    assert len(sample_bars()) == 1125 and sample_bars() is sample_bars()


def test_good_file_passes_every_step(specs: dict[str, StrategySpec]) -> None:
    report = validate_strategy(specs["good.py"])
    assert report.ok and report.failed is None and report.error is None
    assert [s.name for s in report.steps] == list(STEPS)
    assert report.code_hash == specs["good.py"].code_hash
    assert "loaded UserMomentum from" in report.steps[0].message
    assert "8 cut points" in report.steps[-1].message


@pytest.mark.parametrize("file", sorted(BROKEN))
def test_broken_file_fails_at_its_step(specs: dict[str, StrategySpec], file: str) -> None:
    _, step, words = BROKEN[file]
    report = validate_strategy(specs[file])
    assert not report.ok
    failed = report.failed
    assert failed is not None and failed.name == step, report.steps
    for word in words:
        assert word in failed.message, failed.message
    if step == "import":  # the file's own error, not wrapped in another exception's name
        assert failed.message.startswith(("SyntaxError", "ModuleNotFoundError"))
    # The steps before it passed; validation stops at the failure.
    names = [s.name for s in report.steps]
    assert names == list(STEPS[: STEPS.index(step) + 1])
    assert all(s.ok for s in report.steps[:-1])
    assert report.error == f"{step}: {failed.message}"
    assert report.to_list()[-1] == {"name": step, "ok": False, "message": failed.message}


@pytest.mark.parametrize("spec", builtin_specs().found, ids=lambda s: s.name)
def test_every_builtin_validates(spec: StrategySpec) -> None:
    report = validate_strategy(spec)
    assert report.ok, report.error


def test_validation_on_other_data() -> None:
    """An intraday-only strategy fails on daily bars at the signals step, saying why."""
    spec = {s.name: s for s in builtin_specs().found}["vwap_reversion"]
    report = validate_strategy(spec, synthetic_daily(1, seed=3))
    assert report.failed is not None and report.failed.name == "signals"
    assert "intraday" in report.failed.message


def test_warmup_must_be_flat() -> None:
    class Eager(Strategy):
        """Trades during its own warm-up, which the contract forbids."""

        name = "eager"

        @property
        def warmup(self) -> int:
            return 10

        def signals(self, bars: Bars) -> np.ndarray:
            return np.ones(len(bars), dtype=np.int8)

    report = validate_strategy(spec_for_class(Eager))
    assert report.error == "values: signal 1 at bar 0, inside the warm-up of 10 bars: must be 0"


def test_find_look_ahead_reports_the_first_difference() -> None:
    class Centred(Strategy):
        """A centred 3-bar mean: uses the next bar."""

        name = "centred"

        def signals(self, bars: Bars) -> np.ndarray:
            c = bars.close
            mean = np.convolve(c, np.ones(3) / 3, mode="same")
            return (c > mean).astype(np.int8)

    bars = sample_bars()
    leak = find_look_ahead(Centred(), bars, cuts=[500])
    assert leak is not None and leak.cut == 500 and leak.bar == 499
    assert "first 500 bars differ" in str(leak) and "bar 499" in str(leak)
    assert find_look_ahead(Centred(), bars, cuts=[]) is None
