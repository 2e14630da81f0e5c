"""Handing ORT a model's weights from memory instead of serializing them with the graph.

Serializing a 440 MB BERT-base into one protobuf for every session the search creates costs
~3 s each (most of a search's time on such models). ORT can take initializers as OrtValues
(``SessionOptions.add_external_initializers``): the graph is serialized with each large
initializer declared as external data (a location that is never read), and the arrays, wrapped
without copying, replace them. ORT keeps pointers into those arrays, so the caller keeps them
alive as long as the session (CompiledGraph holds them).
"""

from __future__ import annotations

import contextlib

import numpy as np
import onnx_ir as ir
import onnxruntime as ort

MIN_BYTES = 1024  # smaller initializers stay inline (shape constants ORT folds)
NEVER_READ = "graphopt-in-memory.bin"


def _arrays(model: ir.Model) -> dict[str, np.ndarray] | None:
    """name -> C-contiguous array of each large initializer, or None when one has no numpy form
    ORT can take (bfloat16, float8, 4-bit types: the caller serializes instead)."""
    arrays = {}
    for name, value in model.graph.initializers.items():
        tensor = value.const_value
        if tensor is None or tensor.nbytes < MIN_BYTES:
            continue
        array = np.ascontiguousarray(tensor.numpy())
        if array.dtype.kind not in "fiub" or array.dtype.itemsize > 8:
            return None
        arrays[name] = array
    return arrays


@contextlib.contextmanager
def _declared_external(model: ir.Model, names):
    """The named initializers swapped for external-data stand-ins while the graph is serialized."""
    saved = {}
    try:
        for name in names:
            value = model.graph.initializers[name]
            tensor = value.const_value
            saved[name] = tensor
            value.const_value = ir.ExternalTensor(
                NEVER_READ, 0, tensor.nbytes, tensor.dtype, shape=tensor.shape, name=name
            )
        yield
    finally:
        for name, tensor in saved.items():
            model.graph.initializers[name].const_value = tensor


def graph_and_weights(model: ir.Model, options: ort.SessionOptions, serialize) -> tuple[bytes, list] | None:
    """(the graph as bytes, the OrtValues to keep alive) with the weights registered on
    ``options``; None when some weight cannot be handed over this way."""
    arrays = _arrays(model)
    if not arrays:
        return None
    with _declared_external(model, arrays):
        graph = serialize(model)
    values = [ort.OrtValue.ortvalue_from_numpy(array) for array in arrays.values()]
    options.add_external_initializers(list(arrays), values)
    return graph, [arrays, values]
