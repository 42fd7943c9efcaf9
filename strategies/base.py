"""The Strategy base class and typed, validated strategy parameters (`Param`).

A strategy reads like backtesting.py, but typed::

    class EmaCrossover(Strategy):
        '''Long while the fast EMA is above the slow one.'''
        name = "ema_crossover"
        fast: int = Param(10, ge=2, le=500, help="fast EMA period")

        def signals(self, bars: Bars) -> np.ndarray: ...

The annotation gives the type: int, float, bool, or str (which needs `choices`).
Coercion rules of `validate_params` (what the API and the CLI may send):

* int: ints; floats only when whole (10.0 -> 10, 10.5 is an error, never truncated);
  strings holding such a number ("10"). Booleans are rejected.
* float: ints, floats and numeric strings; must be finite. Booleans are rejected.
* bool: True/False, 0/1, and the strings true/false, yes/no, on/off, 1/0 (any case).
* str: one of `choices`, exactly.

Cross-parameter rules go in a `check(params)` classmethod that raises ParamError.
"""

from __future__ import annotations

import difflib
import math
import typing
from typing import Any, ClassVar

import numpy as np

from engine.bars import Bars
from engine.errors import EngineInputError

__all__ = ["Param", "ParamError", "ParamInfo", "Strategy", "did_you_mean", "merge_engine_options"]

_TYPES = {int: "int", float: "float", bool: "bool", str: "choice"}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class ParamError(EngineInputError):
    """A strategy parameter is unknown or invalid; `.param` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def did_you_mean(name: str, options: typing.Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest option, or ' (choose from a, b)'."""
    opts = sorted(options)
    close = difflib.get_close_matches(name, opts, n=1, cutoff=0.5)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (choose from {', '.join(opts)})" if opts else ""


class ParamInfo:
    """A declared strategy parameter: default, bounds, grid step, choices and help text.

    Made by `Param(...)`; as a class attribute it reads as itself on the class and as
    the validated value on an instance.
    """

    def __init__(
        self,
        default: Any,
        *,
        ge: float | None = None,
        le: float | None = None,
        step: float | None = None,
        choices: typing.Sequence[Any] | None = None,
        help: str = "",
    ) -> None:
        self.default = default
        self.ge = ge
        self.le = le
        self.step = step
        self.choices = tuple(choices) if choices is not None else None
        self.help = help
        self.name = ""
        self.type: type = object

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object | None, owner: type) -> Any:
        if obj is None:
            return self
        return obj.params[self.name]  # type: ignore[attr-defined]

    @property
    def kind(self) -> str:
        """Schema type: "int", "float", "bool" or "choice"."""
        return _TYPES[self.type]

    def schema(self) -> dict[str, Any]:
        """JSON-able description of the parameter."""
        return {
            "name": self.name,
            "type": self.kind,
            "default": self.default,
            "min": self.ge,
            "max": self.le,
            "step": self.step,
            "choices": list(self.choices) if self.choices is not None else None,
            "help": self.help,
        }

    def _fail(self, message: str) -> ParamError:
        return ParamError(self.name, f"{self.name} {message}")

    def coerce(self, raw: Any) -> Any:
        """The validated value of `raw` for this parameter, or ParamError."""
        value = self._coerce_type(raw)
        if self.choices is not None and value not in self.choices:
            shown = ", ".join(repr(c) for c in self.choices)
            hint = did_you_mean(str(value), [str(c) for c in self.choices])
            hint = hint if hint.startswith(";") else ""
            raise self._fail(f"must be one of {shown}, got {raw!r}{hint}")
        if self.ge is not None and value < self.ge:
            raise self._fail(f"must be >= {self.ge}, got {value}")
        if self.le is not None and value > self.le:
            raise self._fail(f"must be <= {self.le}, got {value}")
        return value

    def _coerce_type(self, raw: Any) -> Any:
        t = self.type
        if t is bool:
            if isinstance(raw, bool | np.bool_):
                return bool(raw)
            if isinstance(raw, int | np.integer) and raw in (0, 1):
                return bool(raw)
            if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
                return raw.strip().lower() in _TRUE
            raise self._fail(f"must be a boolean (true/false), got {raw!r}")
        if t is str:
            if not isinstance(raw, str):
                raise self._fail(f"must be a string, got {raw!r}")
            return raw
        if isinstance(raw, bool | np.bool_):
            raise self._fail(f"must be a number, got a boolean {raw!r}")
        if isinstance(raw, str):
            text = raw.strip()
            try:
                num: float = int(text) if t is int else float(text)
            except ValueError:
                try:
                    num = float(text)
                except ValueError:
                    kind = "an integer" if t is int else "a number"
                    raise self._fail(f"must be {kind}, got {raw!r}") from None
        elif isinstance(raw, int | float | np.integer | np.floating):
            num = raw.item() if isinstance(raw, np.generic) else raw
        else:
            raise self._fail(f"must be a number, got {raw!r}")
        if isinstance(num, float) and not math.isfinite(num):
            raise self._fail(f"must be finite, got {raw!r}")
        if t is int:
            if isinstance(num, float):
                if not num.is_integer():
                    raise self._fail(f"must be an integer, got {raw!r}")
                num = int(num)
            return int(num)
        return float(num)


def Param(
    default: Any,
    *,
    ge: float | None = None,
    le: float | None = None,
    step: float | None = None,
    choices: typing.Sequence[Any] | None = None,
    help: str = "",
) -> Any:
    """Declare a parameter: `fast: int = Param(10, ge=2, le=500, help="fast EMA period")`.

    Typed as Any (like pydantic's Field) so the annotation states the value's type.
    """
    return ParamInfo(default, ge=ge, le=le, step=step, choices=choices, help=help)


def _resolve_params(cls: type) -> dict[str, ParamInfo]:
    hints = typing.get_type_hints(cls)
    found: dict[str, ParamInfo] = {}
    for klass in reversed(cls.__mro__):
        for key, value in vars(klass).items():
            if isinstance(value, ParamInfo):
                found[key] = value
    for key, p in found.items():
        t = hints.get(key)
        if t not in _TYPES:
            raise TypeError(f"{cls.__name__}.{key}: annotate a Param as int, float, bool or str")
        p.type = t
        if t is str and not p.choices:
            raise TypeError(f"{cls.__name__}.{key}: a str Param needs choices")
        p.coerce(p.default)  # a bad default is a programming error: fail at import
    return found


class Strategy:
    """Base class: turn bars into target positions (-1/0/+1) decided at each bar's close.

    Subclasses set `name`, a docstring saying what they trade, typed `Param`s, and
    implement `signals`. A signal at bar i fills at bar i+1's open in the engine.
    """

    name: ClassVar[str] = ""
    _params: ClassVar[dict[str, ParamInfo]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._params = _resolve_params(cls)

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = self.validate_params(params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    # -- parameters -----------------------------------------------------------------
    @classmethod
    def params_schema(cls) -> list[dict[str, Any]]:
        """One JSON-able dict per parameter: name, type, default, min, max, step, choices, help."""
        return [p.schema() for p in cls._params.values()]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Default value of every parameter."""
        return {k: p.default for k, p in cls._params.items()}

    @classmethod
    def validate_params(cls, raw: typing.Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Validated parameters with defaults filled in; ParamError names the first problem."""
        raw = dict(raw or {})
        out: dict[str, Any] = {}
        for key in raw:
            if key not in cls._params:
                who = f" for strategy {cls.name!r}" if cls.name else ""
                raise ParamError(
                    str(key),
                    f"unknown parameter {key!r}{who}{did_you_mean(str(key), cls._params)}",
                )
        for key, p in cls._params.items():
            out[key] = p.coerce(raw[key]) if key in raw else p.default
        cls.check(out)
        return out

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        """Cross-parameter rules (e.g. fast < slow); raise ParamError. Default: none."""

    @classmethod
    def engine_overrides(cls, params: dict[str, Any]) -> dict[str, Any]:
        """EngineOptions fields this strategy sets from its params (e.g. stop_loss_pct).

        Runners merge them into the run's options with `merge_engine_options`.
        """
        return {}

    # -- signals --------------------------------------------------------------------
    @property
    def warmup(self) -> int:
        """Bars at the start during which signals are always 0."""
        return 0

    def signals(self, bars: Bars) -> np.ndarray:
        """Target position per bar (int8 -1/0/+1) known at that bar's close; no look-ahead."""
        raise NotImplementedError

    @classmethod
    def sweep(
        cls,
        bars: Bars,
        param_sets: list[dict[str, Any]],
        options: Any,
        *,
        batch_bytes: int = 64 << 20,
        blocks: int = 0,
    ) -> dict[str, np.ndarray]:
        """Metrics of every parameter set (arrays aligned with `param_sets`).

        `blocks` > 0 adds per-set block statistics of the bar returns ("block_n",
        "block_sum", "block_sumsq", [n_sets, blocks]; see `engine.sweep`).

        Default: build int8 signal matrices (n_sets_in_batch x n_bars, at most
        `batch_bytes` each) and evaluate them with `engine.sweep.sweep_signals`. Sets whose
        `engine_overrides` differ are evaluated with their own options, merged as in
        `merge_engine_options` (an explicitly set, conflicting option is a ParamError).
        """
        from engine.sweep import sweep_signals

        validated = [cls.validate_params(p) for p in param_sets]
        groups: dict[tuple[tuple[str, Any], ...], list[int]] = {}
        for i, p in enumerate(validated):
            key = tuple(sorted(cls.engine_overrides(p).items()))
            groups.setdefault(key, []).append(i)
        n = len(bars)
        per_batch = max(1, batch_bytes // max(n, 1))
        parts: list[tuple[list[int], dict[str, np.ndarray]]] = []
        for idx in groups.values():
            opts = _with_overrides(cls, validated[idx[0]], options)
            for start in range(0, len(idx), per_batch):
                chunk = idx[start : start + per_batch]
                matrix = np.empty((len(chunk), n), dtype=np.int8)
                for row, i in enumerate(chunk):
                    matrix[row] = cls(**validated[i]).signals(bars)
                extra = {"blocks": blocks} if blocks else {}  # blocks=0: the plain call
                parts.append((chunk, sweep_signals(bars, matrix, opts, **extra)))
        return _gather(parts, len(validated))


def _with_overrides(cls: type[Strategy], params: dict[str, Any], options: Any) -> Any:
    """`options` (EngineOptions, dict or None) with the strategy's engine overrides merged."""
    if not cls.engine_overrides(params):
        return options
    if hasattr(options, "model_fields_set"):  # EngineOptions: explicit fields may conflict
        explicit = options.model_dump(include=options.model_fields_set)
        return type(options).model_validate(merge_engine_options(cls, params, explicit))
    return merge_engine_options(cls, params, dict(options or {}))


def _gather(
    parts: list[tuple[list[int], dict[str, np.ndarray]]], n_sets: int
) -> dict[str, np.ndarray]:
    if not parts:
        return {}
    out: dict[str, np.ndarray] = {}
    for idx, metrics in parts:
        for key, values in metrics.items():
            arr = np.asarray(values)
            if key not in out:
                out[key] = np.empty((n_sets, *arr.shape[1:]), dtype=arr.dtype)
            out[key][idx] = arr
    return out


def merge_engine_options(
    strategy: type[Strategy], params: dict[str, Any], options: dict[str, Any]
) -> dict[str, Any]:
    """`options` (the fields a user set explicitly) plus the strategy's engine overrides.

    A field set both ways to different values is a ParamError naming the field: the
    user must choose one instead of one silently winning.
    """
    merged = dict(options)
    for key, value in strategy.engine_overrides(params).items():
        mine = options.get(key)
        if mine is not None and mine != value:
            raise ParamError(
                key,
                f"option {key}={mine!r} conflicts with strategy {strategy.name!r}, whose "
                f"parameters set {key}={value!r}; set it through the strategy's parameters",
            )
        merged[key] = value
    return merged
