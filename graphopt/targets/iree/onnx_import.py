"""ONNX models into IREE: bound to static shapes, imported with IREE's own ONNX importer (what
``iree-import-onnx`` runs), compiled with ``--iree-input-type=onnx``.

IREE compiles static shapes here, and its importer needs every value's type, graph outputs
included (an output left without a shape imports as a scalar and fails to compile). So the
model's input dims are set to the feeds' shapes, its output shapes cleared, and ONNX's shape
inference (with data propagation, for Reshape targets computed from Shape) fills them in. Initializers
become constants of the imported module, so IREE's const-expr hoisting moves what depends on
weights alone (data-tiling packs, transposes) into its initializer, as it does for weights held
as parameters in StableHLO. Taken as ONNX serializes them (a protobuf under 2 GB).

The import is returned as MLIR bytecode (the weights as a binary blob, not a hex string) for the
compiler to read from a file (cache.py).
"""

from __future__ import annotations

import io

import numpy as np

from graphopt.core.errors import BadModelError

PROTOBUF_LIMIT = 2**31 - 1


def static_proto(model, shapes: dict[str, tuple[int, ...]]):
    """``model`` (an onnx_ir.Model) as a ModelProto with its inputs bound to ``shapes`` and every
    value's shape inferred."""
    import onnx
    import onnx_ir as ir

    proto = ir.serde.serialize_model(model)
    _inline_external(proto, model)
    if proto.ByteSize() > PROTOBUF_LIMIT:
        raise BadModelError("IREE's ONNX importer takes models under 2 GB; this one is larger")
    for value in proto.graph.input:
        if value.name in shapes:
            value.type.tensor_type.ClearField("shape")
            for size in shapes[value.name]:
                value.type.tensor_type.shape.dim.add().dim_value = int(size)
    for value in proto.graph.output:
        value.type.tensor_type.ClearField("shape")
    try:
        return onnx.shape_inference.infer_shapes(proto, data_prop=True)
    except Exception as error:  # onnx's InferenceError: the model's own inconsistency
        raise BadModelError(f"ONNX shape inference fails on the model: {str(error).splitlines()[0][:200]}") from None


def _inline_external(proto, model) -> None:
    """Weights kept in a file beside the model (``<name>.onnx.data``) copied into ``proto``: the
    importer reads tensors from the proto it is given, not from files."""
    import onnx

    values = model.graph.initializers
    for tensor in proto.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL and tensor.name in values:
            array = values[tensor.name].const_value.numpy()
            tensor.ClearField("external_data")
            tensor.data_location = onnx.TensorProto.DEFAULT
            tensor.raw_data = np.ascontiguousarray(array).tobytes()


def imported(proto) -> tuple[bytes, str]:
    """(the torch-dialect module IREE's importer makes of ``proto``, as bytecode; its function name)."""
    from iree.compiler import ir
    from iree.compiler.extras import onnx_importer

    with ir.Context() as context:
        try:
            info = onnx_importer.ModelInfo(proto)
            module = info.create_module(context=context).operation
            importer = onnx_importer.NodeImporter.define_function(info.main_graph, module)
            importer.import_all()
        except Exception as error:  # the importer's OnnxImportError and friends: an op it cannot take
            raise BadModelError(f"IREE cannot import the ONNX model: {str(error).splitlines()[0][:200]}") from None
        if not module.verify():
            raise BadModelError("IREE's ONNX importer made an invalid module")
        function = next(op for op in module.regions[0].blocks[0].operations if op.operation.name == "func.func")
        buffer = io.BytesIO()
        module.write_bytecode(buffer)
        return buffer.getvalue(), ir.StringAttr(function.attributes["sym_name"]).value


def shapes_of(feeds) -> dict[str, tuple[int, ...]]:
    return {name: tuple(np.shape(value)) for name, value in feeds.items()}
