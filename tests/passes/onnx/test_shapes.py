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


def _gather_of_shape(indices: str, x_shape: str = "N,4,16,32", start: int = 0) -> str:
    # tf2onnx's Einsum lowering: head and width sizes read off Shape(x) next to a dynamic batch
    return f"""<ir_version: 8, opset_import: ["" : 18]> g (float[{x_shape}] x) => (float[N,4,512] y) {{
        s = Shape<start = {start}>(x)
        i = Constant<value = int64{indices}>()
        picked = Gather<axis = 0>(s, i)
        last = ReduceProd<keepdims = 1>(picked)
        lead = Constant<value = int64[2] {{0, 4}}>()
        target = Concat<axis = 0>(lead, last)
        y = Reshape(x, target) }}"""


def test_gather_of_integer_dims_becomes_constant_with_a_dynamic_batch():
    feeds = {"x": RNG.standard_normal((3, 4, 16, 32), dtype=np.float32)}
    out = assert_rewrites(parse(_gather_of_shape("[2] {2, 3}")), shapes.shape_gather_static, feeds)
    assert "Gather" not in ops(out) and "Shape" not in ops(out)
    # negative indices and Shape's start are honoured: dims (16, 32) again
    assert_rewrites(parse(_gather_of_shape("[2] {-2, -1}")), shapes.shape_gather_static, feeds)
    assert_rewrites(parse(_gather_of_shape("[2] {1, 2}", start=1)), shapes.shape_gather_static, feeds)


def test_gather_that_reads_the_dynamic_batch_is_left_alone():
    assert_no_site(parse(_gather_of_shape("[2] {0, 1}")), shapes.shape_gather_static)


def _head_split(second_source: str = "h") -> str:
    # the legacy exporter's head split: Reshape(q, [B, S, 4, 8]) with B and S read off h's shape
    return f"""<ir_version: 8, opset_import: ["" : 18]>
      g (float[B,S,32] h, float[B,T,32] other) => (float[B,S,4,8] y) {{
        w = Constant<value = float[32,32] {{{", ".join(["0.01"] * 1024)}}}>()
        q = MatMul(h, w)
        s0 = Shape(h)
        s1 = Shape({second_source})
        i0 = Constant<value = int64 {{0}}>()
        i1 = Constant<value = int64 {{1}}>()
        b = Gather<axis = 0>(s0, i0)
        n = Gather<axis = 0>(s1, i1)
        ax = Constant<value = int64[1] {{0}}>()
        bu = Unsqueeze(b, ax)
        nu = Unsqueeze(n, ax)
        heads = Constant<value = int64[2] {{4, 8}}>()
        target = Concat<axis = 0>(bu, nu, heads)
        y = Reshape(q, target) }}"""


def test_reshape_copy_dims_turns_a_computed_target_constant_exactly():
    from numpy.testing import assert_array_equal
    from onnx_ir.passes.common import ShapeInferencePass

    from tests.passes.onnx.harness import run

    model = parse(_head_split())
    ShapeInferencePass()(model)
    feeds = {"h": RNG.standard_normal((2, 5, 32), dtype=np.float32), "other": np.zeros((2, 3, 32), np.float32)}
    out = assert_rewrites(model, shapes.reshape_copy_dims, feeds)
    assert "Shape" not in ops(out) and "Concat" not in ops(out)
    reshape = next(n for n in out.graph if n.op_type == "Reshape")
    assert reshape.inputs[1].const_value.numpy().tolist() == [0, 0, 4, 8]
    assert_array_equal(run(out, feeds)[0], run(model, feeds)[0])


def test_reshape_copy_dims_leaves_a_size_read_off_another_length():
    from onnx_ir.passes.common import ShapeInferencePass

    model = parse(_head_split(second_source="other"))  # S taken from a tensor of length T: not x's own
    ShapeInferencePass()(model)
    assert_no_site(model, shapes.reshape_copy_dims)
