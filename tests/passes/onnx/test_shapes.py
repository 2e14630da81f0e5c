import numpy as np

from graphopt.passes.onnx import shapes
from tests.passes.onnx.harness import assert_no_site, assert_rewrites, ops, parse

RNG = np.random.default_rng(0)


def test_static_shape_becomes_constant():
    model = parse("""<ir_version: 8, opset_import: ["" : 18]> g (float[2,3,4] x) => (float[6,4] y) {
        s = Shape<start = 1>(x)
        p = ReduceProd<keepdims = 1>(s)
        lead = Constant<value = int64[1] {-1}>()
        n = Concat<axis = 0>(lead, p)
        t = Reshape(x, n)
        y = Transpose<perm = [1, 0]>(t) }""")
    out = assert_rewrites(model, shapes.shape_of_static, {"x": RNG.standard_normal((2, 3, 4), dtype=np.float32)})
    assert "Shape" not in ops(out)


def test_symbolic_shape_is_left_alone():
    model = parse("""<ir_version: 8, opset_import: ["" : 18]> g (float[N,4] x) => (int64[2] y) {
        y = Shape(x) }""")
    assert_no_site(model, shapes.shape_of_static)
