"""RMSNorm written out, given back its name: ``x * rsqrt(mean(x**2, -1, keepdim=True) + eps)``
-> ``rms_norm(x, (d,), eps=eps)`` (LLaMA's and T5's norms as HF writes them; the weight multiply
after it stays where it is). ``x**2`` may be ``pow(x, 2)`` or ``x * x``; the mean must be over
the last dimension only and keep it."""

from __future__ import annotations

import torch
import torch.fx

from graphopt.core.rules import NodeRule
from graphopt.formats.fx import arg, kind, meta


def _is_square_of(node, x) -> bool:
    if kind(node) == "pow":
        return node.args[0] is x and arg(node, 1, "exponent") in (2, 2.0)
    return kind(node) == "mul" and len(node.args) == 2 and node.args[0] is x and node.args[1] is x


def _mean_over_last(node, x) -> bool:
    if kind(node) != "mean" or not _is_square_of(node.args[0], x) or arg(node, 3, "dtype") is not None:
        return False
    dim, example = arg(node, 1, "dim"), meta(x)
    dims = tuple(dim) if isinstance(dim, (list, tuple)) else (dim,)
    return arg(node, 2, "keepdim", False) is True and dims in ((-1,), (example.dim() - 1,))


def _epsilon(node, x):
    """``eps`` when ``node`` is ``mean(x**2 over the last dim) + eps`` (either order)."""
    if kind(node) != "add" or len(node.args) != 2:
        return None
    for mean, eps in (node.args, node.args[::-1]):
        if isinstance(mean, torch.fx.Node) and isinstance(eps, float) and _mean_over_last(mean, x):
            return eps
    return None


def _match_rms_norm(node):
    if kind(node) != "mul" or len(node.args) != 2 or node.kwargs:
        return None
    for x, scale in (node.args, node.args[::-1]):
        example = meta(x)
        if not isinstance(example, torch.Tensor) or not example.is_floating_point() or kind(scale) != "rsqrt":
            continue
        eps = _epsilon(scale.args[0], x) if isinstance(scale.args[0], torch.fx.Node) else None
        width = example.shape[-1] if example.dim() else None
        if eps is not None and isinstance(width, int):
            return {"x": x, "width": width, "eps": eps}
    return None


def _rms_norm(graph, x, width, eps):
    return graph.call_function(torch.nn.functional.rms_norm, (x, (width,)), {"eps": eps})


RULES = [NodeRule("rms_norm", "norms", "x*rsqrt(mean(x^2,-1)+eps) -> rms_norm(x)", _match_rms_norm, _rms_norm)]
