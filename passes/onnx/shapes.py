"""Shapes: fold ``Shape(x)`` to a constant when x's shape is fully static.

Shape/Gather/Concat/Reshape chains computed at run time hide sizes from ORT's fusion matchers
(its SkipLayerNorm and Attention fusions check shapes). Once the Shape is a constant, ORT's own
constant folding removes the rest of the chain.

Legality: the value's shape is known and every dimension is an integer (not a symbol), so the
Shape output is the same for every input the model accepts. ``start``/``end`` are honoured with
ONNX's clamping of out-of-range and negative indices.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import MatchResult

from graphopt.passes.onnx._util import static_shape
from graphopt.formats.onnx.rules import rule


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
shape_of_static = rule("shape-static", "shapes", "Shape(x), x of fully static shape  ->  a constant", _pattern, _replacement, _check)

RULES = [shape_of_static]
