"""Validation of a strategy before it may run: import, defaults, signals, values, look-ahead.

`validate_strategy(spec, bars)` runs the steps in order and stops at the first failure;
each step says what it checked or what went wrong, in words a strategy author can act
on. It is CPU work (the look-ahead check computes signals once per cut point): callers
on an event loop run it in a thread.

The look-ahead check (`find_look_ahead`) is the one implementation: the built-in
strategies' tests use it too. Signals computed on data cut at bar c must equal the
full-data signals before c; a strategy reading later bars (`shift(-1)`, a whole-series
mean or std, a centred window) fails it.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.bars import Bars
from strategies.base import Strategy
from strategies.discovery import StrategySpec, load_file

__all__ = [
    "STEPS",
    "LookAhead",
    "Step",
    "ValidationReport",
    "find_look_ahead",
    "sample_bars",
    "validate_strategy",
]

STEPS = ("import", "instantiate", "signals", "values", "look_ahead")
_CONVERTIBLE_KINDS = "biuf"  # bool, int, uint, float: what np.int8 conversion accepts


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "message": self.message}


@dataclass
class ValidationReport:
    """The steps run, in order; validation stops at the first failed one."""

    steps: list[Step] = field(default_factory=list)
    strategy: str | None = None
    code_hash: str | None = None

    @property
    def ok(self) -> bool:
        return len(self.steps) == len(STEPS) and all(s.ok for s in self.steps)

    @property
    def failed(self) -> Step | None:
        return next((s for s in self.steps if not s.ok), None)

    @property
    def error(self) -> str | None:
        """"<step>: <message>" of the failed step, or None."""
        bad = self.failed
        return None if bad is None else f"{bad.name}: {bad.message}"

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.steps]


@dataclass(frozen=True)
class LookAhead:
    """Where truncated-data signals first disagree with the full-data ones."""

    cut: int
    bar: int
    full: Any
    truncated: Any

    def __str__(self) -> str:
        return (
            f"signals computed on the first {self.cut} bars differ from the full-data "
            f"signals at bar {self.bar} (full data: {self.full}, cut data: {self.truncated}); "
            "the strategy uses data from after the bar it decides on (e.g. shift(-1), or a "
            "mean/std/min/max over the whole series)"
        )


@functools.lru_cache(maxsize=1)
def sample_bars() -> Bars:
    """The small seeded sample validation uses without a dataset (3 days of 1-minute bars)."""
    from engine.synthetic import synthetic_intraday

    return synthetic_intraday(3, seed=1)


def _cut_points(n: int, warmup: int, n_cuts: int, seed: int | None) -> list[int]:
    lo = min(max(warmup + 2, 2, n // 10), n - 1)
    if n < 3 or lo >= n - 1:
        return [n - 1] if n >= 2 else []
    if seed is None:
        cuts = np.linspace(lo, n - 1, n_cuts).astype(np.int64)
    else:
        rng = np.random.default_rng(seed)
        size = min(n_cuts, n - 1 - lo)
        cuts = rng.choice(np.arange(lo, n - 1), size=size, replace=False)
        cuts = np.append(cuts, n - 1)
    return sorted({int(c) for c in cuts})


def find_look_ahead(
    strategy: Strategy,
    bars: Bars,
    *,
    cuts: list[int] | None = None,
    n_cuts: int = 8,
    seed: int | None = None,
    full: np.ndarray | None = None,
) -> LookAhead | None:
    """The first cut at which signals on `bars[:cut]` differ from the full-data signals
    before the cut, or None. Cuts: `cuts`, else `n_cuts` evenly spaced after the warm-up
    (random ones with `seed`), always including n-1 (only the last bar hidden)."""
    whole = np.asarray(strategy.signals(bars) if full is None else full)
    points = cuts if cuts is not None else _cut_points(len(bars), strategy.warmup, n_cuts, seed)
    for cut in points:
        part = np.asarray(strategy.signals(bars.slice(0, cut)))
        if part.shape != (cut,):
            return LookAhead(cut, -1, f"{cut} values", f"shape {part.shape}")
        diff = np.flatnonzero(part != whole[:cut])
        if diff.size:
            i = int(diff[0])
            return LookAhead(cut, i, whole[i].item(), part[i].item())
    return None


def _exc(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class _LoadError(Exception):
    """A user file that does not load; the message is already readable."""


def _load(spec: StrategySpec) -> type[Strategy]:
    if spec.cls is not None:
        return spec.cls
    if spec.path is not None:
        specs, error = load_file(spec.path)
        if error is not None:
            raise _LoadError(error.message)
        for other in specs:
            if other.class_name == spec.class_name and other.cls is not None:
                return other.cls
        raise _LoadError(f"{spec.path} no longer defines {spec.class_name}")
    cls = getattr(importlib.import_module(spec.module), spec.class_name)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ImportError(f"{spec.module}.{spec.class_name} is not a Strategy subclass")
    return cls


def _check_values(sig: np.ndarray, warmup: int) -> str | None:
    """The first problem with the signal values, or None."""
    f = sig.astype(np.float64)
    nan = np.flatnonzero(np.isnan(f))
    if nan.size:
        i = int(nan[0])
        where = "after" if i >= warmup else "inside"
        return (
            f"NaN signal at bar {i} ({where} the warm-up of {warmup} bars; {nan.size} NaN "
            "in all): fill undefined positions with 0"
        )
    bad = np.flatnonzero(~np.isin(f, (-1.0, 0.0, 1.0)))
    if bad.size:
        i = int(bad[0])
        return (
            f"signal {sig[i].item()!r} at bar {i} ({bad.size} out of range in all): "
            "positions must be -1, 0 or +1"
        )
    early = np.flatnonzero(f[:warmup])
    if early.size:
        i = int(early[0])
        return f"signal {sig[i].item()!r} at bar {i}, inside the warm-up of {warmup} bars: must be 0"
    return None


def validate_strategy(
    spec: StrategySpec, bars: Bars | None = None, *, n_cuts: int = 8
) -> ValidationReport:
    """Run the validation steps on `bars` (default: `sample_bars()`); never raises for a
    problem of the strategy's own."""
    bars = sample_bars() if bars is None else bars
    report = ValidationReport(strategy=spec.name, code_hash=spec.code_hash)
    steps = report.steps
    where = spec.path or spec.module
    try:
        cls = _load(spec)
    except _LoadError as exc:
        steps.append(Step("import", False, str(exc)))
        return report
    except Exception as exc:
        steps.append(Step("import", False, _exc(exc)))
        return report
    steps.append(Step("import", True, f"loaded {spec.class_name} from {where}"))

    try:
        strategy = cls()
        warmup = int(strategy.warmup)
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
    except Exception as exc:
        steps.append(Step("instantiate", False, f"{cls.__name__}() with defaults: {_exc(exc)}"))
        return report
    steps.append(Step("instantiate", True, f"defaults {strategy.params}; warm-up {warmup} bars"))

    n = len(bars)
    try:
        sig = np.asarray(strategy.signals(bars))
    except Exception as exc:
        steps.append(Step("signals", False, f"signals() on {n} sample bars raised {_exc(exc)}"))
        return report
    if sig.shape != (n,):
        steps.append(
            Step("signals", False, f"signals must have one value per bar: expected shape "
                 f"({n},), got {sig.shape}")
        )
        return report
    if sig.dtype.kind not in _CONVERTIBLE_KINDS:
        steps.append(
            Step("signals", False, f"signals of dtype {sig.dtype} cannot be converted to int8; "
                 "return a numeric array (ideally np.int8)")
        )
        return report
    steps.append(Step("signals", True, f"{n} signals of dtype {sig.dtype}"))

    problem = _check_values(sig, warmup)
    if problem is not None:
        steps.append(Step("values", False, problem))
        return report
    f = sig.astype(np.int8)
    share = {k: 100.0 * np.count_nonzero(f == v) / max(n, 1) for k, v in
             (("long", 1), ("short", -1), ("flat", 0))}
    steps.append(
        Step("values", True, "all in {-1, 0, +1}, 0 during warm-up; "
             + ", ".join(f"{k} {v:.0f}%" for k, v in share.items()))
    )

    cuts = _cut_points(n, warmup, n_cuts, None)
    try:
        leak = find_look_ahead(strategy, bars, cuts=cuts, full=sig)
    except Exception as exc:
        steps.append(Step("look_ahead", False, f"signals on truncated data raised {_exc(exc)}"))
        return report
    if leak is not None:
        steps.append(Step("look_ahead", False, str(leak)))
        return report
    shown = f"{len(cuts)} cut points (bars {cuts[0]}..{cuts[-1]})" if cuts else "no cut points"
    steps.append(Step("look_ahead", True, f"signals on data cut at {shown} match the full run"))
    return report
