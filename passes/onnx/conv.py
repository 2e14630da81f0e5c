"""Conv: fold an inference BatchNormalization into the Conv before it.

``BatchNormalization(Conv(x, W, b), gamma, beta, mean, var)`` becomes ``Conv(x, W', b')`` with
``s = gamma / sqrt(var + eps)``, ``W' = W * s`` (per output channel) and ``b' = (b - mean) * s + beta``.

Legality: all of W, b, gamma, beta, mean, var are constants; BatchNormalization is in inference
form (one output, training_mode 0); W is float32 or float64 (the folded weights are computed in
float64 and rounded once, so they differ from the unfused computation by at most one rounding
per element, within verify's fp32 tolerance). Grouped and dilated convolutions are fine: the
scale is per output channel, which is W's first axis in every case.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import MatchResult

from graphopt.passes.onnx._util import constant
from graphopt.formats.onnx.rules import rule


def _pattern(op, x, w, b, gamma, beta, mean, var):
    conv = op.Conv(x, w, b, _allow_other_attributes=True, _outputs=["conv"])
    return op.BatchNormalization(conv, gamma, beta, mean, var, _allow_other_attributes=True, _outputs=["bn"])


def _pattern_no_bias(op, x, w, gamma, beta, mean, var):
    conv = op.Conv(x, w, _allow_other_attributes=True, _outputs=["conv"])
    return op.BatchNormalization(conv, gamma, beta, mean, var, _allow_other_attributes=True, _outputs=["bn"])


def _check(context, w, gamma, beta, mean, var, bn, b=None, **_):
    node = bn.producer()
    if node.attributes.get_int("training_mode", 0) != 0 or len(node.outputs) != 1:
        return MatchResult().fail("BatchNormalization is in training mode")
    params = [w, gamma, beta, mean, var] + ([b] if b is not None else [])
    if any(constant(p) is None for p in params):
        return MatchResult().fail("weights or statistics are not constants")
    if w.dtype not in (ir.DataType.FLOAT, ir.DataType.DOUBLE):
        return MatchResult().fail(f"weights are {w.dtype}")
    return True


def _replacement(op, x, w, gamma, beta, mean, var, conv, bn, b=None):
    eps = bn.producer().attributes.get_float("epsilon", 1e-5)
    weight = constant(w)
    scale = constant(gamma).astype(np.float64) / np.sqrt(constant(var).astype(np.float64) + eps)
    bias = constant(b).astype(np.float64) if b is not None else np.zeros_like(scale)
    new_w = (weight.astype(np.float64) * scale.reshape((-1,) + (1,) * (weight.ndim - 1))).astype(weight.dtype)
    new_b = ((bias - constant(mean)) * scale + constant(beta)).astype(weight.dtype)
    w_value = op.initializer(ir.tensor(new_w), name=f"{w.name}_bnfold")
    b_value = op.initializer(ir.tensor(new_b), name=f"{w.name}_bnfold_bias")
    attributes = {k: v for k, v in conv.producer().attributes.items()}
    return op.Conv(x, w_value, b_value, **attributes)


# BatchNormalization(Conv(x, W, b)) -> Conv(x, W*s, (b-mean)*s+beta)
conv_bn = rule("conv-bn", "conv", "BatchNormalization(Conv(x, W, b))  ->  Conv(x, W', b') with the scale and shift folded in", _pattern, _replacement, _check)
# BatchNormalization(Conv(x, W)) -> Conv(x, W*s, beta-mean*s)
conv_bn_no_bias = rule("conv-bn-nobias", "conv", "BatchNormalization(Conv(x, W)) (no bias)  ->  Conv(x, W', b') with the scale and shift folded in", _pattern_no_bias, _replacement, _check)

RULES = [conv_bn, conv_bn_no_bias]
