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

RULES = [LAYER_NORM_TF]
