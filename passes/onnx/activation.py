"""Activations written as Max/Min to the ops ORT fuses into the Conv (or Gemm) before them.

ORT's ConvActivationFusion (and its NCHWc transformer) fuses Conv with Relu, Clip, Sigmoid,
Tanh, LeakyRelu and HardSigmoid, by op type. torch 2.13's exporter writes ``x.clamp(min=0)`` /
``torch.clamp_min(x, 0)`` as ``Max(x, 0)`` and ``torch.minimum(torch.maximum(x, a), b)`` as
``Min(Max(x, a), b)``, so a network written that way runs an unfused Conv plus an elementwise
kernel per layer. These rules restore the op ORT matches:

- ``max-relu``: ``Max(x, 0)`` -> ``Relu(x)``;
- ``min-max-clip``: ``Min(Max(x, lo), hi)`` -> ``Clip(x, lo, hi)`` (and ``Max(Min(x, hi), lo)``).

Legality: the bound is a constant with one element of x's float type and no more dimensions
than x (so broadcasting does not change the output's shape); for Clip, lo <= hi (Min(Max) and
Max(Min) then agree with Clip everywhere). NaN propagates in Max, Min, Relu and Clip alike on
ORT's CPU kernels. The one difference is the sign of zero: Max(-0.0, 0) is +0.0 while Relu(-0.0)
is -0.0 (as torch's clamp gives); they compare equal, and only a later division by the result
could tell them apart.

Measured (``python -m bench``, results/2026-11-22-vm-full-gqa): ResNet-50 with its ReLUs written
as ``x.clamp(min=0)`` (zoo ``resnet50-clamp``) runs at 0.820 [0.810, 0.825] of the original under
ORT ENABLE_ALL, i.e. as fast as the ReLU-written export, which ORT already fuses by itself.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import MatchResult

from graphopt.formats.onnx.rules import rule
from graphopt.passes.onnx._util import FLOAT_TYPES, constant, rank

FAMILY = "activation"


def _bound(value: ir.Value, x: ir.Value) -> float | None:
    """The bound's single value when it is a legal scalar-like constant for ``x``, else None."""
    array = constant(value)
    x_rank = rank(x)
    if array is None or array.size != 1 or value.dtype != x.dtype or x_rank is None or array.ndim > x_rank:
        return None
    return float(array.reshape(()))


def _max_pattern(op, x, zero):
    return op.Max(x, zero)


def _max_check(context, x, zero, **_):
    if x.dtype not in FLOAT_TYPES:
        return MatchResult().fail(f"x is {x.dtype}, not a float type")
    if _bound(zero, x) != 0.0:
        return MatchResult().fail("the other operand is not a constant 0 of x's type and rank")
    return True


def _relu(op, x, **_):
    return op.Relu(x)


def _min_max_pattern(op, x, lo, hi):
    return op.Min(op.Max(x, lo), hi)


def _max_min_pattern(op, x, lo, hi):
    return op.Max(op.Min(x, hi), lo)


def _clip_check(context, x, lo, hi, **_):
    if x.dtype not in FLOAT_TYPES:
        return MatchResult().fail(f"x is {x.dtype}, not a float type")
    low, high = _bound(lo, x), _bound(hi, x)
    if low is None or high is None:
        return MatchResult().fail("the bounds are not constants of x's type with one element")
    if not low <= high:
        return MatchResult().fail(f"lower bound {low} above upper bound {high}: not a Clip")
    return True


def _clip(op, x, lo, hi, **_):
    dtype = x.dtype.numpy()
    low = op.Constant(value=ir.tensor(np.array(constant(lo).reshape(()), dtype)))
    high = op.Constant(value=ir.tensor(np.array(constant(hi).reshape(()), dtype)))
    return op.Clip(x, low, high)


max_relu = rule("max-relu", FAMILY, "Max(x, 0) -> Relu(x)\n\n" + __doc__, _max_pattern, _relu, _max_check, commute=True)
min_max_clip = rule(
    "min-max-clip",
    FAMILY,
    "Min(Max(x, lo), hi) -> Clip(x, lo, hi)\n\n" + __doc__,
    _min_max_pattern,
    _clip,
    _clip_check,
    commute=True,
)
max_min_clip = rule(
    "max-min-clip",
    FAMILY,
    "Max(Min(x, hi), lo) -> Clip(x, lo, hi)\n\n" + __doc__,
    _max_min_pattern,
    _clip,
    _clip_check,
    commute=True,
)

# Clip first: max-relu would otherwise take the inner Max(x, 0) of a ReLU6 and leave Min(Relu, 6).
RULES = [min_max_clip, max_min_clip, max_relu]
