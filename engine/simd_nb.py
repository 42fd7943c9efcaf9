"""Four-lane sums of bar returns as explicit LLVM vector code (numba intrinsics).

The return statistics add in 4 lanes by index (lane k % 4), a fixed order that full runs
and sweeps share bit for bit. Written as scalar numba code the lanes stay scalar: LLVM's
loop vectorizer may not reorder floating-point sums, and numba keeps the SLP vectorizer
(which would pack the 4 lanes) off because of miscompilations (numba#8852). These
intrinsics emit the `<4 x double>` operations directly: each lane still adds its own
values in index order, with the same operations (no fused multiply-add), so the sums are
the same numbers as the scalar loops give; the kept-tail compaction uses
`llvm.masked.compressstore` (one instruction with AVX-512, scalarized by LLVM elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_F64 = ir.DoubleType()
_I64 = ir.IntType(64)
_V4 = ir.VectorType(_F64, 4)
_M4 = ir.VectorType(ir.IntType(1), 4)
_EVEN = ir.Constant(_M4, [1, 0, 1, 0])
_ODD = ir.Constant(_M4, [0, 1, 0, 1])
_ZERO = ir.Constant(_V4, [0.0] * 4)


def _load4(builder: ir.IRBuilder, base: ir.Value, off: ir.Value) -> ir.Value:
    return builder.load(builder.bitcast(builder.gep(base, [off]), _V4.as_pointer()), align=8)


def _store4(builder: ir.IRBuilder, base: ir.Value, v: ir.Value) -> None:
    builder.store(v, builder.bitcast(base, _V4.as_pointer()), align=8)


def _splat(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    vec = ir.Constant(_V4, ir.Undefined)
    for j in range(4):
        vec = builder.insert_element(vec, x, ir.Constant(ir.IntType(32), j))
    return vec


def _data(context: Any, builder: ir.IRBuilder, ty: types.Type, val: ir.Value) -> ir.Value:
    return context.make_array(ty)(context, builder, val).data


def _contiguous(*arrays: types.Type) -> bool:
    """1-d C-contiguous arrays (the code walks their data pointers); else no typing."""
    return all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" for a in arrays)


def _accumulate(builder: ir.IRBuilder, ptr: ir.Value, v: ir.Value) -> None:
    builder.store(builder.fadd(builder.load(ptr), v), ptr)


@intrinsic
def sum_sq4(typingctx: Any, x: types.Array, i0: types.Integer, i1: types.Integer,
            s: types.Array, q: types.Array) -> tuple[types.Signature, Callable[..., Any]]:
    """For k = i0, i0 + 4, ... < i1 (i1 - i0 a multiple of 4): s[l] += x[k + l],
    q[l] += x[k + l] * x[k + l] for l in 0..3 (s, q: 4 contiguous float64 each)."""
    if not _contiguous(x, s, q):
        return None
    sig = types.void(x, types.intp, types.intp, s, q)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: list[Any]) -> Any:
        xd = _data(context, builder, signature.args[0], args[0])
        sd = _data(context, builder, signature.args[3], args[3])
        qd = _data(context, builder, signature.args[4], args[4])
        s_p = cgutils.alloca_once_value(builder, _load4(builder, sd, _I64(0)))
        q_p = cgutils.alloca_once_value(builder, _load4(builder, qd, _I64(0)))
        with cgutils.for_range_slice(builder, args[1], args[2], _I64(4)) as (k, _):
            v = _load4(builder, xd, k)
            _accumulate(builder, s_p, v)
            _accumulate(builder, q_p, builder.fmul(v, v))
        _store4(builder, sd, builder.load(s_p))
        _store4(builder, qd, builder.load(q_p))
        return context.get_dummy_value()

    return sig, codegen


def _dev_keep_loop(builder: ir.IRBuilder, i0: ir.Value, i1: ir.Value, shift: ir.Value,
                   cut: ir.Value, out: list[ir.Value],
                   value: Callable[[ir.IRBuilder, ir.Value], ir.Value]) -> None:
    """The loop of `dev_keep4` over k = i0, i0 + 4, ... < i1, the 4 returns of each step
    from `value(builder, k)`; `out` = data pointers of s, q, d, ev, od, cnt."""
    sd, qd, dd, ev_d, od_d, cd = out
    mod = builder.module
    store = cgutils.get_or_insert_function(
        mod, ir.FunctionType(ir.VoidType(), [_V4, ir.PointerType(_F64), _M4]),
        "llvm.masked.compressstore.v4f64")
    ctpop = cgutils.get_or_insert_function(
        mod, ir.FunctionType(ir.IntType(4), [ir.IntType(4)]), "llvm.ctpop.i4")
    vshift = _splat(builder, shift)
    vcut = _splat(builder, cut)
    s_p = cgutils.alloca_once_value(builder, _load4(builder, sd, _I64(0)))
    q_p = cgutils.alloca_once_value(builder, _load4(builder, qd, _I64(0)))
    d_p = cgutils.alloca_once_value(builder, _load4(builder, dd, _I64(0)))
    ne_p = cgutils.alloca_once_value(builder, builder.load(builder.gep(cd, [_I64(0)])))
    no_p = cgutils.alloca_once_value(builder, builder.load(builder.gep(cd, [_I64(1)])))
    with cgutils.for_range_slice(builder, i0, i1, _I64(4)) as (k, _):
        v = value(builder, k)
        _accumulate(builder, s_p, v)
        dv = builder.fsub(v, vshift)
        _accumulate(builder, q_p, builder.fmul(dv, dv))
        neg = builder.fcmp_ordered("<", v, _ZERO)
        _accumulate(builder, d_p, builder.select(neg, builder.fmul(v, v), _ZERO))
        keep = builder.fcmp_ordered("<=", v, vcut)
        for mask, count_p, base in ((_EVEN, ne_p, ev_d), (_ODD, no_p, od_d)):
            m = builder.and_(keep, mask)
            n = builder.load(count_p)
            builder.call(store, [v, builder.gep(base, [n]), m])
            kept = builder.call(ctpop, [builder.bitcast(m, ir.IntType(4))])
            builder.store(builder.add(n, builder.zext(kept, _I64)), count_p)
    _store4(builder, sd, builder.load(s_p))
    _store4(builder, qd, builder.load(q_p))
    _store4(builder, dd, builder.load(d_p))
    builder.store(builder.load(ne_p), builder.gep(cd, [_I64(0)]))
    builder.store(builder.load(no_p), builder.gep(cd, [_I64(1)]))


@intrinsic
def dev_keep4(typingctx: Any, x: types.Array, i0: types.Integer, i1: types.Integer,
              shift: types.Float, cut: types.Float, s: types.Array, q: types.Array,
              d: types.Array, ev: types.Array, od: types.Array,
              cnt: types.Array) -> tuple[types.Signature, Callable[..., Any]]:
    """For k = i0, i0 + 4, ... < i1 (i1 - i0 a multiple of 4; x[i0] has an even return
    index) and l in 0..3, with r = x[k + l]: s[l] += r, q[l] += (r - shift)^2,
    d[l] += r * r if r < 0 else 0.0; r <= cut is appended to `ev` (l even) at cnt[0] or
    to `od` (l odd) at cnt[1], in index order, and the counts advance. The caller makes
    sure `ev` and `od` have room."""
    if not _contiguous(x, s, q, d, ev, od, cnt):
        return None
    sig = types.void(x, types.intp, types.intp, types.float64, types.float64, s, q, d, ev, od,
                     cnt)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: list[Any]) -> Any:
        xd = _data(context, builder, signature.args[0], args[0])
        out = [_data(context, builder, signature.args[j], args[j]) for j in range(5, 11)]
        _dev_keep_loop(builder, args[1], args[2], args[3], args[4], out,
                       lambda b, k: _load4(b, xd, k))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def div_dev_keep4(typingctx: Any, e: types.Array, i0: types.Integer, i1: types.Integer,
                  shift: types.Float, cut: types.Float, r: types.Array, s: types.Array,
                  q: types.Array, d: types.Array, ev: types.Array, od: types.Array,
                  cnt: types.Array) -> tuple[types.Signature, Callable[..., Any]]:
    """`dev_keep4` on the returns r[k] = e[k + 1] / e[k] - 1 of the equity `e`, computed
    here (and stored in r) for k in [i0, i1): the divisions run side by side with the
    latency-bound sums instead of in a pass of their own (same operations, same numbers)."""
    if not _contiguous(e, r, s, q, d, ev, od, cnt):
        return None
    sig = types.void(e, types.intp, types.intp, types.float64, types.float64, r, s, q, d, ev,
                     od, cnt)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: list[Any]) -> Any:
        ed = _data(context, builder, signature.args[0], args[0])
        rd = _data(context, builder, signature.args[5], args[5])
        out = [_data(context, builder, signature.args[j], args[j]) for j in range(6, 12)]
        one = ir.Constant(_V4, [1.0] * 4)

        def value(b: ir.IRBuilder, k: ir.Value) -> ir.Value:
            ratio = b.fdiv(_load4(b, ed, b.add(k, _I64(1))), _load4(b, ed, k))
            v = b.fsub(ratio, one)
            _store4(b, b.gep(rd, [k]), v)
            return v

        _dev_keep_loop(builder, args[1], args[2], args[3], args[4], out, value)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def load8(typingctx: Any, a: types.Array, i: types.Integer) -> tuple[types.Signature,
                                                                       Callable[..., Any]]:
    """The 8 bytes a[i : i + 8] of a contiguous int8 array as one int64 (an unaligned
    load; the caller makes sure they are in bounds): a run of equal signals is 8 bytes
    compared at once, without numba's byte-by-byte loads (its SLP vectorizer is off)."""
    if not (_contiguous(a) and a.dtype == types.int8):
        return None
    sig = types.int64(a, types.intp)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: list[Any]) -> Any:
        base = _data(context, builder, signature.args[0], args[0])
        ptr = builder.bitcast(builder.gep(base, [args[1]]), _I64.as_pointer())
        return builder.load(ptr, align=1)

    return sig, codegen
