"""`backtester optimize --walk-forward / --holdout` as a user runs it: the windows table and
efficiency, JSON equal to the engine's walk-forward driver, hold-out metrics, errors."""

from __future__ import annotations

import json

import pytest

from engine.bars import read_csv_simple
from engine.optim.validation import walk_forward_windows
from engine.optim.walkforward import run_walk_forward
from engine.options import EngineOptions
from strategies.registry import get_strategy
from tests.e2e.test_cli_optimize import DATA, backtester
from workers.optimization_jobs import make_optimizer

GRID = ("--grid", "fast=5:20:5", "--grid", "slow=20:60:20")


def test_walk_forward_table_and_efficiency() -> None:
    done = backtester("optimize", "--data", DATA, "--strategy", "ema_crossover", *GRID,
                      "--walk-forward", "train=2Y,test=6M")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "55 trials over 5 walk-forward windows"
    assert lines[1].split()[:3] == ["win", "train", "test"]
    assert [ln.split()[0] for ln in lines[2:7]] == ["0", "1", "2", "3", "4"]
    assert lines[7].startswith("walk-forward efficiency: ")
    assert "55/55" in done.stderr


def test_walk_forward_json_equals_the_engine_driver() -> None:
    done = backtester("optimize", "--data", DATA, "--strategy", "ema_crossover", *GRID,
                      "--walk-forward", "train=300,test=100,step=150,anchored", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    bars = read_csv_simple(DATA)
    cls = get_strategy("ema_crossover")
    windows = walk_forward_windows(bars.ts, 300, 100, 150, anchored=True)
    spec = {"space": {"fast": "5:20:5", "slow": "20:60:20"}, "method": "grid",
            "objectives": ["sharpe"], "search_all": False, "budget": {}}
    opts = EngineOptions()

    def run_segment(seg, params):  # type: ignore[no-untyped-def]
        from engine.backtest import run_backtest

        part = bars.slice(seg.start, seg.stop)
        res = run_backtest(part, cls(**cls.validate_params(params)).signals(part), opts)
        return res.ts, res.equity

    want = run_walk_forward(
        windows, lambda w: make_optimizer(cls, {**spec, "seed": w.index}),
        lambda seg, ps: cls.sweep(bars.slice(seg.start, seg.stop), ps, opts), run_segment,
        ts=bars.ts)
    assert len(out["windows"]) == len(want.windows) == len(windows)
    for g, w in zip(out["windows"], want.windows, strict=True):
        assert g["train"]["start_bar"] == 0  # anchored
        assert g["train"]["stop_bar"] == w.window.train.stop <= g["test"]["start_bar"]
        assert g["params"] == w.params
    assert out["efficiency"] == pytest.approx(want.efficiency, nan_ok=True)
    assert out["oos_return_pct"] == pytest.approx(want.oos_return_pct)


def test_holdout_reports_out_of_sample_metrics() -> None:
    done = backtester("optimize", "--data", DATA, "--strategy", "ema_crossover", *GRID,
                      "--holdout", "0.3", "--top", "3", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["holdout"]["out_of_sample"] == [875, 1250] and out["n_trials"] == 11
    assert len(out["top"]) == 3 and all(t["oos_metrics"]["sharpe"] is not None for t in out["top"])


@pytest.mark.parametrize(("args", "message"), [
    (("--walk-forward", "train=2Q,test=6M"), "error: --walk-forward train: cannot read '2Q'"),
    (("--walk-forward", "train=20Y,test=6M"), "error: --walk-forward: no window fits"),
    (("--walk-forward", "train=2Y,tset=6M"), "error: --walk-forward 'tset=6M': expected"),
    (("--holdout", "1.2"), "error: --holdout fraction: the held-out share must be in (0, 1)"),
    (("--holdout", "0.3", "--walk-forward", "train=2Y,test=6M"), "error: give --holdout or"),
])
def test_bad_validation_is_one_line(args: tuple[str, ...], message: str) -> None:
    done = backtester("optimize", "--data", DATA, "--strategy", "ema_crossover", *GRID, *args)
    assert done.returncode == 2
    assert done.stderr.startswith(message) and len(done.stderr.strip().splitlines()) == 1
