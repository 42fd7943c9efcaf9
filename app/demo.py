"""`backtester demo`: one backtest on a shipped sample, end to end, in this process."""

from __future__ import annotations

import time
from typing import Any

from app.settings import Settings
from app.stack import open_stack
from store import datasets as dataset_store


def _fmt(value: Any, suffix: str = "", digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{suffix}"
    return f"{value}{suffix}"


def format_summary(run: Any, dataset: Any, seconds: float) -> str:
    """A few readable lines about a finished run."""
    m = run.metrics or {}
    lines = [
        f"run {run.id}: {run.strategy} on {dataset.name} ({dataset.rows:,} bars, {dataset.timeframe})",
        f"  status          {run.status.value if hasattr(run.status, 'value') else run.status}",
    ]
    if run.error:
        lines.append(f"  error           {run.error}")
    lines += [
        f"  params          {run.params}",
        f"  final equity    {_fmt(m.get('final_equity'))}",
        f"  total return    {_fmt(m.get('total_return_pct'), '%')}",
        f"  CAGR            {_fmt(m.get('cagr_pct'), '%')}",
        f"  Sharpe          {_fmt(m.get('sharpe'))}",
        f"  max drawdown    {_fmt(m.get('max_drawdown_pct'), '%')}",
        f"  trades          {_fmt(m.get('n_trades'))} (win rate {_fmt(m.get('win_rate'), '%')})",
        f"  profit factor   {_fmt(m.get('profit_factor'))}",
        f"  took            {seconds:.2f}s",
    ]
    return "\n".join(lines)


def pick_dataset(rows: list[Any]) -> Any:
    """The intraday sample if loaded (it is the interesting one), else the newest dataset."""
    if not rows:
        raise LookupError("no datasets: the sample files in data/ are missing")
    for row in rows:
        if row.timeframe == "1min":
            return row
    return rows[0]


async def run_demo(settings: Settings, *, strategy: str = "ema_crossover", timeout: float = 300.0) -> str:
    """Run one backtest on the embedded stack (in-process queue, always) and describe it."""
    async with open_stack(settings, in_process=True) as stack:
        rows = list(await dataset_store.list_datasets(stack.db))
        dataset = pick_dataset(rows)
        started = time.perf_counter()
        row = await stack.services.submit_backtest(
            strategy=strategy, dataset_id=dataset.id, params={}, options={}
        )
        done = await stack.services.wait_for_run(row.id, timeout)
        return format_summary(done, dataset, time.perf_counter() - started)
