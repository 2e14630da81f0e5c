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
