"""`backtester backtest` end to end, as a user runs it: a subprocess of the console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXE = Path(sys.executable).with_name("backtester")
SAMPLE = ROOT / "data" / "nifty_1min_sample.csv.gz"
DAILY = ROOT / "data" / "nifty_daily_sample.csv.gz"
METRIC_KEYS = {
    "final_equity",
    "total_return_pct",
    "n_trades",
    "n_open",
    "sharpe",
    "max_drawdown_pct",
    "win_rate",
    "profit_factor",
}
TRADE_KEYS = {
    "entry_time",
    "exit_time",
    "side",
    "qty",
    "entry_price",
    "exit_price",
    "pnl",
    "commission",
    "exit_reason",
}

pytestmark = pytest.mark.skipif(not EXE.exists(), reason="console script not installed")


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), "backtest", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_json_on_shipped_sample() -> None:
    proc = _run(
        "--data", SAMPLE, "--strategy", "ema_crossover", "--param", "fast=5",
        "--param", "slow=20", "--size", "lots:1", "--lot-size", "75",
        "--commission-pct", "0.01", "--slippage-bps", "1", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"metrics", "trades", "engine"}
    assert set(out["metrics"]) >= METRIC_KEYS
    m = out["metrics"]
    assert m["n_trades"] > 10 and m["n_open"] in (0, 1)
    assert len(out["trades"]) == m["n_trades"] + m["n_open"]
    t = out["trades"][0]
    assert set(t) >= TRADE_KEYS
    assert t["qty"] == 75 and t["side"] in (1, -1) and t["commission"] > 0
    assert out["engine"]["bars"] == 22_500
    assert out["engine"]["tz"] == "Asia/Kolkata"  # inferred from the +05:30 offsets
    assert out["engine"]["params"] == {"fast": 5, "slow": 20, "long_only": False}


def test_scalper_overrides_reach_the_engine() -> None:
    proc = _run("--data", SAMPLE, "--strategy", "ema10_scalper", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["engine"]["options"]["stop_loss_pct"] == 0.25
    assert out["engine"]["options"]["square_off"] == "15:15"
    reasons = {t["exit_reason"] for t in out["trades"]}
    assert {"stop", "square_off"} <= reasons


def test_tmp_csv_plain_summary(tmp_path: Path) -> None:
    lines = ["Date,Open,High,Low,Close,Volume"]
    price = 100.0
    for i in range(300):
        price *= 1.01 if (i // 20) % 2 == 0 else 0.99
        day = f"2024-{1 + i // 28:02d}-{1 + i % 28:02d}"
        lines.append(f"{day},{price:.2f},{price * 1.01:.2f},{price * 0.99:.2f},{price:.2f},1000")
    csv = tmp_path / "prices.csv"
    csv.write_text("\n".join(lines) + "\n")
    proc = _run("--data", csv, "--strategy", "macd_trend", "--tz", "America/New_York")
    assert proc.returncode == 0, proc.stderr
    assert "MacdTrend(" in proc.stdout and "final equity" in proc.stdout
    assert "300 1d bars" in proc.stdout and "America/New_York" in proc.stdout
    proc = _run("--data", csv, "--strategy", "rsi_reversion", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["engine"]["tz"] == "UTC"


def test_bad_file_is_one_line_exit_2(tmp_path: Path) -> None:
    line = _one_line_error(_run("--data", tmp_path / "missing.csv", "--strategy", "ema_crossover"))
    assert "not found" in line and "missing.csv" in line
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open,high,low,close\n2024-01-02,1,1,1,1\n2024-01-03,1,oops,1,1\n")
    line = _one_line_error(_run("--data", bad, "--strategy", "ema_crossover"))
    assert "line 3" in line and "'high'" in line and "oops" in line


def test_bad_param_is_one_line_exit_2_with_did_you_mean() -> None:
    line = _one_line_error(
        _run("--data", SAMPLE, "--strategy", "ema_crossover", "--param", "fsat=3")
    )
    assert "did you mean 'fast'?" in line
    line = _one_line_error(_run("--data", SAMPLE, "--strategy", "ema_crosover"))
    assert "did you mean 'ema_crossover'?" in line
    line = _one_line_error(
        _run("--data", SAMPLE, "--strategy", "ema_crossover", "--param", "fast=1")
    )
    assert "fast must be >= 2, got 1" in line


def _invoke(*args: str | Path) -> str:
    """In-process run (fast) for the many option errors; returns the one error line."""
    from click.testing import CliRunner

    from app.cli import main

    result = CliRunner().invoke(main, ["backtest", *map(str, args)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_bad_options_are_one_line_exit_2() -> None:
    base = ("--data", SAMPLE, "--strategy", "ema_crossover")
    assert "--cash" in _invoke(*base, "--cash", "abc")
    assert "--cash" in _invoke(*base, "--cash", "-1")
    assert "--size" in _invoke(*base, "--size", "lots")
    assert "--size" in _invoke(*base, "--size", "lots:1.5")
    assert "--square-off" in _invoke(*base, "--square-off", "25:99")
    assert "--param" in _invoke(*base, "--param", "fast")
    assert "No such option" in _invoke(*base, "--bogus")
    line = _invoke("--data", SAMPLE, "--strategy", "ema10_scalper", "--stop-loss-pct", "1")
    assert "stop_loss_pct" in line and "conflicts" in line
    assert "--data" in _invoke("--strategy", "ema_crossover")
    assert "--strategy" in _invoke("--data", SAMPLE)
    assert "intraday" in _invoke("--data", DAILY, "--strategy", "vwap_reversion")
