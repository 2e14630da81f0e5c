"""Meaningful inputs for a graph: the values a model sees in use, not arbitrary random numbers.

Random int64 token ids would index past an embedding table and make ORT fail (or, worse, read
garbage), and a random float attention mask would push softmax into regions real inputs never
reach. So each input is generated from what the graph says about it:

- integer inputs that reach a Gather's indices (through Cast/Unsqueeze/Reshape) get ids in
  ``[0, rows)`` of the gathered table: token ids, token-type ids, position ids;
- inputs named like a mask get 0/1 with the trailing positions of each row padded (never a
  fully masked row, which is a NaN in every implementation and proves nothing);
- inputs named ``position_ids`` / ``cache_position`` get ``arange`` offsets;
- floating inputs get standard normal values, bools random bits;
- an integer input that feeds a shape operand (Reshape, Expand, Tile...) cannot be invented:
  that is an InputGenerationError asking for ``--inputs``.

Dynamic dimensions are bound per symbol, consistently across inputs (two inputs with dimension
``sequence`` get the same size), with expressions like ``past_sequence + 1`` evaluated.
"""

from __future__ import annotations

import re

import numpy as np
import onnx_ir as ir

from graphopt.core.errors import InputGenerationError
from graphopt.core.protocols import InputSpec

# Sizes a symbolic dimension gets unless the user binds it, by what its name suggests.
DEFAULT_SIZES = (("batch", 1), ("past", 8), ("", 16))
# A second binding, used by verification so that a rewrite that only holds at one size is caught.
ALTERNATE_SIZES = (("batch", 2), ("past", 5), ("", 7))
# What to try when the model does not run at the defaults (an audio model's samples axis under a
# 64-tap strided Conv, an image side under a stride-32 backbone): the same pairs, larger.
SIZE_LADDER = (
    (DEFAULT_SIZES, ALTERNATE_SIZES),
    ((("batch", 1), ("past", 8), ("", 64)), (("batch", 2), ("past", 5), ("", 96))),
    ((("batch", 1), ("past", 8), ("", 512)), (("batch", 2), ("past", 5), ("", 320))),
)
# A decoder with a KV cache is timed the way its users time it: the decode step, one new token
# against a cache of 127 (what generation spends its time on); the second binding is a short
# prefill over a short cache, so that a rewrite which only holds for one new token is caught.
DECODE_LADDER = (((("batch", 1), ("past", 127), ("", 1)), (("batch", 2), ("past", 5), ("", 7))), *SIZE_LADDER)
_CACHE_INPUT = re.compile(r"(^|[._])(past|cache)", re.IGNORECASE)


def size_ladder(specs: list[InputSpec]):
    """The (primary, alternate) size pairs to try, in order: DECODE_LADDER for a KV-cache decoder
    (a rank-4 float input named like ``past_key_values.0.key``, ``past_key``, ``cache.3.value``
    whose dimensions include a ``past`` symbol), else SIZE_LADDER."""
    for spec in specs:
        named_past = any(isinstance(d, str) and "past" in d.lower() for d in spec.dims)
        if _CACHE_INPUT.search(spec.name) and len(spec.dims) == 4 and named_past:
            return DECODE_LADDER
    return SIZE_LADDER


_SHAPE_OPERANDS = {"Reshape": 1, "Expand": 1, "Tile": 1, "ConstantOfShape": 0, "Range": None, "OneHot": 1}
_PASS_THROUGH = {"Cast", "Unsqueeze", "Reshape", "Squeeze", "Flatten", "Identity", "Add"}


def input_specs(model: ir.Model) -> list[InputSpec]:
    initializers = model.graph.initializers
    specs = []
    for value in model.graph.inputs:
        if value.name in initializers:  # an overridable initializer, not a real input
            continue
        if value.type is None or not isinstance(value.type, ir.TensorType):
            raise InputGenerationError(f"input {value.name!r} is not a tensor; pass --inputs FILE.npz")
        dims = tuple(_dim(d) for d in value.shape) if value.shape is not None else None
        if dims is None:
            raise InputGenerationError(f"input {value.name!r} has no known rank; pass --inputs FILE.npz")
        specs.append(InputSpec(value.name, value.dtype.numpy(), dims))
    return specs


def _dim(d) -> int | str | None:
    if isinstance(d, int):
        return d
    return d.value if isinstance(d, ir.SymbolicDim) else None


def bind_dims(
    specs: list[InputSpec],
    shapes: dict[str, tuple[int, ...]] | None = None,
    defaults=DEFAULT_SIZES,
    hints: dict[str, int] | None = None,
) -> dict[str, tuple[int, ...]]:
    """Concrete shape per input: the user's ``--shape`` first, then ``hints`` (symbol -> size:
    what a file beside the model says), else symbols bound by name."""
    shapes = shapes or {}
    symbols: dict[str, int] = dict(hints or {})
    for spec in specs:  # user shapes also fix the symbols they cover
        if spec.name in shapes:
            for dim, size in zip(spec.dims, shapes[spec.name]):
                if isinstance(dim, str) and not _is_expression(dim):
                    symbols.setdefault(dim, size)
    bound = {}
    for spec in specs:
        if spec.name in shapes:
            if len(shapes[spec.name]) != len(spec.dims):
                raise InputGenerationError(
                    f"--shape {spec.name}: rank {len(shapes[spec.name])} given, the model has rank {len(spec.dims)}"
                )
            bound[spec.name] = tuple(shapes[spec.name])
            continue
        _leading_symbol_is_batch(spec, symbols, defaults)
        bound[spec.name] = tuple(_bind(dim, symbols, defaults) for dim in spec.dims)
    return bound


def _leading_symbol_is_batch(spec: InputSpec, symbols: dict[str, int], defaults) -> None:
    """An unbound, unnamed-looking symbol on the first axis of an input of rank 2 or more is the
    batch: torch's dynamo exporter names dynamic axes ``s33``, ``s50``, and a batch of 16 is not
    what a latency user runs (a 1 B decoder's prefill was timed at batch 16 x 16 tokens)."""
    first = spec.dims[0] if len(spec.dims) >= 2 else None
    if isinstance(first, str) and not _is_expression(first) and first not in symbols:
        if next(key for key, _ in defaults if key in first.lower()) == "":  # named by nothing we know
            symbols[first] = dict(defaults)["batch"]


def _bind(dim, symbols: dict[str, int], defaults) -> int:
    if isinstance(dim, int):
        return dim
    if dim is None:
        return 1
    if not _is_expression(dim):  # a name: "batch", "unk__12", paddle2onnx's "DynamicDimension.0"
        if dim not in symbols:
            symbols[dim] = _default_size(dim, defaults)
        return symbols[dim]
    # An expression over other symbols ("s0 + 1"): bind its names, then evaluate it.
    names = re.findall(r"[A-Za-z_]\w*", dim)
    env = {name: _bind(name, symbols, defaults) for name in names}
    if not re.fullmatch(r"[\w\s+\-*/()]+", dim):
        raise InputGenerationError(f"cannot bind the dimension expression {dim!r}; use --shape")
    return int(eval(dim, {"__builtins__": {}}, env))  # noqa: S307 - charset checked above


def _default_size(dim: str, defaults) -> int:
    """The size a symbol gets by its name; ``total_sequence_length`` (onnxruntime-genai's mask:
    the cache and the new tokens) is the past and new sizes together."""
    sizes = dict(defaults)
    if "total" in dim.lower():
        return sizes["past"] + sizes[""]
    return next(size for key, size in defaults if key in dim.lower())


def _is_expression(dim: str) -> bool:
    """True for arithmetic over names ("s0 + 1", "2*seq"); any other string names one dimension."""
    return not dim.isidentifier() and re.search(r"[+\-*/()]", dim) is not None


def generate(model: ir.Model, shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    """One feed dict for ``model`` at the concrete ``shapes`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in input_specs(model):
        shape = shapes[spec.name]
        feeds[spec.name] = np.asarray(
            _generate_one(model, spec, shape, rng)
        )  # a scalar input is a 0-d array, not a numpy scalar
        if "position" in spec.name.lower() and np.issubdtype(spec.dtype, np.integer):
            feeds[spec.name] = feeds[spec.name] + _past_length(shapes, shape)
    return feeds


def _past_length(shapes: dict[str, tuple[int, ...]], positions_shape) -> int:
    """Where the new tokens start: with a cache, the mask covers past + new tokens, so the
    positions of the new ones are offset by the difference (a decode step after 127 tokens is at
    position 127, as in generation)."""
    new_tokens = positions_shape[-1] if positions_shape else 1
    masks = [s[-1] for name, s in shapes.items() if "mask" in name.lower() and len(s) == 2]
    return max(0, masks[0] - new_tokens) if masks else 0


def _generate_one(model: ir.Model, spec: InputSpec, shape, rng) -> np.ndarray:
    name = spec.name.lower()
    dtype = spec.dtype
    if dtype == np.bool_:
        return _mask(shape, rng).astype(np.bool_) if "mask" in name else rng.random(shape) < 0.5
    if np.issubdtype(dtype, np.floating) or dtype.name in ("bfloat16", "float8_e4m3fn"):
        if "mask" in name:
            return _mask(shape, rng).astype(dtype)
        return rng.standard_normal(shape).astype(np.float32).astype(dtype)
    if not np.issubdtype(dtype, np.integer):
        raise InputGenerationError(f"input {spec.name!r} has dtype {dtype}; pass --inputs FILE.npz")
    if "mask" in name:
        return _mask(shape, rng).astype(dtype)
    if "position" in name:
        return np.broadcast_to(np.arange(shape[-1] if shape else 1), shape).astype(dtype).copy()
    value = model.graph.inputs[[v.name for v in model.graph.inputs].index(spec.name)]
    rows = _gather_rows(value)
    if rows is not None:
        return rng.integers(0, rows, size=shape).astype(dtype)
    if _feeds_shape_operand(value):
        raise InputGenerationError(
            f"input {spec.name!r} is used as a shape; graphopt cannot invent it: pass --inputs FILE.npz"
        )
    return rng.integers(0, 4, size=shape).astype(dtype)


def _mask(shape, rng) -> np.ndarray:
    """1 everywhere except a few trailing (padding) positions per row; never a fully masked row."""
    mask = np.ones(shape, dtype=np.int64)
    if len(shape) >= 2 and shape[-1] > 2:
        for row in np.ndindex(*shape[:-1]):
            pad = int(rng.integers(0, shape[-1] // 4 + 1))
            if pad:
                mask[row + (slice(shape[-1] - pad, None),)] = 0
    return mask


def _consumers(value: ir.Value, depth: int = 0):
    """Uses of ``value``, looking through ops that pass integer ids along unchanged in meaning."""
    for node, index in value.uses():
        yield node, index
        if depth < 4 and node.op_type in _PASS_THROUGH and node.outputs:
            yield from _consumers(node.outputs[0], depth + 1)


def _gather_rows(value: ir.Value) -> int | None:
    rows = []
    for node, index in _consumers(value):
        if node.op_type == "Gather" and index == 1 and node.inputs[0] is not None:
            table = node.inputs[0]
            axis = node.attributes.get_int("axis", 0)
            if table.shape is not None and isinstance(table.shape[axis], int):
                rows.append(table.shape[axis])
    return min(rows) if rows else None


def _feeds_shape_operand(value: ir.Value) -> bool:
    for node, index in _consumers(value):
        position = _SHAPE_OPERANDS.get(node.op_type, -1)
        if position is None or position == index:
            return True
    return False
