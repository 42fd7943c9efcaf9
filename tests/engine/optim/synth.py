"""Synthetic objectives with a known optimum, for the search-method tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.optim import SearchSpace

OPTIMUM = {"x": 37, "y": 120, "flag": True}
SCHEMA: list[dict[str, Any]] = [
    {"name": "x", "type": "int", "default": 10, "min": 2, "max": 100, "step": 1},
    {"name": "y", "type": "int", "default": 50, "min": 10, "max": 300, "step": 2},
    {"name": "flag", "type": "bool", "default": False},
]


def space() -> SearchSpace:
    return SearchSpace.from_schema(SCHEMA, constraints=["x < y"])


def bowl(param_sets: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """sharpe = 1 at OPTIMUM, falling off quadratically; n_trades = x (for constraints)."""
    x = np.array([p["x"] for p in param_sets], dtype=np.float64)
    y = np.array([p["y"] for p in param_sets], dtype=np.float64)
    flag = np.array([p["flag"] for p in param_sets], dtype=np.float64)
    sharpe = 0.5 + 0.5 * flag - ((x - 37) / 10) ** 2 - ((y - 120) / 30) ** 2
    return {
        "sharpe": sharpe,
        "max_drawdown_pct": np.abs(x - 20) + np.abs(y - 200) / 4,
        "n_trades": x,
    }
