"""Run analytics for the API and the CLI: analysis, charts, rolling metrics, comparisons,
the HTML report and the service-wide summary.

Data comes from `store` (equity curve, trades, the dataset's bars); the numbers and
figures come from the pure `engine` analytics, always in a worker thread, never on the
event loop (a million-bar analysis takes a fraction of a second). Only SUCCEEDED runs
have results and they never change, so each run's `Analysis` is computed once and kept
in a small LRU cache (keyed by run id and seq, so a re-run can never serve stale data).
Any other status is a `ConflictError` saying the run is not finished.
"""

from __future__ import annotations

import asyncio
import copy
import difflib
import json
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.analysis import Analysis, analyze
from engine.charts import all_charts, chart, comparison_chart
from engine.charts_data import chart_data, check_kind
from engine.compare import LOWER_IS_BETTER, MAX_RUNS, CompareRun, compare_runs
from engine.downsample import DEFAULT_POINTS, check_points
from engine.metrics import METRIC_KEYS
from engine.report import render_report
from engine.rolling import ROLLING_METRICS, parse_window, rolling_metrics
from store.blobs import BlobStore
from store.datasets import get_dataset, load_bars
from store.db import Database
from store.errors import BadInputError, ConflictError, NotFoundError
from store.models import DatasetRow, RunRow, RunStatus
from store.run_queries import get_equity, get_trade_records
from store.run_summary import run_summary
from store.runs import get_run
from store.scope import SYSTEM, Scope

__all__ = ["SUMMARY_LOWER_IS_BETTER", "AnalysisCache", "RunAnalysis", "RunAnalytics"]

SUMMARY_LOWER_IS_BETTER = LOWER_IS_BETTER | {"max_drawdown_duration_bars", "var_95", "cvar_95"}
"""Metrics where the best run has the LOWEST value (drawdowns, volatility, tail losses)."""


@dataclass(frozen=True, slots=True)
class RunAnalysis:
    """A finished run's analysis with the facts a report shows next to it."""

    run: RunRow
    analysis: Analysis
    dataset: DatasetRow | None

    @property
    def nbytes(self) -> int:
        s = self.analysis.series
        arrays = (s.ts, s.equity, s.returns, s.drawdown_pct, s.benchmark_equity, s.close)
        return sum(a.nbytes for a in arrays if a is not None) + 64_000

    def run_info(self) -> dict[str, str]:
        """What the report lists under its title."""
        row, ds = self.run, self.dataset
        info = {"Run": row.id, "Strategy": row.strategy,
                "Parameters": json.dumps(row.params or {}, sort_keys=True)}
        if ds is not None:
            info["Dataset"] = f"{ds.name} ({ds.symbol}, {ds.timeframe}, #{ds.id})"
        if row.finished_at is not None:
            info["Finished"] = row.finished_at.isoformat(timespec="seconds")
        if row.duration_ms is not None:
            info["Run time"] = f"{row.duration_ms / 1000:.2f} s"
        return info

    @property
    def title(self) -> str:
        on = f" on {self.dataset.name}" if self.dataset is not None else ""
        return f"{self.run.strategy}{on}: backtest report"


class AnalysisCache:
    """LRU of `RunAnalysis` bounded by entries and by the bytes of their arrays."""

    def __init__(self, max_entries: int = 8, max_bytes: int = 512 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, int], RunAnalysis] = OrderedDict()

    def get(self, key: tuple[str, int]) -> RunAnalysis | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: tuple[str, int], item: RunAnalysis) -> None:
        self._items[key] = item
        self._items.move_to_end(key)
        while len(self._items) > 1 and (
            len(self._items) > self.max_entries
            or sum(i.nbytes for i in self._items.values()) > self.max_bytes
        ):
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def _analyze_run(
    row: RunRow, ts: np.ndarray, equity: np.ndarray, trades: list[dict[str, Any]], bars: Any, tz: str
) -> Analysis:
    """CPU part (thread): the benchmark only when the dataset's bars are the run's bars."""
    close = None
    if bars is not None and bars.ts.shape == ts.shape and np.array_equal(bars.ts, ts):
        close = bars.close
    bpy = (row.metrics or {}).get("bars_per_year")
    bpy = float(bpy) if isinstance(bpy, int | float) and math.isfinite(bpy) and bpy > 0 else None
    cash = (row.options or {}).get("initial_cash")
    return analyze(equity, ts, trades, tz=tz, bars_per_year=bpy, benchmark_close=close,
                   initial_cash=None if cash is None else float(cash))


def _not_finished(row: RunRow) -> ConflictError:
    status = RunStatus(row.status)
    if status in (RunStatus.QUEUED, RunStatus.RUNNING):
        why = f"is {status.value.lower()}; its analysis is available once it has succeeded"
    else:
        why = f"{status.value.lower()} and has no results to analyze"
    return ConflictError(f"run {row.id} is not finished: it {why}")


class RunAnalytics:
    """The analytics facade `Services.analytics` exposes (also used by `backtester report`)."""

    def __init__(self, db: Database, blobs: BlobStore, cache: AnalysisCache | None = None) -> None:
        self.db = db
        self.blobs = blobs
        self.cache = cache or AnalysisCache()
        self._inflight: dict[tuple[str, int], asyncio.Task[RunAnalysis]] = {}
        self.scope: Scope = SYSTEM
        """Whose runs this facade may analyze (the cache is shared: it is checked first)."""

    def scoped(self, scope: Scope) -> RunAnalytics:
        """This facade for `scope`: an unknown run and one it may not see are both NOT_FOUND."""
        clone = copy.copy(self)
        clone.scope = scope
        return clone

    async def finished_run(self, run_id: str) -> RunRow:
        """The run if it SUCCEEDED; NotFoundError if unknown, ConflictError otherwise."""
        row = await get_run(self.db, str(run_id), scope=self.scope)
        if RunStatus(row.status) is not RunStatus.SUCCEEDED:
            raise _not_finished(row)
        return row

    async def _dataset(self, dataset_id: int | None) -> DatasetRow | None:
        if dataset_id is None:
            return None
        try:
            # Unscoped: the analysis is cached for every viewer of the run, and a shared
            # run shares what it was computed on (its benchmark, the dataset's name).
            return await get_dataset(self.db, dataset_id)
        except NotFoundError:  # deleted since: the run keeps its results
            return None

    async def _compute(self, row: RunRow) -> RunAnalysis:
        ts, equity = await get_equity(self.db, row.id)
        if ts.shape[0] == 0:
            raise ConflictError(f"run {row.id} has no stored equity curve to analyze")
        trades = await get_trade_records(self.db, row.id)
        dataset = await self._dataset(row.dataset_id)
        bars = None
        if dataset is not None:
            try:
                bars = await load_bars(self.db, self.blobs, dataset.id)
            except NotFoundError:
                bars = None
        tz = bars.tz if bars is not None else (dataset.timezone if dataset else "UTC")
        analysis = await asyncio.to_thread(_analyze_run, row, ts, equity, trades, bars, tz)
        return RunAnalysis(row, analysis, dataset)

    async def run_analysis(self, run_id: str) -> RunAnalysis:
        """The (cached) analysis of a SUCCEEDED run; concurrent callers share one computation."""
        row = await self.finished_run(run_id)
        key = (row.id, int(row.seq or 0))
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._compute(row))
            self._inflight[key] = task

            def done(t: asyncio.Task[RunAnalysis]) -> None:
                self._inflight.pop(key, None)
                if not t.cancelled() and t.exception() is None:
                    self.cache.put(key, t.result())

            task.add_done_callback(done)
        return await asyncio.shield(task)

    async def analysis(self, run_id: str) -> Analysis:
        return (await self.run_analysis(run_id)).analysis

    async def analysis_dict(self, run_id: str) -> dict[str, Any]:
        """`Analysis.to_dict()`: the JSON-safe groups and tables."""
        a = await self.analysis(run_id)
        return await asyncio.to_thread(a.to_dict)

    async def chart(
        self, run_id: str, kind: str, *, points: int = DEFAULT_POINTS, window: str | None = None
    ) -> dict[str, Any]:
        """One Plotly figure (engine.charts.CHART_KINDS) of the run."""
        check_kind(kind)
        check_points(points)
        a = await self.analysis(run_id)
        return await asyncio.to_thread(lambda: chart(a, kind, points=points, window=window))

    async def charts(
        self, run_id: str, *, points: int = DEFAULT_POINTS, window: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """Every chart kind -> Plotly figure."""
        check_points(points)
        a = await self.analysis(run_id)
        return await asyncio.to_thread(lambda: all_charts(a, points=points, window=window))

    async def chart_data(
        self, run_id: str, kind: str, *, points: int = DEFAULT_POINTS, window: str | None = None
    ) -> dict[str, Any]:
        """The raw, display-sized series behind one chart (for custom frontends)."""
        check_kind(kind)
        check_points(points)
        a = await self.analysis(run_id)
        return await asyncio.to_thread(lambda: chart_data(a, kind, points=points, window=window))

    async def rolling(
        self,
        run_id: str,
        window: str,
        *,
        metrics: Sequence[str] | None = None,
        points: int = DEFAULT_POINTS,
    ) -> dict[str, Any]:
        """Rolling metrics over `window` (bars, or a duration such as "30D")."""
        w = parse_window(window)
        check_points(points)
        names = tuple(metrics) if metrics is not None else ROLLING_METRICS
        if not names:
            raise BadInputError("metrics", f"name at least one of {', '.join(ROLLING_METRICS)}")
        a = await self.analysis(run_id)
        s = a.series

        def work() -> dict[str, Any]:
            rolled = rolling_metrics(s.equity, s.ts, w, bars_per_year=s.bars_per_year,
                                     metrics=names)
            return rolled.to_dict(points)

        return await asyncio.to_thread(work)

    async def compare(self, ids: Sequence[str], *, points: int = DEFAULT_POINTS) -> dict[str, Any]:
        """`engine.compare` of finished runs plus its equity and correlation figures."""
        check_points(points)
        unique = list(dict.fromkeys(str(i) for i in ids))
        if not 1 <= len(unique) <= MAX_RUNS:
            raise BadInputError("ids", f"compare 1 to {MAX_RUNS} distinct runs, got {len(unique)}")
        runs = []
        zones: dict[int | None, str] = {}
        for run_id in unique:
            row = await self.finished_run(run_id)
            ts, equity = await get_equity(self.db, row.id)
            if ts.shape[0] == 0:
                raise ConflictError(f"run {row.id} has no stored equity curve to compare")
            if row.dataset_id not in zones:
                ds = await self._dataset(row.dataset_id)
                zones[row.dataset_id] = ds.timezone if ds is not None else "UTC"
            runs.append(CompareRun(row.id, ts, equity, dict(row.metrics or {}),
                                   label=f"{row.strategy} {row.id[:8]}", tz=zones[row.dataset_id]))

        def work() -> dict[str, Any]:
            cmp = compare_runs(runs)
            out = cmp.to_dict(points)
            out["chart"] = comparison_chart(cmp, kind="equity", points=points)
            out["correlation_chart"] = (
                comparison_chart(cmp, kind="correlation") if cmp.correlation is not None else None
            )
            return out

        return await asyncio.to_thread(work)

    async def report_html(self, run_id: str, *, points: int = DEFAULT_POINTS) -> str:
        """The standalone HTML tear sheet of a finished run (plotly.js embedded)."""
        check_points(points)
        ra = await self.run_analysis(run_id)
        return await asyncio.to_thread(
            lambda: render_report(ra.analysis, title=ra.title, run_info=ra.run_info(),
                                  points=points)
        )

    async def summary(self, metric: str = "sharpe", limit: int = 5) -> dict[str, Any]:
        """`store.run_summary.run_summary`, the best runs ordered the way `metric` improves."""
        if metric not in METRIC_KEYS:
            close = difflib.get_close_matches(metric, METRIC_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise BadInputError(
                "metric", f"unknown metric {metric!r}; {hint}one of {', '.join(METRIC_KEYS)}")
        out = await run_summary(self.db, metric=metric, limit=limit, scope=self.scope,
                                descending=metric not in SUMMARY_LOWER_IS_BETTER)
        out["lower_is_better"] = metric in SUMMARY_LOWER_IS_BETTER
        return out
