"""Small helpers the ONNX rule families share: reading constants and shapes off onnx_ir values."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir


def constant(value: ir.Value | None) -> np.ndarray | None:
    """The value's constant content (initializer or Constant node), or None."""
    if value is None:
        return None
    tensor = ir.convenience.get_const_tensor(value)
    return None if tensor is None else tensor.numpy()


def is_scalar_close(value: ir.Value, expected: float, rtol: float = 1e-6) -> bool:
    """True when ``value`` is a constant holding ``expected`` (one element, any rank)."""
    array = constant(value)
    return array is not None and array.size == 1 and bool(np.isclose(float(array.reshape(())), expected, rtol=rtol, atol=0))


def static_shape(value: ir.Value) -> tuple[int, ...] | None:
    if value.shape is None or not all(isinstance(d, int) for d in value.shape):
        return None
    return tuple(value.shape)


def rank(value: ir.Value) -> int | None:
    return None if value.shape is None else len(value.shape)


FLOAT_TYPES = frozenset({ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.BFLOAT16, ir.DataType.DOUBLE})


def same_computation(a: ir.Value | None, b: ir.Value | None, depth: int = 12) -> bool:
    """True when ``a`` and ``b`` are the same value, or provably equal: the same output of nodes
    with equal op, attributes and (recursively) inputs, or constants with equal contents. Two
    rewrites that each built the same helper (RoPE's cos/sin tables) give such twins until CSE."""
    if a is b:
        return True
    if a is None or b is None or depth == 0:
        return False
    ca, cb = constant(a), constant(b)
    if ca is not None or cb is not None:
        return ca is not None and cb is not None and ca.dtype == cb.dtype and ca.shape == cb.shape and bool(np.array_equal(ca, cb))
    na, nb = a.producer(), b.producer()
    if na is None or nb is None or a.index() != b.index():
        return False
    if (na.op_type, na.domain, len(na.inputs)) != (nb.op_type, nb.domain, len(nb.inputs)):
        return False
    if {k: str(v.value) for k, v in na.attributes.items()} != {k: str(v.value) for k, v in nb.attributes.items()}:
        return False
    return all(same_computation(x, y, depth - 1) for x, y in zip(na.inputs, nb.inputs))
