import numpy as np
import pytest

from graphopt.passes.onnx import cleanup
from tests.passes.onnx.harness import assert_no_site, assert_rewrites, ops, parse

RNG = np.random.default_rng(0)


def test_cast_identity_removes_same_type_cast():
    model = parse("""<ir_version: 8, opset_import: ["" : 18]> g (float[2,3] x) => (float[2,3] y) {
        c = Cast<to=1>(x)
        y = Relu(c) }""")
    out = assert_rewrites(model, cleanup.cast_identity, {"x": RNG.standard_normal((2, 3), dtype=np.float32)})
    assert "Cast" not in ops(out)


def test_cast_identity_keeps_type_changing_cast():
    model = parse("""<ir_version: 8, opset_import: ["" : 18]> g (float[2] x) => (float16[2] y) {
        y = Cast<to=10>(x) }""")
    assert_no_site(model, cleanup.cast_identity)


def test_cast_cast_collapses_lossless_widening():
    model = parse("""<ir_version: 8, opset_import: ["" : 18]> g (float16[4] x) => (double[4] y) {
        a = Cast<to=1>(x)
        y = Cast<to=11>(a) }""")
    out = assert_rewrites(model, cleanup.cast_cast, {"x": RNG.standard_normal(4).astype(np.float16)})
    assert ops(out) == ["Cast"]


def test_cast_cast_refuses_narrowing_first():
    # f32 -> f16 -> f32 rounds; collapsing it would skip the rounding.
    model = parse("""<ir_version: 8, opset_import: ["" : 18]> g (float[4] x) => (float[4] y) {
        a = Cast<to=10>(x)
        y = Cast<to=1>(a) }""")
    assert_no_site(model, cleanup.cast_cast)


def test_reshape_reshape_collapses():
    model = parse("""<ir_version: 8, opset_import: ["" : 18]> g (float[2,3,4] x) => (float[6,4] y) {
        s1 = Constant<value = int64[2] {4, 6}>()
        s2 = Constant<value = int64[2] {-1, 4}>()
        a = Reshape(x, s1)
        y = Reshape(a, s2) }""")
    out = assert_rewrites(model, cleanup.reshape_reshape, {"x": RNG.standard_normal((2, 3, 4), dtype=np.float32)})
    assert ops(out).count("Reshape") == 1


def test_reshape_reshape_refuses_zero_entry():
    # 0 copies a dimension from the *intermediate*; reading it from x instead changes the shape.
    model = parse("""<ir_version: 8, opset_import: ["" : 18]> g (float[2,3,4] x) => (float[4,6] y) {
        s1 = Constant<value = int64[2] {4, 6}>()
        s2 = Constant<value = int64[2] {0, -1}>()
        a = Reshape(x, s1)
        y = Reshape(a, s2) }""")
    assert_no_site(model, cleanup.reshape_reshape)


@pytest.mark.parametrize(("p1", "p2"), [((1, 0, 2), (1, 0, 2)), ((0, 2, 1), (1, 0, 2)), ((2, 0, 1), (2, 1, 0))])
def test_transpose_transpose_composes(p1, p2):
    model = parse(f"""<ir_version: 8, opset_import: ["" : 18]> g (float[2,3,4] x) => (float[a,b,c] y) {{
        a = Transpose<perm = [{",".join(map(str, p1))}]>(x)
        y = Transpose<perm = [{",".join(map(str, p2))}]>(a) }}""")
    out = assert_rewrites(model, cleanup.transpose_transpose, {"x": RNG.standard_normal((2, 3, 4), dtype=np.float32)})
    assert ops(out).count("Transpose") <= 1
