"""Products as multisets of factors: ``0.5 * x * (1 + e)``, ``x * 0.5 * (1 + e)`` and
``(x / 2) * (1 + e)`` are one product, so each written-out pattern is stated once."""

from __future__ import annotations

import torch.fx

from graphopt.formats.fx import arg, kind


def factors(value, depth: int = 3) -> list:
    """The factors of a product tree of mul (and division by a constant) nodes, as nodes and numbers."""
    if not isinstance(value, torch.fx.Node) or depth == 0:
        return [value]
    if kind(value) == "mul" and len(value.args) == 2 and not value.kwargs:
        return factors(value.args[0], depth - 1) + factors(value.args[1], depth - 1)
    divisor = arg(value, 1, "other")
    if (
        kind(value) == "div"
        and isinstance(divisor, (int, float))
        and divisor != 0
        and not arg(value, 2, "rounding_mode")
    ):
        return factors(value.args[0], depth - 1) + [1.0 / divisor]
    return [value]


def split(items: list) -> tuple[list, float]:
    """(the node factors, the product of the numeric ones)."""
    nodes, scale = [], 1.0
    for item in items:
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            scale *= item
        else:
            nodes.append(item)
    return nodes, scale


def add_one(node) -> torch.fx.Node | None:
    """``e`` when ``node`` is ``e + 1`` or ``1 + e``."""
    if (
        not isinstance(node, torch.fx.Node)
        or kind(node) != "add"
        or len(node.args) != 2
        or arg(node, 2, "alpha", 1) != 1
    ):
        return None
    a, b = node.args
    if b == 1 and isinstance(a, torch.fx.Node):
        return a
    if a == 1 and isinstance(b, torch.fx.Node):
        return b
    return None
