"""LayerNorm as TensorFlow writes it, rewritten into the form ORT's LayerNormFusion matches.

Keras's LayerNormalization on the TensorFlow backend (and tf.nn.batch_normalization-style code)
computes ``scale = gamma / sqrt(var + eps)`` and then ``x * scale + (beta - mean * scale)``;
tf2onnx writes that as (the means as ``GlobalAveragePool`` over a rank-3 tensor, or
``ReduceMean`` over the last axis, and rsqrt as ``Reciprocal(Sqrt)``):

    mean  = Mean(x);  var = Mean((x - mean) * (x - mean))
    scale = Reciprocal(Sqrt(var + eps)) * gamma
    y     = x * scale + (Neg(mean) * scale + beta)        (or  beta - mean * scale)

ORT's LayerNormFusion only knows ``(x - mean) / sqrt(var + eps) * gamma + beta``, so a Keras
encoder keeps ~11 kernels per LayerNorm. This rule writes the canonical form (valid at any opset,
unlike a LayerNormalization node below opset 17), and ORT fuses it into one kernel.

Legality: the mean is over the last axis only (``GlobalAveragePool`` only on rank 3, where it
averages exactly that axis; ``ReduceMean`` with axes [-1] or [rank-1] and keepdims); both means
read the same x and the variance is of ``x - mean``; eps is a scalar constant; gamma and beta are
constants that vary along the last axis only. The two forms are equal in real arithmetic; in
float32 they differ by a few roundings per element (x * s - mean * s against (x - mean) * s),
within verify's tolerance. float32 only (ORT's fusion and the tolerance are for it).

``layer-norm-rsqrt``: LayerNorm written out with ``rsqrt`` (``(x - mean) * torch.rsqrt(var + eps)``,
exported as ``Mul(centred, Reciprocal(Sqrt(var + eps)))``) becomes the division both ORT's
LayerNormFusion and OpenVINO's MVN fusion match (OpenVINO otherwise runs the normalization as 4
kernels instead of 2). Legality: centred is ``x - ReduceMean(x)`` and var the mean of its square
(Mul by itself or Pow 2), both over the last axis alone; eps a scalar constant; any float type.
The variance is written as the mean of ``Pow(centred, 2)`` (ORT's fusion does not take ``Mul(d,
d)``). ``c * (1/s)`` and ``c / s`` are equal in real arithmetic and differ by at most a rounding or two
in floating point (within verify's tolerance); +-0, inf and NaN go the same way in both (``c *
inf`` and ``c / 0``; ``0 * inf`` and ``0 / 0`` are NaN).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import MatchResult

from graphopt.formats.onnx.rules import rule
from graphopt.passes.onnx._util import constant, opset, rank


def _mean(op, kind: str, x, name: str):
    if kind == "pool":
        return op.GlobalAveragePool(x, _outputs=[name])
    return op.ReduceMean(x, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=[name])


def _pattern(kind: str, shift: str):
    def pattern(op, x, eps, gamma, beta):
        mean = _mean(op, kind, x, "mean")
        centred = op.Sub(x, mean)
        var = _mean(op, kind, op.Mul(centred, centred), "var")
        scale = op.Mul(op.Reciprocal(op.Sqrt(op.Add(var, eps))), gamma)
        offset = op.Add(op.Mul(op.Neg(mean), scale), beta) if shift == "neg" else op.Sub(beta, op.Mul(mean, scale))
        return op.Add(op.Mul(x, scale), offset)

    return pattern


def _last_axis_mean(value: ir.Value, x_rank: int) -> bool:
    node = value.producer()
    if node.op_type == "GlobalAveragePool":
        return x_rank == 3
    axes = constant(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] is not None else None
    if axes is None and "axes" in node.attributes:
        axes = np.asarray(node.attributes["axes"].as_ints())
    keepdims = node.attributes.get_int("keepdims", 1)
    return axes is not None and keepdims == 1 and axes.reshape(-1).tolist() in ([-1], [x_rank - 1])


def _along_last_axis(value: ir.Value, x_rank: int) -> np.ndarray | None:
    array = constant(value)
    if array is None or array.ndim > x_rank or any(d != 1 for d in array.shape[:-1]):
        return None
    return array.reshape(-1)


def _check(context, x, eps, gamma, beta, mean, var, **_):
    x_rank = rank(x)
    if x.dtype != ir.DataType.FLOAT or x_rank is None:
        return MatchResult().fail(f"input is {x.dtype} of rank {x_rank}; float32 of known rank needed")
    if opset(x) < 13:
        return MatchResult().fail(
            f"opset {opset(x)} (a subgraph records none): the ReduceMean form to write is unknown"
        )
    if not (_last_axis_mean(mean, x_rank) and _last_axis_mean(var, x_rank)):
        return MatchResult().fail("a mean is not over the last axis alone")
    epsilon = constant(eps)
    if epsilon is None or epsilon.size != 1:
        return MatchResult().fail("epsilon is not a scalar constant")
    if _along_last_axis(gamma, x_rank) is None or _along_last_axis(beta, x_rank) is None:
        return MatchResult().fail("gamma or beta is not a constant along the last axis")
    return True


def _replacement(op, x, eps, gamma, beta, **_):
    x_rank = rank(x)
    mean = _canonical_mean(op, x, opset(x))
    centred = op.Sub(x, mean)
    variance = _canonical_mean(op, op.Pow(centred, op.Constant(value_float=2.0)), opset(x))
    normalized = op.Div(centred, op.Sqrt(op.Add(variance, op.Constant(value_float=float(constant(eps).reshape(()))))))
    gamma_flat = op.initializer(ir.tensor(_along_last_axis(gamma, x_rank).astype(np.float32)), name=f"{gamma.name}_ln")
    beta_flat = op.initializer(ir.tensor(_along_last_axis(beta, x_rank).astype(np.float32)), name=f"{beta.name}_ln")
    return op.Add(op.Mul(normalized, gamma_flat), beta_flat)


def _canonical_mean(op, value, opset: int):
    """ReduceMean over the last axis, in the form the model's opset takes (axes input from 18)."""
    if opset >= 18:
        return op.ReduceMean(value, op.Constant(value_ints=[-1]), keepdims=1)
    return op.ReduceMean(value, axes=[-1], keepdims=1)


# x * scale + (beta - mean * scale), scale = gamma / sqrt(var + eps)   ->   (x - mean) / sqrt(var + eps) * gamma + beta
LAYER_NORM_TF = rule(
    "layer-norm-tf",
    "layer-norm",
    "x * s + (beta - mean * s), s = gamma / sqrt(var + eps) (TensorFlow/Keras)  ->  "
    "the form ORT's LayerNormFusion takes",
    [_pattern(kind, shift) for kind in ("pool", "reduce") for shift in ("neg", "sub")],
    _replacement,
    _check,
)


# (x - mean) * Reciprocal(Sqrt(var + eps))  ->  (x - mean) / Sqrt(var + eps)
def _rsqrt_pattern(op, centred, var, eps):
    return op.Mul(centred, op.Reciprocal(op.Sqrt(op.Add(var, eps))))


def _check_rsqrt(context, centred, var, eps, **_):
    """``centred`` is ``x - ReduceMean(x)`` and ``var`` the mean of its square, both over the last axis."""
    sub, mean_of_square = centred.producer(), var.producer()
    if sub is None or sub.op_type != "Sub" or mean_of_square is None or mean_of_square.op_type != "ReduceMean":
        return MatchResult().fail("not (x - mean) scaled by the reciprocal of its standard deviation")
    x, mean = sub.inputs[0], sub.inputs[1]
    x_rank = rank(x)
    if x.dtype is None or not x.dtype.is_floating_point() or x_rank is None:
        return MatchResult().fail(f"input is {x.dtype} of rank {x_rank}; a float of known rank needed")
    if opset(x) < 13:
        return MatchResult().fail(
            f"opset {opset(x)} (a subgraph records none): the ReduceMean form to write is unknown"
        )
    if mean.producer() is None or mean.producer().op_type != "ReduceMean" or mean.producer().inputs[0] is not x:
        return MatchResult().fail("the subtracted value is not the mean of x")
    if not (_last_axis_mean(mean, x_rank) and _last_axis_mean(var, x_rank)):
        return MatchResult().fail("a mean is not over the last axis alone")
    if not _is_square_of(mean_of_square.inputs[0], centred):
        return MatchResult().fail("the variance is not the mean of (x - mean) squared")
    epsilon = constant(eps)
    if epsilon is None or epsilon.size != 1:
        return MatchResult().fail("epsilon is not a scalar constant")
    return True


def _is_square_of(value: ir.Value, base: ir.Value) -> bool:
    node = value.producer()
    if node is None:
        return False
    if node.op_type == "Mul":
        return node.inputs[0] is base and node.inputs[1] is base
    exponent = constant(node.inputs[1]) if node.op_type == "Pow" else None
    return exponent is not None and exponent.size == 1 and float(exponent.reshape(())) == 2.0 and node.inputs[0] is base


def _divided(op, centred, var, eps, **_):
    """The variance recomputed as the mean of Pow(centred, 2), the spelling ORT's fusion takes
    (the old one is left to the rewrite loop to remove once nothing reads it)."""
    x = centred.producer().inputs[0]
    variance = _canonical_mean(
        op, op.Pow(centred, op.Constant(value=ir.tensor(np.array(2.0, x.dtype.numpy())))), opset(x)
    )
    return op.Div(centred, op.Sqrt(op.Add(variance, eps)))


LAYER_NORM_RSQRT = rule(
    "layer-norm-rsqrt",
    "layer-norm",
    "(x - mean) * Reciprocal(Sqrt(var + eps)) (rsqrt written out)  ->  (x - mean) / Sqrt(var + eps), "
    "the form LayerNorm fusions match",
    _rsqrt_pattern,
    _divided,
    _check_rsqrt,
    commute=True,
)

RULES = [LAYER_NORM_TF, LAYER_NORM_RSQRT]
