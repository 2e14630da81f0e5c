"""Rotary position embedding (RoPE, the rotate-half form of LLaMA, Qwen, Mistral) to ORT's
``com.microsoft::RotaryEmbedding``.

What torch 2.13's exporter writes for ``q * cos + rotate_half(q) * sin`` in transformers 5:

    freqs = Mul(Cast(Unsqueeze(positions, [0, 2]), float), inv_freq)    # [1, S, D/2]
    cos   = Unsqueeze(Cos(Concat(freqs, freqs, axis=-1)), [1])          # [1, 1, S, D]
    out   = Add(Mul(x, cos), Mul(Concat(Neg(Slice(x, D/2, D)), Slice(x, 0, D/2)), sin))

(x is [B, H, S, D] after the head transpose). onnxscript's RoPE fusion expects
``MatMul(inv_freq, positions)`` then a Transpose, which torch no longer writes, so no tool fused
rotary on this export; ORT has no RoPE fusion of its own. Each match is ~9 kernels per Q or K
per layer; the replacement is one RotaryEmbedding kernel, with the cos/sin tables computed once
per run from the same ``inv_freq`` (identical nodes at every site, merged by the loop's CSE).

Legality, checked: ``inv_freq`` is a constant 1-D float32 of D/2 values; x is float32 of rank 4
with a static last dimension D; the two Slices split the last axis exactly at D/2 with step 1;
cos and sin come from the same ``freqs``. The positions must be consecutive and equal for every
batch row, which ORT's 1-element ``position_ids`` form (start of the run) encodes; the check
accepts the two forms the exporter writes for them: ``Range(start, limit, 1)`` (prefill) and
``Add(arange constant from 0, offset)`` (a decode step). The tables are ``cos/sin(p * inv_freq)``
for p in [0, limit), the very float32 products the original computes (p < 2^24 is exact in float32), so
the only difference is the kernel's rounding of ``x*cos - x'*sin`` (float32 tolerance).

``rotary-position-ids`` takes the form optimum's exports (torch's legacy exporter, transformers 4)
write, where the positions are a ``position_ids`` input of the model, any value per token:

    inv   = Expand(inv_freq[1, D/2, 1], [B, D/2, 1])
    freqs = Transpose(MatMul(inv, Cast(Unsqueeze(position_ids, [1]), float)), [0, 2, 1])   # [B, S, D/2]
    cos   = Unsqueeze(Cos(Concat(freqs, freqs, axis=-1)), [1])

The replacement keeps those ``freqs`` and hands RotaryEmbedding a cos/sin table of one row per
token, ``Reshape(Cos(freqs), [B*S, D/2])``, with position ids 0..B*S-1 in [B, S]: the kernel reads
back exactly the cos and sin values the original multiplies by (no table length to guess, any
positions, padding included), so the only difference is the kernel's rounding of
``x*cos - x'*sin``. The rotate-half slice bounds may be computed from x's static head size
(``Shape(x)[3] / 2``, folded). Legality as above, plus: inv_freq is a constant float32 of
[1, D/2, 1]; position_ids is int64 [B, S] broadcast by Unsqueeze at axis 1.

Measured (``python -m bench.rule_effects``): alone, LLaMA prefill 0.971 [0.967, 0.976], decode
step 0.985 [0.980, 0.993]; leaving it out of the whole set costs 9% on prefill (all 0.946 [0.941,
0.949] vs all but rotary 1.032 [1.024, 1.042]) and 8% on the decode step (0.937 vs 1.021).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import MatchResult
from onnxscript.rewriter import pattern as orp

from graphopt.formats.onnx.rules import rule
from graphopt.passes.onnx._util import constant, folded


def _pattern(op, x, positions, unsqueeze_axes, inv_freq, head_axis, lo_start, lo_end, hi_start, hi_end, axes, steps):
    freqs = op.Mul(op.Cast(op.Unsqueeze(positions, unsqueeze_axes), to=ir.DataType.FLOAT), inv_freq)
    emb = op.Concat(freqs, freqs, axis=-1)
    cos = op.Unsqueeze(op.Cos(emb), head_axis)
    sin = op.Unsqueeze(op.Sin(emb), head_axis)
    low = op.Slice(x, lo_start, lo_end, axes, steps)
    high = op.Slice(x, hi_start, hi_end, axes, steps)
    rotated = op.Concat(op.Neg(high), low, axis=-1)
    return op.Add(op.Mul(x, cos), op.Mul(rotated, sin))


def _consecutive(positions: ir.Value):
    """(start, limit) values when ``positions`` is written as one of the consecutive forms, else None.

    Either ``Range(start, limit, 1)`` or ``Add(c, offset)`` with ``c`` the constant 0..S-1
    (then start = offset + 0 and limit = offset + S). Returned as ("range", node) or ("add", node).
    """
    node = positions.producer()
    if node is None:
        return None
    if node.op_type == "Range" and node.domain == "":
        delta = constant(node.inputs[2])
        if delta is not None and delta.size == 1 and int(delta.reshape(())) == 1:
            return "range", node
    if node.op_type == "Add" and node.domain == "":
        for i in (0, 1):
            arange = constant(node.inputs[i])
            other = node.inputs[1 - i]
            if (
                arange is not None
                and arange.ndim == 1
                and np.array_equal(arange, np.arange(arange.size))
                and other.shape is not None
                and other.shape.rank() <= 1
            ):
                return "add", node
    return None


def _check(
    context, x, positions, unsqueeze_axes, inv_freq, head_axis, lo_start, lo_end, hi_start, hi_end, axes, steps, **_
):
    freq = constant(inv_freq)
    if freq is None or freq.ndim != 1 or inv_freq.dtype != ir.DataType.FLOAT:
        return MatchResult().fail("inv_freq is not a constant 1-D float32")
    half = freq.size
    if x.dtype != ir.DataType.FLOAT or x.shape is None or x.shape.rank() != 4 or x.shape[3] != 2 * half:
        return MatchResult().fail(f"x must be float32 [B, H, S, {2 * half}], got {x.dtype} {x.shape}")
    if positions.shape is not None and positions.shape.rank() != 1:
        return MatchResult().fail("positions must be a 1-D sequence")
    if constant(unsqueeze_axes) is None or constant(unsqueeze_axes).tolist() != [0, 2]:
        return MatchResult().fail("positions are not broadcast as [1, S, 1]")
    if constant(head_axis) is None or constant(head_axis).tolist() != [1]:
        return MatchResult().fail("cos/sin are not broadcast over the head axis")
    bounds = [constant(v) for v in (lo_start, lo_end, hi_start, hi_end, axes, steps)]
    if any(b is None or b.size != 1 for b in bounds):
        return MatchResult().fail("the rotate-half slices are not constant")
    lo0, lo1, hi0, hi1, axis, step = (int(b.reshape(())) for b in bounds)
    if axis not in (-1, 3) or step != 1 or lo0 != 0 or lo1 != half or hi0 != half or hi1 < 2 * half:
        return MatchResult().fail("the slices are not the two halves of the last axis")
    form = _consecutive(positions)
    if form is None:
        return MatchResult().fail("positions are not a Range(start, limit, 1) or arange + offset")
    # Range and Add take one type for all inputs: one known int64 input and no other type will do.
    known = {v.dtype for v in form[1].inputs if v.dtype is not None}
    if known != {ir.DataType.INT64}:
        return MatchResult().fail("positions are not int64 (RotaryEmbedding's position_ids type)")
    return True


def _rotary(op, x, positions, inv_freq, **_):
    kind, node = _consecutive(positions)
    if kind == "range":
        start, limit = node.inputs[0], node.inputs[1]
    else:
        arange_index = 0 if constant(node.inputs[0]) is not None and constant(node.inputs[0]).ndim == 1 else 1
        offset = node.inputs[1 - arange_index]
        length = int(constant(node.inputs[arange_index]).size)
        start = offset
        limit = op.Add(offset, op.Constant(value=ir.tensor(np.array(length, np.int64))))
    start_1d = op.Reshape(start, op.Constant(value_ints=[1]))
    table = op.Range(
        op.Constant(value=ir.tensor(np.array(0, np.int64))),
        op.Reshape(limit, op.Constant(value=ir.tensor(np.zeros((0,), np.int64)))),
        op.Constant(value=ir.tensor(np.array(1, np.int64))),
    )
    angles = op.Mul(op.Unsqueeze(op.Cast(table, to=ir.DataType.FLOAT), op.Constant(value_ints=[1])), inv_freq)
    return op.RotaryEmbedding(x, start_1d, op.Cos(angles), op.Sin(angles), interleaved=0, _domain="com.microsoft")


rope = rule(
    "rotary",
    "rotary",
    "x * cos + rotate_half(x) * sin (RoPE)  ->  com.microsoft RotaryEmbedding",
    _pattern,
    _rotary,
    _check,
    commute=True,
    remove_nodes=False,
)


def _ids_pattern(
    op,
    x,
    inv_freq,
    expand_shape,
    position_ids,
    ids_axis,
    head_axis,
    lo_start,
    lo_end,
    hi_start,
    hi_end,
    axes,
    steps,
    hi_axes,
    hi_steps,
    sin_axis,
):
    positions = op.Cast(op.Unsqueeze(position_ids, ids_axis), to=ir.DataType.FLOAT)
    inv = orp.OrValue([op.Expand(inv_freq, expand_shape), inv_freq], tag_var="inv_form", tag_values=[0, 1])
    freqs = op.Transpose(op.MatMul(inv, positions), perm=[0, 2, 1], _outputs=["freqs"])
    emb = op.Concat(freqs, freqs, axis=-1)
    cos = op.Unsqueeze(op.Cos(emb), head_axis)
    sin = op.Unsqueeze(op.Sin(emb), sin_axis)
    low = op.Slice(x, lo_start, lo_end, axes, steps)
    high = op.Slice(x, hi_start, hi_end, hi_axes, hi_steps)  # the legacy exporter writes each slice its own constants
    rotated = op.Concat(op.Neg(high), low, axis=-1)
    return op.Add(op.Mul(x, cos), op.Mul(rotated, sin))


def _ids_check(context, x, inv_freq, position_ids, ids_axis, head_axis, sin_axis, **bindings):
    freq = constant(inv_freq)
    if freq is None or freq.ndim != 3 or freq.shape[0] != 1 or freq.shape[2] != 1 or freq.dtype != np.float32:
        return MatchResult().fail("inv_freq is not a constant float32 [1, D/2, 1]")
    half = freq.shape[1]
    if x.dtype != ir.DataType.FLOAT or x.shape is None or x.shape.rank() != 4 or x.shape[3] != 2 * half:
        return MatchResult().fail(f"x must be float32 [B, H, S, {2 * half}], got {x.dtype} {x.shape}")
    if position_ids.dtype != ir.DataType.INT64 or position_ids.shape is None or position_ids.shape.rank() != 2:
        return MatchResult().fail("position_ids is not int64 [B, S]")
    if _ints(ids_axis) != [1] or _ints(head_axis) != [1] or _ints(sin_axis) != [1]:
        return MatchResult().fail("positions or cos/sin are not broadcast as [B, 1, S] and [B, 1, S, D]")
    return _halves_problem(half, **bindings) or True


def _ints(value: ir.Value) -> list[int] | None:
    array = folded(value)
    return None if array is None else array.reshape(-1).tolist()


def _halves_problem(
    half: int, lo_start, lo_end, hi_start, hi_end, axes, steps, hi_axes, hi_steps, **_
) -> MatchResult | None:
    """A failed MatchResult unless the two slices are the halves of the last axis (bounds may be
    computed from static shapes), else None."""
    bounds = [_ints(v) for v in (lo_start, lo_end, hi_start, hi_end, axes, steps, hi_axes, hi_steps)]
    if any(b is None or len(b) != 1 for b in bounds):
        return MatchResult().fail("the rotate-half slices are not constant")
    lo0, lo1, hi0, hi1, axis, step, hi_axis, hi_step = (b[0] for b in bounds)
    if {axis, hi_axis} - {-1, 3} or {step, hi_step} != {1} or lo0 != 0 or lo1 != half or hi0 != half or hi1 < 2 * half:
        return MatchResult().fail("the slices are not the two halves of the last axis")
    return None


def _ids_rotary(op, x, position_ids, freqs, **_):
    half = op.Constant(value_ints=[-1, freqs.shape[2]])
    rows = op.Range(
        op.Constant(value=ir.tensor(np.array(0, np.int64))),
        op.Size(position_ids),
        op.Constant(value=ir.tensor(np.array(1, np.int64))),
    )
    per_token = op.Reshape(rows, op.Shape(position_ids))
    cos, sin = op.Reshape(op.Cos(freqs), half), op.Reshape(op.Sin(freqs), half)
    return op.RotaryEmbedding(x, per_token, cos, sin, interleaved=0, _domain="com.microsoft")


rope_position_ids = rule(
    "rotary-position-ids",
    "rotary",
    "x * cos + rotate_half(x) * sin with cos/sin from a position_ids input (optimum)  ->  com.microsoft "
    "RotaryEmbedding",
    _ids_pattern,
    _ids_rotary,
    _ids_check,
    commute=True,
    remove_nodes=False,
)

RULES = [rope, rope_position_ids]
