"""Reading a torch-level FX node by meaning: what it computes, its arguments, its example value.

Dynamo keeps the user's spelling: ``x * y`` is ``operator.mul``, ``x.mul(y)`` a ``call_method``,
``torch.mul(x, y)`` the function. ``kind`` gives all of them one name ("mul"), so a rule states
its pattern once. Example values (``node.meta["example_value"]``, fake tensors with symbolic
sizes) give dtypes and ranks without running anything.
"""

from __future__ import annotations

import operator

import torch
import torch.fx

_ALIASES = {"truediv": "div", "true_divide": "div", "multiply": "mul", "clip": "clamp", "_log_api_usage_once": None}
_OPERATORS = {
    operator.mul: "mul",
    operator.add: "add",
    operator.sub: "sub",
    operator.truediv: "div",
    operator.matmul: "matmul",
    operator.pow: "pow",
    operator.neg: "neg",
    operator.getitem: "getitem",
}


def kind(node) -> str | None:
    """What ``node`` computes, however it was spelled: "mul", "matmul", "softmax", "gelu"...
    (None for anything that is not a call: placeholders, constants)."""
    if not isinstance(node, torch.fx.Node):
        return None
    if node.op == "call_method":
        name = node.target
    elif node.op == "call_function":
        name = _OPERATORS.get(node.target) or getattr(node.target, "__name__", None)
    else:
        return None
    return _ALIASES.get(name, name)


def arg(node: torch.fx.Node, index: int, name: str, default=None):
    """The argument passed at ``index`` or as ``name`` (methods count ``self`` as index 0)."""
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def meta(value):
    """The example value of a node (a fake tensor, a SymInt), or ``value`` itself if it is a constant."""
    if isinstance(value, torch.fx.Node):
        return value.meta.get("example_value", value.meta.get("val"))
    return value


def constant(value, expected: float, rel: float = 1e-6) -> bool:
    """Whether ``value`` is a Python number equal to ``expected`` (to ``rel``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value - expected) <= rel * max(1.0, abs(expected))
