"""Building run events: from a database row (snapshot, status, terminal) or a progress step."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from store.models import RunRow, RunStatus
from store.results import json_safe

__all__ = ["emitted_at_ms", "equity_points", "progress_event", "row_event"]


def emitted_at_ms() -> float:
    """Wall-clock epoch milliseconds: an event's `emitted_at`, so a client can measure
    its delivery delay (the bus adds nothing else to an event)."""
    return time.time() * 1000.0


def equity_points(ts: np.ndarray, equity: np.ndarray, max_points: int) -> list[list[float]]:
    """[[epoch_ms, value], ...], evenly thinned to at most `max_points` (the last one kept)."""
    n = int(ts.shape[0])
    if n == 0 or max_points <= 0:
        return []
    if n > max_points:
        idx = np.linspace(0, n - 1, max_points).round().astype(np.int64)
        ts, equity = ts[idx], equity[idx]
    ms = (np.asarray(ts, dtype=np.int64) // 1_000_000).tolist()
    values = np.asarray(equity, dtype=np.float64).tolist()
    return [[t, v if math.isfinite(v) else None] for t, v in zip(ms, values, strict=True)]


def row_event(row: RunRow, kind: str) -> dict[str, Any]:
    """An event from the database's view of a run; terminal events carry metrics or error."""
    status = RunStatus(row.status)
    event: dict[str, Any] = {
        "run_id": row.id,
        "seq": int(row.seq),
        "type": kind,
        "status": status.value,
        "progress": float(row.progress or 0.0),
        "stage": row.stage,
        "attempt": int(row.attempt or 0),
        "equity": [],
        "emitted_at": emitted_at_ms(),
    }
    if status.terminal:
        event["metrics"] = json_safe(row.metrics) if row.metrics is not None else None
        event["error"] = row.error
    return event


def progress_event(
    run_id: str,
    seq: int,
    *,
    progress: float,
    stage: str,
    attempt: int,
    equity: list[list[float]],
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "seq": seq,
        "type": "progress",
        "status": RunStatus.RUNNING.value,
        "progress": float(progress),
        "stage": stage,
        "attempt": attempt,
        "equity": equity,
        "emitted_at": emitted_at_ms(),
    }
