"""`backtester import FILE` as a user runs it: a good file, the same file again, a bad one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.live import ROOT, base_env

GOOD = b"Date,Open,High,Low,Close,Volume\n" + b"".join(
    f"2024-01-{d:02d},{100 + d},{101 + d},{99 + d},{100.5 + d},{1000 + d}\n".encode()
    for d in (2, 3, 5, 4, 8, 9, 10)  # one pair out of order: repaired with a warning
)
BAD = b"""Date,Open,High,Low,Close,Volume
2024-01-02,100.00,100.05,99.85,99.90,1000
2024-01-03,99.90,99.95,99.85,99.90,1037
2024-01-04,99.90,90.00,95.00,100.00,1074
"""


def backtester(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in base_env().items() if not k.startswith("BT_")}
    env["BT_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_a_good_file_twice_then_a_bad_one(tmp_path: Path) -> None:
    good, bad, var = tmp_path / "SPY_daily.csv", tmp_path / "broken.csv", tmp_path / "var"
    good.write_bytes(GOOD)
    bad.write_bytes(BAD)

    first = backtester(
        "import", str(good), "--exchange", "ARCA", "--tz", "America/New_York", data_dir=var
    )
    assert first.returncode == 0, first.stderr
    assert "imported dataset" in first.stdout and "SPY 1d, 7 rows" in first.stdout
    assert "quality " in first.stdout and "/100" in first.stdout
    assert "warning UNSORTED" in first.stdout

    again = backtester("import", str(good), "--tz", "America/New_York", "--json", data_dir=var)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["duplicate"] is True and report["dataset"]["symbol"] == "SPY"
    assert report["dataset"]["timeframe"] == "1d" and 0 <= report["quality"]["score"] <= 100
    assert [w["code"] for w in report["warnings"]] == ["UNSORTED"]
    assert report["dataset"]["owner_id"] is None and report["dataset"]["shared"] is False

    refused = backtester("import", str(bad), data_dir=var)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        refused.stderr.strip()
    ] and refused.stderr.startswith("error: line 4, column 'High': ")
    assert "Traceback" not in refused.stderr and refused.stdout == ""

    wrong = backtester("import", str(good), "--timeframe", "1h", data_dir=var)
    assert wrong.returncode == 2 and wrong.stderr.startswith(
        "error: timeframe: '1h' does not match"
    )


def test_import_for_an_owner_and_shared(tmp_path: Path) -> None:
    good, var = tmp_path / "SPY_daily.csv", tmp_path / "var"
    good.write_bytes(GOOD)
    usage = backtester("import", "--help", data_dir=var)
    assert usage.returncode == 0 and "--owner" in usage.stdout and "--shared" in usage.stdout
    assert "admins only" in " ".join(usage.stdout.split())

    unknown = backtester("import", str(good), "--owner", "nobody", data_dir=var)
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.startswith("error: no user named 'nobody'"), unknown.stderr
    assert "backtester user add nobody" in unknown.stderr and "Traceback" not in unknown.stderr

    assert backtester("user", "add", "alice", data_dir=var).returncode == 0
    mine = backtester("import", str(good), "--owner", "alice", "--json", data_dir=var)
    assert mine.returncode == 0, mine.stderr
    dataset = json.loads(mine.stdout)["dataset"]
    assert dataset["owner_id"] is not None and dataset["shared"] is False

    shared = backtester("import", str(good), "--owner", "alice", "--shared", data_dir=var)
    assert shared.returncode == 0, shared.stderr
    assert f"dataset {dataset['id']} already holds these bars" in shared.stdout
    assert "owned by alice, shared with the team" in shared.stdout
