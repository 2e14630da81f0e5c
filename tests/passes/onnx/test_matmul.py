import numpy as np

from graphopt.passes.onnx import matmul
from tests.passes.onnx.harness import assert_no_site, assert_rewrites, ops, parse

RNG = np.random.default_rng(0)


def test_2d_matmul_add_becomes_gemm():
    model = parse(
        '<ir_version: 8, opset_import: ["" : 18]> '
        """g (float[4,8] a, float[8,5] b, float[5] c) => (float[4,5] y) {
        m = MatMul(a, b)
        y = Add(m, c) }"""
    )
    feeds = {
        "a": RNG.standard_normal((4, 8), dtype=np.float32),
        "b": RNG.standard_normal((8, 5), dtype=np.float32),
        "c": RNG.standard_normal(5, dtype=np.float32),
    }
    assert ops(assert_rewrites(model, matmul.matmul_add_to_gemm, feeds)) == ["Gemm"]


def test_bias_first_operand_order_also_matches():
    model = parse(
        '<ir_version: 8, opset_import: ["" : 18]> '
        """g (float[4,8] a, float[8,5] b, float[4,1] c) => (float[4,5] y) {
        m = MatMul(a, b)
        y = Add(c, m) }"""
    )
    feeds = {
        "a": RNG.standard_normal((4, 8), dtype=np.float32),
        "b": RNG.standard_normal((8, 5), dtype=np.float32),
        "c": RNG.standard_normal((4, 1), dtype=np.float32),
    }
    assert ops(assert_rewrites(model, matmul.matmul_add_to_gemm, feeds)) == ["Gemm"]


def test_3d_matmul_is_left_alone():
    model = parse(
        '<ir_version: 8, opset_import: ["" : 18]> '
        """g (float[2,4,8] a, float[8,5] b, float[5] c) => (float[2,4,5] y) {
        m = MatMul(a, b)
        y = Add(m, c) }"""
    )
    assert_no_site(model, matmul.matmul_add_to_gemm)


def test_bias_that_grows_the_result_is_refused():
    # c of shape [3, 4, 5] broadcasts the result up to rank 3: Gemm cannot express that.
    model = parse(
        '<ir_version: 8, opset_import: ["" : 18]> '
        """g (float[4,8] a, float[8,5] b, float[3,4,5] c) => (float[3,4,5] y) {
        m = MatMul(a, b)
        y = Add(m, c) }"""
    )
    assert_no_site(model, matmul.matmul_add_to_gemm)


def test_integer_matmul_is_refused():
    model = parse(
        '<ir_version: 8, opset_import: ["" : 18]> '
        """g (int32[4,8] a, int32[8,5] b, int32[5] c) => (int32[4,5] y) {
        m = MatMul(a, b)
        y = Add(m, c) }"""
    )
    assert_no_site(model, matmul.matmul_add_to_gemm)


def _nd(a_shape: str, c_shape: str) -> str:
    return (
        '<ir_version: 8, opset_import: ["" : 18]> '
        f"""g (float[{a_shape}] a, float[8,5] b, float[{c_shape}] c) => (float[?,?,?] y) {{
        m = MatMul(a, b)
        y = Add(m, c) }}"""
    )


def test_nd_matmul_add_becomes_gemm_between_reshapes():
    feeds = {
        "a": RNG.standard_normal((2, 4, 8), dtype=np.float32),
        "b": RNG.standard_normal((8, 5), dtype=np.float32),
        "c": RNG.standard_normal((1, 1, 5), dtype=np.float32),
    }
    rewritten = assert_rewrites(parse(_nd("2,4,8", "1,1,5")), matmul.matmul_add_to_gemm_nd, feeds)
    assert [op for op in ops(rewritten) if op != "Constant"] == [
        "Reshape",
        "Reshape",
        "Gemm",
        "Reshape",
    ]  # a, c, product


def test_nd_matmul_add_needs_a_static_input_and_a_last_axis_bias():
    assert_no_site(parse(_nd("N,4,8", "5")), matmul.matmul_add_to_gemm_nd)  # the output shape would not be a constant
    assert_no_site(
        parse(_nd("2,4,8", "4,5")), matmul.matmul_add_to_gemm_nd
    )  # a per-row bias: Gemm's c is per column here
