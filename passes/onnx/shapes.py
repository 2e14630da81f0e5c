"""Shapes: fold ``Shape(x)`` to a constant when x's shape is fully static.

Shape/Gather/Concat/Reshape chains computed at run time hide sizes from ORT's fusion matchers
(its SkipLayerNorm and Attention fusions check shapes). Once the Shape is a constant, ORT's own
constant folding removes the rest of the chain.

Legality: the value's shape is known and every dimension is an integer (not a symbol), so the
Shape output is the same for every input the model accepts. With a dynamic batch, the Shape
stays but ``Gather(Shape(x), i)`` reading only integer dimensions (tf2onnx's Einsum lowering
reads the head and width dimensions this way) is the constant they hold. ``start``/``end`` are honoured with
ONNX's clamping of out-of-range and negative indices.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import MatchResult

from graphopt.formats.onnx.rules import rule
from graphopt.passes.onnx._util import constant, static_shape


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

RULES = [shape_of_static, shape_gather_static]
