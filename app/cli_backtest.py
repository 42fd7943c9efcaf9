"""`backtester backtest`: run one strategy over a CSV file in this process and report it.

The successor of the old `python main.py -f data.csv --debug`. Every failure a user
can cause (bad file, unknown strategy or parameter, bad option) is one line on stderr
starting with `error:` and exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from app.cli import main

EXIT_USAGE = 2
_PROGRESS_MIN_BARS = 200_000  # below this a run takes well under a second
_SIZE_MODES = ("units", "lots", "percent", "notional")
# CLI flag of each EngineOptions field, so option errors name what the user typed.
_FLAGS = {
    "initial_cash": "--cash",
    "size_mode": "--size",
    "size_value": "--size",
    "lot_size": "--lot-size",
    "option_delta": "--option-delta",
    "commission_pct": "--commission-pct",
    "commission_fixed": "--commission-fixed",
    "slippage_bps": "--slippage-bps",
    "stop_loss_pct": "--stop-loss-pct",
    "take_profit_pct": "--take-profit-pct",
    "trailing_pct": "--trailing-pct",
    "square_off": "--square-off",
    "no_entry_after": "--no-entry-after",
    "direction": "--direction",
}


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {' '.join(str(message).split())}", err=True)
    sys.exit(EXIT_USAGE)


class _OneLineCommand(click.Command):
    """Report click's own usage errors (bad float, unknown flag) on one line too."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            _fail(exc.format_message())


def _parse_params(items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _fail(f"--param expects NAME=VALUE, got {item!r}")
        if key.strip() in out:
            _fail(f"--param {key.strip()} given twice")
        out[key.strip()] = value.strip()
    return out


def _parse_size(text: str) -> tuple[str, float]:
    mode, sep, value = text.partition(":")
    mode = mode.strip().lower()
    if not sep or mode not in _SIZE_MODES:
        _fail(f"--size expects MODE:VALUE with MODE one of {', '.join(_SIZE_MODES)}, got {text!r}")
    try:
        number = float(value)
    except ValueError:
        _fail(f"--size {text!r}: {value.strip()!r} is not a number")
    if not math.isfinite(number) or number <= 0:
        _fail(f"--size {text!r}: the value must be a positive number")
    return mode, number


def _guess_tz(path: Path) -> str:
    """Exchange zone from the file's first timestamp offset; UTC for naive times."""
    import pandas as pd

    try:
        first = pd.read_csv(path, nrows=1, dtype=str)
    except Exception:
        return "UTC"  # read_csv_simple reports the real problem
    cols = {str(c).strip().lower(): c for c in first.columns}
    key = next((cols[c] for c in ("timestamp", "datetime", "date", "time") if c in cols), None)
    if key is None or first.empty:
        return "UTC"
    try:
        stamp = pd.Timestamp(str(first[key].iloc[0]).strip())
    except (ValueError, TypeError):
        return "UTC"
    offset = stamp.utcoffset()
    if offset is None:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    if minutes == 330:
        return "Asia/Kolkata"
    if minutes % 60 == 0 and minutes != 0:
        hours = minutes // 60
        return f"Etc/GMT{-hours:+d}"  # POSIX sign: Etc/GMT-5 is UTC+05:00
    return "UTC"


def _option_error(exc: Any) -> str:
    parts = []
    for err in exc.errors()[:2]:
        loc = str(err.get("loc", ("?",))[0])
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{_FLAGS.get(loc, loc)}: {msg}")
    return "invalid option " + "; ".join(parts)


def _fmt(value: Any, spec: str = ",.2f", suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,d}{suffix}"
    return f"{value:{spec}}{suffix}"


def _local(ns: int, tz: str) -> str:
    import pandas as pd

    return pd.Timestamp(int(ns), tz="UTC").tz_convert(tz).strftime("%Y-%m-%d %H:%M")


def _print_summary(title: str, bars: Any, result: Any, bpy: float, timeframe: str) -> None:
    m = result.metrics
    tz = bars.tz
    click.echo(title)
    click.echo(
        f"{len(bars):,} {timeframe} bars, {_local(bars.ts[0], tz)} .. "
        f"{_local(bars.ts[-1], tz)} ({tz}); {bpy:,.0f} bars/year"
    )
    rows = [
        ("final equity", _fmt(m.get("final_equity"))),
        ("total return", _fmt(m.get("total_return_pct"), "+,.2f", "%")),
        ("CAGR", _fmt(m.get("cagr_pct"), "+,.2f", "%")),
        ("sharpe", _fmt(m.get("sharpe"), ".2f")),
        ("sortino", _fmt(m.get("sortino"), ".2f")),
        ("max drawdown", _fmt(m.get("max_drawdown_pct"), ".2f", "%")),
        ("trades", f"{_fmt(m.get('n_trades'))} closed, {_fmt(m.get('n_open'))} open"),
        ("win rate", _fmt(m.get("win_rate"), ".1f", "%")),
        ("profit factor", _fmt(m.get("profit_factor"), ".2f")),
        ("exposure", _fmt(m.get("exposure_pct"), ".1f", "%")),
    ]
    for label, value in rows:
        click.echo(f"  {label:<14} {value}")
    trades = result.trades
    if not trades:
        click.echo("no trades: the strategy never held a position on this data")
    else:
        shown = trades[:5] if len(trades) <= 10 else [*trades[:5], None, *trades[-5:]]
        click.echo(f"trades ({len(trades)}; times in {tz}):")
        click.echo(
            f"  {'entry':<16} {'exit':<16} {'side':<5} {'qty':>10} {'entry px':>11} "
            f"{'exit px':>11} {'pnl':>12}  reason"
        )
        for t in shown:
            if t is None:
                click.echo("  ...")
                continue
            click.echo(
                f"  {_local(t.entry_time, tz):<16} {_local(t.exit_time, tz):<16} "
                f"{'long' if t.side > 0 else 'short':<5} {t.qty:>10,.4g} {t.entry_price:>11,.2f} "
                f"{t.exit_price:>11,.2f} {t.pnl:>12,.2f}  {t.exit_reason}"
                + (" (open)" if t.is_open else "")
            )
    eng = result.engine
    bps = eng.get("bars_per_second")
    click.echo(
        f"engine {eng.get('version', '?')}: {eng.get('seconds', 0.0):.3f} s"
        + (f", {bps:,.0f} bars/s" if bps else "")
    )


def _write_report(
    path: Path, bars: Any, result: Any, options: Any, bpy: float, *, title: str,
    run_info: dict[str, str],
) -> None:
    """The run's HTML tear sheet (engine.report), the same as the service's report page."""
    from engine.analysis import analyze
    from engine.report import write_report

    analysis = analyze(result.equity, result.ts, result.trades, tz=bars.tz, bars_per_year=bpy,
                       benchmark_close=bars.close, initial_cash=options.initial_cash)
    try:
        write_report(path, analysis, title=title, run_info=run_info)
    except OSError as exc:
        _fail(f"--report {path}: cannot write the file ({exc.strerror or exc})")
    click.echo(f"wrote report {path}", err=True)


def _run(bars: Any, signals: Any, options: Any, show_progress: bool) -> Any:
    from engine.backtest import Backtester

    bt = Backtester(bars, signals, options)
    n = len(bars)
    chunk = max(50_000, n // 100)
    if not show_progress or n < _PROGRESS_MIN_BARS:
        while not bt.done:
            bt.step(n)
        return bt.result()
    with click.progressbar(length=n, label="backtest", file=sys.stderr) as bar:
        done = 0
        while not bt.done:
            info = bt.step(chunk)
            bar.update(info.bars_done - done)
            done = info.bars_done
    return bt.result()


@main.command("backtest", cls=_OneLineCommand)
@click.option("--data", "data", metavar="FILE", help="OHLCV CSV (.csv or .csv.gz).")
@click.option("--strategy", metavar="NAME", help="Strategy name, e.g. ema_crossover.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Strategy parameter (repeatable).",
)
@click.option("--cash", type=float, help="Initial cash (default 100000).")
@click.option(
    "--size", metavar="MODE:VALUE", help="units:1 | lots:2 | percent:100 | notional:50000."
)
@click.option("--lot-size", type=int, help="Units per lot (e.g. 75 for NIFTY).")
@click.option("--option-delta", type=float, help="P&L multiplier for option-like exposure (0-1].")
@click.option("--commission-pct", type=float, help="Commission, % of notional per order.")
@click.option("--commission-fixed", type=float, help="Commission per order.")
@click.option("--slippage-bps", type=float, help="Slippage per fill, basis points.")
@click.option("--stop-loss-pct", type=float, help="Stop loss, % of entry price.")
@click.option("--take-profit-pct", type=float, help="Take profit, % of entry price.")
@click.option("--trailing-pct", type=float, help="Trailing stop distance, % of entry price.")
@click.option(
    "--square-off", metavar="HH:MM", help="Flatten intraday positions at this local time."
)
@click.option("--no-entry-after", metavar="HH:MM", help="No new entries from this local time.")
@click.option("--direction", type=click.Choice(["long_short", "long_only", "short_only"]))
@click.option(
    "--tz",
    metavar="ZONE",
    help="Exchange time zone (default: from the file's UTC offset, else UTC).",
)
@click.option(
    "--report", "report_path", metavar="FILE",
    help="Also write a standalone HTML report (charts, tables) of the run to FILE.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a summary.")
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def backtest(
    data: str | None,
    strategy: str | None,
    params: tuple[str, ...],
    cash: float | None,
    size: str | None,
    lot_size: int | None,
    option_delta: float | None,
    commission_pct: float | None,
    commission_fixed: float | None,
    slippage_bps: float | None,
    stop_loss_pct: float | None,
    take_profit_pct: float | None,
    trailing_pct: float | None,
    square_off: str | None,
    no_entry_after: str | None,
    direction: str | None,
    tz: str | None,
    report_path: str | None,
    as_json: bool,
    debug: bool,
) -> None:
    """Backtest STRATEGY on a CSV of bars; print a summary or, with --json, one JSON object.

    Example: backtester backtest --data data/nifty_1min_sample.csv.gz
    --strategy ema_crossover --param fast=10 --param slow=30 --size lots:1 --lot-size 75
    """
    import pydantic

    from engine.bars import read_csv_simple
    from engine.calendar import bars_per_year, infer_timeframe
    from engine.errors import EngineInputError
    from engine.options import EngineOptions
    from strategies.base import merge_engine_options
    from strategies.registry import get_strategy, list_strategies

    if not data:
        _fail("missing --data FILE (a CSV with timestamp,open,high,low,close[,volume])")
    if not strategy:
        names = ", ".join(cls.name for cls in list_strategies())
        _fail(f"missing --strategy NAME (one of: {names})")
    try:
        strategy_cls = get_strategy(strategy)
        raw_params = _parse_params(params)
        validated = strategy_cls.validate_params(raw_params)
        explicit: dict[str, Any] = {
            "initial_cash": cash,
            "lot_size": lot_size,
            "option_delta": option_delta,
            "commission_pct": commission_pct,
            "commission_fixed": commission_fixed,
            "slippage_bps": slippage_bps,
            "stop_loss_pct": stop_loss_pct,
            "take_profit_pct": take_profit_pct,
            "trailing_pct": trailing_pct,
            "square_off": square_off,
            "no_entry_after": no_entry_after,
            "direction": direction,
        }
        explicit = {k: v for k, v in explicit.items() if v is not None}
        if size is not None:
            explicit["size_mode"], explicit["size_value"] = _parse_size(size)
        merged = merge_engine_options(strategy_cls, validated, explicit)
        options = EngineOptions.model_validate(merged)
        path = Path(data)
        zone = tz or _guess_tz(path)
        bars = read_csv_simple(path, tz=zone)
        instance = strategy_cls(**validated)
        signals = instance.signals(bars)
        result = _run(bars, signals, options, show_progress=not as_json)
    except pydantic.ValidationError as exc:
        _fail(_option_error(exc))
    except EngineInputError as exc:
        _fail(str(exc))
    except Exception as exc:  # a bug, not the user's input: say so, trace on --debug
        if debug:
            raise
        click.echo(
            f"error: internal error: {type(exc).__name__}: {exc} (rerun with --debug)", err=True
        )
        sys.exit(1)
    bpy = bars_per_year(bars.ts, bars.tz)
    timeframe = infer_timeframe(bars.ts)
    if report_path:
        _write_report(Path(report_path), bars, result, options, bpy,
                      title=f"{strategy_cls.name} on {path.name}",
                      run_info={"Strategy": strategy_cls.name, "Parameters": json.dumps(validated, default=str),
                                "Data": str(path), "Timeframe": timeframe})
    if as_json:
        out = {
            "metrics": result.metrics,
            "trades": [t.to_dict() for t in result.trades],
            "engine": {
                **result.engine,
                "strategy": strategy_cls.name,
                "params": validated,
                "options": options.model_dump(),
                "data": str(path),
                "tz": bars.tz,
                "timeframe": timeframe,
                "bars_per_year": bpy,
            },
        }
        click.echo(json.dumps(out, allow_nan=False, default=str))
        return
    title = f"{instance!r} on {path.name}"
    _print_summary(title, bars, result, bpy, timeframe)
