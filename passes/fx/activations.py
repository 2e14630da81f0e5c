"""Activations written out, given back their names so Inductor's matchers see them.

- ``gelu_erf``: ``0.5 * x * (1 + erf(x / sqrt(2)))`` -> ``gelu(x)``;
- ``gelu_tanh``: ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))`` ->
  ``gelu(x, approximate="tanh")`` (GPT-2's NewGELU);
- ``silu``: ``x * sigmoid(x)`` -> ``silu(x)``;
- ``clamp_relu``: ``x.clamp(min=0)`` / ``clamp_min(x, 0)`` -> ``relu(x)`` (the form Inductor's
  conv+unary fusions look for). Same values; at exactly 0 relu's subgradient is 0 where clamp's
  is 1, so it is not applied to graphs that need gradients.
"""

from __future__ import annotations

import math

import torch
import torch.fx

from graphopt.core.rules import NodeRule
from graphopt.formats.fx import arg, constant, kind
from graphopt.passes.fx.products import add_one, factors, split


def _gelu_parts(node, inner_kind: str):
    """(x, the non-constant factors of f's argument, their constant product) when ``node`` is
    0.5 * x * (1 + f(argument)), f being erf or tanh."""
    if kind(node) != "mul":
        return None
    nodes, scale = split(factors(node))
    if len(nodes) != 2 or not constant(scale, 0.5):
        return None
    for x, one_plus in (nodes, nodes[::-1]):
        inner = add_one(one_plus)
        if inner is not None and kind(inner) == inner_kind and len(inner.args) == 1:
            return (x, *split(factors(inner.args[0])))
    return None


def _match_gelu_erf(node):
    x, nodes, scale = _gelu_parts(node, "erf") or (None, None, None)
    if x is None:
        return None
    if nodes != [x] or not constant(scale, 1 / math.sqrt(2), rel=1e-5):
        return f"erf's argument is not x/sqrt(2) (scale {scale})"
    return {"x": x}


def _match_gelu_tanh(node):
    x, nodes, scale = _gelu_parts(node, "tanh") or (None, None, None)
    if x is None:
        return None
    if len(nodes) != 1 or not constant(scale, math.sqrt(2 / math.pi), rel=1e-5) or not _is_x_plus_cubic(nodes[0], x):
        return "tanh's argument is not sqrt(2/pi) * (x + 0.044715 x^3)"
    return {"x": x}


def _gelu(graph, x):
    return graph.call_function(torch.nn.functional.gelu, (x,))


def _gelu_tanh(graph, x):
    return graph.call_function(torch.nn.functional.gelu, (x,), {"approximate": "tanh"})


def _is_x_plus_cubic(node, x) -> bool:
    """``x + 0.044715 * x**3`` in either order, the cube as ``pow(x, 3)`` or ``x * x * x``."""
    if kind(node) != "add" or len(node.args) != 2:
        return False
    for lone, cubic in (node.args, node.args[::-1]):
        if lone is not x:
            continue
        nodes, scale = split(factors(cubic))
        if (
            len(nodes) == 1
            and kind(nodes[0]) == "pow"
            and nodes[0].args[0] is x
            and arg(nodes[0], 1, "exponent") in (3, 3.0)
        ):
            return constant(scale, 0.044715, rel=1e-4)
        if nodes == [x, x, x]:
            return constant(scale, 0.044715, rel=1e-4)
    return False


def _match_silu(node):
    if kind(node) != "mul" or len(node.args) != 2 or node.kwargs:
        return None
    for x, gate in (node.args, node.args[::-1]):
        if isinstance(gate, torch.fx.Node) and kind(gate) == "sigmoid" and gate.args and gate.args[0] is x:
            return {"x": x}
    return None


def _silu(graph, x):
    return graph.call_function(torch.nn.functional.silu, (x,))


def _match_clamp_relu(node):
    name = kind(node)
    clamps_at_zero = name == "clamp" and arg(node, 2, "max") is None or name == "clamp_min"
    if not clamps_at_zero or not isinstance(node.args[0], torch.fx.Node):
        return None
    if not constant(arg(node, 1, "min"), 0.0):
        return f"clamps at {arg(node, 1, 'min')}, not 0"
    return {"x": node.args[0]}


def _relu(graph, x):
    return graph.call_function(torch.relu, (x,))


RULES = [
    NodeRule("gelu_erf", "activations", "0.5*x*(1+erf(x/sqrt 2)) -> gelu(x)", _match_gelu_erf, _gelu),
    NodeRule(
        "gelu_tanh", "activations", "GPT-2's written-out tanh GELU -> gelu(x, 'tanh')", _match_gelu_tanh, _gelu_tanh
    ),
    NodeRule("silu", "activations", "x*sigmoid(x) -> silu(x)", _match_silu, _silu),
    NodeRule(
        "clamp_relu", "activations", "clamp(x, min=0) -> relu(x)", _match_clamp_relu, _relu, preserves_gradients=False
    ),
]
