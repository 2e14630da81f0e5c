"""Conv: fold an inference BatchNormalization into the Conv before it, and a zero Pad into the
Conv after it.

``BatchNormalization(Conv(x, W, b), gamma, beta, mean, var)`` becomes ``Conv(x, W', b')`` with
``s = gamma / sqrt(var + eps)``, ``W' = W * s`` (per output channel) and ``b' = (b - mean) * s + beta``.

Legality: all of W, b, gamma, beta, mean, var are constants; BatchNormalization is in inference
form (one output, training_mode 0); W is float32 or float64 (the folded weights are computed in
float64 and rounded once, so they differ from the unfused computation by at most one rounding
per element, within verify's fp32 tolerance). Grouped and dilated convolutions are fine: the
scale is per output channel, which is W's first axis in every case.

``Conv(Pad(x, pads), W[, b])`` becomes ``Conv(x, W[, b], pads=conv_pads + pads)``. Exporters
write TF-style "same" padding as an explicit Pad whose pads are computed at run time from
constants (ConstantOfShape, Concat, Slice, Transpose, Cast: torch's legacy exporter on
EfficientNet and MobileNet); ORT then keeps the Pad, and with it a layout change out of and
back into its blocked NCHWc layout around every such Conv. Legality: mode ``constant`` with
value 0 (or absent) and no ``axes``; the pads fold to constants, are non-negative, and are zero
on the batch and channel dims; the Conv's ``auto_pad`` is NOTSET or VALID (no padding of its
own). Zero padding then a Conv is the Conv with larger zero padding exactly: the padded
positions contribute zero products.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import MatchResult

from graphopt.formats.onnx.rules import rule
from graphopt.passes.onnx._util import constant, folded


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
conv_bn = rule(
    "conv-bn",
    "conv",
    "BatchNormalization(Conv(x, W, b))  ->  Conv(x, W', b') with the scale and shift folded in",
    _pattern,
    _replacement,
    _check,
)
# BatchNormalization(Conv(x, W)) -> Conv(x, W*s, beta-mean*s)
conv_bn_no_bias = rule(
    "conv-bn-nobias",
    "conv",
    "BatchNormalization(Conv(x, W)) (no bias)  ->  Conv(x, W', b') with the scale and shift folded in",
    _pattern_no_bias,
    _replacement,
    _check,
)


def _pad_pattern(op, x, pads, w):
    padded = op.Pad(x, pads, _allow_other_attributes=True, _outputs=["padded"])
    return op.Conv(padded, w, _allow_other_attributes=True, _outputs=["conv"])


def _pad_pattern_bias(op, x, pads, w, b):
    padded = op.Pad(x, pads, _allow_other_attributes=True, _outputs=["padded"])
    return op.Conv(padded, w, b, _allow_other_attributes=True, _outputs=["conv"])


def _pad_value_pattern(op, x, pads, value, w):
    padded = op.Pad(x, pads, value, _allow_other_attributes=True, _outputs=["padded"])
    return op.Conv(padded, w, _allow_other_attributes=True, _outputs=["conv"])


def _pad_value_pattern_bias(op, x, pads, value, w, b):
    padded = op.Pad(x, pads, value, _allow_other_attributes=True, _outputs=["padded"])
    return op.Conv(padded, w, b, _allow_other_attributes=True, _outputs=["conv"])


def _pad_check(context, x, pads, padded, conv, value=None, **_):
    pad_node, conv_node = padded.producer(), conv.producer()
    if pad_node.attributes.get_string("mode", "constant") != "constant":
        return MatchResult().fail("the Pad is not a constant (zero) pad")
    fill = folded(value) if value is not None else np.zeros(())
    if fill is None or fill.size != 1 or float(fill.reshape(())) != 0.0:
        return MatchResult().fail("the Pad's value is not a constant 0")
    if conv_node.attributes.get_string("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return MatchResult().fail("the Conv pads automatically (auto_pad SAME_*)")
    amounts = folded(pads)
    if amounts is None:
        return MatchResult().fail("the pads are computed from inputs")
    amounts = amounts.astype(np.int64).reshape(-1)
    half = amounts.size // 2
    if half < 3 or (amounts < 0).any() or amounts[[0, 1, half, half + 1]].any():
        return MatchResult().fail(f"pads {amounts.tolist()} are negative or touch the batch or channel dims")
    return True


def _pad_replacement(op, x, pads, w, padded, conv, b=None, value=None):
    amounts = folded(pads).astype(np.int64).reshape(-1)
    half = amounts.size // 2
    begins, ends = amounts[2:half], amounts[half + 2 :]
    attributes = {
        k: v for k, v in conv.producer().attributes.items() if k != "auto_pad"
    }  # VALID: no padding of its own
    old = attributes.pop("pads", None)
    current = np.asarray(old.value if old is not None else [0] * (2 * len(begins)), dtype=np.int64)
    merged = np.concatenate([current[: len(begins)] + begins, current[len(begins) :] + ends])
    inputs = (x, w) if b is None else (x, w, b)
    return op.Conv(*inputs, pads=[int(p) for p in merged], **attributes)


_PAD_DOC = "Conv(Pad(x, pads) with zeros)  ->  Conv(x, pads=conv_pads + pads) (pads folded from constants)"
pad_conv = rule("pad-conv", "conv", _PAD_DOC, _pad_pattern, _pad_replacement, _pad_check)
pad_conv_bias = rule(
    "pad-conv-bias", "conv", _PAD_DOC + " (with bias)", _pad_pattern_bias, _pad_replacement, _pad_check
)
pad_value_conv = rule(
    "pad-value-conv", "conv", _PAD_DOC + " (explicit 0 value)", _pad_value_pattern, _pad_replacement, _pad_check
)
pad_value_conv_bias = rule(
    "pad-value-conv-bias",
    "conv",
    _PAD_DOC + " (explicit 0 value, with bias)",
    _pad_value_pattern_bias,
    _pad_replacement,
    _pad_check,
)


# The quantized form (onnxruntime.quantization, QDQ): the Pad sits between a DequantizeLinear and
# the QuantizeLinear/DequantizeLinear pair in front of the Conv. Quantizing a padded 0 gives the
# zero point, which the pair's DequantizeLinear turns back into exactly 0 when both use the same
# zero point: the Conv's own zero padding is the same. Then the pair takes x unpadded.
def _qdq_pattern(op, x, pads, value, scale, zero, scale2, zero2, w, b):
    padded = op.Pad(x, pads, value, _allow_other_attributes=True, _outputs=["padded"])
    quantized = op.QuantizeLinear(padded, scale, zero, _allow_other_attributes=True, _outputs=["quantized"])
    dequantized = op.DequantizeLinear(quantized, scale2, zero2, _allow_other_attributes=True, _outputs=["dequantized"])
    return op.Conv(dequantized, w, b, _allow_other_attributes=True, _outputs=["conv"])


def _qdq_check(context, x, pads, value, zero, zero2, padded, conv, **_):
    first, second = folded(zero), folded(zero2)
    if (
        first is None
        or second is None
        or first.size != 1
        or first.dtype != second.dtype
        or not np.array_equal(first, second)
    ):
        return MatchResult().fail("the quantize/dequantize pair does not share one constant zero point")
    return _pad_check(context, x, pads, padded, conv, value)


def _qdq_replacement(op, x, pads, value, scale, zero, scale2, zero2, w, b, padded, quantized, dequantized, conv):
    q_attributes = {k: v for k, v in quantized.producer().attributes.items()}
    dq_attributes = {k: v for k, v in dequantized.producer().attributes.items()}
    pair = op.DequantizeLinear(op.QuantizeLinear(x, scale, zero, **q_attributes), scale2, zero2, **dq_attributes)
    return _pad_replacement(op, pair, pads, w, padded, conv, b)


pad_qdq_conv = rule(
    "pad-qdq-conv",
    "conv",
    "Conv(DQ(Q(Pad(x) with zeros)))  ->  Conv(DQ(Q(x)), pads=conv_pads + pads) (int8 QDQ models)",
    _qdq_pattern,
    _qdq_replacement,
    _qdq_check,
)

RULES = [conv_bn, conv_bn_no_bias, pad_conv, pad_conv_bias, pad_value_conv, pad_value_conv_bias, pad_qdq_conv]
