"""Masks: the index grids transformers' mask functions build, read back as the tensor they index.

transformers 5 builds the padding part of an attention mask as ``mask[b, k]`` looked up through a
full index grid, and torch's exporter writes that literally:

    b_idx = Unsqueeze(Range(0, B, 1), ...)            # [B, 1, 1, 1]
    k_idx = Unsqueeze(Range(0, S, 1), ...)            # [1, 1, 1, S]
    grid  = Shape(Max(b_idx, k_idx))                  # [B, 1, 1, S]
    out   = GatherND(mask, Concat(Unsqueeze(Expand(b_idx, grid), -1),
                                  Unsqueeze(Expand(k_idx, grid), -1), axis=-1))

That is ``mask[:B, :S]`` with ones inserted between the two axes: ``Unsqueeze(Slice(mask, 0:B,
0:S), [1, 2])``. The grid costs ~9 kernels per model that ORT cannot fold (the sizes are dynamic);
on a 2-layer BERT at sequence 16 that is several percent of the run.

Legality, checked: ``mask`` is 2-D; each index is a ``Range(0, n, 1)`` (start 0 and step 1 are
constants) raised to the same rank R by Unsqueezes with constant axes, with its values along one
axis (the batch index's axis before the key index's); the Expand shape is ``Shape(Max(b_idx,
k_idx))`` of those very two values; ``batch_dims`` is 0. Then ``out[.., i, .., j, ..] = mask[i,
j]`` for i < B, j < S, exactly (a copy, no arithmetic). Where the original would fail (an index past
the mask's size) the Slice clamps instead; no input on which the original runs is affected.

Measured (``python -m bench.rule_effects``, bench/results/rule-effects.md): alone, 2-layer BERT
0.973 [0.961, 0.989] (91 -> 81 ORT kernels); on the whole rule set there, leaving it out costs 4%
(all 0.735 [0.718, 0.752] vs all but masks 0.765 [0.754, 0.775]). On MiniLM, DistilBERT and the
LLaMA-style decoder it saves 10 kernels but its effect is within the noise (0.996-1.007 alone).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import MatchResult

from graphopt.formats.onnx.rules import rule
from graphopt.passes.onnx._util import constant


def _pattern(op, mask, b_idx, k_idx, shape_b, shape_k, last_b, last_k):
    b = op.Unsqueeze(op.Expand(b_idx, shape_b), last_b)
    k = op.Unsqueeze(op.Expand(k_idx, shape_k), last_k)
    return op.GatherND(mask, op.Concat(b, k, axis=-1), _outputs=["gathered"])


def _arange_axis(value: ir.Value) -> tuple[ir.Node, int, int] | None:
    """(the Range node, the axis its values lie along, the rank) for Unsqueeze*(Range(0, n, 1))."""
    unsqueezes = []
    node = value.producer()
    while node is not None and node.op_type == "Unsqueeze" and node.domain == "":
        axes = constant(node.inputs[1])
        if axes is None:
            return None
        unsqueezes.append(axes.reshape(-1).tolist())
        node = node.inputs[0].producer()
    if node is None or node.op_type != "Range" or node.domain != "":
        return None
    start, delta = constant(node.inputs[0]), constant(node.inputs[2])
    if (
        start is None
        or delta is None
        or start.size != 1
        or delta.size != 1
        or int(start.reshape(())) != 0
        or int(delta.reshape(())) != 1
    ):
        return None
    axis, rank = 0, 1
    for axes in reversed(unsqueezes):  # innermost first
        rank += len(axes)
        inserted = sorted(a % rank for a in axes)
        for a in inserted:
            if a <= axis:
                axis += 1
    return node, axis, rank


def _is_grid_shape(shape: ir.Value, b_idx: ir.Value, k_idx: ir.Value) -> bool:
    node = shape.producer()
    if node is None or node.op_type != "Shape" or node.domain != "" or node.attributes.get("end") is not None:
        return False
    if node.attributes.get("start") is not None and node.attributes["start"].value != 0:
        return False
    broadcast = node.inputs[0].producer()
    return broadcast is not None and broadcast.op_type == "Max" and set(broadcast.inputs) == {b_idx, k_idx}


def _check(context, mask, b_idx, k_idx, shape_b, shape_k, last_b, last_k, gathered, **_):
    if mask.shape is None or mask.shape.rank() != 2:
        return MatchResult().fail("the gathered tensor is not 2-D")
    if gathered.producer().attributes.get_int("batch_dims", 0) != 0:
        return MatchResult().fail("batch_dims is not 0")
    b, k = _arange_axis(b_idx), _arange_axis(k_idx)
    if b is None or k is None:
        return MatchResult().fail("an index is not Unsqueeze*(Range(0, n, 1))")
    if b[2] != k[2] or not b[1] < k[1]:
        return MatchResult().fail("the indices are not one grid with the batch axis first")
    for last in (last_b, last_k):
        axes = constant(last)
        if axes is None or axes.reshape(-1).tolist() not in ([-1], [b[2]]):
            return MatchResult().fail("the index pairs are not stacked on a new last axis")
    if not (_is_grid_shape(shape_b, b_idx, k_idx) and _is_grid_shape(shape_k, b_idx, k_idx)):
        return MatchResult().fail("the Expand shape is not the grid of the two indices")
    return True


def _length_1d(op, n: ir.Value):
    """n as a 1-element tensor, reusing the Shape slice it was squeezed from when there is one."""
    producer = n.producer()
    if (
        producer is not None
        and producer.op_type == "Squeeze"
        and producer.inputs[0].shape is not None
        and list(producer.inputs[0].shape) == [1]
    ):
        return producer.inputs[0]
    return op.Reshape(n, op.Constant(value_ints=[1]))


def _slice(op, mask, b_idx, k_idx, **_):
    (b_range, b_axis, rank), (k_range, k_axis, _) = _arange_axis(b_idx), _arange_axis(k_idx)
    ends = op.Concat(_length_1d(op, b_range.inputs[1]), _length_1d(op, k_range.inputs[1]), axis=0)
    zeros = op.Constant(value=ir.tensor(np.array([0, 0], np.int64)))
    axes = op.Constant(value=ir.tensor(np.array([0, 1], np.int64)))
    window = op.Slice(mask, zeros, ends, axes)
    ones = [a for a in range(rank) if a not in (b_axis, k_axis)]
    return op.Unsqueeze(window, op.Constant(value=ir.tensor(np.array(ones, np.int64))))


grid_gather = rule(
    "mask-grid-gather",
    "masks",
    "GatherND over the Range/Expand index grid of a padding mask  ->  Unsqueeze(Slice(mask))",
    _pattern,
    _slice,
    _check,
    remove_nodes=False,
)

RULES = [grid_gather]
