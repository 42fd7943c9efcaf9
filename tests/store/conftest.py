"""Store fixtures: a migrated database of each kind, blob stores and small bars."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from engine.backtest import Trade
from engine.bars import Bars
from store.blobs import DatabaseBlobStore, FileBlobStore
from store.datasets import BARS_CACHE
from store.db import Database, run_migrations


def make_bars(n: int = 500, seed: int = 1, tz: str = "Asia/Kolkata") -> Bars:
    """A seeded random walk of 1-minute bars."""
    rng = np.random.default_rng(seed)
    ts = np.int64(1_700_000_000_000_000_000) + np.arange(n, dtype=np.int64) * 60_000_000_000
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    return Bars.from_arrays(ts, open_, high, low, close, rng.uniform(1, 100, n), tz=tz)


def fake_result(n_bars: int = 300, n_trades: int = 5, sharpe: float | None = 1.5) -> Any:
    """An object shaped like engine.backtest.BacktestResult."""
    ts = np.int64(1_700_000_000_000_000_000) + np.arange(n_bars, dtype=np.int64) * 60_000_000_000
    equity = 100_000 + np.cumsum(np.sin(np.arange(n_bars) / 7.0))
    trades = [
        Trade(
            entry_time=int(ts[i * 10]),
            exit_time=int(ts[i * 10 + 5]),
            entry_idx=i * 10,
            exit_idx=i * 10 + 5,
            side=1 if i % 2 == 0 else -1,
            qty=2.0,
            entry_price=100.0 + i,
            exit_price=101.0 + i,
            pnl=float(i) - 1.5,
            commission=0.5,
            exit_reason="signal",
            is_open=i == n_trades - 1,
            bars_held=5,
        )
        for i in range(n_trades)
    ]
    return SimpleNamespace(
        equity=equity,
        ts=ts,
        trades=trades,
        metrics={"sharpe": sharpe, "n_trades": n_trades, "total_return_pct": float("nan")},
        monthly_returns=[{"year": 2023, "month": 11, "return_pct": 1.25}],
        engine={"bars": n_bars, "seconds": 0.01, "version": "test"},
    )


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated database, SQLite and PostgreSQL in turn."""
    await asyncio.to_thread(run_migrations, db_url)
    database = Database(db_url)
    BARS_CACHE.clear()
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture(params=["file", "database"])
def blobs(request, db: Database, tmp_path):  # type: ignore[no-untyped-def]
    """Each blob store over the migrated database."""
    if request.param == "file":
        return FileBlobStore(tmp_path / "blobs")
    return DatabaseBlobStore(db)
