"""FLOP and byte counts on graphs whose answers are worked out by hand."""

import numpy as np
import onnx
from onnx import helper, numpy_helper

from bench.limits import MachineRates, Work, count_work


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _vi(name, shape):
    return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)


def test_batched_matmul_with_symbolic_batch():
    # [B, 16, 32] @ [32, 8] at B=3: 2 * (3*16*8) * 32 flops; weights 32*8 floats; io 3*16*32 + 3*16*8
    w = numpy_helper.from_array(np.zeros((32, 8), np.float32), "w")
    model = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], [_vi("x", ["B", 16, 32])], [_vi("y", ["B", 16, 8])], [w]
    )
    work = count_work(model, {"x": np.zeros((3, 16, 32), np.float32)})
    assert work.flops == 2 * 3 * 16 * 8 * 32
    assert work.bytes == 4 * (32 * 8 + 3 * 16 * 32 + 3 * 16 * 8)


def test_gemm_with_transposed_a():
    # Gemm(A^T, B) with A stored [K=10, M=4], B [10, 6]: 2*M*N*K = 2*4*6*10
    model = _model(
        [helper.make_node("Gemm", ["a", "b"], ["y"], transA=1)],
        [_vi("a", [10, 4]), _vi("b", [10, 6])],
        [_vi("y", [4, 6])],
    )
    assert (
        count_work(model, {"a": np.zeros((10, 4), np.float32), "b": np.zeros((10, 6), np.float32)}).flops
        == 2 * 4 * 6 * 10
    )


def test_grouped_strided_conv():
    # N=1, C_in=4, 8x8, 6 filters in 2 groups of 3x3 (weight [6, 2, 3, 3]), stride 2, pad 1 -> [1, 6, 4, 4]
    # each output element: 2 * (2 * 3 * 3) flops
    w = numpy_helper.from_array(np.zeros((6, 2, 3, 3), np.float32), "w")
    model = _model(
        [helper.make_node("Conv", ["x", "w"], ["y"], group=2, strides=[2, 2], pads=[1, 1, 1, 1])],
        [_vi("x", [1, 4, 8, 8])],
        [_vi("y", None)],
        [w],
    )
    assert count_work(model, {"x": np.zeros((1, 4, 8, 8), np.float32)}).flops == 2 * (6 * 4 * 4) * (2 * 3 * 3)


def test_elementwise_work_is_not_counted_but_its_bytes_are():
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [1000])], [_vi("y", [1000])])
    work = count_work(model, {"x": np.zeros(1000, np.float32)})
    assert work.flops == 0
    assert work.bytes == 2 * 4 * 1000


def test_floor_is_the_slower_of_compute_and_memory():
    rates = MachineRates(gemm_flops_per_s=1e11, bytes_per_s=1e10)
    assert rates.floor_s(Work(flops=1e11, bytes=1e9)) == 1.0
    assert rates.floor_s(Work(flops=1e9, bytes=1e11)) == 10.0


def test_matmul_behind_a_computed_reshape_is_counted():
    # x [B, S*4] reshaped with a shape computed at run time to [B*S, 4], then @ w [4, 8]:
    # static inference cannot know the rows; the count must still be 2 * (B*S*8) * 4.
    w = numpy_helper.from_array(np.zeros((4, 8), np.float32), "w")
    four = numpy_helper.from_array(np.array([-1, 4], np.int64), "rows_by_4")
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Concat", ["rows_by_4"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"]),
        helper.make_node("MatMul", ["r", "w"], ["y"]),
    ]
    model = _model(nodes, [_vi("x", ["B", "S4"])], [_vi("y", None)], [w, four])
    assert count_work(model, {"x": np.zeros((2, 12), np.float32)}).flops == 2 * (6 * 8) * 4


def test_embedding_table_counts_only_the_rows_gathered():
    # a 1000 x 8 table, 5 ids: 5 rows of 8 floats are read, not the whole table
    table = numpy_helper.from_array(np.zeros((1000, 8), np.float32), "table")
    model = _model(
        [helper.make_node("Gather", ["table", "ids"], ["y"])],
        [helper.make_tensor_value_info("ids", onnx.TensorProto.INT64, [5])],
        [_vi("y", [5, 8])],
        [table],
    )
    work = count_work(model, {"ids": np.arange(5, dtype=np.int64)})
    assert work.bytes == 4 * 5 * 8 + 8 * 5 + 4 * 5 * 8  # rows read + ids + output
