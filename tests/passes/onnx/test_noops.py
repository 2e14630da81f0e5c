import numpy as np

from graphopt.formats.onnx import files as onnx_files
from graphopt.formats.onnx.adapter import prepare
from graphopt.formats.onnx.rewrite import SMALL_FILL, fold_small_fills, rewrite_to_fixpoint
from graphopt.passes.onnx import noops, shapes
from tests.passes.onnx.harness import assert_no_site, assert_rewrites, assert_same_outputs, ops, parse

RNG = np.random.default_rng(0)
X = {"x": RNG.standard_normal((1, 4, 6, 3), dtype=np.float32)}
HEADER = '<ir_version: 8, opset_import: ["" : 18]>'


def _pad(pads: str) -> str:
    # torch's legacy exporter: the pads Concat-ed from a ConstantOfShape and computed amounts
    return f"""{HEADER} g (float[1,4,6,3] x) => (float[1,{4 if pads == "0" else 5},6,3] y) {{
        n = Constant <value = int64[1] {{4}}> ()
        zeros = ConstantOfShape <value = int64[1] {{0}}> (n)
        amounts = Constant <value = int64[4] {{0, {pads}, 0, 0}}> ()
        all = Concat <axis = 0> (zeros, amounts)
        y = Pad (x, all) }}"""


def test_pad_by_zero_is_dropped():
    rewritten = assert_rewrites(parse(_pad("0")), noops.pad_zero, X)
    assert "Pad" not in ops(rewritten)


def test_pad_by_one_is_kept():
    assert_no_site(parse(_pad("1")), noops.pad_zero)


def _slice(ends: str, steps: str = "1, 1", x_shape: str = "1,4,6,3") -> str:
    return f"""{HEADER} g (float[{x_shape}] x) => (float[?,?,?,?] y) {{
        starts = Constant <value = int64[2] {{0, -6}}> ()
        ends = Constant <value = int64[2] {{{ends}}}> ()
        axes = Constant <value = int64[2] {{1, -2}}> ()
        steps = Constant <value = int64[2] {{{steps}}}> ()
        y = Slice (x, starts, ends, axes, steps) }}"""


def test_slice_over_whole_axes_is_dropped():
    # [0:4] of 4 and [-6:INT64_MAX] of 6 take everything (negative start and huge end clamp)
    rewritten = assert_rewrites(parse(_slice("4, 9223372036854775807")), noops.slice_full, X)
    assert "Slice" not in ops(rewritten)


def test_slice_that_cuts_or_strides_is_kept():
    assert_no_site(parse(_slice("3, 6")), noops.slice_full)
    assert_no_site(parse(_slice("4, 6", steps="1, 2")), noops.slice_full)
    assert_no_site(parse(_slice("4, 6", x_shape="1,4,N,3")), noops.slice_full)  # the sliced size is unknown


def _two_slices(second_axis: int) -> str:
    # x[:, 0::2, 1::2] as torch writes it: one Slice per axis, the first read twice
    return f"""{HEADER} g (float[1,4,6,3] x) => (float[?,?,?,?] y, float[?,?,?,?] z) {{
        s0 = Constant <value = int64[1] {{0}}> ()
        s1 = Constant <value = int64[1] {{1}}> ()
        end = Constant <value = int64[1] {{9223372036854775807}}> ()
        a1 = Constant <value = int64[1] {{1}}> ()
        a2 = Constant <value = int64[1] {{{second_axis}}}> ()
        two = Constant <value = int64[1] {{2}}> ()
        rows = Slice (x, s0, end, a1, two)
        y = Slice (rows, s1, end, a2, two)
        z = Slice (rows, s0, end, a2, two) }}"""


def test_slices_on_different_axes_become_one():
    rewritten = assert_rewrites(parse(_two_slices(-2)), noops.slice_slice, X)
    assert ops(rewritten).count("Slice") == 2  # one per output; the shared inner Slice is gone


def test_slices_on_one_axis_are_kept():
    assert_no_site(parse(_two_slices(1)), noops.slice_slice)


def _reshape(target: str, allowzero: int = 0) -> str:
    return f"""{HEADER} g (float[1,4,6,3] x) => (float[?,?,?,?] y) {{
        s = Constant <value = int64[4] {{{target}}}> ()
        y = Reshape <allowzero = {allowzero}> (x, s) }}"""


def test_reshape_to_own_shape_is_dropped():
    rewritten = assert_rewrites(parse(_reshape("0, 4, -1, 3")), noops.reshape_same, X)
    assert "Reshape" not in ops(rewritten)


def test_reshape_that_moves_sizes_is_kept():
    assert_no_site(parse(_reshape("1, 6, 4, 3")), noops.reshape_same)
    assert_no_site(parse(_reshape("0, 4, 6, 3", allowzero=1)), noops.reshape_same)  # 0 is a size-0 dim here


def test_reshape_to_own_shape_with_a_dynamic_batch_is_dropped():
    # [-1, 4, 6, 3] on [N, 4, 6, 3]: the -1 can only be N
    model = parse(_reshape("-1, 4, 6, 3").replace("float[1,4,6,3] x", "float[N,4,6,3] x"))
    assert "Reshape" not in ops(assert_rewrites(model, noops.reshape_same, X))
    assert_no_site(
        parse(_reshape("2, 4, 6, 3").replace("float[1,4,6,3] x", "float[N,4,6,3] x")), noops.reshape_same
    )  # N may not be 2
    assert_no_site(parse(_reshape("-1, 4, 3, 6").replace("float[1,4,6,3] x", "float[N,4,6,3] x")), noops.reshape_same)


def _squeeze_then_reshape(target: str) -> str:
    # tf2onnx's squeeze-excitation: GlobalAveragePool keeps [N, C, 1, 1], Squeeze, Reshape back
    return f"""{HEADER} g (float[N,4,6,3] x) => (float[?,?,?,?] y) {{
        pooled = GlobalAveragePool (x)
        axes = Constant <value = int64[2] {{2, 3}}> ()
        squeezed = Squeeze (pooled, axes)
        s = Constant <value = int64[4] {{{target}}}> ()
        y = Reshape (squeezed, s) }}"""


def test_reshape_of_a_squeeze_reads_the_unsqueezed_value():
    model = parse(_squeeze_then_reshape("-1, 4, 1, 1"))
    rewritten = assert_rewrites(model, noops.reshape_view, {"x": RNG.standard_normal((2, 4, 6, 3), dtype=np.float32)})
    assert "Squeeze" not in ops(rewritten)
    both = onnx_files.copy(model)
    rewrite_to_fixpoint(both, [noops.reshape_view, noops.reshape_same])
    assert ops(both) == ["GlobalAveragePool"]


def test_reshape_of_a_squeeze_that_copies_dims_is_kept():
    assert_no_site(parse(_squeeze_then_reshape("0, 4, 1, 1")), noops.reshape_view)  # 0 would copy the Squeeze's dims


def _around(op: str, outer: str) -> str:
    return f"""{HEADER} g (float[1,4,6,3] x) => (float[?,?,?] y) {{
        s1 = Constant <value = int64[2] {{24, 3}}> ()
        s2 = Constant <value = int64[3] {{{outer}}}> ()
        flat = Reshape (x, s1)
        act = {op} (flat)
        y = Reshape (act, s2) }}"""


def test_reshapes_around_an_activation_cancel():
    model = parse(
        _around("Erf", "0, 0, 3")
        .replace("float[?,?,?] y", "float[?,?,?,?] y")
        .replace("int64[3] {0, 0, 3}", "int64[4] {1, 4, 6, 3}")
    )
    rewritten = assert_rewrites(model, noops.reshape_unary_reshape, X)
    assert ops(rewritten) == ["Erf"]


def test_reshapes_around_an_activation_that_do_not_restore_are_kept():
    assert_no_site(parse(_around("Erf", "4, 6, 3")), noops.reshape_unary_reshape)  # drops the batch axis
    assert_no_site(parse(_around("Softmax", "4, 6, 3").replace("4, 6, 3", "1, 4, 18")), noops.reshape_unary_reshape)


def test_small_constant_of_shape_folds_so_shapes_behind_it_become_static():
    # The Pad's pads come from a ConstantOfShape: onnxscript's folder keeps those, and then the
    # Pad's output (and the Shape read from it) stays unknown. The rewrite loop folds small ones.
    model = parse(f"""{HEADER} g (float[1,4,6,3] x) => (float[1,4,6,3] y) {{
        n = Constant <value = int64[1] {{4}}> ()
        zeros = ConstantOfShape <value = int64[1] {{0}}> (n)
        more = Constant <value = int64[4] {{0, 0, 0, 0}}> ()
        pads = Concat <axis = 0> (zeros, more)
        padded = Pad (x, pads)
        one = Constant <value = float[1] {{1.0}}> ()
        shifted = Add (padded, one)
        size = Shape (shifted)
        y = Reshape (shifted, size) }}""")
    rewritten = prepare(onnx_files.copy(model))  # as graphopt loads models: symbolic shapes
    applied = rewrite_to_fixpoint(rewritten, [shapes.shape_of_static, noops.reshape_same])
    assert "shape-static" in {s.rule for s in applied}
    kept = ops(rewritten)
    assert "Reshape" not in kept and "ConstantOfShape" not in kept and "Shape" not in kept
    assert "Pad" in kept  # only pad-zero drops it
    assert_same_outputs(model, rewritten, X)


def test_only_small_constant_of_shape_is_folded():
    def fill(n: int):
        return parse(f"""{HEADER} g () => (float[{n}] y) {{
            n = Constant <value = int64[1] {{{n}}}> ()
            y = ConstantOfShape (n) }}""").graph.node(1)

    assert fold_small_fills(fill(SMALL_FILL)) is True
    assert fold_small_fills(fill(SMALL_FILL + 1)) is None  # the folder's own rule: kept


def _scaled(scale: str, bias: str, bias_shape: str = "") -> str:
    # paddle2onnx writes paddle.scale(x, s, b) as Mul then Add, also when b is 0
    return f"""{HEADER} g (float[N,4,6,3] x) => (float[?,?,?,?] y) {{
        s = Constant <value = float {{{scale}}}> ()
        b = Constant <value = float{bias_shape} {{{bias}}}> ()
        m = Mul (x, s)
        y = Add (m, b) }}"""


def test_adding_zero_and_multiplying_by_one_are_dropped():
    feeds = {"x": RNG.standard_normal((2, 4, 6, 3), dtype=np.float32)}
    assert ops(assert_rewrites(parse(_scaled("0.25", "0.0")), noops.add_zero, feeds)) == ["Constant", "Mul"]
    assert ops(assert_rewrites(parse(_scaled("1.0", "0.5")), noops.mul_one, feeds)) == ["Constant", "Add"]
    assert ops(assert_rewrites(prepare(parse(_scaled("0.25", "0.0", "[1,1,1]"))), noops.add_zero, feeds)) == [
        "Constant",
        "Mul",
    ]


def test_constants_that_are_not_neutral_or_that_broadcast_x_up_are_kept():
    assert_no_site(parse(_scaled("0.25", "1e-12")), noops.add_zero)
    # per channel: an untrained LayerNorm's beta; ORT's LayerNormFusion needs to see that Add
    assert_no_site(prepare(parse(_scaled("0.25", "0.0, 0.0, 0.0", "[3]"))), noops.add_zero)
    grows = _scaled("0.25", "0.0", "[1,1,1,1,1]").replace("float[?,?,?,?] y", "float[?,?,?,?,?] y")
    assert_no_site(prepare(parse(grows)), noops.add_zero)  # y is rank 5: the Add is not a no-op


def test_softmax_over_the_last_axis_by_index_is_written_as_minus_one():
    model = parse("""<ir_version: 8, opset_import: ["" : 11]> g (float[N,4,6,3] x) => (float[N,4,6,3] y) {
        y = Softmax <axis = 3> (x) }""")
    rewritten = assert_rewrites(
        model, noops.softmax_last_axis, {"x": RNG.standard_normal((2, 4, 6, 3), dtype=np.float32)}
    )
    assert rewritten.graph.node(0).attributes.get_int("axis") == -1
    assert_no_site(
        parse(f"""{HEADER} g (float[N,4,6,3] x) => (float[N,4,6,3] y) {{
        y = Softmax <axis = 2> (x) }}"""),
        noops.softmax_last_axis,
    )


def test_identity_nodes_do_not_hide_patterns():
    # paddle2onnx follows most ops with an Identity; graphopt drops them when it loads a model,
    # and after every round of rewrites (the no-op rules above leave Identity nodes too)
    model = parse(f"""{HEADER} g (float[N,4,6,3] x) => (float[?,?,?,?] y) {{
        s = Constant <value = float {{1.0}}> ()
        b = Constant <value = float {{0.0}}> ()
        m = Mul (x, s)
        i = Identity (m)
        a = Add (i, b)
        y = Relu (a) }}""")
    rewritten = prepare(onnx_files.copy(model))
    applied = rewrite_to_fixpoint(rewritten, [noops.add_zero, noops.mul_one])
    assert sorted(s.rule for s in applied) == ["add-zero", "mul-one"]
    assert ops(rewritten) == ["Relu"]
