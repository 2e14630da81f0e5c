"""Channels: a Slice of a convolution's output channels becomes a convolution of those channels.

YOLOv8's C2f block (and CSP blocks generally) runs one 1x1 Conv-BN-SiLU and then ``chunk``s its
output in two along the channels; torch writes each half as a Slice (or a Split). ORT's NCHWc
transformer keeps convolutions in its blocked layout but not Slice or Split, so every such block
leaves the blocked layout (ReorderOutput) and re-enters it after the Concat (ReorderInput). With
the Conv's weights cut along the output channels, each half is a Conv (and its activation) of
its own, and the block stays in the blocked layout; the FLOPs are the same.

``Slice(f(Conv(x, W, b)), [lo:hi] on axis 1) -> f(Conv(x, W[lo:hi], b[lo:hi]))`` with f the
identity, SiLU written as ``c * Sigmoid(c)``, or Relu.

Legality: W (and b) constant; the Slice's bounds, axis and step fold to constants, the axis is 1
(output channels), the step 1 and the bounds inside the channel count; a grouped Conv only when
the bounds fall on group boundaries (then the sliced groups are whole: W's rows for them, and
``group`` scaled down). Each output channel of a Conv is computed from x and its own filter
only, so the sliced Conv gives exactly those channels (the reduction order inside a channel is
the same), and f is elementwise. The original Conv stays while anything else reads it.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import MatchResult

from graphopt.formats.onnx.rules import rule
from graphopt.passes.onnx._util import constant
from graphopt.passes.onnx.noops import slice_parameters

FAMILY = "channels"


def _activated(op, value, activation: str):
    """f(value) for the activations the rule carries over: SiLU as torch writes it, Relu, none."""
    if activation == "silu":
        return op.Mul(value, op.Sigmoid(value))
    return op.Relu(value) if activation == "relu" else value


def _pattern(activation: str, with_bias: bool):
    def with_b(op, x, w, b, starts, ends):
        conv = op.Conv(x, w, b, _allow_other_attributes=True, _outputs=["conv"])
        return op.Slice(_activated(op, conv, activation), starts, ends, _allow_other_inputs=True, _outputs=["sliced"])

    def without_b(op, x, w, starts, ends):
        conv = op.Conv(x, w, _allow_other_attributes=True, _outputs=["conv"])
        return op.Slice(_activated(op, conv, activation), starts, ends, _allow_other_inputs=True, _outputs=["sliced"])

    return with_b if with_bias else without_b


def _channel_range(sliced: ir.Value, weights: np.ndarray) -> tuple[int, int] | None:
    """The [lo, hi) of output channels the Slice keeps, or None when it is not a plain channel cut
    (the Conv's output has the weights' rank)."""
    channels = weights.shape[0]
    parameters = slice_parameters(sliced.producer(), weights.ndim)
    if parameters is None:
        return None
    starts, ends, axes, steps = parameters
    if axes.tolist() != [1] or steps.tolist() != [1]:
        return None
    lo, hi = (int(v) + channels if int(v) < 0 else int(v) for v in (starts[0], ends[0]))
    lo, hi = min(max(lo, 0), channels), min(max(hi, 0), channels)
    return (lo, hi) if lo < hi and (lo, hi) != (0, channels) else None


def _check(context, x, w, conv, sliced, b=None, **_):
    weights = constant(w)
    if weights is None or (b is not None and constant(b) is None):
        return MatchResult().fail("the Conv's weights or bias are not constants")
    cut = _channel_range(sliced, weights)
    if cut is None:
        return MatchResult().fail("the Slice is not a constant cut of the output channels (axis 1, step 1)")
    group = conv.producer().attributes.get_int("group", 1)
    per_group = weights.shape[0] // group
    if group > 1 and (cut[0] % per_group or cut[1] % per_group):
        return MatchResult().fail(f"the cut {cut} splits a group of {per_group} channels")
    return True


def _replacement(activation: str):
    def replace(op, x, w, conv, sliced, b=None, **_):
        weights = constant(w)
        lo, hi = _channel_range(sliced, weights)
        attributes = {k: v for k, v in conv.producer().attributes.items()}
        group = attributes.pop("group", None)
        group = group.as_int() if group is not None else 1
        if group > 1:
            attributes["group"] = (hi - lo) // (weights.shape[0] // group)
        source = x if group == 1 else _group_inputs(op, x, lo, hi, weights, group)
        inputs = [source, op.initializer(ir.tensor(np.ascontiguousarray(weights[lo:hi])), name=f"{w.name}_cut")]
        if b is not None:
            inputs.append(op.initializer(ir.tensor(np.ascontiguousarray(constant(b)[lo:hi])), name=f"{b.name}_cut"))
        return _activated(op, op.Conv(*inputs, **attributes), activation)

    return replace


def _group_inputs(op, x, lo, hi, weights, group):
    """The input channels the sliced groups read (a grouped Conv's group g reads its own slice)."""
    per_out, per_in = weights.shape[0] // group, weights.shape[1]
    first, last = lo // per_out, hi // per_out
    return op.Slice(
        x,
        op.Constant(value_ints=[first * per_in]),
        op.Constant(value_ints=[last * per_in]),
        op.Constant(value_ints=[1]),
    )


_SPELLINGS = [(a, bias) for a in ("silu", "relu", "none") for bias in (True, False)]
SLICE_CONV = rule(
    "slice-conv",
    FAMILY,
    "Slice(f(Conv(x, W, b))) of output channels, f identity/SiLU/Relu  ->  f(Conv(x, W[lo:hi], b[lo:hi]))",
    [_pattern(a, bias) for a, bias in _SPELLINGS],
    [_replacement(a) for a, _ in _SPELLINGS],
    _check,
    remove_nodes=False,
)

RULES = [SLICE_CONV]
