"""A small, safe expression language for constraints such as "fast < slow" or "n_trades >= 30".

Expressions are parsed with `ast` and checked against a whitelist, then compiled into a tree
of numpy closures: nothing is ever passed to `eval`, and names can only refer to the columns
the caller declares. Grammar (Python syntax, a subset):

* literals: numbers, True/False, strings in quotes (for choice parameters);
* names: parameters (in space constraints) or metric keys (in result constraints);
* arithmetic: + - * / // % ** and unary -, +; functions abs(x), min(a, b, ...), max(...);
* comparisons < <= > >= == != (chains like "2 <= fast < slow" work);
* logic: and, or, not.

An expression evaluates a whole batch at once: `expr(columns)` takes a mapping of name ->
array (or scalar) and returns a bool array. Numbers are compared as float64; anything
compared with NaN is False (an undefined metric fails its constraint). `violation(columns)`
says by how much each row misses: 0 where the expression holds, > 0 otherwise (used to rank
infeasible trials in the adaptive searches).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from engine.optim.types import OptimInputError, did_you_mean

__all__ = ["Expr", "parse_expr"]

_Fn = Callable[[Mapping[str, Any]], np.ndarray]
MAX_LENGTH = 500
MAX_NODES = 200
UNDEFINED_VIOLATION = 1e6  # how far off a comparison with an undefined (NaN) side is

_ARITH: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide,
    ast.Mod: np.mod,
    ast.Pow: np.power,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
_FUNCS = {"abs", "min", "max"}


def _num(x: Any) -> Any:
    """float64 view of a numeric/bool column; strings stay as they are."""
    arr = np.asarray(x)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    return arr


class Expr:
    """A parsed expression; call it on columns for a bool array."""

    def __init__(self, source: str, names: frozenset[str], value: _Fn, miss: _Fn) -> None:
        self.source = source
        self.names = names
        self._value = value
        self._miss = miss

    def __repr__(self) -> str:
        return f"Expr({self.source!r})"

    def __call__(self, columns: Mapping[str, Any]) -> np.ndarray:
        """True where the expression holds (a bool array, or a 0-d one for scalars)."""
        with np.errstate(all="ignore"):
            return np.asarray(self._value(columns), dtype=bool)

    def violation(self, columns: Mapping[str, Any]) -> np.ndarray:
        """0 where the expression holds, else how far off it is (> 0, finite)."""
        with np.errstate(all="ignore"):
            out = np.asarray(self._miss(columns), dtype=np.float64)
        return np.where(np.isfinite(out), out, UNDEFINED_VIOLATION)


class _Compiler:
    def __init__(self, source: str, field: str, allowed: frozenset[str] | None) -> None:
        self.source = source
        self.field = field
        self.allowed = allowed
        self.names: set[str] = set()

    def fail(self, message: str) -> OptimInputError:
        return OptimInputError(self.field, f"constraint {self.source!r}: {message}")

    # -- values ---------------------------------------------------------------------
    def value(self, node: ast.AST) -> _Fn:
        if isinstance(node, ast.Constant):
            c = node.value
            if isinstance(c, bool | int | float | str):
                const = np.asarray(c)
                return lambda cols: const
            raise self.fail(f"unsupported literal {c!r}")
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
            op = _ARITH[type(node.op)]
            left, right = self.value(node.left), self.value(node.right)
            return lambda cols: op(_num(left(cols)), _num(right(cols)))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = self.value(node.operand)
            sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
            return lambda cols: sign * _num(inner(cols))
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Compare | ast.BoolOp) or (
            isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
        ):
            return self.test(node)[0]
        raise self.fail(f"unsupported syntax {ast.dump(node)[:40]}...")

    def name(self, name: str) -> _Fn:
        if self.allowed is not None and name not in self.allowed:
            raise self.fail(f"unknown name {name!r}{did_you_mean(name, self.allowed)}")
        self.names.add(name)
        return lambda cols: cols[name]

    def call(self, node: ast.Call) -> _Fn:
        fn = node.func.id if isinstance(node.func, ast.Name) else None
        if fn not in _FUNCS or node.keywords or not node.args:
            raise self.fail("the only functions are abs(x), min(a, b, ...) and max(a, b, ...)")
        args = [self.value(a) for a in node.args]
        if fn == "abs":
            if len(args) != 1:
                raise self.fail("abs takes one argument")
            return lambda cols: np.abs(_num(args[0](cols)))
        reduce = np.minimum if fn == "min" else np.maximum

        def extreme(cols: Mapping[str, Any]) -> Any:
            out = _num(args[0](cols))
            for a in args[1:]:
                out = reduce(out, _num(a(cols)))
            return out

        return extreme

    # -- truth values and their violations --------------------------------------------
    def test(self, node: ast.AST) -> tuple[_Fn, _Fn]:
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.BoolOp):
            parts = [self.test(v) for v in node.values]
            if isinstance(node.op, ast.And):
                return (
                    lambda cols: np.logical_and.reduce([p[0](cols) for p in parts]),
                    lambda cols: np.sum([p[1](cols) for p in parts], axis=0),
                )
            return (
                lambda cols: np.logical_or.reduce([p[0](cols) for p in parts]),
                lambda cols: np.min([p[1](cols) for p in parts], axis=0),
            )
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner, _ = self.test(node.operand)
            return (
                lambda cols: np.logical_not(inner(cols)),
                lambda cols: np.where(inner(cols), 1.0, 0.0),
            )
        if isinstance(node, ast.Name | ast.Constant):
            val = self.value(node)
            return (
                lambda cols: np.asarray(val(cols), dtype=bool),
                lambda cols: np.where(np.asarray(val(cols), dtype=bool), 0.0, 1.0),
            )
        raise self.fail("must be a comparison such as 'fast < slow' (combine with and/or/not)")

    def compare(self, node: ast.Compare) -> tuple[_Fn, _Fn]:
        sides = [self.value(node.left)] + [self.value(c) for c in node.comparators]
        ops = []
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise self.fail("comparisons are < <= > >= == !=")
            ops.append(type(op))

        def pairs(cols: Mapping[str, Any]) -> list[tuple[type, Any, Any]]:
            vals = [_num(s(cols)) for s in sides]
            return [(op, vals[i], vals[i + 1]) for i, op in enumerate(ops)]

        def holds(cols: Mapping[str, Any]) -> Any:
            return np.logical_and.reduce([_COMPARE[op](a, b) for op, a, b in pairs(cols)])

        def miss(cols: Mapping[str, Any]) -> Any:
            total: Any = 0.0
            for op, a, b in pairs(cols):
                ok = _COMPARE[op](a, b)
                # numbers miss by their distance (+ a hair: "<" misses when equal)
                numeric = a.dtype.kind == "f" and b.dtype.kind == "f"
                gap = np.abs(a - b) + 1e-9 if numeric else 1.0
                gap = np.where(np.isfinite(gap), gap, UNDEFINED_VIOLATION)  # NaN sides
                total = total + np.where(ok, 0.0, gap)
            return total

        return holds, miss


def _count(tree: ast.AST) -> int:
    return sum(1 for _ in ast.walk(tree))


def parse_expr(
    source: str, allowed: Iterable[str] | None = None, *, field: str = "constraints"
) -> Expr:
    """Parse and check `source`; names must be in `allowed` (None: any name).

    Raises OptimInputError (naming `field`) for syntax outside the language, unknown
    names (with a "did you mean" hint) or expressions that are not a true/false test.
    """
    if not isinstance(source, str) or not source.strip():
        raise OptimInputError(field, "a constraint must be a non-empty string like 'fast < slow'")
    if len(source) > MAX_LENGTH:
        raise OptimInputError(field, f"constraint is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise OptimInputError(field, f"constraint {source!r}: syntax error ({exc.msg})") from None
    if _count(tree) > MAX_NODES:
        raise OptimInputError(field, f"constraint {source!r} is too complex")
    allowed_set = frozenset(allowed) if allowed is not None else None
    comp = _Compiler(source.strip(), field, allowed_set)
    value, miss = comp.test(tree.body)
    return Expr(comp.source, frozenset(comp.names), value, miss)
