"""Transposes around a dot_general, folded into the dot itself.

A ``dot_general`` names the dims it contracts and batches on each operand, so a transpose feeding
it, or one that only swaps the two operands' halves of its result, is a layout choice the dot can
make itself. Code written for another framework's layout spells these out: ``x @ w.T`` for
weights stored [out, in] (PyTorch's layout, and tied embeddings as the LM head of every decoder),
``(w.T @ x.T).T``. XLA folds them in its algebraic simplifier; IREE forms a dispatch of its own
for a transpose it cannot fold into the contraction (a decode step's ``x @ embed.T`` on weights
passed per call runs a 1000x256 transpose dispatch per token), so the rules are judged per target.

    dot_general(a, transpose(b, perm))  =>  dot_general(a, b)      dims of b renamed through perm
    transpose(dot_general(a, b), swap)  =>  dot_general(b, a)      swap exchanges a's and b's free dims

Legality. Folding a transpose into an operand renames that operand's batching and contracting
dims through the permutation; the result keeps its layout only if the operand's free dims keep
their relative order (the result lists them in operand order), which the match checks (a
transpose that reorders free dims is a near miss). Swapping operands exchanges the blocks of the
result's free dims (batch dims first, then lhs free, then rhs free); it replaces a transpose of the
result only when that transpose is exactly this exchange with the batch dims in place. Both keep
every product and every sum (x*y = y*x exactly in IEEE arithmetic); only the compiler's choice of
kernel, and so its blocking of the sums, may differ: equal within fp32 tolerance, not bitwise.
"""

from __future__ import annotations

from graphopt.core.rules import NodeRule
from graphopt.passes.stablehlo.erase import erase_if_dead


def _numbers(op) -> tuple[list[list[int]], list[list[int]]]:
    """([lhs batch, rhs batch], [lhs contracting, rhs contracting])."""
    from jaxlib.mlir.dialects import stablehlo as hlo

    n = hlo.DotDimensionNumbers(op.attributes["dot_dimension_numbers"])
    batch = [list(n.lhs_batching_dimensions), list(n.rhs_batching_dimensions)]
    return batch, [list(n.lhs_contracting_dimensions), list(n.rhs_contracting_dimensions)]


def _rank(value) -> int:
    from jaxlib.mlir import ir

    return ir.RankedTensorType(value.type).rank


def _free(rank: int, batch: list[int], contract: list[int]) -> list[int]:
    return [d for d in range(rank) if d not in batch and d not in contract]


def _producer(value, name: str):
    from jaxlib.mlir import ir

    owner = value.owner
    return owner if isinstance(owner, ir.OpView) and owner.name == name else None


def _permutation(transpose) -> list[int]:
    from jaxlib.mlir import ir

    return list(ir.DenseI64ArrayAttr(transpose.attributes["permutation"]))


def match_transposed_operand(op) -> dict | str | None:
    """Bindings: the dot, the operand side whose producer is a transpose, and the permutation."""
    if op.name != "stablehlo.dot_general":
        return None
    batch, contract = _numbers(op)
    reason = None
    for side in (0, 1):
        transpose = _producer(op.operands[side], "stablehlo.transpose")
        if transpose is None:
            continue
        perm = _permutation(transpose)
        free = [perm[d] for d in _free(len(perm), batch[side], contract[side])]
        if free == sorted(free):
            return {"op": op, "side": side, "perm": perm}
        reason = "the transpose reorders the operand's free dims: the result would be laid out differently"
    return reason


def _dot(op, operands, batch, contract, result_type):
    """A dot_general like ``op`` (precision, algorithm) over ``operands`` with these numbers."""
    from jaxlib.mlir.dialects import stablehlo as hlo

    numbers = hlo.DotDimensionNumbers.get(
        lhs_batching_dimensions=batch[0],
        rhs_batching_dimensions=batch[1],
        lhs_contracting_dimensions=contract[0],
        rhs_contracting_dimensions=contract[1],
    )
    extra = {k: op.attributes[k] for k in ("precision_config", "algorithm") if k in op.attributes}
    return hlo.DotGeneralOp(result_type, *operands, numbers, **extra).result


def rewrite_transposed_operand(module, op, side: int, perm: list[int]) -> None:
    from jaxlib.mlir import ir

    batch, contract = _numbers(op)
    batch[side], contract[side] = [perm[d] for d in batch[side]], [perm[d] for d in contract[side]]
    transpose = op.operands[side].owner
    operands = list(op.operands)
    operands[side] = transpose.operands[0]
    with ir.InsertionPoint(op), op.location:
        folded = _dot(op, operands, batch, contract, op.result.type)
    op.result.replace_all_uses_with(folded)
    op.erase()
    erase_if_dead(transpose)


def _swap(op) -> list[int]:
    """The result permutation that exchanges the lhs and rhs free blocks of ``op``'s result."""
    batch, contract = _numbers(op)
    nb = len(batch[0])
    lhs_free = len(_free(_rank(op.operands[0]), batch[0], contract[0]))
    rhs_free = len(_free(_rank(op.operands[1]), batch[1], contract[1]))
    return list(range(nb)) + [nb + lhs_free + i for i in range(rhs_free)] + [nb + i for i in range(lhs_free)]


def match_transposed_result(op) -> dict | str | None:
    """Bindings: a transpose whose operand is a dot_general read only by it, and that dot."""
    if op.name != "stablehlo.transpose":
        return None
    dot = _producer(op.operands[0], "stablehlo.dot_general")
    if dot is None:
        return None
    if _permutation(op) != _swap(dot):
        return None  # another layout change: not the operands' exchange
    if any(use.owner != op for use in dot.result.uses):
        return "the dot's result is also read untransposed"
    return {"op": op, "dot": dot}


def rewrite_transposed_result(module, op, dot) -> None:
    from jaxlib.mlir import ir

    batch, contract = _numbers(dot)
    with ir.InsertionPoint(op), op.location:
        swapped = _dot(dot, [dot.operands[1], dot.operands[0]], batch[::-1], contract[::-1], op.result.type)
    op.result.replace_all_uses_with(swapped)
    op.erase()
    erase_if_dead(dot)


RULES = [
    NodeRule(
        "dot_transposed_operand",
        "products",
        "dot_general over transpose(b) -> dot_general over b, its dims renamed (free dims keep their order)",
        match_transposed_operand,
        rewrite_transposed_operand,
    ),
    NodeRule(
        "dot_transposed_result",
        "products",
        "transpose exchanging a dot_general's lhs and rhs free dims -> the dot with its operands swapped",
        match_transposed_result,
        rewrite_transposed_result,
    ),
]
