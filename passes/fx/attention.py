"""Attention written out, given to ``scaled_dot_product_attention`` (Inductor lowers it to its
fused CPU/GPU kernels; its own matcher, fuse_attention.py, runs after autograd on aten ops and
misses several spellings).

    matmul(q, kᵀ) [* c | / c] [+ mask] -> softmax(-1) [-> .to(same dtype)] [-> dropout(p=0)] -> matmul(·, v)
    => scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=c or 1/c)

kᵀ may be ``k.transpose(-2, -1)`` (any spelling of the last two dims) or a permute that ends by
swapping them (``x.permute(0, 2, 3, 1)`` of a [B, S, H, D] projection): then ``k`` is the same
permute with its last two dims swapped back. The scale may be a number or ``torch.full([], c)``;
``.type(dtype)``/``.to(dtype)`` to the dtype it already is (GPT-2) and an inactive dropout are
identities. The chain's intermediate values must be read only by the chain (attention weights
returned to the user would otherwise be computed twice). The mask must be a float tensor
(added, as SDPA adds it). Only floating point (32/16/bf16) and rank 4.
"""

from __future__ import annotations

import torch
import torch.fx

from graphopt.core.rules import NodeRule
from graphopt.formats.fx import arg, kind, meta


def _number(value) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if (
        kind(value) == "full"
        and tuple(arg(value, 0, "size")) == ()
        and isinstance(arg(value, 1, "fill_value"), (int, float))
    ):
        return float(arg(value, 1, "fill_value"))
    return None


def _before_softmax(node) -> torch.fx.Node | None:
    """The softmax feeding ``node`` through identities (``.to``/``.type`` to the dtype it already
    has, ``dropout`` with p=0 or not training), each read only there; None if that is not what it is."""
    while kind(node) in ("to", "type", "dropout"):
        if len(node.users) != 1:
            return None
        if kind(node) == "dropout" and (arg(node, 1, "p", 0.5) != 0.0 and arg(node, 2, "training", True)):
            return None
        if kind(node) in ("to", "type") and (
            len(node.args) != 2 or meta(node).dtype != meta(node.args[0]).dtype or node.kwargs
        ):
            return None
        node = node.args[0]
    return node if kind(node) == "softmax" and len(node.users) == 1 else None


def _softmax_input(softmax):
    example = meta(softmax.args[0])
    dtype_at = 3 if softmax.target is torch.nn.functional.softmax else 2  # F.softmax(x, dim, _stacklevel, dtype)
    dim, dtype = arg(softmax, 1, "dim"), arg(softmax, dtype_at, "dtype")
    if dim not in (-1, example.dim() - 1) or (dtype is not None and dtype != example.dtype):
        return None
    return softmax.args[0]


def _scores_and_mask(node):
    """(matmul(q, kᵀ), scale or None, mask or None, the nodes between) from the softmax's input."""
    mask, chain = None, [node]
    if kind(node) == "add" and len(node.args) == 2:
        for scores, candidate in (node.args, node.args[::-1]):
            if (
                isinstance(candidate, torch.fx.Node)
                and meta(candidate).is_floating_point()
                and kind(scores) in ("mul", "div", "matmul")
            ):
                node, mask = scores, candidate
                chain.append(node)
                break
        else:
            return None
    scale = None
    if kind(node) in ("mul", "div") and len(node.args) == 2:
        number = _number(node.args[1])
        if number is None or number == 0:
            return None
        scale = number if kind(node) == "mul" else 1.0 / number
        node = node.args[0]
        chain.append(node)
    return (node, scale, mask, chain) if kind(node) == "matmul" else None


def _untransposed_key(key_t):
    """How to get k from kᵀ: (source, None) when kᵀ is a transpose of the last two dims, or
    (source, permutation) when it is a permute ending in the swap."""
    rank = meta(key_t).dim()
    if kind(key_t) == "transpose":
        dims = sorted(d % rank for d in key_t.args[1:3])
        return (key_t.args[0], None) if dims == [rank - 2, rank - 1] else None
    if kind(key_t) == "permute":
        order = key_t.args[1] if isinstance(key_t.args[1], (list, tuple)) else key_t.args[1:]
        order = [d % rank for d in order]
        return key_t.args[0], order[:-2] + [order[-1], order[-2]]
    return None


def _match_attention(node):
    if kind(node) != "matmul" or len(node.args) != 2 or meta(node) is None or meta(node).dim() != 4:
        return None
    if meta(node).dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return None
    softmax = _before_softmax(node.args[0])
    scores_in = _softmax_input(softmax) if softmax is not None else None
    parts = _scores_and_mask(scores_in) if scores_in is not None else None
    if parts is None:
        return None
    scores, scale, mask, chain = parts
    if any(len(n.users) != 1 for n in [scores, *chain]):
        return "the attention scores are read elsewhere too (rewriting would compute them twice)"
    query, key_t = scores.args
    key = _untransposed_key(key_t) if isinstance(key_t, torch.fx.Node) else None
    if key is None or meta(query).dim() != 4 or (mask is not None and meta(mask).dim() > 4):
        return "the key is not transposed in its last two dims, or a rank is not 4"
    source, order = key
    return {"query": query, "key": source, "order": order, "value": node.args[1], "mask": mask, "scale": scale}


def _sdpa(graph, query, key, order, value, mask, scale):
    source = key
    k = source if order is None or order == sorted(order) else graph.call_method("permute", (source, *order))
    kwargs = {"attn_mask": mask, "dropout_p": 0.0, "is_causal": False, "scale": 1.0 if scale is None else scale}
    return graph.call_function(torch.nn.functional.scaled_dot_product_attention, (query, k, value), kwargs)


RULES = [
    NodeRule(
        "sdpa", "attention", "matmul-scale-mask-softmax-matmul -> scaled_dot_product_attention", _match_attention, _sdpa
    )
]
