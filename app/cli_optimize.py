"""`backtester optimize`: a parameter optimization over a CSV file, in this process.

No server, database or queue: the engine's `Optimizer` is driven directly (ask a batch,
evaluate it with one sweep call, tell), with a progress bar on stderr. Every failure a
user can cause is one line on stderr starting with `error:` and exit status 2.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from app.cli import main

EXIT_USAGE = 2
BAR_WIDTH = 30


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {' '.join(str(message).split())}", err=True)
    sys.exit(EXIT_USAGE)


def _grid(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip() or not spec.strip():
            _fail(f"--grid {item!r}: expected NAME=MIN:MAX[:STEP] or NAME=a,b,c")
        spec = spec.strip()
        out[name.strip()] = [v.strip() for v in spec.split(",")] if "," in spec else spec
    return out


def _progress(done: int, total: int, started: float, best: float | None) -> None:
    frac = done / total if total else 1.0
    filled = int(frac * BAR_WIDTH)
    rate = done / max(time.monotonic() - started, 1e-6)
    best_s = "-" if best is None else f"{best:.4g}"
    click.echo(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} "
               f"{rate:,.0f} trials/s best {best_s}", err=True, nl=False)


@main.command("optimize")
@click.option("--data", "data", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="OHLCV CSV file.")
@click.option("--strategy", required=True, help="Strategy name, e.g. ema_crossover.")
@click.option("--grid", "grid", multiple=True, help="Range of a parameter: fast=5:50:5.")
@click.option("--method", default="grid", show_default=True,
              type=click.Choice(["grid", "random", "genetic", "tpe", "nsga2"]))
@click.option("--trials", type=int, default=None, help="Trial budget (needed but for grids).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--objective", "objectives", multiple=True,
              help="Metric to maximise; a leading '-' minimises (-max_drawdown_pct).")
@click.option("--constraint", "constraints", multiple=True, help="Rule like 'fast < slow'.")
@click.option("--tz", default="UTC", show_default=True, help="Exchange timezone of the data.")
@click.option("--top", type=int, default=10, show_default=True, help="Best trials to print.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def optimize_command(data: Path, strategy: str, grid: tuple[str, ...], method: str,
                     trials: int | None, seed: int, objectives: tuple[str, ...],
                     constraints: tuple[str, ...], tz: str, top: int, as_json: bool) -> None:
    """Search a strategy's parameters over a CSV file and print the best trials."""
    from engine.bars import read_csv_simple
    from engine.errors import EngineError
    from engine.optim import OptimInputError, optimize
    from engine.options import EngineOptions
    from strategies.registry import get_strategy
    from workers.optimization_jobs import make_optimizer

    try:
        bars = read_csv_simple(str(data), tz=tz)
        cls = get_strategy(strategy)
        opt = make_optimizer(cls, {
            "space": _grid(grid), "constraints": list(constraints), "method": method,
            "objectives": list(objectives) or ["sharpe"], "seed": seed,
            "budget": {"max_trials": trials}, "search_all": False,
        })
    except OptimInputError as exc:
        _fail(f"{exc.field}: {exc}")
    except (EngineError, OSError) as exc:
        _fail(str(exc))
    options = EngineOptions()
    started = time.monotonic()

    def on_batch(o: Any, _: Any) -> None:
        best = o.best()
        _progress(len(o.trials), o.total, started, None if best is None else best.values[0])

    try:
        result = optimize(opt, lambda ps: cls.sweep(bars, ps, options), on_batch=on_batch)
    except EngineError as exc:
        click.echo("", err=True)
        _fail(str(exc))
    click.echo("", err=True)
    ranked = opt.ranked(top)
    if as_json:
        out = result.to_dict(with_trials=False)
        out["top"] = [t.to_dict() for t in ranked]
        out["pareto"] = [t.to_dict() for t in result.pareto]
        click.echo(json.dumps(out, default=str))
        return
    names = [o.metric for o in result.objectives]
    click.echo(f"{len(result.trials)} trials in {result.seconds:.2f} s ({result.stop_reason})")
    for t in ranked:
        vals = " ".join(f"{n}={v:.4g}" if v is not None else f"{n}=-"
                        for n, v in zip(names, t.values, strict=True))
        click.echo(f"#{t.number:<5} {json.dumps(t.params)}  {vals}")
