"""What a StableHLO rule is: a name, a family, ``match`` (an op -> a match or None, reading only)
and ``rewrite`` (a match -> new ops inserted before the matched one, its uses replaced, the dead
ops it leaves erased), on jaxlib's MLIR bindings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class HloRule:
    name: str
    family: str
    match: Callable[[object], object | None]
    rewrite: Callable[[object], None]
    summary: str = ""


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
