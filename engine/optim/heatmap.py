"""Heatmap of one metric over two parameters of a trial log, as a Plotly figure (JSON).

Pure function over plain trial dicts (`{"params": {...}, "metrics": {...}}`): several
trials on one (x, y) cell (other parameters varied) keep the best value for the metric's
direction; cells never tried are None (Plotly leaves them blank).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from engine.optim.types import OptimInputError

__all__ = ["heatmap_figure"]


def _sort_key(v: Any) -> tuple[int, Any]:
    return (0, float(v)) if isinstance(v, int | float) and not isinstance(v, bool) else (1, str(v))


def heatmap_figure(
    trials: Iterable[Mapping[str, Any]], x: str, y: str, metric: str, *, maximize: bool = True
) -> dict[str, Any]:
    """`{"data": [heatmap trace], "layout": {...}}` of `metric` over params `x` and `y`."""
    if x == y:
        raise OptimInputError("y", "x and y must be two different parameters")
    cells: dict[tuple[Any, Any], float] = {}
    xs: set[Any] = set()
    ys: set[Any] = set()
    seen = False
    for t in trials:
        params = t.get("params") or {}
        if x not in params:
            raise OptimInputError("x", f"parameter {x!r} is not in the trials' parameters")
        if y not in params:
            raise OptimInputError("y", f"parameter {y!r} is not in the trials' parameters")
        seen = True
        px, py = params[x], params[y]
        xs.add(px)
        ys.add(py)
        value = (t.get("metrics") or {}).get(metric)
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            continue
        old = cells.get((px, py))
        if old is None or (value > old if maximize else value < old):
            cells[(px, py)] = float(value)
    if not seen:
        xs, ys = set(), set()
    xv = sorted(xs, key=_sort_key)
    yv = sorted(ys, key=_sort_key)
    z = [[cells.get((a, b)) for a in xv] for b in yv]
    return {
        "data": [{
            "type": "heatmap", "x": xv, "y": yv, "z": z, "colorscale": "Viridis",
            "colorbar": {"title": {"text": metric}},
            "hovertemplate": f"{x}=%{{x}}<br>{y}=%{{y}}<br>{metric}=%{{z}}<extra></extra>",
        }],
        "layout": {
            "title": {"text": f"{metric} by {x} and {y}"},
            "xaxis": {"title": {"text": x}, "type": "category"},
            "yaxis": {"title": {"text": y}, "type": "category"},
        },
    }
