"""Symbolic shapes for matching: ORT's symbolic shape inference, onnx's as the fallback.

Rules check shapes ("Q and K have the same sequence length", "the head count is 12"). onnx's
shape inference gives each dimension it cannot name a fresh ``unk__N`` symbol, so on a legacy
export, whose reshapes take computed Concat(Shape, ...) targets, the query and key lengths come
out as two unrelated symbols and every attention pattern's check fails. ORT's
SymbolicShapeInference (onnxruntime.tools.symbolic_shape_infer, the pass ORT's transformers
optimizer runs) evaluates those shape computations and merges dimensions that must be equal
(``auto_merge``), so the same length keeps one name. Only the inferred value shapes are copied
back onto the model; its weights are not re-read.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import sys
import tempfile
from pathlib import Path

import onnx
import onnx_ir as ir
from onnx_ir.passes.common import ShapeInferencePass


def infer_shapes(model: ir.Model) -> str | None:
    """Annotate ``model``'s values with symbolic shapes, in place. Returns a note when only
    onnx's inference could run (or none), else None."""
    reason = "it returned no model"
    try:
        inferred = _symbolic(model)
    except Exception as error:  # the symbolic pass does not know every op; onnx's is the fallback
        inferred = None
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
    if inferred is not None:
        _copy_shapes(inferred, model)
        return None
    try:
        ShapeInferencePass()(model)
    except Exception as error:
        return f"shape inference failed, rules that need shapes will not fire ({str(error).splitlines()[0][:120]})"
    return f"symbolic shape inference failed ({reason}); onnx's shape inference used"


def _symbolic_shape_inference():
    """ORT's SymbolicShapeInference class, loaded from its file alone: importing it through the
    ``onnxruntime.tools`` package runs that package's ``__init__``, which imports torch wherever
    torch is installed (0.25 GB of a run's memory, for a helper graphopt never calls). The module
    itself needs only numpy, onnx and packaging."""
    name = "onnxruntime.tools.symbolic_shape_infer"
    module = sys.modules.get(name) or sys.modules.get("_graphopt_symbolic_shape_infer")
    if module is None:
        origin = Path(importlib.util.find_spec("onnxruntime").origin).parent / "tools" / "symbolic_shape_infer.py"
        spec = importlib.util.spec_from_file_location("_graphopt_symbolic_shape_infer", origin)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module.SymbolicShapeInference


def _symbolic(model: ir.Model):
    SymbolicShapeInference = _symbolic_shape_inference()
    proto = _without_external_weights(model)
    logger = logging.getLogger(SymbolicShapeInference.__module__)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        # When it cannot infer every shape it saves the model, weights included, as
        # sym_shape_infer_temp.onnx plus an external-data file into the current directory before
        # raising: keep that out of the user's directory.
        with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                return SymbolicShapeInference.infer_shapes(proto, auto_merge=True)
    finally:
        logger.setLevel(level)


def _without_external_weights(model: ir.Model):
    """The model as a proto the symbolic pass can read: it works on a message in memory, where
    onnx's checks refuse external tensors. Integer tensors (shape operands, indices) are read into
    the message, since their values matter; floating-point weights, whose values do not, become
    graph inputs of the same type and shape, so nothing large is copied."""
    proto = ir.serde.serialize_model(model)
    external = {
        v.name: v.const_value for v in model.graph.initializers.values() if isinstance(v.const_value, ir.ExternalTensor)
    }
    if not external:
        return proto
    kept = []
    for tensor in proto.graph.initializer:
        source = external.get(tensor.name)
        if source is None:
            kept.append(tensor)
        elif source.dtype.is_floating_point():
            proto.graph.input.append(
                onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims))
            )
        else:
            kept.append(onnx.numpy_helper.from_array(source.numpy(), tensor.name))
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(kept)
    return proto


def _copy_shapes(inferred, model: ir.Model) -> None:
    values = {v.name: v for node in model.graph.all_nodes() for v in node.outputs}
    for info in list(inferred.graph.value_info) + list(inferred.graph.output):
        value = values.get(info.name)
        if value is None or not info.type.HasField("tensor_type"):
            continue
        value.shape = ir.serde.deserialize_type_proto_for_shape(info.type)
        if value.type is None:
            value.type = ir.serde.deserialize_type_proto_for_type(info.type)


# ORT contrib ops whose first output has the type and shape of their first input. onnx's
# inference does not know them, so a value a rule wrote through one would lose its shape and the
# next stage's checks (head counts, dtypes) could not run.
SHAPE_PRESERVING_CONTRIB_OPS = frozenset(
    {
        "RotaryEmbedding",
        "SimplifiedLayerNormalization",
        "SkipSimplifiedLayerNormalization",
        "SkipLayerNormalization",
        "FastGelu",
        "BiasGelu",
        "Gelu",
        "QuickGelu",
    }
)


def fill_contrib_shapes(model: ir.Model) -> None:
    """Give the first output of each shape-preserving contrib op its input's type and shape
    where inference left them unknown, in place."""
    for node in model.graph.all_nodes():
        if node.domain != "com.microsoft" or node.op_type not in SHAPE_PRESERVING_CONTRIB_OPS:
            continue
        source, out = node.inputs[0], node.outputs[0]
        if source is None:
            continue
        if out.type is None and source.type is not None:
            out.type = source.type
        if out.shape is None and source.shape is not None:
            out.shape = source.shape
