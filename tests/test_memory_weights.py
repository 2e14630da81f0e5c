"""ORT sessions over models with large weights take them from memory (no protobuf of the
weights): outputs equal numpy's, the fusion report is still read, and the session keeps working
after the model it came from is gone."""

from __future__ import annotations

import gc

import numpy as np
import onnx_ir as ir
from onnx import TensorProto, helper, numpy_helper

from graphopt.targets.onnxruntime import OrtTarget
from graphopt.targets.onnxruntime.target import IN_MEMORY_FROM_BYTES


def _large_matmul(rows: int) -> tuple[ir.Model, np.ndarray]:
    weight = np.random.default_rng(0).standard_normal((rows, 2048)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, rows])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2048])],
        [numpy_helper.from_array(weight, "w")],
    )
    return ir.serde.deserialize_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])), weight


def test_large_weights_from_memory_give_the_same_outputs():
    rows = IN_MEMORY_FROM_BYTES // (2048 * 4) + 16  # just over the threshold
    model, weight = _large_matmul(rows)
    x = np.random.default_rng(1).standard_normal((3, rows)).astype(np.float32)
    compiled = OrtTarget().compile(model)
    assert compiled.kept_alive  # the weights went through memory, not through the protobuf
    assert compiled.report is not None and compiled.report.kernels >= 1
    del model
    gc.collect()
    expected = np.maximum(x @ weight, 0)
    # fp32 MatMul over ~4k terms: ORT's blocked GEMM sums in another order than numpy's
    np.testing.assert_allclose(compiled.run({"x": x})[0], expected, rtol=1e-4, atol=1e-3)


def test_small_models_stay_one_protobuf():
    model, _ = _large_matmul(64)
    assert OrtTarget().compile(model).kept_alive == []
