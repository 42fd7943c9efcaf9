"""Analytics benchmark: analysis + every chart of a 1M-bar run, and compare of 10 x 100k runs.

Run from the repository root: `.venv/bin/python bench/analytics_bench.py [--repeat 5]`.
Prints one table; each row is the median (and best) wall time over `repeat` runs after
one warm-up call (numba kernels compile or load from cache on the first call).
Targets (issue 7): analysis + all charts < 1 s; compare of 10 runs of 100k bars < 500 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.analysis import analyze
from engine.backtest import run_backtest
from engine.charts import all_charts
from engine.compare import CompareRun, compare_runs
from engine.report import render_report
from tests.engine.analytics.synth_run import ema_signals, intraday_run


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(median seconds, best seconds, last result) after one warm-up call."""
    out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    run = intraday_run(1_000_000)
    res, bars = run.result, run.bars

    def analysis() -> Any:
        return analyze(res.equity, res.ts, res.trades, tz=bars.tz,
                       bars_per_year=run.bars_per_year, benchmark_close=bars.close)

    def analysis_and_charts() -> Any:
        a = analysis()
        return a.to_dict(), all_charts(a)

    a = analysis()
    rows: list[tuple[str, float, float, str, str]] = []
    med, best, _ = timed(lambda: analysis().to_dict(), args.repeat)
    rows.append(("analyze + to_dict, 1M bars", med, best, "", f"{len(res.trades):,} trades"))
    med, best, figs = timed(lambda: all_charts(a), args.repeat)
    sizes = {k: len(json.dumps(f)) for k, f in figs.items()}
    rows.append(("all 8 charts, 1M bars", med, best, "",
                 f"largest figure {max(sizes.values()) / 1e6:.2f} MB ({max(sizes, key=sizes.get)})"))
    med, best, _ = timed(analysis_and_charts, args.repeat)
    rows.append(("analysis + all charts, 1M bars", med, best, "< 1 s", "issue 7 target"))
    med, best, html = timed(lambda: render_report(a, charts=figs), args.repeat)
    rows.append(("report HTML (charts given), 1M bars", med, best, "",
                 f"{len(html) / 1e6:.1f} MB with plotly.js"))

    small = bars.slice(0, 100_000)
    runs = []
    for k in range(10):
        r = run_backtest(small, ema_signals(small.close, 5 + 3 * k, 60 + 20 * k),
                         {"initial_cash": 1_000_000.0, "size_value": 10.0})
        runs.append(CompareRun(f"run-{k}", r.ts, r.equity, r.metrics, tz=small.tz))
    med, best, cmp = timed(lambda: compare_runs(runs).to_dict(), args.repeat)
    rows.append(("compare 10 x 100k bars (same bars)", med, best, "< 500 ms", "issue 7 target"))
    shifted = [CompareRun(r.id, r.ts + k * 60_000_000_000 * 7, r.equity, r.metrics, tz=r.tz)
               for k, r in enumerate(runs)]
    med, best, _ = timed(lambda: compare_runs(shifted).to_dict(), args.repeat)
    rows.append(("compare 10 x 100k bars (union axis)", med, best, "",
                 "bar times offset per run"))

    print(f"{'benchmark':40} {'median':>9} {'best':>9}  {'target':>9}  note")
    for name, m, b, target, note in rows:
        print(f"{name:40} {m * 1e3:7.1f}ms {b * 1e3:7.1f}ms  {target:>9}  {note}")
    assert cmp["overlap"]


if __name__ == "__main__":
    main()
