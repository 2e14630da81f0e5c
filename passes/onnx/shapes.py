"""Shapes: fold ``Shape(x)`` to a constant when x's shape is fully static.

Shape/Gather/Concat/Reshape chains computed at run time hide sizes from ORT's fusion matchers
(its SkipLayerNorm and Attention fusions check shapes). Once the Shape is a constant, ORT's own
constant folding removes the rest of the chain.

Legality: the value's shape is known and every dimension is an integer (not a symbol), so the
Shape output is the same for every input the model accepts. With a dynamic batch, the Shape
stays but ``Gather(Shape(x), i)`` reading only integer dimensions (tf2onnx's Einsum lowering
reads the head and width dimensions this way) is the constant they hold. ``start``/``end`` are honoured with
ONNX's clamping of out-of-range and negative indices.

``reshape-copy-dims``: a Reshape whose target is assembled at run time from the sizes of tensors
(``Concat(Unsqueeze(Gather(Shape(h), 0)), Unsqueeze(Gather(Shape(h), 1)), [8], [64])``: the
legacy exporter's head split and merge, four to eight kernels per Reshape) gets a constant target
instead, with 0 ("copy this dimension of the input", allowzero=0) where the entry is the input's
own dimension at that position, and the integer where it is static. Legal when every entry is
one of those: a piece of the Concat that is a constant, or a dimension ``Gather(Shape(v), i)``
(through Unsqueeze) that shape inference shows is the input's dimension at the same position
(the same symbol, or the same integer). No -1 is introduced (it cannot be resolved for an empty
tensor).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import MatchResult

from graphopt.formats.onnx.rules import rule
from graphopt.passes.onnx._util import constant, same_dim, static_shape


def _pattern(op, x):
    return op.Shape(x, _allow_other_attributes=True, _outputs=["shape"])


def _check(context, x, shape, **_):
    if static_shape(x) is None:
        return MatchResult().fail(f"shape {x.shape} is not static")
    return True


def _replacement(op, x, shape):
    dims = static_shape(x)
    node = shape.producer()
    start = node.attributes.get_int("start", 0)
    end = node.attributes.get_int("end", len(dims))
    return op.Constant(value=ir.tensor(np.asarray(dims[slice(start, end)], dtype=np.int64)))


# Shape(x) -> Constant(shape of x)   when x's shape is static
shape_of_static = rule(
    "shape-static", "shapes", "Shape(x), x of fully static shape  ->  a constant", _pattern, _replacement, _check
)


def _gather_pattern(op, x, indices):
    size = op.Shape(x, _allow_other_attributes=True, _outputs=["shape"])
    return op.Gather(size, indices, _allow_other_attributes=True, _outputs=["picked"])


def _picked_dims(x, shape, indices, picked):
    """The dimensions ``Gather(Shape(x), indices)`` reads, as an array shaped like the indices,
    or None when an index is not constant or a dimension it reads is not an integer."""
    positions = constant(indices)
    if x.shape is None or positions is None or picked.producer().attributes.get_int("axis", 0) != 0:
        return None
    node = shape.producer()
    dims = list(x.shape)[slice(node.attributes.get_int("start", 0), node.attributes.get_int("end", len(x.shape)))]
    if ((positions < -len(dims)) | (positions >= len(dims))).any():
        return None
    chosen = [dims[int(i)] for i in positions.reshape(-1)]
    if not all(isinstance(d, int) for d in chosen):
        return None
    return np.asarray(chosen, dtype=np.int64).reshape(positions.shape)


def _gather_check(context, x, indices, shape, picked, **_):
    if _picked_dims(x, shape, indices, picked) is None:
        return MatchResult().fail(
            f"the dimensions read from {x.shape} are not all integers (or the indices are not constant)"
        )
    return True


# Gather(Shape(x), i) -> Constant   when the dimensions at i are integers (others may be symbolic)
shape_gather_static = rule(
    "shape-gather-static",
    "shapes",
    "Gather(Shape(x), i) where x's dimensions at i are integers (a dynamic batch elsewhere)  ->  a constant",
    _gather_pattern,
    lambda op, x, indices, shape, picked: op.Constant(value=ir.tensor(_picked_dims(x, shape, indices, picked))),
    _gather_check,
    remove_nodes=False,
)


def _reshape_pattern(op, x, target):
    return op.Reshape(x, target, _allow_other_attributes=True, _outputs=["reshaped"])


def _copy_dims_check(context, x, target, reshaped, **_):
    if reshaped.producer().attributes.get_int("allowzero", 0) != 0:
        return MatchResult().fail("allowzero=1: a 0 would mean an empty dimension")
    if constant(target) is not None:
        return MatchResult().fail("the target is already a constant")
    if _copied_target(x, target) is None:
        return MatchResult().fail("an entry of the target is neither constant nor the input's own dimension")
    return True


def _copied_target(x: ir.Value, target: ir.Value) -> list[int] | None:
    """The target with each entry the constant it holds, or 0 where it is x's dimension at the
    same position; None when an entry is neither (or x's shape is unknown)."""
    node = target.producer()
    if x.shape is None or node is None or node.op_type != "Concat" or node.attributes.get_int("axis", 0) != 0:
        return None
    entries: list[int] = []
    for piece in node.inputs:
        values = constant(piece)
        if values is not None:
            entries += [int(v) for v in values.reshape(-1)]
            continue
        dim = _shape_dimension(piece)
        position = len(entries)
        if dim is None or position >= x.shape.rank() or not same_dim(dim, x.shape[position]):
            return None
        entries.append(dim if isinstance(dim, int) else 0)
    return entries


def _shape_dimension(piece: ir.Value):
    """The dimension ``Unsqueeze(Gather(Shape(v), i), [0])`` (or a 1-element Gather) reads, as
    shape inference knows it (an int or a SymbolicDim); None for anything else."""
    node = piece.producer()
    if node is not None and node.op_type == "Unsqueeze":
        axes = constant(node.inputs[1]) if len(node.inputs) > 1 else None
        if axes is None or axes.reshape(-1).tolist() != [0]:
            return None
        node = node.inputs[0].producer()
    if node is None or node.op_type != "Gather" or node.attributes.get_int("axis", 0) != 0:
        return None
    index, shape_node = constant(node.inputs[1]), node.inputs[0].producer()
    if index is None or index.size != 1 or shape_node is None or shape_node.op_type != "Shape":
        return None
    source = shape_node.inputs[0]
    start = shape_node.attributes.get_int("start", 0)
    if source.shape is None or shape_node.attributes.get_int("end", None) is not None or start < 0:
        return None
    i = start + int(index.reshape(-1)[0])
    return source.shape[i] if 0 <= i < source.shape.rank() else None


# Reshape(x, Concat(dims of x and constants)) -> Reshape(x, constant with 0 for x's own dims)
reshape_copy_dims = rule(
    "reshape-copy-dims",
    "shapes",
    "Reshape(x, Concat(sizes read off tensors, constants)) where each size is x's own dimension at its position"
    "  ->  Reshape(x, constant) with 0 for those",
    _reshape_pattern,
    lambda op, x, target, reshaped: op.Reshape(
        x, op.Constant(value=ir.tensor(np.asarray(_copied_target(x, target), np.int64)))
    ),
    _copy_dims_check,
)

RULES = [shape_of_static, shape_gather_static, reshape_copy_dims]
