"""Make a model acceptable to the installed ONNX Runtime without changing what it computes.

onnx 1.23 stamps IR version 14 on every model it writes; ORT 1.31 refuses anything above 13
even when the graph uses nothing newer. The IR version only says which protobuf features the
file may use, so lowering it to the newest one ORT reads is safe whenever the opsets in the file
need no more than that (onnx.helper.find_min_ir_version_for). When they do, we say so.
"""

from __future__ import annotations

import functools

import onnx
import onnxruntime as ort
from onnx import helper

from graphopt.core.errors import BadModelError


@functools.cache
def max_ir_version() -> int:
    """The newest IR version this onnxruntime accepts, probed once with a one-node model."""
    for version in range(onnx.IR_VERSION, 3, -1):
        graph = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "probe",
            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
        )
        probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        probe.ir_version = version
        try:
            ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
            return version
        except Exception:  # ORT raises its own Fail type for an unsupported IR version
            continue
    return 3


def clamp_ir_version(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Lower ``proto.ir_version`` in place to one ORT reads, or explain why that is impossible."""
    newest = max_ir_version()
    if proto.ir_version <= newest:
        return proto
    needed = helper.find_min_ir_version_for(list(proto.opset_import), ignore_unknown=True)
    if needed > newest:
        raise BadModelError(
            f"the model's opsets need IR version {needed}; onnxruntime {ort.__version__} reads at most {newest}"
        )
    proto.ir_version = max(needed, min(newest, proto.ir_version))
    return proto
