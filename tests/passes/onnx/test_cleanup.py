import numpy as np
import pytest
from numpy.testing import assert_array_equal

from graphopt.passes.onnx import cleanup
from tests.passes.onnx.harness import assert_no_site, assert_rewrites, ops, parse, run

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


def test_where_scalar_makes_one_element_constants_scalars_exactly():
    # the legacy exporter's SDPA: Where(mask, [0.0], [-inf]) and Where(IsNaN(p), [0.0], p)
    model = parse("""<ir_version: 8, opset_import: ["" : 18]>
      g (bool[2,1,3,5] m, float[2,4,3,5] p) => (float[2,4,3,5] y) {
        zero = Constant<value = float[1] {0.0}>()
        low = Constant<value = float[1] {-inf}>()
        bias = Where(m, zero, low)
        s = Add(p, bias)
        n = IsNaN(s)
        y = Where(n, zero, s) }""")
    feeds = {"m": RNG.random((2, 1, 3, 5)) < 0.7, "p": RNG.standard_normal((2, 4, 3, 5), dtype=np.float32)}
    feeds["m"][..., 0] = True
    out = assert_rewrites(model, cleanup.where_scalar, feeds)
    assert_array_equal(run(out, feeds)[0], run(model, feeds)[0])  # exact: the same value, broadcast
    wheres = [n for n in out.graph if n.op_type == "Where"]
    assert all(v.const_value is None or v.const_value.shape == () for n in wheres for v in n.inputs[1:])


def test_where_scalar_keeps_a_constant_that_raises_the_rank():
    # Where(c[5], [[1.0]], b[5]) broadcasts to [1, 5]: a scalar would give [5]
    model = parse("""<ir_version: 8, opset_import: ["" : 18]> g (bool[5] c, float[5] b) => (float[1,5] y) {
        one = Constant<value = float[1,1] {1.0}>()
        y = Where(c, one, b) }""")
    assert_no_site(model, cleanup.where_scalar)


def test_one_over_is_reciprocal_exactly():
    model = parse("""<ir_version: 8, opset_import: ["" : 18]> g (float[2,8] x) => (float[2,8] y) {
        one = Constant<value = float {1.0}>()
        y = Div(one, x) }""")
    x = RNG.standard_normal((2, 8), dtype=np.float32)
    x[0, :4] = [0.0, -0.0, np.inf, np.nan]
    out = assert_rewrites(model, cleanup.one_over, {"x": x})
    assert ops(out) == ["Reciprocal"]
    assert_array_equal(run(out, {"x": x})[0], run(model, {"x": x})[0])


def test_one_over_leaves_other_numerators():
    model = parse("""<ir_version: 8, opset_import: ["" : 18]> g (float[2,8] x) => (float[2,8] y) {
        two = Constant<value = float {2.0}>()
        y = Div(two, x) }""")
    assert_no_site(model, cleanup.one_over)


def test_reduce_mean_defaults_writes_out_noop_with_empty_axes():
    model = parse("""<ir_version: 8, opset_import: ["" : 18]> g (float[2,3,8] x) => (float[2,3,1] y) {
        axes = Constant<value = int64[1] {-1}>()
        y = ReduceMean<keepdims = 1>(x, axes) }""")
    x = RNG.standard_normal((2, 3, 8), dtype=np.float32)
    out = assert_rewrites(model, cleanup.reduce_mean_defaults, {"x": x})
    node = next(n for n in out.graph if n.op_type == "ReduceMean")
    assert node.attributes.get_int("noop_with_empty_axes") == 0 and node.attributes.get_int("keepdims") == 1
    assert_array_equal(run(out, {"x": x})[0], run(model, {"x": x})[0])
    assert_no_site(out, cleanup.reduce_mean_defaults)
