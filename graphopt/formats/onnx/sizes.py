"""Refuse sizes that cannot fit, before anything is allocated.

``--shape input_ids=1,100000000`` would otherwise reach ONNX Runtime, whose allocator fails deep
inside a run with a log line and a message cut mid-path. The inputs' bytes are known from the
bound shapes; the largest intermediate is estimated from the shapes inference wrote on the graph,
with each symbolic dimension (``sequence``, ``batch * 4``...) evaluated at the bound sizes. A
value whose shape cannot be evaluated is skipped, so the estimate is a lower bound: it catches
the attention score matrix that grows with the square of the sequence, not every allocation.
"""

from __future__ import annotations

import math
import re

import onnx_ir as ir

from graphopt.core.errors import InputGenerationError
from graphopt.core.memory import gib, limit_bytes
from graphopt.core.protocols import InputSpec

_EXPRESSION = re.compile(r"[\w\s+\-*/()]+")


def refuse_unfit(
    model: ir.Model, specs: list[InputSpec], shapes: dict[str, tuple[int, ...]], limit: int | None = None
) -> None:
    """Raise InputGenerationError when the inputs at ``shapes``, or one intermediate value, would
    not fit in ``limit`` bytes (default: core.memory.limit_bytes(), GRAPHOPT_MEMORY_LIMIT or what is
    available now)."""
    limit = limit_bytes() if limit is None else limit
    inputs = sum(math.prod(shapes[s.name]) * s.dtype.itemsize for s in specs)
    if inputs > limit:
        raise InputGenerationError(
            f"the inputs at {_listing(shapes)} need {gib(inputs)}, more than the {gib(limit)} of memory available"
        )
    symbols = _symbols(specs, shapes)
    largest, name = max(((_value_bytes(v, symbols), v.name) for v in _intermediates(model)), default=(0, ""))
    if largest > limit:
        raise InputGenerationError(
            f"at {_listing(shapes)} the value {name!r} alone needs {gib(largest)}, more than the "
            f"{gib(limit)} of memory available; choose smaller sizes with --shape"
        )


def _symbols(specs: list[InputSpec], shapes: dict[str, tuple[int, ...]]) -> dict[str, int]:
    symbols: dict[str, int] = {}
    for spec in specs:
        for dim, size in zip(spec.dims, shapes[spec.name]):
            if isinstance(dim, str) and dim.isidentifier():
                symbols.setdefault(dim, size)
    return symbols


def _intermediates(model: ir.Model):
    for node in model.graph.all_nodes():
        yield from node.outputs


def _value_bytes(value: ir.Value, symbols: dict[str, int]) -> int:
    if value.shape is None or value.dtype is None or value.dtype.itemsize is None:
        return 0
    sizes = [_evaluate(d, symbols) for d in value.shape]
    if any(s is None for s in sizes):
        return 0
    return math.prod(sizes) * math.ceil(value.dtype.itemsize)


def _evaluate(dim, symbols: dict[str, int]) -> int | None:
    """A dimension's size at ``symbols``: an int, a bound name, or an expression of bound names."""
    if isinstance(dim, int):
        return dim
    text = getattr(dim, "value", None)
    if not isinstance(text, str) or not _EXPRESSION.fullmatch(text):
        return None
    names = re.findall(r"[A-Za-z_]\w*", text)
    if not names or any(n not in symbols for n in names):
        return None
    try:
        size = eval(text, {"__builtins__": {}}, {n: symbols[n] for n in names})  # noqa: S307 - charset checked above
    except (ArithmeticError, SyntaxError, TypeError):
        return None
    return int(size) if isinstance(size, (int, float)) and size >= 0 else None


def _listing(shapes: dict[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{name}={'x'.join(map(str, dims))}" for name, dims in shapes.items())
