"""hard-sigmoid / hard-swish (passes/onnx/hard.py): relu6(x + 3) / 6 and x * relu6(x + 3) / 6 as
Keras, Paddle and MobileNetV3 code write them, back to HardSigmoid and HardSwish."""

import numpy as np
import pytest

from graphopt.formats.onnx.rewrite import rewrite_to_fixpoint
from graphopt.passes.onnx import hard
from tests.passes.onnx.harness import assert_no_site, assert_rewrites, assert_same_outputs, ops, parse

RNG = np.random.default_rng(0)
X = {"x": (RNG.standard_normal((2, 8, 5, 5)) * 4).astype(np.float32)}  # spans both clip bounds (|x| > 3)


def _model(body: str, opset: int = 18, three: str = "3.0", six: str = "6.0", divisor: str = "6.0") -> str:
    return f"""<ir_version: 8, opset_import: ["" : {opset}]> g (float[2,8,5,5] x) => (float[2,8,5,5] y) {{
        three = Constant<value = float {{{three}}}>()
        zero = Constant<value = float {{0.0}}>()
        six = Constant<value = float {{{six}}}>()
        d = Constant<value = float {{{divisor}}}>()
        s = Add(x, three)
        r = Clip(s, zero, six)
        {body} }}"""


def test_relu6_of_x_plus_3_over_6_is_a_hard_sigmoid():
    out = assert_rewrites(parse(_model("y = Div(r, d)")), hard.hard_sigmoid, X)
    assert ops(out) == ["HardSigmoid"]


def test_times_one_sixth_is_a_hard_sigmoid_too():
    out = assert_rewrites(parse(_model("y = Mul(d, r)", divisor=str(1 / 6))), hard.hard_sigmoid_mul, X)
    assert ops(out) == ["HardSigmoid"]


def test_x_times_the_hard_sigmoid_is_a_hard_swish():
    original = parse(_model("g = Div(r, d)\n        y = Mul(x, g)"))
    rewritten = parse(_model("g = Div(r, d)\n        y = Mul(x, g)"))
    applied = rewrite_to_fixpoint(rewritten, [hard.hard_sigmoid, hard.hard_swish])
    assert [s.rule for s in applied] == ["hard-sigmoid", "hard-swish"] and ops(rewritten) == ["HardSwish"]
    assert_same_outputs(original, rewritten, X)


def test_paddles_order_is_a_hard_swish():
    out = assert_rewrites(parse(_model("m = Mul(x, r)\n        y = Div(m, d)")), hard.hard_swish_div, X)
    assert ops(out) == ["HardSwish"]


@pytest.mark.parametrize("three, six, divisor", [("2.0", "6.0", "6.0"), ("3.0", "5.0", "6.0"), ("3.0", "6.0", "5.0")])
def test_other_constants_are_not_hard_activations(three, six, divisor):
    assert_no_site(parse(_model("y = Div(r, d)", three=three, six=six, divisor=divisor)), hard.hard_sigmoid)
    assert_no_site(
        parse(_model("m = Mul(x, r)\n        y = Div(m, d)", three=three, six=six, divisor=divisor)),
        hard.hard_swish_div,
    )


def test_below_opset_14_it_is_x_times_a_hard_sigmoid():
    out = assert_rewrites(parse(_model("m = Mul(x, r)\n        y = Div(m, d)", opset=13)), hard.hard_swish_div, X)
    assert sorted(ops(out)) == ["HardSigmoid", "Mul"]
    original = parse(_model("g = Div(r, d)\n        y = Mul(x, g)", opset=13))
    rewritten = parse(_model("g = Div(r, d)\n        y = Mul(x, g)", opset=13))
    assert [s.rule for s in rewrite_to_fixpoint(rewritten, [hard.hard_sigmoid, hard.hard_swish])] == [
        "hard-sigmoid"
    ]  # no HardSwish at 13
    assert_same_outputs(original, rewritten, X)
