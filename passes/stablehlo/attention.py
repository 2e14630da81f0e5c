"""Grouped-query attention with its K/V heads repeated, computed grouped.

JAX code repeats the K and V heads of grouped-query attention to the query heads before the
attention products (``jnp.repeat(k, q_heads // kv_heads, axis=heads)``, as HF's Flax LLaMA and
Mistral do). StableHLO then holds ``reshape(broadcast_in_dim(k))`` feeding a ``dot_general``
whose batch dims include the repeated head dim: XLA's CPU pipeline materializes the repeated
copy and runs one small dot per query head (no library call). Splitting the other operand's head
dim into (kv head, group) instead makes the group a free dim of one batched dot per KV head:

    dot_general(q[.., H, ..], reshape(broadcast_in_dim(k[.., G, ..])))   H = G * rep, batch dim
    => reshape(transpose(dot_general(reshape(q)[.., G, rep, ..], k)))    same shape, same values

Legality: the broadcast must insert exactly one new dim right after the repeated dim G and the
reshape merge the two (so head h reads kv head h // rep, the row-major order of the merge), and
the repeated dim must be a batching dim of the dot on both sides; then each output element is
the same sum of the same products (the contraction and its order are untouched), so results are
bit-identical up to XLA's choice of dot kernel. Only one operand may be repeated.
"""

from __future__ import annotations

from graphopt.core.rules import NodeRule
from graphopt.passes.stablehlo.erase import erase_if_dead


def repeated(value):
    """(source, dim, times) when ``value`` is ``source`` with dim ``dim`` repeated ``times``
    (jnp.repeat's lowering), else None."""
    from jaxlib.mlir import ir

    reshape = value.owner
    if not isinstance(reshape, ir.OpView) or reshape.name != "stablehlo.reshape":
        return None
    broadcast = reshape.operands[0].owner
    if not isinstance(broadcast, ir.OpView) or broadcast.name != "stablehlo.broadcast_in_dim":
        return None
    source = broadcast.operands[0]
    shape, middle = list(ir.RankedTensorType(source.type).shape), list(ir.RankedTensorType(broadcast.result.type).shape)
    result = list(ir.RankedTensorType(value.type).shape)
    dims = list(ir.DenseI64ArrayAttr(broadcast.attributes["broadcast_dimensions"]))
    for k in range(len(shape)):
        inserted = dims == list(range(k + 1)) + list(range(k + 2, len(shape) + 1))
        if inserted and middle[: k + 1] == shape[: k + 1] and middle[k + 2 :] == shape[k + 1 :] and middle[k + 1] > 1:
            if result == shape[:k] + [shape[k] * middle[k + 1]] + shape[k + 1 :]:
                return source, k, middle[k + 1]
    return None


def _numbers(op):
    from jaxlib.mlir.dialects import stablehlo as hlo

    n = hlo.DotDimensionNumbers(op.attributes["dot_dimension_numbers"])
    return (
        [list(n.lhs_batching_dimensions), list(n.rhs_batching_dimensions)],
        [list(n.lhs_contracting_dimensions), list(n.rhs_contracting_dimensions)],
    )


def match_grouped_dot(op) -> dict | str | None:
    """Bindings: the dot_general, which operand is repeated (0 lhs, 1 rhs), the value before the
    repeat, the repeat count, and the repeated dim's index among the batching dims."""
    if op.name != "stablehlo.dot_general":
        return None
    batch, _ = _numbers(op)
    found = [(side, r) for side in (1, 0) if (r := repeated(op.operands[side])) is not None]
    if not found:
        return None
    if len(found) != 1:
        return "both operands are repeated"
    side, (source, dim, rep) = found[0]
    if dim not in batch[side]:
        return "the repeated dim is not a batching dim of the dot"
    return {"op": op, "side": side, "source": source, "rep": rep, "pair": batch[side].index(dim)}


def rewrite_grouped_dot(module, op, side: int, source, rep: int, pair: int) -> None:
    from jaxlib.mlir import ir
    from jaxlib.mlir.dialects import stablehlo as hlo

    other_side = 1 - side
    batch, contract = _numbers(op)
    other = op.operands[other_side]
    shape, element = list(ir.RankedTensorType(other.type).shape), ir.RankedTensorType(other.type).element_type
    head = batch[other_side][pair]
    split_shape = shape[:head] + [shape[head] // rep, rep] + shape[head + 1 :]
    shifted = lambda dims: [d if d <= head else d + 1 for d in dims]  # noqa: E731
    batch[other_side], contract[other_side] = shifted(batch[other_side]), shifted(contract[other_side])
    with ir.InsertionPoint(op), op.location:
        split = hlo.ReshapeOp(ir.RankedTensorType.get(split_shape, element), other).result
        operands = [split, source] if other_side == 0 else [source, split]
        shapes = [list(ir.RankedTensorType(v.type).shape) for v in operands]
        free = [[d for d in range(len(s)) if d not in batch[i] and d not in contract[i]] for i, s in enumerate(shapes)]
        out_shape = [shapes[0][d] for d in batch[0]] + [shapes[0][d] for d in free[0]] + [shapes[1][d] for d in free[1]]
        numbers = hlo.DotDimensionNumbers.get(
            lhs_batching_dimensions=batch[0],
            rhs_batching_dimensions=batch[1],
            lhs_contracting_dimensions=contract[0],
            rhs_contracting_dimensions=contract[1],
        )
        extra = {k: op.attributes[k] for k in ("precision_config", "algorithm") if k in op.attributes}
        result_element = ir.RankedTensorType(op.result.type).element_type
        dot = hlo.DotGeneralOp(ir.RankedTensorType.get(out_shape, result_element), *operands, numbers, **extra).result
        group = len(batch[0]) + (0 if other_side == 0 else len(free[0])) + free[other_side].index(head + 1)
        order = [d for d in range(len(out_shape)) if d != group]
        order.insert(pair + 1, group)  # the group right after its kv head: merged back in row-major order
        final = hlo.ReshapeOp(op.result.type, hlo.TransposeOp(dot, order).result).result
    op.result.replace_all_uses_with(final)
    repeat = op.operands[side].owner
    op.erase()
    erase_if_dead(repeat)


RULES = [
    NodeRule(
        "grouped_dot",
        "attention",
        "dot_general over K/V repeated to the query heads -> one dot per KV head with the group as a free dim",
        match_grouped_dot,
        rewrite_grouped_dot,
    ),
]
