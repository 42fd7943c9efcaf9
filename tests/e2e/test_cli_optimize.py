"""`backtester optimize` as a user runs it: a grid with two objectives, JSON out, an error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.live import ROOT, base_env

DATA = str(Path(ROOT) / "data" / "nifty_daily_sample.csv.gz")


def backtester(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in base_env().items() if not k.startswith("BT_")}
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_grid_json_with_two_objectives() -> None:
    done = backtester("optimize", "--data", DATA, "--strategy", "ema_crossover",
                      "--grid", "fast=5:20:5", "--grid", "slow=20:60:20",
                      "--objective", "sharpe", "--objective", "-max_drawdown_pct", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["n_trials"] == 11 and out["stop_reason"] == "exhausted"
    assert [o["direction"] for o in out["objectives"]] == ["maximize", "minimize"]
    assert out["pareto"] and all(t["feasible"] for t in out["pareto"])
    assert "11/11" in done.stderr  # the progress bar (fast=20, slow=20 breaks fast < slow)


def test_seeded_genetic_is_deterministic_and_text_output() -> None:
    args = ("optimize", "--data", DATA, "--strategy", "ema_crossover", "--grid", "fast=5:30:1",
            "--grid", "slow=20:80:5", "--method", "genetic", "--trials", "40", "--seed", "1")
    first, second = backtester(*args), backtester(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[1:] == second.stdout.splitlines()[1:]  # line 0 has seconds
    assert first.stdout.startswith("40 trials")


def test_unknown_parameter_is_one_line() -> None:
    done = backtester("optimize", "--data", DATA, "--strategy", "ema_crossover",
                      "--grid", "fastt=5:20:5")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: space.fastt: unknown parameter 'fastt'; did you mean 'fast'?"
