"""Scalings spelled so that the compiler recognizes what they belong to.

IREE raises a written-out softmax into one ``softmax`` dispatch only when the exponentials are
divided by their sum; ``e * (1 / sum)`` (a reciprocal, then a product: how some code normalizes,
and what ``jnp.reciprocal`` writes) is a reduction dispatch and an elementwise one. Attention
written as Flax's ``dot_product_attention`` writes it scales the query before the scores' product
(``query / sqrt(depth)``): one more elementwise dispatch over the query, where the scale applied to
the scores fuses into the softmax that reads them. XLA fuses either spelling, so the rules are
judged per target.

    multiply(a, broadcast(divide(1, s)))        =>  divide(a, broadcast(s))
    dot_general(q op broadcast(c), k)           =>  dot_general(q, k) op broadcast(c)   op: * or /, c a scalar

Legality. Dividing by s instead of multiplying by 1/s skips one rounding (the reciprocal's): the
result is within one ulp of the original, not bitwise equal. Moving a scalar scale past the
product uses (c q)·k = c (q·k): exact when c is a power of two (as 1/sqrt(64) is), otherwise
within a few ulps; the rule matches only a scalar broadcast (``dims = []``), the same factor for
every element of the operand, so it factors out of every sum. The engine verifies both at fp32
tolerances on the target.
"""

from __future__ import annotations

import contextlib

from graphopt.core.rules import NodeRule
from graphopt.passes.stablehlo.erase import erase_if_dead


def _producer(value, *names: str):
    from jaxlib.mlir import ir

    owner = value.owner
    return owner if isinstance(owner, ir.OpView) and owner.name in names else None


def _is_one(value) -> bool:
    """Whether ``value`` is the constant 1 (a splat, or a scalar 1 broadcast)."""
    from jaxlib.mlir import ir

    broadcast = _producer(value, "stablehlo.broadcast_in_dim")
    constant = _producer(broadcast.operands[0] if broadcast else value, "stablehlo.constant")
    if constant is None:
        return False
    attribute = constant.attributes["value"]
    if not isinstance(attribute, ir.DenseElementsAttr) or not attribute.is_splat:
        return False
    splat = attribute.get_splat_value()
    return isinstance(splat, ir.FloatAttr) and splat.value == 1.0


def _dims(broadcast) -> list[int]:
    from jaxlib.mlir import ir

    return list(ir.DenseI64ArrayAttr(broadcast.attributes["broadcast_dimensions"]))


def match_reciprocal_multiply(op) -> dict | str | None:
    """Bindings: the multiply, the operand kept, the broadcast of the reciprocal, the divisor."""
    if op.name != "stablehlo.multiply":
        return None
    for side in (1, 0):
        broadcast = _producer(op.operands[side], "stablehlo.broadcast_in_dim")
        divide = _producer(broadcast.operands[0], "stablehlo.divide") if broadcast else None
        if divide is not None and _is_one(divide.operands[0]):
            return {"op": op, "kept": op.operands[1 - side], "broadcast": broadcast, "divisor": divide.operands[1]}
    return None


def rewrite_reciprocal_multiply(module, op, kept, broadcast, divisor) -> None:
    from jaxlib.mlir.dialects import stablehlo as hlo

    with _before(op):
        spread = hlo.BroadcastInDimOp(broadcast.result.type, divisor, _dims(broadcast)).result
        quotient = hlo.DivOp(kept, spread).result
    _replace(op, quotient, broadcast)


@contextlib.contextmanager
def _before(op):
    """New ops go right before ``op``, at its location."""
    from jaxlib.mlir import ir

    with ir.InsertionPoint(op), op.location:
        yield


def _replace(op, value, *dead) -> None:
    op.result.replace_all_uses_with(value)
    op.erase()
    for producer in dead:
        erase_if_dead(producer)


def _scalar_scale(value):
    """(the scaled operand, the scalar, "multiply" or "divide") when ``value`` is an operand times
    or over a broadcast scalar, else None."""
    scaling = _producer(value, "stablehlo.multiply", "stablehlo.divide")
    if scaling is None:
        return None
    sides = (1, 0) if scaling.name == "stablehlo.multiply" else (1,)  # a divisor must stay the divisor
    for side in sides:
        broadcast = _producer(scaling.operands[side], "stablehlo.broadcast_in_dim")
        if broadcast is not None and not _dims(broadcast):
            return scaling.operands[1 - side], broadcast.operands[0], scaling.name.removeprefix("stablehlo.")
    return None


def match_scale_after_dot(op) -> dict | str | None:
    """Bindings: the dot, which operand is scaled, what it scales, the scalar and the operation."""
    if op.name != "stablehlo.dot_general":
        return None
    scaled = [(side, found) for side in (0, 1) if (found := _scalar_scale(op.operands[side])) is not None]
    if not scaled:
        return None
    if len(scaled) == 2:
        return "both operands are scaled"
    side, (operand, scalar, operation) = scaled[0]
    return {"op": op, "side": side, "operand": operand, "scalar": scalar, "operation": operation}


def rewrite_scale_after_dot(module, op, side: int, operand, scalar, operation: str) -> None:
    from jaxlib.mlir.dialects import stablehlo as hlo

    scaling = op.operands[side].owner
    operands = list(op.operands)
    operands[side] = operand
    extra = {k: op.attributes[k] for k in ("precision_config", "algorithm") if k in op.attributes}
    with _before(op):
        product = hlo.DotGeneralOp(op.result.type, *operands, op.attributes["dot_dimension_numbers"], **extra).result
        spread = hlo.BroadcastInDimOp(op.result.type, scalar, []).result
        scaled = (hlo.MulOp if operation == "multiply" else hlo.DivOp)(product, spread).result
    _replace(op, scaled, scaling)


RULES = [
    NodeRule(
        "reciprocal_multiply",
        "scaling",
        "multiply by a broadcast 1/s -> divide by the broadcast s (a softmax IREE raises)",
        match_reciprocal_multiply,
        rewrite_reciprocal_multiply,
    ),
    NodeRule(
        "scale_after_dot",
        "scaling",
        "dot_general of an operand scaled by a scalar -> the scale applied to the dot's result",
        match_scale_after_dot,
        rewrite_scale_after_dot,
    ),
]
