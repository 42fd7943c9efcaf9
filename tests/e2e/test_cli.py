"""The service commands as a user runs them: zero-config serve, demo, migrate, errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.live import ROOT, base_env, free_port

pytestmark = pytest.mark.slow


def backtester(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
               timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=cwd, env={**base_env(), **(env or {})},
        capture_output=True, text=True, timeout=timeout,
    )


def console_script() -> str:
    script = Path(sys.executable).with_name("backtester")
    found = str(script) if script.exists() else shutil.which("backtester")
    if found is None:
        pytest.skip("the `backtester` console script is not installed (pip install -e .)")
    return found


def test_serve_with_no_configuration_at_all(tmp_path: Path) -> None:
    """`backtester serve` in an empty folder: SQLite in ./var, samples loaded, worker in-process."""
    port = free_port()
    env = {k: v for k, v in base_env().items() if not k.startswith("BT_")}
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen(
            [console_script(), "serve", "--port", str(port)], cwd=tmp_path, env=env,
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        body = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": "mutation { runBacktest(input: {strategy: \"ema_crossover\", "
                           "datasetId: \"1\"}) { status summary { nTrades } } }"},
            timeout=60,
        ).json()
        assert body["data"]["runBacktest"]["status"] == "SUCCEEDED", body
    finally:
        proc.terminate()
        proc.wait(20)
    assert (tmp_path / "var" / "backtester.sqlite3").is_file()


def test_demo_prints_a_summary(tmp_path: Path) -> None:
    result = backtester("demo", env={"BT_DATA_DIR": str(tmp_path / "var")})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ema_crossover on NIFTY synthetic 1-minute sample" in out
    for label in ("status          SUCCEEDED", "Sharpe", "max drawdown", "trades"):
        assert label in out


def test_migrate_then_serve_settings_errors_are_one_line(tmp_path: Path) -> None:
    ok = backtester("migrate", env={"BT_DATA_DIR": str(tmp_path / "var")})
    assert ok.returncode == 0 and "migrated: SQLite" in ok.stdout, ok.stderr

    cases = [
        (["worker"], {}, "the worker needs DATABASE_URL"),
        (["serve"], {"REDIS_URL": "redis://127.0.0.1:6379"}, "REDIS_URL is set but DATABASE_URL"),
        (["serve"], {"BT_PORT": "eighty"}, "port"),
        (["migrate"], {"DATABASE_URL": "mysql://x/y"}, "unsupported DATABASE_URL scheme"),
        (["demo", "--strategy", "ema_cross"], {"BT_DATA_DIR": str(tmp_path / "var")},
         "did you mean 'ema_crossover'"),
    ]
    for args, env, words in cases:
        result = backtester(*args, env=env)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert words in lines[0]
        assert "Traceback" not in result.stderr

