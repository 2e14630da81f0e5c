"""Inputs at a second size of each dynamic dimension, to check a graph compiled for symbolic
sizes somewhere other than where it was decided.

Each symbolic dimension of a tensor input is cut by one (or, at 2, grown by repeating its first
slice), so token ids stay valid ids and masks stay masks; SymInt inputs take the new sizes.
Sizes that depend on each other (a KV cache's length and its mask's) may no longer agree: when
the graph run eagerly refuses the new inputs, there is no second size to check (None).
"""

from __future__ import annotations

import torch

from graphopt.formats.fx.graphs import run_eager, symbol_sources, symbolic_dims


def _resized(tensor: torch.Tensor, dim: int) -> torch.Tensor:
    size = tensor.shape[dim]
    if size > 2:
        return tensor.narrow(dim, 0, size - 1).contiguous()
    return torch.cat([tensor, tensor.narrow(dim, 0, 1)], dim)


def second_size(gm: torch.fx.GraphModule, args: list) -> list | None:
    """``args`` with every symbolic dimension resized, or None (no symbolic dims, or the graph
    does not accept the resized inputs)."""
    dims = symbolic_dims(gm)
    if not dims:
        return None
    resized = list(args)
    for position, axes in dims.items():
        tensor = args[position].detach()
        for dim in axes:
            tensor = _resized(tensor, dim)
        resized[position] = (
            tensor.requires_grad_(args[position].requires_grad) if tensor.is_floating_point() else tensor
        )
    for position, (source, dim) in symbol_sources(gm).items():
        resized[position] = resized[source].shape[dim]
    try:
        run_eager(gm, resized)
    except Exception:  # sizes that must agree no longer do: no second size to check at
        return None
    return resized


__all__ = ["second_size"]
