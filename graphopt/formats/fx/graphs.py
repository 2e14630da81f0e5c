"""Whole FX graphs: copy, fingerprint, run eagerly, and find where each symbolic size comes from.

A rewrite works on a copy (the graph Dynamo gave us stays the reference for checking). The
fingerprint (the generated code plus each placeholder's dtype and shape) keys cached decisions.
Graphs compiled with dynamic shapes take ``SymInt`` placeholders (``s50``) beside tensors whose
sizes use them; ``symbol_sources`` says which tensor dimension each one can be read from, so a
runtime that takes only tensors (an ONNX session) can be fed.
"""

from __future__ import annotations

import copy
import hashlib

import torch
import torch.fx

from graphopt.formats.fx.ops import meta


def copy_module(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A GraphModule sharing ``gm``'s submodules and attributes but with its own graph to rewrite."""
    return torch.fx.GraphModule(gm, copy.deepcopy(gm.graph))


def fingerprint(gm: torch.fx.GraphModule) -> str:
    """A stable hash of what the graph computes and the types and sizes it takes."""
    placeholders = [(n.name, _describe(meta(n))) for n in gm.graph.nodes if n.op == "placeholder"]
    return hashlib.sha256(repr((gm.code, placeholders)).encode()).hexdigest()[:24]


def _describe(example) -> str:
    if isinstance(example, torch.Tensor):
        return f"{example.dtype}{tuple(str(d) for d in example.shape)}"
    return type(example).__name__


def run_eager(gm: torch.fx.GraphModule, args) -> list[torch.Tensor]:
    """The graph's tensor outputs, run by torch itself (the reference every compile is checked against)."""
    with torch.no_grad():
        outputs = gm(*args)
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for t in outputs if isinstance(t, torch.Tensor)]


def symbol_sources(gm: torch.fx.GraphModule) -> dict[int, tuple[int, int]]:
    """For each SymInt placeholder position: the (placeholder position, dim) of a tensor with that size."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    dims = {}
    for position, node in enumerate(placeholders):
        example = meta(node)
        if isinstance(example, torch.Tensor):
            for d, size in enumerate(example.shape):
                if isinstance(size, torch.SymInt):
                    dims.setdefault(str(size), (position, d))
    sources = {}
    for position, node in enumerate(placeholders):
        example = meta(node)
        if isinstance(example, torch.SymInt):
            if str(example) not in dims:
                raise ValueError(f"symbolic size {example} is not the size of any input tensor")
            sources[position] = dims[str(example)]
    return sources


def symbolic_dims(gm: torch.fx.GraphModule) -> dict[int, tuple[int, ...]]:
    """For each tensor placeholder position: the dims whose size is symbolic."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    found = {}
    for position, node in enumerate(placeholders):
        example = meta(node)
        if isinstance(example, torch.Tensor):
            dims = tuple(d for d, size in enumerate(example.shape) if isinstance(size, torch.SymInt))
            if dims:
                found[position] = dims
    return found
