"""Cleanup: collapse Cast, Reshape and Transpose chains that exporters leave behind.

Legality:
- ``Cast(x, to=T) -> x`` when x already has type T: Cast to the same type is the identity,
  NaN, +-0 and Inf included.
- ``Cast(Cast(x, to=A), to=B) -> Cast(x, to=B)`` only when A represents every value of x's type
  exactly (a lossless widening: f16->f32, f32->f64, int8->int32...). Narrowing first (f32->f16->f32)
  rounds and is never collapsed.
- ``Reshape(Reshape(x, s1), s2) -> Reshape(x, s2)`` when s2 is a constant with no 0 entry: a 0
  means "copy this dimension from the input", which would then read x instead of the
  intermediate. -1 is fine (it is inferred from the element count, which both share).
- ``Transpose(Transpose(x, p1), p2) -> Transpose(x, p1[p2])``, and to x itself when the composed
  permutation is the identity. Exact: a transpose only moves elements.
- ``Where(c, a, b)`` with a and/or b a one-element constant of shape [1] (or [1, 1]...) ->  the same
  Where with that constant as a scalar, when c has at least that rank: the broadcast output shape
  is c's (and the other operand's) either way, and every element is the same value. The legacy
  exporter writes SDPA's mask and NaN guard this way; onnxscript's SDPA pattern wants scalars.
- ``Div(1, x) -> Reciprocal(x)`` for a float constant 1 of one element and rank at most x's: both
  are the correctly rounded 1/x in IEEE arithmetic (+-0 -> +-inf, inf -> 0, NaN -> NaN). The legacy
  exporter writes RMSNorm's ``rsqrt`` as ``Div(1, Sqrt(...))``; onnxscript's pattern wants Reciprocal.
- ``ReduceMean(x, axes)`` (opset 18) without ``noop_with_empty_axes`` -> the same with the attribute
  written out as its default, 0: the same op. onnxscript's patterns (RMSNorm's among them) match
  only a node that states it, and the legacy exporter leaves it out.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import MatchResult

from graphopt.formats.onnx.rules import rule
from graphopt.passes.onnx._util import constant

# Types whose every value the key type's values widen into exactly.
_LOSSLESS_WIDENING = {
    ir.DataType.FLOAT: {
        ir.DataType.FLOAT16,
        ir.DataType.BFLOAT16,
        ir.DataType.FLOAT,
        ir.DataType.INT8,
        ir.DataType.UINT8,
        ir.DataType.INT16,
        ir.DataType.UINT16,
        ir.DataType.BOOL,
    },
    ir.DataType.DOUBLE: {
        ir.DataType.FLOAT16,
        ir.DataType.BFLOAT16,
        ir.DataType.FLOAT,
        ir.DataType.DOUBLE,
        ir.DataType.INT8,
        ir.DataType.UINT8,
        ir.DataType.INT16,
        ir.DataType.UINT16,
        ir.DataType.INT32,
        ir.DataType.UINT32,
        ir.DataType.BOOL,
    },
    ir.DataType.INT64: {
        ir.DataType.INT8,
        ir.DataType.UINT8,
        ir.DataType.INT16,
        ir.DataType.UINT16,
        ir.DataType.INT32,
        ir.DataType.UINT32,
        ir.DataType.INT64,
        ir.DataType.BOOL,
    },
    ir.DataType.INT32: {
        ir.DataType.INT8,
        ir.DataType.UINT8,
        ir.DataType.INT16,
        ir.DataType.UINT16,
        ir.DataType.INT32,
        ir.DataType.BOOL,
    },
}


def _cast_identity_pattern(op, x, to):
    return op.Cast(x, to=to)


def _cast_identity_check(context, x, to, **_):
    if x.dtype is None or x.dtype != to.as_int():
        return MatchResult().fail(f"Cast changes the type ({x.dtype} -> {ir.DataType(to.as_int())})")
    return True


# Cast(x: T, to=T) -> x
cast_identity = rule(
    "cast-identity",
    "cleanup",
    "Cast(x, to=T) where x is already T  ->  x",
    _cast_identity_pattern,
    lambda op, x, to: op.Identity(x),
    _cast_identity_check,
)


def _cast_cast_pattern(op, x, mid, to):
    return op.Cast(op.Cast(x, to=mid), to=to)


def _cast_cast_check(context, x, mid, to, **_):
    if x.dtype is None:
        return MatchResult().fail("input dtype unknown")
    if x.dtype not in _LOSSLESS_WIDENING.get(ir.DataType(mid.as_int()), ()):
        return MatchResult().fail(f"first Cast {x.dtype} -> {ir.DataType(mid.as_int())} may lose information")
    return True


# Cast(Cast(x, A), B) -> Cast(x, B)   when x -> A is lossless
cast_cast = rule(
    "cast-cast",
    "cleanup",
    "Cast(Cast(x, to=A), to=B), A a lossless widening  ->  Cast(x, to=B)",
    _cast_cast_pattern,
    lambda op, x, mid, to: op.Cast(x, to=to.as_int()),
    _cast_cast_check,
)


def _reshape_reshape_pattern(op, x, shape1, shape2):
    return op.Reshape(op.Reshape(x, shape1, _allow_other_attributes=True), shape2, _allow_other_attributes=True)


def _reshape_reshape_check(context, x, shape1, shape2, **_):
    target = constant(shape2)
    if target is None:
        return MatchResult().fail("second shape is not a constant")
    if np.any(target == 0):
        return MatchResult().fail("second shape has a 0 (copy-from-input) entry")
    return True


# Reshape(Reshape(x, s1), s2) -> Reshape(x, s2)   when s2 is constant without 0
reshape_reshape = rule(
    "reshape-reshape",
    "cleanup",
    "Reshape(Reshape(x, s1), s2), s2 constant without 0  ->  Reshape(x, s2)",
    _reshape_reshape_pattern,
    lambda op, x, shape1, shape2: op.Reshape(x, shape2),
    _reshape_reshape_check,
)


def _transpose_transpose_pattern(op, x, perm1, perm2):
    return op.Transpose(op.Transpose(x, perm=perm1), perm=perm2)


def _transpose_transpose_replacement(op, x, perm1, perm2):
    p1, p2 = perm1.as_ints(), perm2.as_ints()
    composed = [p1[i] for i in p2]
    if composed == sorted(composed):
        return op.Identity(x)
    return op.Transpose(x, perm=composed)


# Transpose(Transpose(x, p1), p2) -> Transpose(x, p1[p2])  (x itself when that is the identity)
transpose_transpose = rule(
    "transpose-transpose",
    "cleanup",
    "Transpose(Transpose(x, p1), p2)  ->  Transpose(x, p1[p2]), or x when that is the identity",
    _transpose_transpose_pattern,
    _transpose_transpose_replacement,
)


def _where_pattern(op, condition, a, b):
    return op.Where(condition, a, b)


def _singleton(value: ir.Value, condition: ir.Value) -> np.ndarray | None:
    """``value``'s one element, when it is a constant of rank 1 or more with every dimension 1 and
    no higher rank than ``condition``'s; else None."""
    array = constant(value)
    if array is None or array.ndim == 0 or array.size != 1 or condition.shape is None:
        return None
    return array.reshape(()) if array.ndim <= len(condition.shape) else None


def _where_scalar_check(context, condition, a, b, **_):
    if _singleton(a, condition) is None and _singleton(b, condition) is None:
        return MatchResult().fail("no operand is a one-element constant of rank 1 or more within the condition's rank")
    return True


def _where_scalar_replacement(op, condition, a, b):
    scalars = [_singleton(v, condition) for v in (a, b)]
    a, b = (op.Constant(value=ir.tensor(s)) if s is not None else v for s, v in zip(scalars, (a, b)))
    return op.Where(condition, a, b)


# Where(c, [k], b) -> Where(c, k, b)   one-element constants as scalars (same broadcast shape)
where_scalar = rule(
    "where-scalar",
    "cleanup",
    "Where(c, a, b) with a or b a one-element constant of shape [1]  ->  the same Where with a scalar",
    _where_pattern,
    _where_scalar_replacement,
    _where_scalar_check,
)


def _one_over_pattern(op, one, x):
    return op.Div(one, x)


def _one_over_check(context, one, x, **_):
    value = constant(one)
    if value is None or value.size != 1 or float(value.reshape(-1)[0]) != 1.0 or value.dtype.kind != "f":
        return MatchResult().fail("the numerator is not a float constant 1")
    if x.shape is None or value.ndim > len(x.shape):
        return MatchResult().fail("the constant may broadcast x up")
    if x.dtype is None or ir.DataType.from_numpy(value.dtype) != x.dtype:
        return MatchResult().fail("the operands' types differ or are unknown")
    return True


# Div(1, x) -> Reciprocal(x)   the same correctly rounded 1/x
one_over = rule(
    "one-over",
    "cleanup",
    "Div(1, x) with a float constant 1  ->  Reciprocal(x)",
    _one_over_pattern,
    lambda op, one, x: op.Reciprocal(x),
    _one_over_check,
)


def _reduce_mean_pattern(op, x, axes):
    return op.ReduceMean(x, axes, _allow_other_attributes=True, _outputs=["mean"])


def _reduce_mean_check(context, mean, **_):
    if "noop_with_empty_axes" in mean.producer().attributes:
        return MatchResult().fail("noop_with_empty_axes is already written out")
    return True


def _reduce_mean_explicit(op, x, axes, mean, **_):
    keepdims = mean.producer().attributes.get_int("keepdims", 1)
    return op.ReduceMean(x, axes, keepdims=keepdims, noop_with_empty_axes=0)


# ReduceMean(x, axes) -> ReduceMean(x, axes, noop_with_empty_axes=0)   its default, written out
reduce_mean_defaults = rule(
    "reduce-mean-defaults",
    "cleanup",
    "ReduceMean(x, axes) without noop_with_empty_axes  ->  the same with the default (0) written out",
    _reduce_mean_pattern,
    _reduce_mean_explicit,
    _reduce_mean_check,
)

RULES = [cast_identity, cast_cast, reshape_reshape, transpose_transpose, where_scalar, one_over, reduce_mean_defaults]
