import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import helper, numpy_helper

from graphopt.passes.onnx import conv
from tests.passes.onnx.harness import assert_no_site, assert_rewrites, ops, parse

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
    graph = helper.make_graph(
        nodes, "g", graph_inputs, [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], inits
    )
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


# pad-conv: a zero Pad folded into the Conv after it (TF-style "same" padding written out)

PAD_X = {"x": RNG.standard_normal((1, 3, 9, 9), dtype=np.float32)}
_W = "float[4,3,3,3] w = {" + ",".join(f"{v:.3f}" for v in RNG.standard_normal(108)) + "}"
_B = "float[4] b = {0.1, -0.2, 0.3, 0.05}"


def _pad_conv(
    pads: str,
    *,
    mode: str = "constant",
    value: str = "0.0",
    conv_attrs: str = "",
    extra: str = "",
    outputs: str = "float[1,4,?,?] y",
) -> str:
    return f"""<ir_version: 8, opset_import: ["" : 18]> g (float[1,3,9,9] x) => ({outputs}) <{_W}, {_B}> {{
        {pads}
        v = Constant<value = float {{{value}}}>()
        p = Pad<mode="{mode}">(x, pads, v)
        c = Conv{conv_attrs}(p, w, b)
        y = Relu(c) {extra} }}"""


def test_a_zero_pad_with_constant_pads_folds_into_the_conv():
    model = parse(
        _pad_conv("pads = Constant<value = int64[8] {0, 0, 1, 2, 0, 0, 2, 1}>()", conv_attrs="<pads=[1, 1, 1, 1]>")
    )
    out = assert_rewrites(model, conv.pad_value_conv_bias, PAD_X)
    assert "Pad" not in ops(out)


def test_pads_computed_from_constants_are_folded_first():
    chain = """z = Constant<value = int64[1] {4}>()
        zeros = ConstantOfShape<value = int64[1] {0}>(z)
        tail = Constant<value = int64[4] {0, 0, 1, 1}>()
        long = Concat<axis=0>(zeros, tail)
        pads = Cast<to=7>(long)"""  # the shape of torch's legacy F.pad export
    out = assert_rewrites(
        model := parse(_pad_conv(chain, conv_attrs='<auto_pad="VALID">')), conv.pad_value_conv_bias, PAD_X
    )
    assert "Pad" not in ops(out) and len(ops(out)) < len(ops(model))


@pytest.mark.parametrize(
    "pads, mode, value, why",
    [
        (
            "pads = Constant<value = int64[8] {0, 0, 1, 1, 0, 0, 1, 1}>()",
            "reflect",
            "0.0",
            "reflect padding is not zeros",
        ),
        ("pads = Constant<value = int64[8] {0, 0, 1, 1, 0, 0, 1, 1}>()", "constant", "1.0", "a non-zero fill"),
        ("pads = Constant<value = int64[8] {0, 1, 1, 1, 0, 0, 1, 1}>()", "constant", "0.0", "padding the channels"),
        ("pads = Constant<value = int64[8] {0, 0, -1, 0, 0, 0, 1, 1}>()", "constant", "0.0", "a negative pad crops"),
    ],
)
def test_pads_that_are_not_the_convs_zero_padding_stay(pads, mode, value, why):
    assert_no_site(parse(_pad_conv(pads, mode=mode, value=value)), conv.pad_value_conv_bias)


def test_pads_from_an_input_or_a_same_padded_conv_stay():
    runtime = (
        '<ir_version: 8, opset_import: ["" : 18]> '
        """g (float[1,3,9,9] x, int64[8] pads) => (float[1,4,?,?] y) <{_W}, {_B}> {{
        v = Constant<value = float {{0.0}}>()
        p = Pad(x, pads, v)
        c = Conv(p, w, b)
        y = Relu(c) }}""".replace("{_W}", _W)
        .replace("{_B}", _B)
        .replace("{{", "{")
        .replace("}}", "}")
    )
    assert_no_site(parse(runtime), conv.pad_value_conv_bias)
    same = _pad_conv(
        "pads = Constant<value = int64[8] {0, 0, 1, 1, 0, 0, 1, 1}>()", conv_attrs='<auto_pad="SAME_UPPER">'
    )
    assert_no_site(parse(same), conv.pad_value_conv_bias)


def test_a_pad_read_by_another_node_too_stays():
    model = _pad_conv(
        "pads = Constant<value = int64[8] {0, 0, 1, 1, 0, 0, 1, 1}>()",
        extra="\n        z = Relu(p)",
        outputs="float[1,4,?,?] y, float[1,3,11,11] z",
    )
    assert_no_site(parse(model), conv.pad_value_conv_bias)


def _qdq(zero2: int) -> str:
    return f"""<ir_version: 8, opset_import: ["" : 18]> g (float[1,3,9,9] x) => (float[1,4,?,?] y) <{_W}, {_B}> {{
        s = Constant<value = float {{0.05}}>()
        zp = Constant<value = uint8 {{128}}>()
        zp2 = Constant<value = uint8 {{{zero2}}}>()
        pads = Constant<value = int64[8] {{0, 0, 1, 1, 0, 0, 1, 1}}>()
        v = Constant<value = float {{0.0}}>()
        p = Pad(x, pads, v)
        q = QuantizeLinear(p, s, zp)
        d = DequantizeLinear(q, s, zp2)
        c = Conv(d, w, b)
        y = Relu(c) }}"""


def test_the_quantized_form_folds_when_the_pair_shares_its_zero_point():
    out = assert_rewrites(parse(_qdq(128)), conv.pad_qdq_conv, PAD_X)
    assert "Pad" not in ops(out) and ops(out).count("QuantizeLinear") == 1


def test_the_quantized_form_stays_when_a_padded_zero_would_not_dequantize_to_zero():
    assert_no_site(parse(_qdq(120)), conv.pad_qdq_conv)
