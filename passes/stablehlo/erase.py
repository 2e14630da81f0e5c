"""Removing what a StableHLO rewrite left dead, on jaxlib's MLIR bindings (the rule shape is
graphopt/core/rules.py)."""

from __future__ import annotations


def erase_if_dead(op) -> None:
    """Erase ``op`` and then, recursively, the producers of its operands that nothing else reads."""
    from jaxlib.mlir import ir

    if any(True for result in op.results for _ in result.uses):
        return
    producers = [value.owner for value in op.operands if isinstance(value.owner, ir.OpView)]
    op.erase()
    for producer in producers:
        if producer.name.startswith("stablehlo."):
            erase_if_dead(producer)
