"""Scalar arithmetic on constants, folded; a select whose predicate is then known, resolved.

jax writes library guards as scalar arithmetic on constants: ``jnp.var``'s divisor is
``n - convert(ddof)`` and its result ``select(n - ddof > 0, sum / (n - ddof), nan)``. XLA folds
these; IREE 3.13 forms them into an elementwise dispatch of their own beside the reductions (a
jnp.var LayerNorm runs 2 reductions, an elementwise dispatch and a copy, with a fill at load).
Folded, the divisor is a constant and the select disappears, and the variance fuses into the
reduction that computes it. The rules are judged per target like every other.

    stablehlo.<op>(constants...) : tensor<T>   =>  stablehlo.constant  (rank 0: convert, add,
                                                    subtract, multiply, divide, compare)
    select(constant predicate, a, b)            =>  a or b               (a rank-0 predicate)

Legality: each folded op is evaluated by numpy on rank-0 arrays of the op's own element types;
IEEE add, subtract, multiply and divide are correctly rounded in numpy as in XLA and IREE, a
conversion between integer and float of a representable value is exact, and a comparison is
exact, so the constant equals what the op computes. A rank-0 predicate selects one whole operand,
so the select is that operand.
"""

from __future__ import annotations

import numpy as np

from graphopt.core.rules import NodeRule
from graphopt.formats.stablehlo.module import dtype
from graphopt.passes.stablehlo.erase import erase_if_dead

ARITHMETIC = {
    "stablehlo.add": np.add,
    "stablehlo.subtract": np.subtract,
    "stablehlo.multiply": np.multiply,
    "stablehlo.divide": np.divide,
}
COMPARISONS = {
    "EQ": np.equal,
    "NE": np.not_equal,
    "LT": np.less,
    "LE": np.less_equal,
    "GT": np.greater,
    "GE": np.greater_equal,
}


def _scalar_constant(value) -> np.ndarray | None:
    """The value of a rank-0 ``stablehlo.constant``, as a numpy array of its element type."""
    from jaxlib.mlir import ir

    owner = value.owner
    if not isinstance(owner, ir.OpView) or owner.name != "stablehlo.constant":
        return None
    tensor = ir.RankedTensorType(value.type)
    if tensor.rank != 0:
        return None
    attribute = ir.DenseElementsAttr(owner.attributes["value"])
    element = dtype(str(tensor.element_type))
    if element.kind not in "fiub":
        return None
    splat = attribute.get_splat_value()
    raw = splat.value if isinstance(splat, (ir.FloatAttr, ir.IntegerAttr)) else bool(ir.BoolAttr(splat).value)
    return np.asarray(raw, dtype=element)


def _folded(op) -> np.ndarray | None:
    """What ``op`` computes, when it is rank-0 arithmetic on rank-0 constants; else None."""
    from jaxlib.mlir import ir

    if len(op.results) != 1 or ir.RankedTensorType(op.result.type).rank != 0:
        return None
    values = [_scalar_constant(v) for v in op.operands]
    if not values or any(v is None for v in values):
        return None
    result = dtype(str(ir.RankedTensorType(op.result.type).element_type))
    with np.errstate(all="ignore"):  # a division by zero folds to what the op computes: inf or nan
        if op.name in ARITHMETIC:
            return np.asarray(ARITHMETIC[op.name](*values), dtype=result)
        if op.name == "stablehlo.convert":
            return np.asarray(values[0]).astype(result)
        if op.name == "stablehlo.compare":
            direction = str(op.attributes["comparison_direction"]).split()[-1].rstrip(">")
            return np.asarray(COMPARISONS[direction](*values)) if direction in COMPARISONS else None
    return None


def match_fold_scalar(op) -> dict | str | None:
    if not op.name.startswith("stablehlo.") or op.name == "stablehlo.constant":
        return None
    value = _folded(op)
    return None if value is None else {"op": op, "value": value}


def rewrite_fold_scalar(module, op, value: np.ndarray) -> None:
    from jaxlib.mlir import ir
    from jaxlib.mlir.dialects import stablehlo as hlo

    tensor = ir.RankedTensorType(op.result.type)
    with ir.InsertionPoint(op), op.location:
        constant = hlo.ConstantOp(ir.DenseElementsAttr.get(np.asarray(value).reshape(()), type=tensor.element_type))
    producers = [v.owner for v in op.operands]
    op.result.replace_all_uses_with(constant.result)
    op.erase()
    for producer in producers:
        erase_if_dead(producer)


def match_known_select(op) -> dict | str | None:
    if op.name != "stablehlo.select":
        return None
    predicate = _scalar_constant(op.operands[0])
    if predicate is None:
        return None
    return {"op": op, "taken": 1 if bool(predicate) else 2}


def rewrite_known_select(module, op, taken: int) -> None:
    from jaxlib.mlir import ir

    producers = [op.operands[0].owner, op.operands[3 - taken].owner]
    op.result.replace_all_uses_with(op.operands[taken])
    op.erase()
    for producer in producers:
        if isinstance(producer, ir.OpView):  # not a block argument
            erase_if_dead(producer)


RULES = [
    NodeRule(
        "fold_scalar",
        "constants",
        "rank-0 convert/add/subtract/multiply/divide/compare of constants -> a constant",
        match_fold_scalar,
        rewrite_fold_scalar,
    ),
    NodeRule(
        "known_select",
        "constants",
        "select with a constant rank-0 predicate -> the operand it selects",
        match_known_select,
        rewrite_known_select,
    ),
]
