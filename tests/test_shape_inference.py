"""Shapes for matching: a reshape to a computed target (the legacy exporter's way) keeps the
symbols of the dimensions it copies, so rules comparing "the same sequence length" can match."""

from __future__ import annotations

from graphopt.formats.onnx.shape_inference import infer_shapes
from tests.passes.onnx.harness import parse

LEGACY_RESHAPE = (
    """<ir_version: 8, opset_import: ["" : 18]>
g (float[batch, sequence, 64] x, float[batch, sequence, 64] y) """
    """=> (float[batch, 4, sequence, 16] q, float[batch, 4, sequence, 16] k) {
    shape_x = Shape(x)
    i0 = Constant<value = int64[1] {0}>()
    i1 = Constant<value = int64[1] {1}>()
    b = Gather<axis = 0>(shape_x, i0)
    s = Gather<axis = 0>(shape_x, i1)
    heads = Constant<value = int64[1] {4}>()
    width = Constant<value = int64[1] {16}>()
    target = Concat<axis = 0>(b, s, heads, width)
    qr = Reshape(x, target)
    q = Transpose<perm = [0, 2, 1, 3]>(qr)
    shape_y = Shape(y)
    by = Gather<axis = 0>(shape_y, i0)
    sy = Gather<axis = 0>(shape_y, i1)
    target_y = Concat<axis = 0>(by, sy, heads, width)
    kr = Reshape(y, target_y)
    k = Transpose<perm = [0, 2, 1, 3]>(kr)
}"""
)


def test_computed_reshapes_keep_the_input_symbols():
    model = parse(LEGACY_RESHAPE)
    assert infer_shapes(model) is None  # the symbolic pass ran
    values = {v.name: v for n in model.graph for v in n.outputs}
    q, k = values["qr"].shape, values["kr"].shape
    assert [str(d) for d in q] == ["batch", "sequence", "4", "16"]
    assert list(q) == list(k)  # one symbol per length: Q and K can be checked against each other


def test_onnx_inference_is_the_fallback(monkeypatch):
    # ORT's symbolic pass returns None on models it gives up on (the conformance corpus has some).
    from graphopt.formats.onnx import shape_inference

    monkeypatch.setattr(shape_inference, "_symbolic", lambda model: None)
    model = parse(LEGACY_RESHAPE)
    note = infer_shapes(model)
    assert note is not None and "onnx's shape inference used" in note
    values = {v.name: v for n in model.graph for v in n.outputs}
    assert values["q"].shape is not None and values["q"].shape.rank() == 4


def test_a_model_the_symbolic_pass_gives_up_on_leaves_no_file_behind(tmp_path, monkeypatch):
    # ORT's pass saves the model (weights as external data) into the current directory before it
    # raises "Incomplete symbolic shape inference": graphopt must not litter the user's folder.
    monkeypatch.chdir(tmp_path)
    model = parse("""<ir_version: 8, opset_import: ["" : 18, "com.example" : 1]>
    g (float[batch, 8] x) => (float[batch, 8] y) {
        t = com.example.Unknown(x)
        y = Relu(t)
    }""")
    note = infer_shapes(model)
    assert note is not None  # the fallback ran
    assert list(tmp_path.iterdir()) == []
