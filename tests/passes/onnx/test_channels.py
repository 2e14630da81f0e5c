import numpy as np
import onnx
import onnx_ir as ir
from onnx import TensorProto, helper, numpy_helper

from graphopt.passes.onnx import channels
from graphopt.targets.onnxruntime import OrtTarget
from tests.passes.onnx.harness import assert_no_site, assert_rewrites, ops

RNG = np.random.default_rng(0)
X = {"x": RNG.standard_normal((1, 16, 8, 8)).astype(np.float32)}


def _chunked(
    activation: str = "silu", cuts=((0, 16), (16, 32)), axis: int = 1, step: int = 1, group: int = 1
) -> ir.Model:
    """YOLOv8's C2f block: a 1x1 Conv(-SiLU) with 32 outputs, chunked in two along the channels
    (torch writes each half as a Slice), the halves concatenated again after some work, and a
    closing 1x1 Conv."""
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[1, 1], group=group)]
    if activation == "silu":
        nodes += [helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Mul", ["c", "s"], ["a"])]
    else:
        nodes += [helper.make_node("Relu", ["c"], ["a"])]
    inits = [
        numpy_helper.from_array(RNG.standard_normal((32, 16 // group, 1, 1)).astype(np.float32), "w"),
        numpy_helper.from_array(RNG.standard_normal(32).astype(np.float32), "b"),
    ]
    halves = []
    for i, (lo, hi) in enumerate(cuts):
        for name, value in (("lo", lo), ("hi", hi), ("ax", axis), ("st", step)):
            inits.append(numpy_helper.from_array(np.asarray([value], np.int64), f"{name}{i}"))
        nodes.append(helper.make_node("Slice", ["a", f"lo{i}", f"hi{i}", f"ax{i}", f"st{i}"], [f"h{i}"]))
        halves.append(f"h{i}")
    joined = sum(len(range(lo, hi, step)) for lo, hi in cuts) if axis == 1 else 32 * len(cuts)
    inits.append(numpy_helper.from_array(RNG.standard_normal((8, joined, 1, 1)).astype(np.float32), "w2"))
    nodes += [
        helper.make_node("Relu", [halves[-1]], ["r"]),
        helper.make_node("Concat", halves[:-1] + ["r"], ["joined"], axis=1),
        helper.make_node("Conv", ["joined", "w2"], ["y"], kernel_shape=[1, 1]),
    ]  # C2f's closing 1x1 Conv
    graph = helper.make_graph(
        nodes,
        "c2f",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, None, None])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    return ir.serde.deserialize_model(model)


def test_chunked_conv_silu_becomes_one_conv_per_half_and_ort_keeps_its_blocked_layout():
    rewritten = assert_rewrites(_chunked(), channels.SLICE_CONV, X)
    assert "Slice" not in ops(rewritten) and ops(rewritten).count("Conv") == 3  # one per half, and the closing one
    before = OrtTarget(level="all").compile(_chunked()).report.ops
    after = OrtTarget(level="all").compile(rewritten).report.ops
    reorders = lambda report: sum(n for op, n in report.items() if "Reorder" in op)  # noqa: E731
    assert reorders(after) < reorders(before)  # NCHWc: no leaving the blocked layout for the Slices


def test_relu_and_grouped_convs_cut_on_group_boundaries():
    assert_rewrites(_chunked("relu"), channels.SLICE_CONV, X)
    assert_rewrites(_chunked("relu", group=2), channels.SLICE_CONV, X)  # 16 outputs per group: halves are whole groups


def test_cuts_that_are_not_plain_channel_ranges_are_refused():
    assert_no_site(_chunked(axis=2, cuts=((0, 4), (4, 8))), channels.SLICE_CONV)  # spatial, not channels
    assert_no_site(_chunked(step=2, cuts=((0, 32), (1, 32))), channels.SLICE_CONV)
    assert_no_site(_chunked("relu", cuts=((0, 8), (8, 32)), group=2), channels.SLICE_CONV)  # splits a group of 16
