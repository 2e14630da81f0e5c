import numpy as np
import onnx_ir as ir
import pytest

from graphopt.passes.onnx import gelu
from tests.passes.onnx.harness import assert_no_site, assert_rewrites, ops, parse

RNG = np.random.default_rng(0)
HEADER = '<ir_version: 8, opset_import: ["" : 18]>'
# Include large magnitudes and exact zeros: erf saturates there and GELU(0) = 0 exactly.
X = np.concatenate([RNG.standard_normal(60).astype(np.float32) * 3, np.array([0.0, -0.0, 12.0, -12.0], np.float32)])


def _model(body: str, dtype: str = "float") -> str:
    return f"{HEADER} g ({dtype}[64] x) => ({dtype}[64] y) {{ {body} }}"


DYNAMO = """sqrt2 = Constant<value = float {1.4142135}>()
    half = Constant<value = float {0.5}>()
    one = Constant<value = float {1.0}>()
    d = Div(x, sqrt2)
    e = Erf(d)
    a = Add(e, one)
    m = Mul(half, a)
    y = Mul(x, m)"""


@pytest.mark.parametrize(
    ("rule", "body"),
    [
        (gelu.gelu_erf_div, DYNAMO),
        # the same with operands swapped: 0.5 written second, x written second
        (gelu.gelu_erf_div, DYNAMO.replace("Mul(half, a)", "Mul(a, half)").replace("Mul(x, m)", "Mul(m, x)")),
        (gelu.gelu_erf_mul, DYNAMO.replace("{1.4142135}", "{0.70710677}").replace("Div(x, sqrt2)", "Mul(x, sqrt2)")),
        (
            gelu.gelu_erf_legacy,
            DYNAMO.replace("m = Mul(half, a)\n    y = Mul(x, m)", "m = Mul(x, a)\n    y = Mul(m, half)"),
        ),
    ],
)
def test_erf_gelu_becomes_ort_gelu(rule, body):
    out = assert_rewrites(parse(_model(body)), rule, {"x": X})
    assert ops(out) == ["Gelu"]
    assert next(iter(out.graph)).domain == "com.microsoft"


def test_wrong_constant_is_not_gelu():
    # 0.6 instead of 0.5: a different function, not a GELU.
    assert_no_site(parse(_model(DYNAMO.replace("{0.5}", "{0.6}"))), gelu.gelu_erf_div)


def test_wrong_scale_is_not_gelu():
    assert_no_site(parse(_model(DYNAMO.replace("{1.4142135}", "{1.5}"))), gelu.gelu_erf_div)


def test_different_erf_operand_is_not_gelu():
    # erf of z while multiplying x: the pattern's x is bound twice to different values.
    body = DYNAMO.replace("d = Div(x, sqrt2)", "z = Neg(x)\n    d = Div(z, sqrt2)")
    assert_no_site(parse(_model(body)), gelu.gelu_erf_div)


def test_float16_is_refused():
    # ORT's com.microsoft::Gelu CPU kernel takes float32 only.
    model = parse(_model(DYNAMO))
    model.graph.inputs[0].dtype = ir.DataType.FLOAT16
    for node in model.graph:
        if node.op_type == "Constant":
            value = node.attributes["value"].as_tensor().numpy().astype(np.float16)
            node.attributes["value"] = ir.AttrTensor("value", ir.tensor(value))
    assert_no_site(model, gelu.gelu_erf_div)
