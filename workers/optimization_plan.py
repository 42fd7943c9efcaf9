"""Out-of-sample validation of an optimization: the `validation` input, resolved against the
dataset, and the `Plan` the coordinator drives (one optimizer, or one per walk-forward window).

Input (the service's `spec["validation"]`, None = no validation):

* `{"holdout": {"fraction": 0.3}}`: the last 30 % of the bars are out of sample, or
  `{"holdout": {"start": "2024-01-01"}}`: bars from that time on are. The search runs on
  the in-sample bars; every batch job also evaluates its parameter sets on the
  out-of-sample bars (a second sweep call in the same job: every stored trial gets both
  metric sets, at the cost of the out-of-sample bars once more).
* `{"walk_forward": {"train": "6M", "test": "1M", "step": None, "anchored": False,
  "gap": 0}}`: lengths are bar counts (int or "250") or durations ("30D", "6M", "1Y", "4h",
  `engine.optim.validation.parse_length`). Each window's search is its own optimizer
  (seed + window index) whose batches are ordinary batch jobs tagged with the window, so
  windows run concurrently; trial numbers run on across windows (window k's trials follow
  window k-1's) and a batch's number is the number of its first trial.

The stored form (`OptimizationRow.validation`) keeps the input and the resolved bar
segments, so workers never re-resolve: `{"kind": "holdout", "holdout": {...},
"in_sample": [0, c], "out_of_sample": [c, n]}` or `{"kind": "walk_forward",
"walk_forward": {...}, "windows": [{"index", "train": [a, b], "test": [c, d]}]}`.
Bad input is `BadInputError` naming the field (`validation.walkForward.train`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.bars import Bars
from engine.optim import Batch, OptimInputError, Optimizer, Trial
from engine.optim.types import clean_metric
from engine.optim.validation import Segment, Window, holdout_split, walk_forward_windows
from store.errors import BadInputError

__all__ = ["Part", "Plan", "batch_segments", "make_plan", "resolve_validation", "windows_of"]

WF_KEYS = ("train", "test", "step", "anchored", "gap")
_ENGINE_FIELDS = {
    "walk_forward": "validation.walkForward", "validation": "validation.holdout",
    "validation.fraction": "validation.holdout.fraction", "validation.at": "validation.holdout.start",
}


def _field(engine_field: str) -> str:
    if engine_field.startswith("walk_forward."):
        return "validation.walkForward." + engine_field.split(".", 1)[1]
    return _ENGINE_FIELDS.get(engine_field, engine_field)


def _length(value: Any, field: str) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadInputError(field, f"expected a bar count or a duration like 6M, got {value!r}")
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def resolve_validation(raw: Any, bars: Bars) -> dict[str, Any] | None:
    """The stored form of `raw` on these bars (see the module docstring)."""
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, dict):
        raise BadInputError("validation", "must be an object with holdout or walkForward")
    hold, wf = raw.get("holdout"), raw.get("walk_forward")
    unknown = set(raw) - {"holdout", "walk_forward"}
    if unknown:
        raise BadInputError(f"validation.{sorted(unknown)[0]}", "unknown key: use holdout or walkForward")
    if (hold is None) == (wf is None):
        raise BadInputError("validation", "give exactly one of holdout and walkForward")
    try:
        if hold is not None:
            return _resolve_holdout(hold, bars)
        return _resolve_walk_forward(wf, bars)
    except OptimInputError as exc:
        raise BadInputError(_field(exc.field), str(exc)) from None


def _resolve_holdout(hold: Any, bars: Bars) -> dict[str, Any]:
    if not isinstance(hold, dict):
        raise BadInputError("validation.holdout", "must be an object: {fraction} or {start}")
    fraction, start = hold.get("fraction"), hold.get("start")
    if (fraction is None) == (start is None):
        raise BadInputError("validation.holdout", "give exactly one of fraction and start")
    if fraction is not None:
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) \
                or not 0 < float(fraction) < 1:
            raise BadInputError("validation.holdout.fraction",
                                f"the held-out share must be in (0, 1), got {fraction!r}")
        ins, oos = holdout_split(bars.ts, fraction=1.0 - float(fraction))
        clean: dict[str, Any] = {"fraction": float(fraction)}
    else:
        if not isinstance(start, str):
            raise BadInputError("validation.holdout.start", f"expected an ISO time, got {start!r}")
        ins, oos = holdout_split(bars.ts, at=start)
        clean = {"start": start}
    return {"kind": "holdout", "holdout": clean, "in_sample": [ins.start, ins.stop],
            "out_of_sample": [oos.start, oos.stop]}


def _resolve_walk_forward(wf: Any, bars: Bars) -> dict[str, Any]:
    if not isinstance(wf, dict):
        raise BadInputError("validation.walkForward", "must be an object {train, test, ...}")
    for key in ("train", "test"):
        if wf.get(key) is None:
            raise BadInputError(f"validation.walkForward.{key}", f"{key} length is required")
    clean: dict[str, Any] = {
        "train": _length(wf["train"], "validation.walkForward.train"),
        "test": _length(wf["test"], "validation.walkForward.test"),
        "step": None if wf.get("step") is None else _length(wf["step"], "validation.walkForward.step"),
        "anchored": bool(wf.get("anchored") or False),
        "gap": _length(wf.get("gap") or 0, "validation.walkForward.gap"),
    }
    windows = walk_forward_windows(bars.ts, clean["train"], clean["test"], clean["step"],
                                   anchored=clean["anchored"], gap=clean["gap"], tz=bars.tz)
    if not windows:
        raise BadInputError("validation.walkForward",
                            f"no window fits in this dataset ({len(bars)} bars): shorten train "
                            "or test")
    return {"kind": "walk_forward", "walk_forward": clean,
            "windows": [{"index": w.index, "train": [w.train.start, w.train.stop],
                         "test": [w.test.start, w.test.stop]} for w in windows]}


def windows_of(validation: dict[str, Any] | None) -> list[Window]:
    """The stored walk-forward windows ([] unless walk-forward)."""
    if not validation or validation.get("kind") != "walk_forward":
        return []
    return [Window(int(w["index"]), Segment(*w["train"]), Segment(*w["test"]))
            for w in validation["windows"]]


def batch_segments(validation: dict[str, Any] | None, window: int | None,
                   n_bars: int) -> tuple[Segment, Segment | None]:
    """(bars a batch searches, bars it also evaluates out of sample or None)."""
    kind = (validation or {}).get("kind")
    if kind == "holdout":
        return Segment(*validation["in_sample"]), Segment(*validation["out_of_sample"])  # type: ignore[index]
    if kind == "walk_forward":
        w = validation["windows"][int(window or 0)]  # type: ignore[index]
        return Segment(*w["train"]), None
    return Segment(0, n_bars), None


@dataclass
class Part:
    """One optimizer of a plan: the whole search, or one walk-forward window's."""

    window: int | None
    opt: Optimizer
    offset: int  # global number of its first trial
    search: Segment


class Plan:
    """The optimizers of one optimization and the numbering that maps them to stored rows."""

    def __init__(self, parts: list[Part], validation: dict[str, Any] | None) -> None:
        self.parts = parts
        self.validation = validation
        self.kind = (validation or {}).get("kind")
        self._turn = 0

    @property
    def walk_forward(self) -> bool:
        return self.kind == "walk_forward"

    @property
    def total(self) -> int:
        return sum(p.opt.total for p in self.parts)

    @property
    def completed(self) -> int:
        return sum(len(p.opt.trials) for p in self.parts)

    @property
    def done(self) -> bool:
        return all([p.opt.done for p in self.parts])  # a list: `done` must see every part

    def cancel(self) -> None:
        for p in self.parts:
            p.opt.cancel()

    def ask(self) -> tuple[Part, Batch] | None:
        """The next batch of any part, taking parts in turn (windows run side by side)."""
        for k in range(len(self.parts)):
            part = self.parts[(self._turn + k) % len(self.parts)]
            batch = part.opt.ask()
            if batch is not None:
                self._turn = (self._turn + k + 1) % len(self.parts)
                return part, batch
        return None

    def batch_number(self, part: Part, local: int) -> int:
        """Stored batch number: the optimizer's own, or (walk-forward) its first trial's."""
        if not self.walk_forward:
            return local
        return part.offset + part.opt.batches[local].first_trial

    def tell(self, part: Part, batch: Batch, metrics: dict[str, np.ndarray], seconds: float,
             oos: dict[str, np.ndarray] | None = None) -> list[Trial]:
        """Tell a part a stored batch; hold-out metrics land on the trials' `oos_metrics`."""
        trials = part.opt.tell(batch.number, metrics, seconds)
        if oos:
            for i, t in enumerate(trials):
                t.oos_metrics = {k: clean_metric(k, float(a[i])) for k, a in oos.items()}
        return trials

    def trial_dict(self, part: Part, trial: Trial) -> dict[str, Any]:
        """A trial as stored: global number and batch, window, out-of-sample metrics."""
        d = trial.to_dict()
        d["number"] = part.offset + trial.number
        d["batch"] = self.batch_number(part, trial.batch)
        d["window"] = part.window
        return d

    def best(self) -> dict[str, Any] | None:
        """The best trial: of the search, or (walk-forward) of the latest window that has
        one, i.e. the parameters that would trade next."""
        for part in reversed(self.parts):
            best = part.opt.best()
            if best is not None:
                return self.trial_dict(part, best)
        return None


def make_plan(make_optimizer: Callable[[dict[str, Any]], Optimizer], spec: dict[str, Any],
              validation: dict[str, Any] | None, n_bars: int) -> Plan:
    """The plan of stored inputs; `make_optimizer(spec)` builds one optimizer."""
    windows = windows_of(validation)
    if not windows:
        search, _ = batch_segments(validation, None, n_bars)
        return Plan([Part(None, make_optimizer(spec), 0, search)], validation)
    parts, offset = [], 0
    seed = int(spec.get("seed") or 0)
    for w in windows:
        opt = make_optimizer({**spec, "seed": seed + w.index})
        parts.append(Part(w.index, opt, offset, w.train))
        offset += opt.total
    return Plan(parts, validation)
