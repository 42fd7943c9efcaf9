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


def _walk_forward(text: str) -> dict[str, Any]:
    """`train=6M,test=1M[,step=1M][,gap=0][,anchored]` as the service's walk_forward spec."""
    out: dict[str, Any] = {"anchored": False}
    for item in (i.strip() for i in text.split(",") if i.strip()):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep and key == "anchored":
            out["anchored"] = True
        elif sep and key in ("train", "test", "step", "gap") and value.strip():
            out[key] = value.strip()
        elif sep and key == "anchored":
            out["anchored"] = value.strip().lower() in ("1", "true", "yes")
        else:
            _fail(f"--walk-forward {item!r}: expected train=LEN,test=LEN[,step=LEN][,gap=LEN]"
                  "[,anchored] with LEN a bar count or a duration like 6M, 30D, 1Y")
    return out


def _flag(field: str) -> str:
    """A service field (`validation.walkForward.train`) as the CLI spells it."""
    for name, flag in (("validation.walkForward", "--walk-forward"),
                       ("validation.holdout", "--holdout")):
        if field.startswith(name):
            return flag + field[len(name):].replace(".", " ", 1)
    return field


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
@click.option("--holdout", type=float, default=None,
              help="Hold out this share of the bars at the end (e.g. 0.3): search the rest, "
              "report the best trials' out-of-sample metrics too.")
@click.option("--walk-forward", "walk_forward", default=None,
              help="Walk-forward analysis: train=6M,test=1M[,step=1M][,gap=0][,anchored]; "
              "lengths are bar counts or durations (D, W, M, Y, h, min).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def optimize_command(data: Path, strategy: str, grid: tuple[str, ...], method: str,
                     trials: int | None, seed: int, objectives: tuple[str, ...],
                     constraints: tuple[str, ...], tz: str, top: int, holdout: float | None,
                     walk_forward: str | None, as_json: bool) -> None:
    """Search a strategy's parameters over a CSV file and print the best trials."""
    from engine.bars import read_csv_simple
    from engine.errors import EngineError
    from engine.optim import OptimInputError, optimize
    from engine.options import EngineOptions
    from store.errors import BadInputError
    from strategies.registry import get_strategy
    from workers.optimization_jobs import make_optimizer
    from workers.optimization_plan import make_plan, resolve_validation

    if holdout is not None and walk_forward is not None:
        _fail("give --holdout or --walk-forward, not both")
    raw = ({"holdout": {"fraction": holdout}} if holdout is not None
           else {"walk_forward": _walk_forward(walk_forward)} if walk_forward is not None
           else None)
    spec = {"space": _grid(grid), "constraints": list(constraints), "method": method,
            "objectives": list(objectives) or ["sharpe"], "seed": seed,
            "budget": {"max_trials": trials}, "search_all": False}
    try:
        bars = read_csv_simple(str(data), tz=tz)
        cls = get_strategy(strategy)
        validation = resolve_validation(raw, bars)
        plan = make_plan(lambda sp: make_optimizer(cls, sp), spec, validation, len(bars))
    except BadInputError as exc:
        _fail(f"{_flag(exc.field)}: {exc.message}")
    except OptimInputError as exc:
        _fail(f"{exc.field}: {exc}")
    except (EngineError, OSError) as exc:
        _fail(str(exc))
    options = EngineOptions()
    started = time.monotonic()

    def on_batch(o: Any, _: Any) -> None:
        best = o.best()
        _progress(plan.completed, plan.total, started, None if best is None else best.values[0])

    try:
        for part in plan.parts:
            segment = bars.slice(part.search.start, part.search.stop)
            optimize(part.opt, lambda ps, b=segment: cls.sweep(b, ps, options), on_batch=on_batch)
        click.echo("", err=True)
        if plan.walk_forward:
            _print_walk_forward(plan, cls, bars, options, as_json)
            return
        opt = plan.parts[0].opt
        ranked = opt.ranked(top)
        if validation is not None:  # hold-out: the reported trials on the held-out bars
            from engine.optim.walkforward import evaluate_out_of_sample

            a, b = validation["out_of_sample"]
            held = bars.slice(a, b)
            evaluate_out_of_sample(ranked, lambda ps: cls.sweep(held, ps, options))
    except EngineError as exc:
        click.echo("", err=True)
        _fail(str(exc))
    result = opt.result()
    if as_json:
        out = result.to_dict(with_trials=False)
        out["top"] = [t.to_dict() for t in ranked]
        out["pareto"] = [t.to_dict() for t in result.pareto]
        if validation is not None:
            out["holdout"] = {k: validation[k] for k in ("holdout", "in_sample", "out_of_sample")}
        click.echo(json.dumps(out, default=str))
        return
    names = [o.metric for o in result.objectives]
    click.echo(f"{len(result.trials)} trials in {result.seconds:.2f} s ({result.stop_reason})")
    if validation is not None:
        a, b = validation["out_of_sample"]
        click.echo(f"in sample: bars 0-{a}, out of sample: bars {a}-{b}")
    for t in ranked:
        vals = " ".join(f"{n}={v:.4g}" if v is not None else f"{n}=-"
                        for n, v in zip(names, t.values, strict=True))
        oos = ""
        if t.oos_metrics is not None:
            oos = "  | oos " + " ".join(_fmt(n, t.oos_metrics.get(n)) for n in names)
        click.echo(f"#{t.number:<5} {json.dumps(t.params)}  {vals}{oos}")


def _fmt(name: str, value: Any) -> str:
    return f"{name}=-" if value is None else f"{name}={float(value):.4g}"


def _print_walk_forward(plan: Any, cls: Any, bars: Any, options: Any, as_json: bool) -> None:
    """Test each window's choice, then the windows table and the efficiency (or JSON)."""
    from workers.optimization_results import walk_forward_outcome

    wf = walk_forward_outcome(plan, cls, bars, options)
    if as_json:
        click.echo(json.dumps(wf, default=str))
        return
    metric = wf["return_metric"]
    click.echo(f"{plan.completed} trials over {len(wf['windows'])} walk-forward windows")
    click.echo(f"{'win':>3}  {'train':<23}  {'test':<23}  {'IS ' + metric:>12}  "
               f"{'OOS ' + metric:>13}  {'eff':>6}  params")
    for w in wf["windows"]:
        ins, oos = (w["in_sample"] or {}).get(metric), (w["out_of_sample"] or {}).get(metric)
        click.echo(f"{w['index']:>3}  {_days(w['train'])}  {_days(w['test'])}  "
                   f"{_num(ins):>12}  {_num(oos):>13}  {_num(w['efficiency']):>6}  "
                   f"{json.dumps(w['params'])}")
    click.echo(f"walk-forward efficiency: {_num(wf['efficiency'])}  "
               f"out-of-sample return: {_num(wf['oos_return_pct'])} %")


def _days(span: dict[str, Any]) -> str:
    return f"{span['start'][:10]}..{span['end'][:10]}"


def _num(v: Any) -> str:
    return "-" if v is None else f"{float(v):.3g}"
