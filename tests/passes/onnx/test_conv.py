import numpy as np
import onnx
import onnx_ir as ir
from onnx import helper, numpy_helper

from graphopt.passes.onnx import conv
from tests.passes.onnx.harness import assert_no_site, assert_rewrites, ops

RNG = np.random.default_rng(0)


def _conv_bn(with_bias: bool, group: int = 1, constant_stats: bool = True) -> ir.Model:
    c_in, c_out = 4, 6
    inits = [
        numpy_helper.from_array(RNG.standard_normal((c_out, c_in // group, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(RNG.random(c_out).astype(np.float32) + 0.5, "gamma"),
        numpy_helper.from_array(RNG.standard_normal(c_out).astype(np.float32), "beta"),
        numpy_helper.from_array(RNG.standard_normal(c_out).astype(np.float32), "mean"),
    ]
    graph_inputs = [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, c_in, 8, 8])]
    if constant_stats:
        inits.append(numpy_helper.from_array(RNG.random(c_out).astype(np.float32) + 0.5, "var"))
    else:
        graph_inputs.append(helper.make_tensor_value_info("var", onnx.TensorProto.FLOAT, [c_out]))
    conv_inputs = ["x", "w"]
    if with_bias:
        inits.append(numpy_helper.from_array(RNG.standard_normal(c_out).astype(np.float32), "b"))
        conv_inputs.append("b")
    nodes = [
        helper.make_node("Conv", conv_inputs, ["c"], pads=[1, 1, 1, 1], group=group),
        helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["y"], epsilon=1e-3),
    ]
    graph = helper.make_graph(nodes, "g", graph_inputs, [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], inits)
    return ir.serde.deserialize_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))


X = {"x": RNG.standard_normal((1, 4, 8, 8), dtype=np.float32)}


def test_conv_bn_folds_with_bias():
    assert ops(assert_rewrites(_conv_bn(True), conv.conv_bn, X)) == ["Conv"]


def test_conv_bn_folds_without_bias():
    assert ops(assert_rewrites(_conv_bn(False), conv.conv_bn_no_bias, X)) == ["Conv"]


def test_grouped_conv_bn_folds():
    assert ops(assert_rewrites(_conv_bn(True, group=2), conv.conv_bn, X)) == ["Conv"]


def test_runtime_statistics_are_not_folded():
    assert_no_site(_conv_bn(True, constant_stats=False), conv.conv_bn)
