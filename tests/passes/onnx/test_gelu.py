import numpy as np
import onnx_ir as ir
import pytest

from graphopt.formats.onnx import files as onnx_files
from graphopt.formats.onnx.matching import find_sites
from graphopt.formats.onnx.rewrite import rewrite_to_fixpoint
from graphopt.passes.onnx import gelu
from tests.passes.onnx.harness import assert_no_site, assert_rewrites, ops, parse, run

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


DISTRIBUTED = """sqrt2 = Constant<value = float {1.4142135}>()
    half = Constant<value = float {0.5}>()
    half_again = Constant<value = float {0.5}>()
    d = Div(x, sqrt2)
    e = Erf(d)
    s = Mul(half_again, e)
    m = Add(half, s)
    y = Mul(x, m)"""


@pytest.mark.parametrize(
    ("rule", "body"),
    [
        (gelu.gelu_erf_distributed, DISTRIBUTED),
        (
            gelu.gelu_erf_distributed,
            DISTRIBUTED.replace("Add(half, s)", "Add(s, half)").replace("Mul(x, m)", "Mul(m, x)"),
        ),
        (
            gelu.gelu_erf_distributed_mul,
            DISTRIBUTED.replace("{1.4142135}", "{0.70710677}").replace("Div(x, sqrt2)", "Mul(x, sqrt2)"),
        ),
    ],
)
def test_distributed_gelu_becomes_the_canonical_spelling_bit_for_bit(rule, body):
    model = parse(_model(body))
    out = assert_rewrites(model, rule, {"x": X})
    scale = "Div" if rule is gelu.gelu_erf_distributed else "Mul"
    assert sorted(set(ops(out)) - {"Constant"}) == sorted({scale, "Erf", "Add", "Mul"}) and ops(out).count("Add") == 1
    assert all(n.domain == "" for n in out.graph)  # standard ops only: OpenVINO reads them
    # 0.5 * (1 + e) and 0.5 + 0.5 * e are the same bits (scaling by a power of two is exact)
    np.testing.assert_array_equal(run(model, {"x": X})[0], run(out, {"x": X})[0])
    # and the ORT rule takes the canonical form afterwards
    assert [s.rule for s in find_sites(out, gelu.RULES)] in (["gelu-erf"], ["gelu-erf-mul"])


@pytest.mark.parametrize("numpy_type", [np.float64, np.float16])
def test_distributed_gelu_of_other_float_types_keeps_its_type(numpy_type):
    """ORT has no CPU Erf for these types to run the graph on: the rewrite is checked for its
    form, its constant's type, and (float16) sqrt 2 as float16 rounds it."""
    out = onnx_files.copy(_as_type(parse(_model(DISTRIBUTED)), numpy_type))
    assert [s.rule for s in rewrite_to_fixpoint(out, [gelu.gelu_erf_distributed])] == ["gelu-erf-distributed"]
    ones = [n for n in out.graph if n.op_type == "Constant" and n.attributes["value"].as_tensor().numpy() == 1]
    assert [o.attributes["value"].as_tensor().dtype.numpy() for o in ones] == [np.dtype(numpy_type)]


def _as_type(model: ir.Model, numpy_type) -> ir.Model:
    """``model`` (float32 inputs, outputs and Constants) in another float type."""
    for value in [*model.graph.inputs, *model.graph.outputs]:
        value.dtype = ir.DataType.from_numpy(np.dtype(numpy_type))
    for node in model.graph:
        if node.op_type == "Constant":
            array = node.attributes["value"].as_tensor().numpy().astype(numpy_type)
            node.attributes["value"] = ir.AttrTensor("value", ir.tensor(array))
    return model


def test_distributed_gelu_with_another_constant_is_left_alone():
    assert_no_site(
        parse(
            _model(
                DISTRIBUTED.replace(
                    "half_again = Constant<value = float {0.5}>", "half_again = Constant<value = float {0.4}>"
                )
            )
        ),
        gelu.gelu_erf_distributed,
    )
    # Div by 1/sqrt2 is x * sqrt2: not GELU's argument
    assert_no_site(parse(_model(DISTRIBUTED.replace("{1.4142135}", "{0.70710677}"))), gelu.gelu_erf_distributed)
